from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

slug_name = RegexValidator(
    r"^[a-z][a-z0-9-]{0,62}$",
    "Use lower-case letters, digits and hyphens, starting with a letter.",
)


class Zone(models.Model):
    """A named group of hosts with one sensitivity, the unit that access is granted on."""

    class Sensitivity(models.TextChoices):
        RESTRICTED = "restricted", "Restricted"
        STANDARD = "standard", "Standard"

    name = models.CharField(max_length=63, unique=True, validators=[slug_name])
    sensitivity = models.CharField(
        max_length=16, choices=Sensitivity.choices, default=Sensitivity.STANDARD
    )
    description = models.TextField(blank=True)
    controller_limit = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="Warn when more people than this can operate hosts in the zone.",
    )
    requires_approval = models.BooleanField(
        default=False,
        help_text="Provisioning runs wait for a second person's approval.",
    )
    requires_window = models.BooleanField(
        default=False,
        help_text="Every schedule of a host-changing recipe here needs a maintenance window.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_restricted(self) -> bool:
        return self.sensitivity == self.Sensitivity.RESTRICTED


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    OPERATOR = "operator", "Operator"
    ZONE_ADMIN = "zone_admin", "Zone admin"
    AUDITOR = "auditor", "Auditor"
    SUPERADMIN = "superadmin", "Superadmin"


GLOBAL_ROLES = {Role.AUDITOR, Role.SUPERADMIN}
ZONE_ROLES = {Role.VIEWER, Role.OPERATOR, Role.ZONE_ADMIN}


class GrantQuerySet(models.QuerySet):
    def active(self, at=None) -> "GrantQuerySet":
        at = at or timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=at)
        )


class Grant(models.Model):
    """A role given to a user or a group, in one zone or globally, for a reason, maybe until
    a time. Revoking keeps the row (with who and why) so the history stays readable."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="grants",
    )
    group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.CASCADE, related_name="grants"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    zone = models.ForeignKey(
        Zone, null=True, blank=True, on_delete=models.CASCADE, related_name="grants"
    )
    reason = models.CharField(max_length=300)
    expires_at = models.DateTimeField(null=True, blank=True)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    revoke_reason = models.CharField(max_length=300, blank=True)

    objects = GrantQuerySet.as_manager()

    class Meta:
        ordering = ["zone__name", "role", "created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(user__isnull=False) & Q(group__isnull=True))
                | (Q(user__isnull=True) & Q(group__isnull=False)),
                name="grant_to_user_or_group",
            ),
            models.CheckConstraint(
                condition=(Q(role__in=sorted(GLOBAL_ROLES)) & Q(zone__isnull=True))
                | (Q(role__in=sorted(ZONE_ROLES)) & Q(zone__isnull=False)),
                name="grant_scope_matches_role",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_role_display()} in {self.scope_name} for {self.holder_name}"

    @property
    def holder_name(self) -> str:
        if self.user_id:
            return self.user.get_username()
        return f"group {self.group.name}"

    @property
    def scope_name(self) -> str:
        return self.zone.name if self.zone_id else "all zones"

    def is_active(self, at=None) -> bool:
        at = at or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > at)


class ApiToken(models.Model):
    """A personal token for the REST API and the `remora` command line. Only its SHA-256
    digest is stored (the token is random, 256 bits: a slow hash adds nothing); the token itself
    is shown once, when created. It acts as its owner, never beyond the owner's roles."""

    class Scope(models.TextChoices):
        READ = "read", "Read only"
        ACT = "act", "Read and act"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, db_index=True)  # shown, to tell tokens apart
    digest = models.CharField(max_length=64, unique=True)
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.READ)
    # Created from a session verified with the second factor (and short-lived): it may act in
    # restricted zones. Without it, the policy refuses restricted-zone changes as unverified.
    second_factor = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    addresses = models.JSONField(default=list, blank=True)  # where it was used from (latest 20)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"API token {self.name} ({self.prefix}…) of {self.user.get_username()}"

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "active"
