"""What the API shows of each thing (explicit fields: nothing secret by accident: no private
key, no encrypted parameter, no token digest) and what it accepts."""

from django import forms
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from hosts.models import GrowthPhase, Host, Service
from jobs.models import Alert, JobRun, PlanBatch, PlanStep, Schedule
from remora_admin.access.models import ApiToken
from remora_admin.audit.models import AuditEvent


class ServiceSerializer(serializers.ModelSerializer):
    host = serializers.CharField(source="host.name", read_only=True)

    class Meta:
        model = Service
        fields = ["id", "kind", "host", "state", "state_changed_at", "last_checked_at",
                  "check_note", "check_failures", "settings"]  # fmt: skip


class HostServiceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Service
        fields = ["kind", "state", "last_checked_at", "check_note"]


class HostSerializer(serializers.ModelSerializer):
    zone = serializers.CharField(source="zone.name", read_only=True)
    restricted = serializers.BooleanField(source="zone.is_restricted", read_only=True)
    host_key_trusted = serializers.SerializerMethodField()
    services = HostServiceSerializer(many=True, read_only=True)

    class Meta:
        model = Host
        fields = ["name", "address", "service_address", "ssh_port", "ssh_user", "zone",
                  "restricted", "active", "description", "host_key_fingerprint",
                  "host_key_trusted", "host_key_alert", "services"]  # fmt: skip

    def get_host_key_trusted(self, host: Host) -> bool:
        return bool(host.host_key) and host.host_key_trusted_at is not None


class PlacementSerializer(serializers.Serializer):
    kind = serializers.CharField()
    host = serializers.CharField(source="host.name")


class PhaseSerializer(serializers.ModelSerializer):
    placements = PlacementSerializer(many=True, read_only=True)
    is_current = serializers.SerializerMethodField()

    class Meta:
        model = GrowthPhase
        fields = ["number", "name", "description", "is_current", "placements"]

    def get_is_current(self, phase: GrowthPhase) -> bool:
        return bool(phase.is_current)


_TYPES = {
    forms.BooleanField: "boolean",
    forms.IntegerField: "integer",
    forms.ChoiceField: "choice",
    forms.MultipleChoiceField: "choices",
}


def _kind(field: forms.Field) -> str:
    for cls in type(field).__mro__:
        if cls in _TYPES:
            return _TYPES[cls]
    return "string"


def describe_field(name: str, field: forms.Field) -> dict:
    """A recipe parameter as a client needs it to fill it in (the form validates it)."""
    found = {
        "name": name,
        "type": _kind(field),
        "label": str(field.label or name.replace("_", " ").capitalize()),
        "help": str(field.help_text or ""),
        "required": bool(field.required),
        "secret": isinstance(field.widget, forms.PasswordInput),
        "initial": None,
        "choices": None,
        "min": getattr(field, "min_value", None),
        "max": getattr(field, "max_value", None),
        "max_length": getattr(field, "max_length", None),
    }
    initial = field.initial() if callable(field.initial) else field.initial
    if initial not in (None, "") and not found["secret"]:
        found["initial"] = initial if isinstance(initial, bool | int | float) else str(initial)
    if isinstance(field, forms.ChoiceField):
        found["choices"] = [str(value) for value, _ in field.choices if value not in ("", None)]
    return found


class ParameterSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.ChoiceField(["string", "integer", "boolean", "choice", "choices"])
    label = serializers.CharField()
    help = serializers.CharField(allow_blank=True)
    required = serializers.BooleanField()
    secret = serializers.BooleanField()
    initial = serializers.JSONField(allow_null=True)
    choices = serializers.ListField(child=serializers.CharField(), allow_null=True)
    min = serializers.IntegerField(allow_null=True)
    max = serializers.IntegerField(allow_null=True)
    max_length = serializers.IntegerField(allow_null=True)


class RecipeSerializer(serializers.Serializer):
    name = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    category = serializers.CharField()
    needs = serializers.CharField()
    changes_host = serializers.BooleanField()
    timeout = serializers.IntegerField()
    service_kinds = serializers.ListField(child=serializers.CharField())
    parameters = ParameterSerializer(many=True)


class RunSerializer(serializers.ModelSerializer):
    host = serializers.CharField(source="host.name", read_only=True)
    zone = serializers.CharField(source="host.zone.name", read_only=True)
    requested_by = serializers.CharField(
        source="requested_by.username", default=None, allow_null=True
    )
    approved_by = serializers.CharField(
        source="approved_by.username", default=None, allow_null=True
    )
    finished = serializers.BooleanField(read_only=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = JobRun
        fields = ["id", "batch", "recipe", "host", "zone", "state", "status_note", "dry_run",
                  "params", "requested_by", "approved_by", "decision_reason", "exit_code",
                  "error", "created_at", "queued_at", "started_at", "finished_at", "finished",
                  "timeout", "output_bytes", "resolution", "url"]  # fmt: skip

    def get_url(self, run: JobRun) -> str:
        request = self.context.get("request")
        path = run.get_absolute_url()
        return request.build_absolute_uri(path) if request else path


class RunDetailSerializer(RunSerializer):
    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "script", "worker", "changes_host"]


class LaunchSerializer(serializers.Serializer):
    recipe = serializers.CharField(max_length=63)
    hosts = serializers.ListField(
        child=serializers.CharField(max_length=63), min_length=1, max_length=500
    )
    params = serializers.DictField(child=serializers.JSONField(), required=False, default=dict)
    dry_run = serializers.BooleanField(required=False, default=False)
    all_or_nothing = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="One refused host refuses them all (nothing runs). Default: yes for recipes "
        "that change hosts (a coordinated change), no for checks (each host stands alone).",
    )


