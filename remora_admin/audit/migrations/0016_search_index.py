"""Fill the search text of the events written before it (not hashed: the chain is unchanged;
the update trigger is lifted for this one statement), and index it for full-text search on
MariaDB and MySQL (built without stop words, so every word of three letters or more counts).
Elsewhere the search reads the rows."""

import importlib

from django.db import migrations

TRIGGERS = importlib.import_module("remora_admin.audit.migrations.0009_delete_only_pruned")
FILL = "UPDATE audit_auditevent SET search = {} WHERE search = ''"


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor not in ("mysql", "sqlite"):
        return
    text = ("LEFT(CONCAT(target_repr, ' ', details), 4000)" if vendor == "mysql"
            else "substr(target_repr || ' ' || details, 1, 4000)")  # fmt: skip
    create_update = (TRIGGERS.MYSQL_CREATE if vendor == "mysql" else TRIGGERS.SQLITE_CREATE)[0]
    schema_editor.execute(TRIGGERS.DROP[0], None)  # the update trigger only
    try:
        schema_editor.execute(FILL.format(text), None)
    finally:
        schema_editor.execute(create_update, None)
    if vendor == "mysql":
        schema_editor.execute("SET SESSION innodb_ft_enable_stopword = 0", None)
        schema_editor.execute(
            "CREATE FULLTEXT INDEX audit_search ON audit_auditevent (search)", None
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "mysql":
        schema_editor.execute("DROP INDEX audit_search ON audit_auditevent", None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0015_event_search")]

    operations = [migrations.RunPython(create, drop, atomic=False)]
