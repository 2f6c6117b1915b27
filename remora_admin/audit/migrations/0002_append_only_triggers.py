"""Make the audit table append-only in the database itself, below the ORM.

On MariaDB/MySQL and SQLite, triggers refuse every UPDATE and DELETE of an audit event, so even a
direct SQL session cannot quietly rewrite history (it would have to drop the triggers, which
needs the TRIGGER privilege the application's account does not need).
"""

from django.db import migrations

TABLE = "audit_auditevent"
MESSAGE = "audit events are append-only"

MYSQL_CREATE = [
    f"CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON {TABLE} FOR EACH ROW "
    f"SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{MESSAGE}'",
    f"CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON {TABLE} FOR EACH ROW "
    f"SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{MESSAGE}'",
]
SQLITE_CREATE = [
    f"CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON {TABLE} "
    f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END",
    f"CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON {TABLE} "
    f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END",
]
DROP = [
    "DROP TRIGGER IF EXISTS audit_event_no_update",
    "DROP TRIGGER IF EXISTS audit_event_no_delete",
]


def create_triggers(apps, schema_editor):
    statements = {"mysql": MYSQL_CREATE, "sqlite": SQLITE_CREATE}.get(
        schema_editor.connection.vendor
    )
    for sql in statements or []:
        schema_editor.execute(sql)


def drop_triggers(apps, schema_editor):
    for sql in DROP:
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(create_triggers, drop_triggers, atomic=False)]
