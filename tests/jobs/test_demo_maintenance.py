"""The demo's maintenance (what make run sets up when the lab is up): beamrider's nightly and
Sunday windows, a nightly backup and weekly upgrades inside them, the health checks; made once,
audited, and each scheduled time falls inside its window."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from jobs import maintenance, schedules
from jobs.models import Maintenance, Schedule
from remora_admin.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_the_demo_maintenance_is_made_once_and_its_times_fall_in_its_windows(topology):
    lead = get_user_model().objects.create_superuser("bernie", "b@example.org", "pw-lead-12")
    made = schedules.ensure_demo_maintenance(lead)
    assert "schedule beamrider-backup" in made and "schedule beamrider-upgrades" in made
    assert sum(m.startswith("schedule health-") for m in made) == 7  # six kinds and the disks
    assert Maintenance.objects.filter(kind="window").count() == 2
    assert schedules.ensure_demo_maintenance(lead) == []  # once
    backup = Schedule.objects.get(name="beamrider-backup")
    assert backup.params["database"] == "remora" and backup.params["keep"] == 7
    assert AuditEvent.objects.filter(action="schedule.created").count() == 9
    beamrider = backup.hosts.get()
    for name in ("beamrider-backup", "beamrider-upgrades"):
        schedule = Schedule.objects.get(name=name)
        for when in schedules.next_times(schedule.cron, schedule.timezone, timezone.now(), 3):
            assert maintenance.window_rule(beamrider, when + timedelta(seconds=1)) == "", name
