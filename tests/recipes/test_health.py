"""Health checks on the lab: beamrider's MariaDB (installed by its recipe) checks healthy;
stopped, its check fails three times in a row, then one alert and one e-mail follow (the first
failure only marks it degraded); started again, one recovery."""

import pytest
from django.core import mail

from hosts.models import Service
from jobs.models import Alert, RunState

from .conftest import output
from .test_perlbal import lab_run

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]

SECRETS = {"app_password": "app-Health-pw-4711", "replica_address": ""}
CHECK = {"service": "mysql_master", "lag_limit": 60}


def test_a_stopped_database_fails_its_checks_alerts_once_and_recovers_once(
    run_recipe, lab_inventory
):
    lab_inventory["lead"].email = "bernie@example.org"
    lab_inventory["lead"].save()
    master = run_recipe("mariadb_master", "beamrider", SECRETS)
    assert master.state == RunState.SUCCEEDED, output(master)

    healthy = run_recipe("service_health", "beamrider", CHECK)
    assert healthy.state == RunState.SUCCEEDED, output(healthy)
    assert "healthy: MariaDB answers and takes writes" in output(healthy)
    service = Service.objects.get(host__name="beamrider", kind="mysql_master")
    assert service.state == "running" and service.last_checked_at is not None

    lab_run("beamrider", "systemctl stop mariadb")
    states = []
    for _ in range(4):
        failed = run_recipe("service_health", "beamrider", CHECK)
        assert failed.state == RunState.FAILED and failed.exit_code == 3
        service.refresh_from_db()
        states.append(service.state)
    assert "unhealthy: MariaDB does not answer" in output(failed)
    assert states == ["degraded", "degraded", "failed", "failed"]
    alert = Alert.objects.get(kind="check")
    assert alert.title == "MySQL master on beamrider is failing" and alert.seen == 2
    assert [m.subject for m in mail.outbox] == [f"[Remora Admin] {alert.title}"]

    lab_run("beamrider", "systemctl start mariadb")
    again = run_recipe("service_health", "beamrider", CHECK)
    assert again.state == RunState.SUCCEEDED, output(again)
    service.refresh_from_db()
    alert.refresh_from_db()
    assert service.state == "running" and alert.cleared_at is not None
    assert len(mail.outbox) == 2 and mail.outbox[1].subject.startswith("[Remora Admin] Recovered")
