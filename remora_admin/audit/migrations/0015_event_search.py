"""The search text column. On MariaDB, adding a TEXT column with a default makes Django fill
the existing rows with an UPDATE, which the append-only trigger refuses: the update trigger is
lifted for the column's addition and put back (the column is not hashed)."""

import importlib

from django.db import migrations, models

TRIGGERS = importlib.import_module("remora_admin.audit.migrations.0009_delete_only_pruned")
CREATE = {"mysql": TRIGGERS.MYSQL_CREATE[0], "sqlite": TRIGGERS.SQLITE_CREATE[0]}


def lift(apps, schema_editor):
    if schema_editor.connection.vendor in CREATE:
        schema_editor.execute(TRIGGERS.DROP[0], None)  # the update trigger only


def restore(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor in CREATE:
        schema_editor.execute(TRIGGERS.DROP[0], None)
        schema_editor.execute(CREATE[vendor], None)


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("audit", "0014_event_host_filled")]

    operations = [
        migrations.RunPython(lift, restore),
        migrations.AddField(
            model_name="auditevent",
            name="search",
            field=models.TextField(blank=True, default=""),
        ),
        migrations.RunPython(restore, lift),
    ]
