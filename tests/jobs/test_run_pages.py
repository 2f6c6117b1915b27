"""The run pages: escaped live output, the polled partial, the preview, filters, host keys,
and a clear 503 with nothing half-made when Redis is down at launch."""

import time

import django_rq
import pytest
from django.test import Client
from django.urls import reverse

from hosts.credentials import fingerprint
from hosts.models import Host
from jobs.models import JobRun, OutputChunk, RunState
from remora_admin.access.sudo import SUDO_UNTIL
from remora_admin.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def _client(user, *, sudo=False) -> Client:
    client = Client()
    client.force_login(user)
    if sudo:
        session = client.session
        session[SUDO_UNTIL] = time.time() + 600
        session.save()
    return client


def test_output_from_a_host_is_shown_as_text_never_as_html(lab_host, carol, make_recipe, run_now):
    recipe = make_recipe("html_out", lambda p: "printf '<script>alert(1)</script>\\n'")
    [run] = run_now(carol, recipe, [lab_host])

    page = _client(carol).get(run.get_absolute_url()).content.decode()

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page


def _run_with_chunks(lab_host, carol, state):
    run = JobRun.objects.create(
        batch="00000000-0000-0000-0000-000000000001",
        recipe="host_health",
        script="uptime",
        host=lab_host,
        timeout=60,
        requested_by=carol,
        state=state,
    )
    OutputChunk.objects.create(run=run, offset=0, stream="out", data=b"first\n")
    OutputChunk.objects.create(run=run, offset=6, stream="out", data=b"second\n")
    return run


def test_the_polled_partial_returns_only_output_after_the_offset(lab_host, carol):
    run = _run_with_chunks(lab_host, carol, RunState.RUNNING)

    body = (
        _client(carol).get(reverse("jobs:run_output", args=[run.pk]) + "?after=6").content.decode()
    )

    assert "second" in body and "first" not in body
    assert 'hx-swap-oob="beforeend:#output"' in body
    assert "?after=13" in body and 'hx-trigger="every' in body  # keeps polling from there
    assert "<html" not in body


def test_polling_stops_once_the_run_has_finished(lab_host, carol):
    run = _run_with_chunks(lab_host, carol, RunState.SUCCEEDED)

    body = (
        _client(carol).get(reverse("jobs:run_output", args=[run.pk]) + "?after=13").content.decode()
    )

    assert "hx-trigger" not in body
    assert "Succeeded" in body


def test_a_bad_offset_is_a_404_not_a_crash(lab_host, carol):
    run = _run_with_chunks(lab_host, carol, RunState.RUNNING)

    response = _client(carol).get(reverse("jobs:run_output", args=[run.pk]) + "?after=abc")

    assert response.status_code == 404


def test_the_preview_shows_the_exact_script_before_launch(lab_host, carol):
    url = reverse("jobs:launch", args=[lab_host.name]) + "?recipe=tail_log"

    response = _client(carol).post(
        url,
        {
            "recipe": "tail_log",
            "log": "syslog",
            "lines": "20",
            "grep": "it's $(bad)",
            "preview": "1",
        },
    )

    assert response.status_code == 200
    script = response.context["script"]
    assert "tail -n 20 -- /var/log/syslog | grep -F -- 'it'\"'\"'s $(bad)'" in script
    assert not JobRun.objects.exists()  # a preview launches nothing


def test_bad_parameters_are_refused_in_words_and_launch_nothing(lab_host, carol):
    url = reverse("jobs:launch", args=[lab_host.name]) + "?recipe=tail_log"

    response = _client(carol).post(
        url, {"recipe": "tail_log", "log": "/etc/shadow", "lines": "999999", "launch": "1"}
    )

    errors = response.context["form"].errors
    assert "Select a valid choice" in errors["log"][0]
    assert "less than or equal to 5000" in errors["lines"][0]
    assert not JobRun.objects.exists()


def test_the_run_list_filters_by_state_recipe_host_and_person(lab_host, carol, alice):
    def make(recipe, state, who):
        return JobRun.objects.create(
            batch="00000000-0000-0000-0000-000000000002",
            recipe=recipe,
            script="true",
            host=lab_host,
            timeout=60,
            requested_by=who,
            state=state,
        )

    failed = make("host_health", RunState.FAILED, carol)
    ok = make("tail_log", RunState.SUCCEEDED, alice)
    client = _client(carol)

    def listed(query):
        return {r.pk for r in client.get(reverse("jobs:runs") + query).context["runs"]}

    assert listed("?state=failed") == {failed.pk}
    assert listed("?recipe=tail_log") == {ok.pk}
    assert listed("?person=carol") == {failed.pk}
    assert listed(f"?host={lab_host.name}") == {failed.pk, ok.pk}
    assert listed("?host=nowhere") == set()


