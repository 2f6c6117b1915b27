from django import forms
from django.core.exceptions import ValidationError

from hosts.models import Host, ServiceKind
from remora_admin.access.models import slug_name
from remora_admin.access.policy import A, can, scope

from . import schedules
from .models import RunState, Schedule


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
