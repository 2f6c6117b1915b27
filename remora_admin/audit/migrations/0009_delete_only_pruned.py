"""The delete trigger lets through only events up to the chain head's `pruned_through`.

Retention (remora_admin/audit/retention.py) archives the oldest events, records the prune as a
chained event, moves the mark and deletes up to it, in one transaction. Any other delete is
still refused below the ORM; updates still always are.
"""

from django.db import migrations

TABLE = "audit_auditevent"
MESSAGE = "audit events are append-only"
MARK = "(SELECT pruned_through FROM audit_chainhead WHERE id = 1)"

MYSQL_CREATE = [
    f"CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON {TABLE} FOR EACH ROW "
    f"SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{MESSAGE}'",
    f"CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON {TABLE} FOR EACH ROW "
    f"IF OLD.sequence > COALESCE({MARK}, 0) THEN "
    f"SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{MESSAGE}'; END IF",
]
SQLITE_CREATE = [
    f"CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON {TABLE} "
    f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END",
    f"CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON {TABLE} "
    f"WHEN OLD.sequence > COALESCE({MARK}, 0) "
    f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END",
]
DROP = [
    "DROP TRIGGER IF EXISTS audit_event_no_update",
    "DROP TRIGGER IF EXISTS audit_event_no_delete",
]
_OLD = "remora_admin.audit.migrations.0002_append_only_triggers"


def _statements(vendor: str, new: bool) -> list[str]:
    import importlib

    source = (
        {"MYSQL": MYSQL_CREATE, "SQLITE": SQLITE_CREATE}
        if new
        else {
            "MYSQL": importlib.import_module(_OLD).MYSQL_CREATE,
            "SQLITE": importlib.import_module(_OLD).SQLITE_CREATE,
        }
    )
    return {"mysql": source["MYSQL"], "sqlite": source["SQLITE"]}.get(vendor, [])


def recreate(new: bool):
    def apply(apps, schema_editor):
        statements = _statements(schema_editor.connection.vendor, new)
        if not statements:
            return
        for sql in DROP:
            schema_editor.execute(sql)
        for sql in statements:
            schema_editor.execute(sql)

    return apply


class Migration(migrations.Migration):
    dependencies = [("audit", "0008_prune_mark")]

    operations = [migrations.RunPython(recreate(True), recreate(False), atomic=False)]
