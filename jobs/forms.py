from django import forms
from django.core.exceptions import ValidationError

from hosts.models import Host, ServiceKind
from remora_admin.access.models import Zone, slug_name
from remora_admin.access.policy import A, can, scope, zones_where

from . import schedules
from .cron import check_cron, zone_info
from .models import Maintenance, RunState, Schedule


class RunFilterForm(forms.Form):
    host = forms.CharField(required=False)
    recipe = forms.CharField(required=False)
    state = forms.ChoiceField(required=False, choices=[("", "Any state"), *RunState.choices])
    person = forms.CharField(required=False)
    batch = forms.UUIDField(required=False)


class DecisionForm(forms.Form):
    reason = forms.CharField(max_length=300)


class ScheduleForm(forms.Form):
    """A schedule's own settings; the recipe's parameters come from the recipe's form."""

    name = forms.CharField(max_length=63, validators=[slug_name], help_text="A short name.")
    hosts = forms.ModelMultipleChoiceField(
        queryset=Host.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The hosts it runs on…",
    )
    service_kind = forms.ChoiceField(
        required=False,
        choices=[("", "—"), *ServiceKind.choices],
        help_text="…or every active host with this service, as the inventory says each time.",
    )
    cron = forms.CharField(
        label="When (cron)",
        max_length=100,
        help_text="minute hour day-of-month month day-of-week, e.g. 30 2 * * * for 02:30 daily.",
    )
    timezone = forms.CharField(
        label="Time zone", max_length=64, initial="UTC", help_text="IANA name, e.g. Europe/Berlin."
    )
    missed = forms.ChoiceField(
        label="After a downtime", choices=Schedule.Missed.choices, initial=Schedule.Missed.SKIP
    )
    skip_while_running = forms.BooleanField(
        required=False, initial=True, label="Skip a time while the previous run is still going"
    )
    grace_minutes = forms.IntegerField(
        min_value=1,
        max_value=1440,
        initial=10,
        help_text="A time not started within this many minutes counts as missed.",
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, user=None, instance: Schedule | None = None, **kwargs):
        self.user, self.instance = user, instance
        super().__init__(*args, **kwargs)
        self.fields["hosts"].queryset = scope(
            Host.objects.filter(active=True).select_related("zone"), user, A.MANAGE_SCHEDULES
        ).order_by("name")

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        taken = Schedule.objects.filter(name=name)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise ValidationError(f"A schedule named {name} exists already.")
        return name

    def clean_cron(self) -> str:
        return schedules.check_cron(self.cleaned_data["cron"])

    def clean_timezone(self) -> str:
        name = self.cleaned_data["timezone"].strip()
        schedules.zone_info(name)
        return name

    def clean(self) -> dict:
        data = super().clean()
        hosts, kind = data.get("hosts"), data.get("service_kind")
        if hosts and kind:
            raise ValidationError("Name hosts or a service kind, not both.")
        if not hosts and not kind and "hosts" not in self.errors:
            raise ValidationError("Name the hosts it runs on, or a service kind.")
        if kind:
            found = Host.objects.filter(active=True, services__kind=kind).select_related("zone")
            refused = [h.name for h in found if not can(self.user, A.MANAGE_SCHEDULES, h)]
            if refused:
                raise ValidationError(
                    f"You may not manage schedules on {', '.join(sorted(set(refused)))}, which "
                    f"run{'s' if len(set(refused)) == 1 else ''} this service."
                )
        return data

    def targets(self) -> list[Host]:
        if self.cleaned_data.get("service_kind"):
            kind = self.cleaned_data["service_kind"]
            return list(Host.objects.filter(active=True, services__kind=kind).distinct())
        return list(self.cleaned_data.get("hosts") or [])


class MaintenanceForm(forms.Form):
    kind = forms.ChoiceField(choices=Maintenance.Kind.choices, widget=forms.RadioSelect)
    zone = forms.ModelChoiceField(queryset=Zone.objects.none(), required=False)
    host = forms.ModelChoiceField(queryset=Host.objects.none(), required=False)
    reason = forms.CharField(max_length=300, help_text="Why: people read it when refused.")
    cron = forms.CharField(
        required=False,
        max_length=100,
        label="Opens (cron)",
        help_text="A window: when it opens, e.g. 0 2 * * 0 for Sundays at 02:00.",
    )
    duration_minutes = forms.IntegerField(
        required=False, min_value=1, max_value=7 * 24 * 60, label="Stays open (minutes)",
        error_messages={"min_value": "A window of zero length never opens: give it minutes."},
    )  # fmt: skip
    starts_at = forms.DateTimeField(
        required=False,
        label="Freeze from",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    ends_at = forms.DateTimeField(
        required=False,
        label="Freeze until",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    timezone = forms.CharField(
        max_length=64, initial="UTC", help_text="IANA time zone of the times."
    )

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["zone"].queryset = zones_where(user, A.MANAGE_SCHEDULES)
        self.fields["host"].queryset = scope(
            Host.objects.select_related("zone"), user, A.MANAGE_SCHEDULES
        ).order_by("name")

    def clean_timezone(self) -> str:
        name = self.cleaned_data["timezone"].strip()
        zone_info(name)
        return name

    def clean(self) -> dict:
        data = super().clean()
        if bool(data.get("zone")) == bool(data.get("host")):
            raise ValidationError("Choose a zone or one host (not both).")
        if data.get("kind") == Maintenance.Kind.WINDOW:
            if not data.get("cron"):
                self.add_error("cron", "A window needs the time it opens.")
            else:
                try:
                    data["cron"] = check_cron(data["cron"])
                except ValidationError as error:
                    self.add_error("cron", error)
            if not data.get("duration_minutes") and "duration_minutes" not in self.errors:
                self.add_error("duration_minutes", "A window needs how long it stays open.")
        elif data.get("kind") == Maintenance.Kind.FREEZE and "timezone" in data:
            tz = zone_info(data["timezone"])
            start, end = data.get("starts_at"), data.get("ends_at")
            if not start or not end:
                raise ValidationError("A freeze needs when it starts and when it ends.")
            # The wall times typed, in the zone given (Django read them in UTC).
            data["starts_at"], data["ends_at"] = start.replace(tzinfo=tz), end.replace(tzinfo=tz)
            if data["ends_at"] <= data["starts_at"]:
                self.add_error("ends_at", "A freeze ends after it starts.")
        return data
