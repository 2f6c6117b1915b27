from django.conf import settings
from django.db import migrations

GENESIS_HASH = "0" * 64


def create_head(apps, schema_editor):
    ChainHead = apps.get_model("audit", "ChainHead")
    AuditEvent = apps.get_model("audit", "AuditEvent")
    last = AuditEvent.objects.order_by("-sequence").first()
    ChainHead.objects.get_or_create(
        id=1,
        defaults={
            "sequence": last.sequence if last else 0,
            "hash": last.hash if last else GENESIS_HASH,
        },
    )


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_append_only_triggers"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(create_head, migrations.RunPython.noop),
    ]
