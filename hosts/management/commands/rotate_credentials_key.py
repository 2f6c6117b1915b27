from django.core.management.base import BaseCommand
from django.db import transaction

from hosts.credentials import rotate
from hosts.models import Credential
from remora_admin.audit.log import record


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored SSH key with the newest REMORA_CREDENTIALS_KEY. Set the variable "
        "to 'NEW_KEY,OLD_KEY' (newest first), run this, then drop OLD_KEY."
    )

    def handle(self, *args, **options) -> None:
        with transaction.atomic():
            count = 0
            for credential in Credential.objects.select_for_update():
                credential.encrypted_private_key = rotate(credential.encrypted_private_key)
                credential.save(update_fields=["encrypted_private_key"])
                count += 1
            record("credential.keys_rotated", actor_name="system", details={"credentials": count})
        self.stdout.write(
            self.style.SUCCESS(f"Re-encrypted {count} credentials with the newest key.")
        )
