from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from hosts.models import Credential, Host


class RunState(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    QUEUED = "queued", "Queued"
    WAITING = "waiting_for_host", "Waiting for host"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    TIMED_OUT = "timed_out", "Timed out"
    LOST = "lost", "Lost"
    REJECTED = "rejected", "Rejected"


FINISHED = {
    RunState.SUCCEEDED,
    RunState.FAILED,
    RunState.CANCELLED,
    RunState.TIMED_OUT,
    RunState.LOST,
    RunState.REJECTED,
}


class Resolution(models.TextChoices):
    """What the host says happened to a run after its worker was lost."""

    SUCCEEDED = "succeeded", "succeeded on the host after the worker was lost"
    FAILED = "failed", "failed on the host after the worker was lost"
    RUNNING = "running", "still running on the host"
    KILLED = "killed", "killed on the host (someone decided so)"
    UNKNOWN = "unknown", "ended on the host without a recorded exit status"


class JobRun(models.Model):
    """One recipe on one host: the exact script, who asked, who approved, what happened."""

    batch = models.UUIDField(db_index=True)
    recipe = models.CharField(max_length=63)
    params = models.JSONField(default=dict)
    script = models.TextField()
    # Secret parameters, encrypted like credentials; never in `params` or `script`.
    secret_params = models.BinaryField(default=b"", editable=False)
    dry_run = models.BooleanField(default=False)
    host = models.ForeignKey(Host, on_delete=models.PROTECT, related_name="runs")
    credential = models.ForeignKey(Credential, null=True, on_delete=models.PROTECT)
    changes_host = models.BooleanField(default=False)
    timeout = models.PositiveIntegerField(help_text="Seconds")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decision_reason = models.CharField(max_length=300, blank=True)
    state = models.CharField(
        max_length=20, choices=RunState.choices, default=RunState.QUEUED, db_index=True
    )
    status_note = models.CharField(max_length=200, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    cancel_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    # When the reconciler last put it on the queue again: its claim (one reconciler re-queues
    # a run once, however many race) and its pause (not again within RECONCILE_AFTER).
    redelivered_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=120, blank=True)
    output_bytes = models.PositiveBigIntegerField(default=0)
    discarded_bytes = models.PositiveBigIntegerField(default=0)
    # A lost run, resolved later from the host's own record (jobs/resolve.py): what happened
    # there after its worker was lost. The state stays "lost": a finished state never moves.
    resolution = models.CharField(max_length=16, choices=Resolution.choices, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        # Each filter of the runs list walks its own index newest first (host, recipe, state).
        indexes = [
            models.Index(fields=["host", "-id"]),
            models.Index(fields=["recipe", "-id"]),
            models.Index(fields=["state", "-id"]),
        ]

    def __str__(self) -> str:
        return f"run #{self.pk} {self.recipe} on {self.host.name}"

    def get_absolute_url(self) -> str:
        return reverse("jobs:run", args=[self.pk])

    @property
    def recipe_title(self) -> str:
        from .recipes import get  # the registry imports the inventory, not the runs

        recipe = get(self.recipe)
        return recipe.title if recipe else self.recipe

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def rq_job_id(self) -> str:
        return f"run-{self.pk}"

    @property
    def host_token(self) -> str:
        """The run's mark on its host (its processes' REMORA_RUN, its exit status file)."""
        return f"remora-{self.pk}-{self.batch.hex[:8]}"

    @property
    def elapsed(self):
        if not self.started_at:
            return None
        return (self.finished_at or timezone.now()) - self.started_at


class OutputChunk(models.Model):
    """A piece of a run's output, in arrival order; `offset` counts stored bytes before it."""

    class Stream(models.TextChoices):
        STDOUT = "out", "stdout"
        STDERR = "err", "stderr"
        NOTICE = "note", "notice"

    run = models.ForeignKey(JobRun, on_delete=models.CASCADE, related_name="chunks")
    offset = models.PositiveBigIntegerField()
    stream = models.CharField(max_length=4, choices=Stream.choices)
    data = models.BinaryField()

    class Meta:
        ordering = ["run", "offset"]
        constraints = [
            models.UniqueConstraint(fields=["run", "offset", "stream"], name="chunk_position")
        ]

    def __str__(self) -> str:
        return f"{self.run_id}@{self.offset}"


class HostLock(models.Model):
    """At most one host-changing run per host at a time: the row is the lock."""

    host = models.OneToOneField(Host, on_delete=models.CASCADE, primary_key=True)
    run = models.OneToOneField(JobRun, on_delete=models.CASCADE, related_name="lock")
    acquired_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.host_id} locked by run {self.run_id}"


class PlanBatch(models.Model):
    """Applying a growth plan: its steps run one after the other, each when the one before
    succeeded (or was already in place); a failure stops the rest until someone resumes."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        FAILED = "failed", "Stopped at a failed step"
        SUCCEEDED = "succeeded", "Succeeded"

    from_phase = models.ForeignKey(
        "hosts.GrowthPhase", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    to_phase = models.ForeignKey("hosts.GrowthPhase", on_delete=models.PROTECT, related_name="+")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Whether the person who applied had proven a second factor: the later steps are launched
    # by the worker on that person's behalf, the policy asked again each time.
    second_factor = models.BooleanField(default=False)
    inputs = models.JSONField(default=dict)  # what the person gave (the app's git URL, ...)
    # The passwords the steps need, encrypted like credentials; erased once the batch succeeds.
    secret_inputs = models.BinaryField(default=b"", editable=False)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RUNNING)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # A worker advancing the batch holds it until then (a dead worker's hold expires).
    advancing_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        start = f"phase {self.from_phase.number}" if self.from_phase else "nothing"
        return f"plan #{self.pk}: {start} → phase {self.to_phase.number}"

    def get_absolute_url(self) -> str:
        return reverse("jobs:plan_batch", args=[self.pk])


class PlanStep(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for the step before"
        CHECKING = "checking", "Asking the host"
        IN_PLACE = "in_place", "Already in place (skipped)"
        LAUNCHED = "launched", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    batch = models.ForeignKey(PlanBatch, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    recipe = models.CharField(max_length=63)
    host = models.ForeignKey(Host, on_delete=models.PROTECT, related_name="+")
    params = models.JSONField(default=dict)  # public values only; inputs are the batch's
    inputs = models.JSONField(default=dict)  # which of the batch's inputs, as which parameter
    why = models.CharField(max_length=300)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    run = models.ForeignKey(
        JobRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="plan_steps"
    )
    note = models.TextField(blank=True)  # what the host said, or why the step failed

    class Meta:
        ordering = ["batch", "position"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "position"], name="one_step_per_position")
        ]

    def __str__(self) -> str:
        return f"step {self.position} of plan #{self.batch_id}: {self.recipe} on {self.host}"


class Schedule(models.Model):
    """A recipe that runs by itself: on a cron expression in a time zone, as its owner."""

    class Missed(models.TextChoices):
        SKIP = "skip", "Skip what was missed"
        RUN_ONCE = "run_once", "Run once to catch up"

    name = models.CharField(max_length=63, unique=True)
    recipe = models.CharField(max_length=63)
    params = models.JSONField(default=dict, blank=True)  # public values; secret recipes refused
    hosts = models.ManyToManyField(Host, blank=True, related_name="schedules")
    # Or every active host with this service kind, as the inventory says at fire time.
    service_kind = models.CharField(max_length=20, blank=True)
    cron = models.CharField(max_length=100)
    timezone = models.CharField(max_length=64, default="UTC")
    enabled = models.BooleanField(default=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    missed = models.CharField(max_length=10, choices=Missed.choices, default=Missed.SKIP)
    skip_while_running = models.BooleanField(
        default=True, help_text="Skip an occurrence while the previous run is still going."
    )
    grace_minutes = models.PositiveIntegerField(
        default=10, help_text="An occurrence not started this long after its time is missed."
    )
    # Occurrences up to here are decided; the scheduler looks for due ones after it.
    checked_until = models.DateTimeField()
    disabled_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("jobs:schedule", args=[self.pk])


class Occurrence(models.Model):
    """One time a schedule was due, and what became of it. Unique per schedule and time: two
    scheduler processes can never both fire it."""

    class Outcome(models.TextChoices):
        LAUNCHED = "launched", "Launched"
        SKIPPED = "skipped", "Skipped"
        MISSED = "missed", "Missed"
        REFUSED = "refused", "Refused"

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="occurrences")
    scheduled_for = models.DateTimeField()  # UTC
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    # The runs it launched (one per host); looked up by every run that ends.
    batch = models.UUIDField(null=True, blank=True, db_index=True)
    note = models.CharField(max_length=300, blank=True)
    decided_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-scheduled_for"]
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "scheduled_for"], name="one_occurrence_per_time"
            )
        ]

    def __str__(self) -> str:
        return f"{self.schedule} at {self.scheduled_for:%Y-%m-%d %H:%M} UTC: {self.outcome}"

    @property
    def runs(self):
        return JobRun.objects.filter(batch=self.batch) if self.batch else JobRun.objects.none()


class Alert(models.Model):
    """One model for every condition someone must look at: a failing check, a missed or failed
    scheduled run, a changed host key. Raised once per condition (`open_key` is unique while it
    is open: no storm), cleared once when it recovers, acknowledged by a person."""

    class Kind(models.TextChoices):
        CHECK = "check", "Failing check"
        MISSED = "missed", "Scheduled run did not run"
        RUN_FAILED = "run_failed", "Scheduled run failed"
        HOST_KEY = "host_key", "Host key changed"
        AUDIT_CHAIN = "audit_chain", "Audit chain broken"

    kind = models.CharField(max_length=12, choices=Kind.choices)
    key = models.CharField(max_length=200, db_index=True)  # which condition
    # The key while the alert is open, NULL once cleared: unique, so one open alert per condition.
    open_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    host = models.ForeignKey(
        Host, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    schedule = models.ForeignKey(
        Schedule, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    title = models.CharField(max_length=300)
    detail = models.TextField(blank=True)
    raised_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now_add=True)
    seen = models.PositiveIntegerField(default=1)
    cleared_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-raised_at"]

    def __str__(self) -> str:
        return self.title

    @property
    def zone(self):
        if self.host_id:
            return self.host.zone
        targets = list(self.schedule.hosts.all()) if self.schedule_id else []
        return targets[0].zone if targets else None


class Maintenance(models.Model):
    """When hosts may be changed by schedules (a recurring window) or by nobody (a freeze),
    for a zone or one host."""

    class Kind(models.TextChoices):
        WINDOW = "window", "Maintenance window"
        FREEZE = "freeze", "Freeze"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    zone = models.ForeignKey(
        "access.Zone", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    host = models.ForeignKey(
        Host, null=True, blank=True, on_delete=models.CASCADE, related_name="maintenance"
    )
    # A window opens on its cron (in its time zone) and stays open `duration_minutes`.
    cron = models.CharField(max_length=100, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    duration_minutes = models.PositiveIntegerField(null=True, blank=True)
    # A freeze lasts from `starts_at` to `ends_at`.
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=300)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "-created_at"]

    def __str__(self) -> str:
        where = self.host.name if self.host_id else (self.zone.name if self.zone_id else "?")
        return f"{self.get_kind_display()} for {where}: {self.reason}"

    @property
    def where(self):
        """The zone it belongs to (the policy's question), the host's when it is for one."""
        return self.host.zone if self.host_id else self.zone
