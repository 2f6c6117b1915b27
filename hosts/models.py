from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.urls import reverse

from remora_admin.access.models import Zone, slug_name

address_validator = RegexValidator(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
    r"|^[0-9a-fA-F:.]{2,45}$",
    "Enter a host name (e.g. beamrider.sugarlabs.org) or an IP address.",
)
unix_user = RegexValidator(
    r"^[a-z_][a-z0-9_-]{0,31}$", "Enter a Unix user name (lower case, at most 32 characters)."
)


class ServiceKind(models.TextChoices):
    MYSQL_MASTER = "mysql_master", "MySQL master"
    MYSQL_REPLICA = "mysql_replica", "MySQL replica (shadow database)"
    NFS_SERVER = "nfs_server", "NFS data-file server"
    PHP_FRONTEND = "php_frontend", "PHP front end"
    PERLBAL = "perlbal", "Perlbal load balancer"
    HEARTBEAT = "heartbeat", "Heartbeat monitor"


# Conventional defaults for each kind's settings; a service's own settings override them.
DEFAULT_SETTINGS: dict[str, dict] = {
    ServiceKind.MYSQL_MASTER: {"port": 3306, "database": "remora"},
    ServiceKind.MYSQL_REPLICA: {"port": 3306, "database": "remora", "replicates_from": ""},
    ServiceKind.NFS_SERVER: {
        "exports": ["/srv/remora/files", "/srv/remora/public-staging"],
        "port": 2049,
    },
    ServiceKind.PHP_FRONTEND: {"port": 8080, "document_root": "/srv/remora/site"},
    ServiceKind.PERLBAL: {"port": 80, "backends": []},
    ServiceKind.HEARTBEAT: {"port": 694, "watches": []},
}


class Credential(models.Model):
    """An SSH private key for one zone, encrypted at rest; only its public half is ever shown."""

    name = models.CharField(max_length=63, validators=[slug_name])
    zone = models.ForeignKey(Zone, on_delete=models.PROTECT, related_name="credentials")
    key_type = models.CharField(max_length=40)
    public_key = models.TextField()
    fingerprint = models.CharField(max_length=60)
    encrypted_private_key = models.BinaryField(editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["zone__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["zone", "name"], name="credential_name_per_zone")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.zone.name})"


class Host(models.Model):
    name = models.CharField(max_length=63, unique=True, validators=[slug_name])
    address = models.CharField(
        "SSH address",
        max_length=253,
        validators=[address_validator],
        help_text="Where the console connects over SSH (the management address).",
    )
    # Where the other hosts reach this one; see DESIGN.md, "Hosts have two addresses".
    service_address = models.CharField(
        "service address",
        max_length=253,
        blank=True,
        validators=[address_validator],
        help_text="Where the other hosts reach this one (replication, NFS, the Perlbal pool, "
        "the floating address). Leave empty when it is the same as the SSH address.",
    )
    ssh_port = models.PositiveIntegerField(
        default=22, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    ssh_user = models.CharField(max_length=32, default="root", validators=[unix_user])
    zone = models.ForeignKey(Zone, on_delete=models.PROTECT, related_name="hosts")
    description = models.TextField(blank=True)
    active = models.BooleanField(
        default=True, help_text="Inactive hosts are planned or retired; no jobs run on them."
    )
    credential = models.ForeignKey(
        Credential, null=True, blank=True, on_delete=models.PROTECT, related_name="hosts"
    )
    # The pinned host key ("type base64"); connections refuse any other key.
    host_key = models.TextField(blank=True)
    host_key_fingerprint = models.CharField(max_length=60, blank=True)
    host_key_trusted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    host_key_trusted_at = models.DateTimeField(null=True, blank=True)
    # The last key a scan or a refused connection saw, waiting for someone to trust it.
    seen_host_key = models.TextField(blank=True)
    seen_host_key_fingerprint = models.CharField(max_length=60, blank=True)
    host_key_alert = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("hosts:detail", args=[self.name])

    @property
    def reach_address(self) -> str:
        """The address other hosts use to reach this one: the service address, which defaults
        to the SSH address when blank."""
        return self.service_address or self.address


class Service(models.Model):
    class State(models.TextChoices):
        UNKNOWN = "unknown", "Not checked yet"
        RUNNING = "running", "Running"
        DEGRADED = "degraded", "Degraded"
        STOPPED = "stopped", "Stopped"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=20, choices=ServiceKind.choices)
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="services")
    settings = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.UNKNOWN)
    state_changed_at = models.DateTimeField(null=True, blank=True)
    # What the last health check said, and how many checks in a row have failed.
    last_checked_at = models.DateTimeField(null=True, blank=True)
    check_note = models.CharField(max_length=300, blank=True)
    check_failures = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["host__name", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["host", "kind"], name="one_service_kind_per_host")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.host.name}"

    @property
    def effective_settings(self) -> dict:
        return {**DEFAULT_SETTINGS.get(self.kind, {}), **self.settings}


class GrowthPhase(models.Model):
    """A stage of the stack's growth: the full placement of services it targets."""

    number = models.PositiveSmallIntegerField(unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    # True for the current phase, NULL for all others: a unique column allows many NULLs and a
    # single True, so the database itself guarantees at most one current phase.
    is_current = models.BooleanField(null=True, unique=True, default=None, editable=False)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"Phase {self.number}: {self.name}"


class Placement(models.Model):
    """One service kind on one host, as a growth phase targets it."""

    phase = models.ForeignKey(GrowthPhase, on_delete=models.CASCADE, related_name="placements")
    kind = models.CharField(max_length=20, choices=ServiceKind.choices)
    host = models.ForeignKey(Host, on_delete=models.PROTECT, related_name="placements")
    settings = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["phase__number", "host__name", "kind"]
        constraints = [
            models.UniqueConstraint(
                fields=["phase", "host", "kind"], name="one_placement_per_phase_host_kind"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.host.name} (phase {self.phase.number})"
