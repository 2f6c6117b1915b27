from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from hosts.models import Credential, Host


class RunState(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    QUEUED = "queued", "Queued"
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
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=120, blank=True)
    output_bytes = models.PositiveBigIntegerField(default=0)
    discarded_bytes = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["host", "-id"]), models.Index(fields=["recipe", "-id"])]

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
