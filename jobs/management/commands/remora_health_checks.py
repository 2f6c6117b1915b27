from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from jobs.schedules import HEALTH_CRON, ensure_health_checks


class Command(BaseCommand):
    help = (
        "Create the built-in health-check schedules (one per service kind, on every host that "
        "runs it, every five minutes) as OWNER; existing ones are left as they are."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--owner", required=True, help="The user the checks run as.")
        parser.add_argument("--cron", default=HEALTH_CRON, help="When (default: every 5 min).")

    def handle(self, *args, owner: str, cron: str, **options) -> None:
        user = get_user_model().objects.filter(username=owner, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user named {owner}.")
        created = ensure_health_checks(user, cron)
        if created:
            self.stdout.write("Created: " + ", ".join(s.name for s in created))
        else:
            self.stdout.write("The health-check schedules exist already.")
