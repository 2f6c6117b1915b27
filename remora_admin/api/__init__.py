"""The REST API under /api/: the console's capabilities for scripts and the `remora` command
line. It is wiring only: every view asks the one policy (`remora_admin.access`), and every change
goes through the same functions the pages call (`jobs.launch`, `jobs.batches`, ...), which write
their audit events. Django REST framework with drf-spectacular for the OpenAPI 3 schema.
"""
