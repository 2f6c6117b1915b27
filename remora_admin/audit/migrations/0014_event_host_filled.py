"""Fill the new `host` column of the events written before it (it is not hashed: the chain is
unchanged). The update trigger is lifted for this one statement and put back."""

import importlib

from django.db import migrations

TRIGGERS = importlib.import_module("remora_admin.audit.migrations.0009_delete_only_pruned")

MYSQL_FILL = """
UPDATE audit_auditevent SET host = LEFT(CASE
    WHEN JSON_VALUE(details, '$.host') IS NOT NULL THEN JSON_VALUE(details, '$.host')
    WHEN target_type = 'hosts.host' THEN target_repr
    WHEN target_repr LIKE '% on %' THEN SUBSTRING_INDEX(target_repr, ' on ', -1)
    ELSE '' END, 63)
WHERE host = ''
"""
SQLITE_FILL = """
UPDATE audit_auditevent SET host = substr(CASE
    WHEN json_type(details, '$.host') = 'text' THEN json_extract(details, '$.host')
    WHEN target_type = 'hosts.host' THEN target_repr
    WHEN instr(target_repr, ' on ') > 0
        THEN substr(target_repr, instr(target_repr, ' on ') + 4)
    ELSE '' END, 1, 63)
WHERE host = ''
"""


def fill(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    statements = {"mysql": (MYSQL_FILL, TRIGGERS.MYSQL_CREATE),
                  "sqlite": (SQLITE_FILL, TRIGGERS.SQLITE_CREATE)}.get(vendor)  # fmt: skip
    if statements is None:
        return
    fill_sql, create = statements
    schema_editor.execute(TRIGGERS.DROP[0])  # the update trigger only
    try:
        schema_editor.execute(fill_sql, None)
    finally:
        schema_editor.execute(create[0])


class Migration(migrations.Migration):
    dependencies = [("audit", "0013_event_host")]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop, atomic=False)]
