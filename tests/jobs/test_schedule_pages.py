"""Schedule pages: a zone admin creates one through the form (the recipe's own parameters, the
next runs previewed in its time zone), bad input is refused in words and saves nothing, the
list and detail say what comes next and what happened, disabling and enabling are audited;
recipes that need a password cannot be scheduled."""

from datetime import timedelta

import pytest
from django.utils import timezone

from hosts.models import Host
from jobs.models import Schedule
from remora_admin.audit.models import AuditEvent
from tests.access.helpers import give, make_user, sign_in

pytestmark = pytest.mark.django_db

GOOD = {
    "recipe": "disk_usage",
    "name": "sunjammer-disk",
    "hosts": [],
    "cron": "*/15 * * * *",
    "timezone": "Europe/Berlin",
    "missed": "skip",
    "skip_while_running": "on",
    "grace_minutes": "10",
    "enabled": "on",
    "p-threshold": "85",
}


@pytest.fixture
def erin(topology):
    """Sunjammer's zone admin."""
    user = make_user("erin")
    give(user, "zone_admin", "sunjammer")
    return sign_in(user)


def form(**changes) -> dict:
    values = {**GOOD, "hosts": [Host.objects.get(name="sunjammer").pk], **changes}
    return {k: v for k, v in values.items() if v is not None}


def test_a_zone_admin_creates_a_schedule_with_the_recipes_own_parameters(erin):
    page = erin.get("/schedules/new/").content.decode()
    assert "Disk usage" in page
    assert "?recipe=php_frontend" not in page  # it needs passwords: not offered

    response = erin.post("/schedules/new/?recipe=disk_usage", form())
    schedule = Schedule.objects.get()
    assert (
        response.status_code == 302 and response.headers["Location"] == f"/schedules/{schedule.pk}/"
    )
    assert schedule.params == {"threshold": 85}
    assert schedule.timezone == "Europe/Berlin" and schedule.owner.username == "erin"
    assert [h.name for h in schedule.hosts.all()] == ["sunjammer"]
    created = AuditEvent.objects.get(action="schedule.created")
    assert created.details["after"]["cron"] == "*/15 * * * *"

    detail = erin.get(f"/schedules/{schedule.pk}/").content.decode()
    assert "CET" in detail  # the next runs, in the schedule's own zone
    assert "Not due yet." in detail
    listed = erin.get("/schedules/").content.decode()
    assert "sunjammer-disk" in listed and "never yet" in listed


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"cron": "61 * * * *"}, "is not a valid cron expression"),
        ({"cron": "* * * * * *"}, "a seconds field is not allowed"),
        ({"timezone": "Mars/Olympus_Mons"}, "not an IANA time zone"),
        ({"grace_minutes": "0"}, "greater than or equal to 1"),
        ({"hosts": None}, "Name the hosts it runs on, or a service kind."),
        ({"service_kind": "php_frontend"}, "Name hosts or a service kind, not both."),
        ({"p-threshold": "100"}, "threshold"),
        ({"name": "not a slug!"}, "name"),
    ],
)
def test_bad_input_is_refused_in_words_and_saves_nothing(erin, changes, message):
    response = erin.post("/schedules/new/?recipe=disk_usage", form(**changes))

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Schedule.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="schedule.").exists()


def test_a_schedule_on_hosts_one_may_not_manage_is_refused(erin):
    response = erin.post("/schedules/new/?recipe=disk_usage", form(hosts=None,
                         **{"service_kind": "mysql_master"}))  # fmt: skip
    assert response.status_code == 400
    assert "You may not manage schedules on beamrider" in response.content.decode()
    assert not Schedule.objects.exists()


def test_the_preview_shows_the_next_runs_or_says_what_is_wrong(erin):
    good = erin.get("/schedules/preview/", {"cron": "30 2 * * *", "timezone": "America/New_York"})
    bad = erin.get("/schedules/preview/", {"cron": "30 2 * *", "timezone": "UTC"})

    assert good.content.decode().count("02:30 E") == 5  # EST or EDT
    assert "five fields" in bad.content.decode()
    nothing = erin.get("/schedules/preview/", {"cron": "", "timezone": "UTC"})
    assert nothing.status_code == 200 and "notice" not in nothing.content.decode()


def test_disabling_and_enabling_are_audited_and_say_so(erin):
    erin.post("/schedules/new/?recipe=disk_usage", form())
    schedule = Schedule.objects.get()

    erin.post(f"/schedules/{schedule.pk}/disable/")
    schedule.refresh_from_db()
    assert not schedule.enabled
    page = erin.get(f"/schedules/{schedule.pk}/").content.decode()
    assert "none while disabled" in page and "Enable" in page
    erin.post(f"/schedules/{schedule.pk}/enable/")
    schedule.refresh_from_db()
    assert schedule.enabled
    changes = AuditEvent.objects.filter(action="schedule.updated").order_by("id")
    assert [e.details["after"]["enabled"] for e in changes] == [False, True]


def test_editing_the_time_looks_forward_from_now(erin):
    erin.post("/schedules/new/?recipe=disk_usage", form())
    schedule = Schedule.objects.get()
    Schedule.objects.filter(pk=schedule.pk).update(checked_until="2026-01-01T00:00:00Z")

    response = erin.post(f"/schedules/{schedule.pk}/edit/", form(cron="0 3 * * *"))

    assert response.status_code == 302
    schedule.refresh_from_db()
    assert schedule.cron == "0 3 * * *"
    assert timezone.now() - schedule.checked_until < timedelta(minutes=1)
    updated = AuditEvent.objects.get(action="schedule.updated")
    assert updated.details["before"] == {"cron": "*/15 * * * *"}
