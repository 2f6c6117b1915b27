"""The demo people, all with one published password, for development and demonstrations.

DEMO_PEOPLE is the cast of the beamrider story: the lead admin, the few people on beamrider
(both with two-factor set up), the community delegates on sunjammer (some grants expiring) and
an auditor. `grant_demo_role` turns each row into a grant with its audit event.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from remora_admin.access.grants import grant_details
from remora_admin.access.models import Grant, Zone
from remora_admin.audit.log import record

# Published on purpose (README, banner): refused where DEBUG is off, see Command.handle.
DEMO_PASSWORD = "remora-demo-2026"  # noqa: S105


@dataclass(frozen=True)
class DemoPerson:
    username: str
    role: str  # a role name of remora_admin.access (superadmin, zone_admin, operator, ...)
    zone: str | None  # the zone the role is held in; None for all zones
    about: str
    superuser: bool = False
    expires_days: int | None = None
    two_factor: bool = False

    @property
    def first_name(self) -> str:
        return self.username.capitalize()

    @property
    def email(self) -> str:
        return f"{self.username}@example.org"


DEMO_PEOPLE = (
    DemoPerson(
        "bernie", "superadmin", None, "lead admin (superuser)", superuser=True, two_factor=True
    ),
    DemoPerson("alice", "zone_admin", "beamrider", "runs beamrider day to day", two_factor=True),
    DemoPerson(
        "bob", "operator", "beamrider", "beamrider operator", expires_days=90, two_factor=True
    ),
    DemoPerson("carol", "zone_admin", "sunjammer", "community delegate, sunjammer's admin"),
    DemoPerson("dan", "operator", "sunjammer", "community delegate", expires_days=30),
    DemoPerson("erin", "operator", "sunjammer", "community delegate", expires_days=7),
    DemoPerson("frank", "operator", "sunjammer", "community delegate"),
    DemoPerson("grace", "viewer", "sunjammer", "community delegate, read-only"),
    DemoPerson("heidi", "viewer", "sunjammer", "community delegate", expires_days=14),
    DemoPerson("ivan", "auditor", None, "auditor (reads beamrider too)", two_factor=True),
)


def grant_demo_role(user, person: DemoPerson) -> None:
    """Give `user` the demo person's role (superusers are superadmins already) and, for the
    beamrider people, an authenticator device. Runs inside the user's creation transaction."""
    if not person.superuser:
        zone = Zone.objects.get(name=person.zone) if person.zone else None
        expires = (
            timezone.now() + timedelta(days=person.expires_days) if person.expires_days else None
        )
        grant = Grant.objects.create(
            user=user,
            role=person.role,
            zone=zone,
            expires_at=expires,
            reason=f"demo: {person.about}",
        )
        record(
            "grant.created",
            actor_name="system",
            target=grant,
            zone=person.zone or "",
            details={"after": grant_details(grant)},
        )
    if person.two_factor:
        TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
        record("auth.2fa_enrolled", actor=user, details={"device": "Authenticator app (demo)"})


def create_demo_users() -> list:
    """Create the demo people that do not exist yet; return the users created.

    Existing users are left exactly as they are (a changed password stays changed)."""
    User = get_user_model()
    # PBKDF2 is slow on purpose; hash the one shared password once, not once per person.
    password_hash = make_password(DEMO_PASSWORD)
    created = []
    for person in DEMO_PEOPLE:
        with transaction.atomic():
            if User.objects.filter(username=person.username).exists():
                continue
            user = User(
                username=person.username,
                first_name=person.first_name,
                email=person.email,
                is_staff=person.superuser,
                is_superuser=person.superuser,
                password=password_hash,
            )
            user.save()
            record(
                "user.created",
                actor_name="system",
                target=user,
                details={"username": person.username, "superuser": person.superuser},
            )
            grant_demo_role(user, person)
        created.append(user)
    return created


def login_lines() -> list[str]:
    """One line per demo person: user name, what they are, where."""
    width = max(len(p.username) for p in DEMO_PEOPLE)
    lines = []
    for p in DEMO_PEOPLE:
        where = f" ({p.zone})" if p.zone else ""
        until = f", grant ends in {p.expires_days} days" if p.expires_days else ""
        factor = f", two-factor code: make code USER={p.username}" if p.two_factor else ""
        lines.append(f"{p.username:<{width}}  {p.about}{where}{until}{factor}")
    return lines


class Command(BaseCommand):
    help = (
        "Create the demo people (bernie, alice, ... ivan) with the shared password "
        f"{DEMO_PASSWORD}. Idempotent: existing users are left untouched. Refused when DEBUG "
        "is off unless --allow-production is given."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="Run even though DEBUG is off. Anyone who reads the README can then sign in.",
        )

    def handle(self, *args, allow_production: bool = False, **options) -> None:
        if not settings.DEBUG and not allow_production:
            raise CommandError(
                "Refusing to create demo users while DEBUG is off: their password is published, "
                "so on a real console anyone could sign in as the lead admin. Use DEBUG=true for "
                "development, or pass --allow-production if you really mean it."
            )
        created = create_demo_users()
        if created:
            names = ", ".join(u.get_username() for u in created)
            self.stdout.write(self.style.SUCCESS(f"Created {len(created)} demo user(s): {names}."))
        else:
            self.stdout.write(f"All {len(DEMO_PEOPLE)} demo users already exist; nothing created.")
        self.stdout.write(f"Demo password for every one of them: {DEMO_PASSWORD}")
        for line in login_lines():
            self.stdout.write(f"  {line}")
