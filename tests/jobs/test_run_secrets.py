"""Secrets stay secret: a planted private key and a secret parameter appear nowhere they
should not: not in output, the stored script, parameters, pages, logs, the audit log or Redis."""

import logging

import pytest
from django.test import Client

from jobs import launch as launching
from jobs.models import RunState
from jobs.tasks import execute_run
from remora_admin.audit.models import AuditEvent

from .conftest import output_of

CANARY = "canary-s3cr3t-7f3a9b"
pytestmark = pytest.mark.django_db(transaction=True)


def _key_lines(ssh_keys) -> list[str]:
    """The base64 body lines of the planted private key (each long enough to be telling)."""
    text = ssh_keys.client_key_path.read_text()
    return [line for line in text.splitlines() if len(line) > 40 and "PRIVATE KEY" not in line]


def test_a_secret_parameter_and_the_private_key_leak_nowhere(
    lab_host, carol, make_recipe, ssh_keys, redis_conn, caplog
):
    caplog.set_level(logging.DEBUG)
    forms = make_recipe.forms
    recipe = make_recipe(
        "uses_token",
        lambda p: f'echo "token is {p["token"]}"; echo "again {p["token"]}" >&2',
        fields={"token": forms.CharField()},
        secret_fields=("token",),
    )

    [run] = launching.launch(carol, recipe, [lab_host], {"token": CANARY})
    job = redis_conn.hgetall(f"rq:job:{run.rq_job_id}")
    execute_run(run.pk)
    run.refresh_from_db()

    assert run.state == RunState.SUCCEEDED, run.error
    # The script used the value (it ran with it) but the output shows it masked.
    assert output_of(run, "out") == b"token is [secret]\n"
    assert output_of(run, "err") == b"again [secret]\n"
    # Stored run: script and parameters hold a reference, the value only encrypted.
    assert CANARY not in run.script and "$REMORA_SECRET_TOKEN" in run.script
    assert "token" not in run.params
    assert CANARY.encode() not in bytes(run.secret_params)
    # The audit log, the run page, the logs and the queue payload.
    client = Client()
    client.force_login(carol)
    page = client.get(run.get_absolute_url()).content.decode()
    audit = b"".join(e.canonical() for e in AuditEvent.objects.order_by("sequence")).decode()
    queued = b"".join(v for v in job.values()).decode("latin-1")
    places = {"audit log": audit, "run page": page, "logs": caplog.text, "queue": queued}
    assert job, "the run was not queued in Redis"
    for where, text in places.items():
        assert CANARY not in text, f"the secret parameter leaked into the {where}"
        for line in _key_lines(ssh_keys):
            assert line not in text, f"the private key leaked into the {where}"


def test_a_secret_printed_in_two_pieces_is_still_masked(lab_host, carol, make_recipe):
    forms = make_recipe.forms
    recipe = make_recipe(
        "splits_token",
        # Half of the value, a pause (so the halves arrive in separate reads), the other half.
        lambda p: f'T={p["token"]}; printf "%s" "${{T:0:9}}"; sleep 0.5; echo "${{T:9}} end"',
        fields={"token": forms.CharField()},
        secret_fields=("token",),
    )
    [run] = launching.launch(carol, recipe, [lab_host], {"token": CANARY})

    execute_run(run.pk)

    run.refresh_from_db()
    assert run.state == RunState.SUCCEEDED, run.error
    assert output_of(run, "out") == b"[secret] end\n"
    assert run.chunks.count() >= 1
