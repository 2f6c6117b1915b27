from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from .load_demo_users import DEMO_PEOPLE


class Command(BaseCommand):
    help = (
        "Print a demo user's current two-factor code (development only: DEBUG must be on). "
        "Usually run as: make code USER=bob"
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")

    def handle(self, *args, username: str, **options) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "Refusing while DEBUG is off: a second factor printed is no factor. For the demo "
                "console run: make code USER=" + (username or "bob")
            )
        try:
            device = TOTPDevice.objects.filter(user__username=username, confirmed=True).first()
        except DatabaseError as exc:
            raise CommandError(
                f"The database has no demo people yet ({' '.join(str(exc).split())}). Start the "
                "console once with `make run`: it migrates and creates them."
            ) from None
        if device is None:
            with_codes = ", ".join(p.username for p in DEMO_PEOPLE if p.two_factor)
            raise CommandError(
                f"{username} has no authenticator device. Demo people with one: {with_codes}."
            )
        code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
        self.stdout.write(f"{code:0{device.digits}d}")
