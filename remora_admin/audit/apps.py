from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "remora_admin.audit"
    label = "audit"
    verbose_name = "Audit log"
