"""Launching through the API on several hosts: a check runs on every host it may, each refused
host said with its reason; a change is all or nothing unless asked otherwise; nothing launched
is a refusal (403 from the policy alone, else 409)."""

from datetime import timedelta

import pytest
from django.test import Client

from hosts.models import Host
from jobs.models import JobRun
from remora_admin.access import tokens
from remora_admin.audit.models import AuditEvent

from .conftest import make_launchable

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(launchable):
    """sunjammer and a second community host, both in the sunjammer zone."""
    second = Host.objects.create(name="sunjammer2", address="127.0.0.1",
                                 zone=launchable["sunjammer"].zone)  # fmt: skip
    return [launchable["sunjammer"], make_launchable(second)]


def _launch(user, body: dict):
    _, raw = tokens.create(user, name="launch", scope="act", lifetime=timedelta(hours=1))
    return Client().post("/api/runs/", body, content_type="application/json",
                         HTTP_AUTHORIZATION=f"Bearer {raw}")  # fmt: skip


def test_a_check_runs_on_every_host_it_may_and_names_each_refused_one(carol, fleet):
    Host.objects.filter(name="sunjammer2").update(active=False)

    answer = _launch(carol, {"recipe": "host_health", "hosts": ["sunjammer", "sunjammer2"]})

    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert [r["host"] for r in body["runs"]] == ["sunjammer"]
    assert body["refusals"] == [{
        "host": "sunjammer2", "code": "host_inactive",
        "message": "sunjammer2 is not active (planned or retired); nothing runs there.",
    }]  # fmt: skip
    assert JobRun.objects.get().host.name == "sunjammer"
    assert AuditEvent.objects.filter(action="run.refused", host="sunjammer2").exists()


def test_all_or_nothing_refuses_every_host_for_one(carol, fleet):
    Host.objects.filter(name="sunjammer2").update(active=False)
    body = {"recipe": "host_health", "hosts": ["sunjammer", "sunjammer2"], "all_or_nothing": True}

    answer = _launch(carol, body)

    assert answer.status_code == 409
    assert answer.json()["refusals"][0]["code"] == "host_inactive"
    assert not JobRun.objects.exists()


def test_several_hosts_run_in_one_batch(carol, fleet):
    answer = _launch(carol, {"recipe": "host_health", "hosts": ["sunjammer", "sunjammer2"]})

    assert answer.status_code == 201
    runs = answer.json()["runs"]
    assert {r["host"] for r in runs} == {"sunjammer", "sunjammer2"}
    assert len({r["batch"] for r in runs}) == 1
    assert answer.json()["refusals"] == []


def test_nothing_launched_by_the_policy_alone_is_a_403_in_its_words(dan, fleet):
    answer = _launch(dan, {"recipe": "host_health", "hosts": ["sunjammer", "sunjammer2"]})

    assert answer.status_code == 403
    assert answer.json()["code"] == "no_role"
    assert "operator" in answer.json()["detail"].lower()
    assert not JobRun.objects.exists()