def test_a_zone_admin_scans_and_then_trusts_a_host_key(sshd_host, lab_host, alice):
    Host.objects.filter(pk=lab_host.pk).update(host_key="", host_key_fingerprint="")
    client = _client(alice, sudo=True)

    client.post(reverse("jobs:scan_key", args=[lab_host.name]))
    lab_host.refresh_from_db()
    assert lab_host.seen_host_key == sshd_host.host_public_key
    assert lab_host.host_key == ""  # seen, not yet trusted

    client.post(
        reverse("jobs:trust_key", args=[lab_host.name]),
        {"fingerprint": fingerprint(sshd_host.host_public_key)},
    )
    lab_host.refresh_from_db()
    assert lab_host.host_key == sshd_host.host_public_key
    assert lab_host.host_key_trusted_by == alice
    event = AuditEvent.objects.get(action="host.host_key_trusted")
    assert event.details["after"]["fingerprint"] == fingerprint(sshd_host.host_public_key)


def test_trusting_a_key_other_than_the_one_shown_is_refused(sshd_host, lab_host, alice):
    Host.objects.filter(pk=lab_host.pk).update(
        host_key="",
        host_key_fingerprint="",
        seen_host_key=sshd_host.host_public_key,
        seen_host_key_fingerprint=fingerprint(sshd_host.host_public_key),
    )

    _client(alice, sudo=True).post(
        reverse("jobs:trust_key", args=[lab_host.name]), {"fingerprint": "SHA256:something-else"}
    )

    lab_host.refresh_from_db()
    assert lab_host.host_key == ""
    assert not AuditEvent.objects.filter(action="host.host_key_trusted").exists()


def test_an_operator_may_not_scan_or_trust_keys(lab_host, carol):
    client = _client(carol, sudo=True)

    assert client.post(reverse("jobs:scan_key", args=[lab_host.name])).status_code == 403
    assert client.post(reverse("jobs:trust_key", args=[lab_host.name])).status_code == 403


def test_redis_down_at_launch_gives_a_clear_503_and_leaves_no_run(lab_host, carol, monkeypatch):
    from django_rq import settings as rq_settings

    monkeypatch.setitem(rq_settings.QUEUES, "default", {"URL": "redis://127.0.0.1:1/0"})
    url = reverse("jobs:launch", args=[lab_host.name]) + "?recipe=host_health"

    response = _client(carol).post(url, {"recipe": "host_health", "launch": "1"})

    assert response.status_code == 503
    assert "The job queue (Redis) does not answer" in response.content.decode()
    assert "Nothing was started" in response.content.decode()
    assert not JobRun.objects.exists()
    assert not AuditEvent.objects.filter(action="run.requested").exists()
    assert django_rq.get_queue("default").connection.connection_pool.connection_kwargs["port"] == 1


def test_a_launch_on_several_hosts_makes_one_batch_and_lists_it(
    sshd_host, lab_host, zone, credential, carol
):
    from .conftest import host_for

    second = host_for(sshd_host, zone, credential, name="lab2")
    host_for(sshd_host, zone, credential, name="lab3")  # offered, not chosen
    url = reverse("jobs:launch", args=[lab_host.name]) + "?recipe=host_health"
    client = _client(carol)

    form = client.post(url, {"recipe": "host_health", "preview": "1", "also": ["lab2"]})
    assert form.context["also"] == {"lab2"}
    assert 'value="lab2" checked' in form.content.decode()
    assert 'value="lab3" checked' not in form.content.decode()
    response = client.post(url, {"recipe": "host_health", "launch": "1", "also": ["lab2"]})

    runs = list(JobRun.objects.order_by("host__name"))
    assert [r.host for r in runs] == [lab_host, second]
    assert runs[0].batch == runs[1].batch
    assert response.headers["Location"] == f"/runs/?batch={runs[0].batch}"
    listed = client.get(response.headers["Location"]).context["runs"]
    assert {r.pk for r in listed} == {r.pk for r in runs}