class RefusalSerializer(serializers.Serializer):
    host = serializers.CharField(allow_null=True)
    code = serializers.CharField()
    message = serializers.CharField()


class LaunchedSerializer(serializers.Serializer):
    runs = RunSerializer(many=True)
    refusals = RefusalSerializer(many=True, help_text="The hosts refused, each with why.")


class OutputSerializer(serializers.Serializer):
    offset = serializers.IntegerField(help_text="Where this text starts, in bytes.")
    next_offset = serializers.IntegerField(help_text="Ask again from here.")
    text = serializers.CharField(allow_blank=True)
    state = serializers.CharField()
    finished = serializers.BooleanField()
    exit_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_blank=True)


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300, help_text="The requester reads it.")


class OutcomeSerializer(serializers.Serializer):
    detail = serializers.CharField()
    run = RunSerializer(required=False)


class StepSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    recipe = serializers.CharField()
    host = serializers.CharField()
    why = serializers.CharField()
    params = serializers.DictField()


class InputSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    help = serializers.CharField(allow_blank=True)
    secret = serializers.BooleanField()
    initial = serializers.CharField(allow_null=True, allow_blank=True)


class PlanSerializer(serializers.Serializer):
    current = serializers.IntegerField(allow_null=True)
    target = serializers.IntegerField(allow_null=True)
    from_nothing = serializers.BooleanField()
    steps = StepSerializer(many=True)
    hidden_steps = serializers.IntegerField()
    inputs = InputSerializer(many=True)
    may_apply = serializers.BooleanField()
    running_batch = serializers.IntegerField(allow_null=True)


class ApplySerializer(serializers.Serializer):
    to = serializers.IntegerField(help_text="The phase the plan goes to (as GET /api/plan/ says).")
    from_nothing = serializers.BooleanField(required=False, default=False)
    inputs = serializers.DictField(child=serializers.CharField(allow_blank=True), default=dict)


class PlanStepSerializer(serializers.ModelSerializer):
    host = serializers.CharField(source="host.name")
    run = serializers.IntegerField(source="run_id", allow_null=True)

    class Meta:
        model = PlanStep
        fields = ["position", "recipe", "host", "why", "status", "run", "note"]


class BatchSerializer(serializers.ModelSerializer):
    from_phase = serializers.IntegerField(source="from_phase.number", default=None, allow_null=True)
    to_phase = serializers.IntegerField(source="to_phase.number")
    requested_by = serializers.CharField(
        source="requested_by.username", default=None, allow_null=True
    )
    steps = serializers.SerializerMethodField()

    class Meta:
        model = PlanBatch
        fields = ["id", "from_phase", "to_phase", "requested_by", "status", "created_at",
                  "finished_at", "steps"]  # fmt: skip

    @extend_schema_field(PlanStepSerializer(many=True))
    def get_steps(self, batch: PlanBatch) -> list:
        visible = self.context.get("visible", set())
        steps = batch.steps.select_related("host").order_by("position")
        return PlanStepSerializer([s for s in steps if s.host.name in visible], many=True).data


class ScheduleSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", default=None, allow_null=True)
    hosts = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)

    class Meta:
        model = Schedule
        fields = ["id", "name", "recipe", "params", "hosts", "service_kind", "cron",
                  "timezone", "enabled", "owner", "missed", "skip_while_running",
                  "grace_minutes", "disabled_reason", "created_at"]  # fmt: skip


class AlertSerializer(serializers.ModelSerializer):
    host = serializers.CharField(source="host.name", default=None, allow_null=True)
    schedule = serializers.CharField(source="schedule.name", default=None, allow_null=True)
    acknowledged_by = serializers.CharField(
        source="acknowledged_by.username", default=None, allow_null=True
    )
    open = serializers.SerializerMethodField()

    class Meta:
        model = Alert
        fields = ["id", "kind", "title", "detail", "host", "schedule", "raised_at",
                  "last_seen_at", "seen", "cleared_at", "acknowledged_by", "acknowledged_at",
                  "open"]  # fmt: skip

    def get_open(self, alert: Alert) -> bool:
        return alert.cleared_at is None


class EventSerializer(serializers.ModelSerializer):
    details = serializers.JSONField()

    class Meta:
        model = AuditEvent
        fields = ["sequence", "occurred_at", "actor_name", "action", "target_type",
                  "target_id", "target_repr", "zone", "host", "ip", "details",
                  "previous_hash", "hash"]  # fmt: skip


class EventPageSerializer(serializers.Serializer):
    results = EventSerializer(many=True)
    next_before = serializers.IntegerField(
        allow_null=True, help_text="Ask again with before=this for older events."
    )


class TokenSerializer(serializers.ModelSerializer):
    state = serializers.CharField(read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "scope", "second_factor", "created_at", "expires_at",
                  "last_used_at", "last_used_ip", "revoked_at", "state"]  # fmt: skip


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())
    second_factor = serializers.BooleanField()
    token = TokenSerializer(allow_null=True)


class WorkerSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="machine:pid, as runs name the worker that ran them")
    machine = serializers.CharField()
    pid = serializers.IntegerField()
    state = serializers.ChoiceField(choices=["busy", "idle", "suspended", "silent"])
    since = serializers.DateTimeField(allow_null=True)
    last_heard = serializers.DateTimeField(allow_null=True)
    run = serializers.IntegerField(source="run.pk", default=None, allow_null=True)


class WorkersSerializer(serializers.Serializer):
    workers = WorkerSerializer(many=True)
    alive = serializers.IntegerField()
    queued = serializers.IntegerField(help_text="Runs queued, not yet taken by a worker.")
    oldest_queued = serializers.DateTimeField(allow_null=True)
    waiting_for_host = serializers.IntegerField()
    queue_error = serializers.CharField(help_text="What Redis said when it did not answer.")
