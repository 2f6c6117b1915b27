"""The off-box sink's cursor row exists from the start, like the chain head's: flushing processes
lock it, and creating it on first use let several first flushes deadlock on the insert."""

from django.db import migrations


def create_cursor(apps, schema_editor):
    apps.get_model("audit", "SinkCursor").objects.get_or_create(id=1, defaults={"sequence": 0})


class Migration(migrations.Migration):
    dependencies = [("audit", "0010_archive")]

    operations = [migrations.RunPython(create_cursor, migrations.RunPython.noop)]
