"""Every named URL × every role × GET and POST, against a table written by hand.

The list of URLs is not written here: it is read from the URL configuration, nested includes
and namespaces included. A URL name missing from EXPECTED fails its test with "add <name> to the
expected table", so a new view cannot ship without someone deciding who may reach it. Django's
admin (admin:*) is tested at the end of this file on its own.

Every signed-in role is in sudo mode, so the policy, not the password prompt, decides. POSTs
carry an empty body: they prove who gets past the guards, never change anything that matters.

bernie is the superadmin with an enrolled second factor whose session was never verified
(password and sudo only): every change that is not tied to one standard zone (people, grants,
credentials, anything in beamrider) refuses him with a 403 that says to verify.

Codes in the table:
  200, 403, 404, 405, 500  that status
  302                      a redirect somewhere other than the sign-in page
  LOG                      a redirect to the sign-in page
"""

import socket
import uuid

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from hosts.models import Host
from jobs.models import JobRun, RunState
from remora_admin.access.models import Grant
from remora_admin.audit.models import AuditEvent

from .helpers import PASSWORD, make_user, sign_in

ROLES = (
    "anonymous",
    "zed",
    "dan",
    "carol",
    "erin",
    "bob",
    "bob+2fa",
    "alice+2fa",
    "ivan",
    "bernie",
)
METHODS = ("GET", "POST")

# Each row: (GET, POST); each string: one code per role, in the order of ROLES.
# URLs with path parameters have one row per target (see TARGETS).
#
#                        anon zed dan carol erin bob bob+2fa alice+2fa ivan bernie
EXPECTED: dict[str, tuple[str, str] | dict[str, tuple[str, str]]] = {
    "dashboard": (
        "LOG 200 200 200 200 200 200 200 200 200",
        "LOG 200 200 200 200 200 200 200 200 200",
    ),
    "login": (
        "200 302 302 302 302 302 302 302 302 302",
        "200 302 302 302 302 302 302 302 302 302",
    ),
    "logout": (
        "405 405 405 405 405 405 405 405 405 405",
        "LOG LOG LOG LOG LOG LOG LOG LOG LOG LOG",
    ),
    "hosts:list": (
        "LOG 200 200 200 200 200 200 200 200 200",
        "LOG 200 200 200 200 200 200 200 200 200",
    ),
    "hosts:detail": {
        "host beamrider": (
            "LOG 404 404 404 404 200 200 200 200 200",
            "LOG 404 404 404 404 200 200 200 200 200",
        ),
        "host sunjammer": (
            "LOG 404 200 200 200 404 404 404 200 200",
            "LOG 404 200 200 200 404 404 404 200 200",
        ),
        "no such host": (
            "LOG 404 404 404 404 404 404 404 404 404",
            "LOG 404 404 404 404 404 404 404 404 404",
        ),
    },
    "hosts:edit": {
        "host beamrider": (
            "LOG 404 404 404 404 403 403 200 403 403",
            "LOG 404 404 404 404 403 403 200 403 403",
        ),
        "host sunjammer": (
            "LOG 404 403 403 200 404 404 404 403 200",
            "LOG 404 403 403 200 404 404 404 403 200",
        ),
    },
    "hosts:credentials": (
        "LOG 403 403 403 200 403 403 200 403 403",
        "LOG 403 403 403 200 403 403 200 403 403",
    ),
    "hosts:credential_new": (
        "LOG 403 403 403 200 403 403 200 403 403",
        "LOG 403 403 403 200 403 403 200 403 403",
    ),
    "phases": (
        "LOG 403 200 200 200 200 200 200 200 200",
        "LOG 403 200 200 200 200 200 200 200 200",
    ),
    "jobs:schedules": (
        "LOG 403 200 200 200 200 200 200 200 200",
        "LOG 403 200 200 200 200 200 200 200 200",
    ),
    "jobs:schedule_preview": (
        "LOG 403 200 200 200 200 200 200 200 200",
        "LOG 403 200 200 200 200 200 200 200 200",
    ),
    # Managing schedules: a zone admin (beamrider's with a verified session) or a superadmin.
    "jobs:schedule_new": (
        "LOG 403 403 403 200 403 403 200 403 200",
        "LOG 403 403 403 200 403 403 200 403 200",
    ),
    "jobs:schedule": {
        "beamrider schedule": (
            "LOG 403 404 404 404 200 200 200 200 200",
            "LOG 403 404 404 404 200 200 200 200 200",
        ),
        "sunjammer schedule": (
            "LOG 403 200 200 200 404 404 404 200 200",
            "LOG 403 200 200 200 404 404 404 200 200",
        ),
    },
    "jobs:schedule_edit": {
        "beamrider schedule": (
            "LOG 403 404 404 404 403 403 200 403 403",
            "LOG 403 404 404 404 403 403 200 403 403",
        ),
        "sunjammer schedule": (
            "LOG 403 403 403 200 404 404 404 403 200",
            "LOG 403 403 403 200 404 404 404 403 200",
        ),
    },
    "jobs:schedule_enable": {
        "beamrider schedule": (
            "405 405 405 405 405 405 405 405 405 405",
            "LOG 403 404 404 404 403 403 302 403 403",
        ),
        "sunjammer schedule": (
            "405 405 405 405 405 405 405 405 405 405",
            "LOG 403 403 403 302 404 404 404 403 302",
        ),
    },
    "jobs:schedule_disable": {
        "beamrider schedule": (
            "405 405 405 405 405 405 405 405 405 405",
            "LOG 403 404 404 404 403 403 302 403 403",
        ),
        "sunjammer schedule": (
            "405 405 405 405 405 405 405 405 405 405",
            "LOG 403 403 403 302 404 404 404 403 302",
        ),
    },
    "jobs:maintenance": (
        "LOG 403 200 200 200 200 200 200 200 200",
        "LOG 403 200 200 200 200 200 200 200 200",
    ),
    # Windows and freezes: whoever manages schedules in a zone.
    "jobs:maintenance_new": (
        "LOG 403 403 403 200 403 403 200 403 200",
        "LOG 403 403 403 200 403 403 200 403 200",
    ),
    # The first role that may remove the window does; for the roles after it, it is gone.
    "jobs:maintenance_delete": {
        "beamrider window": (
            "405 405 405 405 405 405 405 405 405 405",
            "LOG 403 404 404 404 403 403 302 404 404",
        ),
        "sunjammer window": (
            "405 405 405 405 405 405 405 405 405 405",
            "LOG 403 403 403 302 404 404 404 404 404",
        ),
    },
    # Every worker with the run it is on, in every zone: those who read every run.
    "jobs:workers": (
        "LOG 403 403 403 403 403 403 403 200 200",
        "405 405 405 405 405 405 405 405 405 405",
    ),
    "jobs:alerts": (
        "LOG 403 200 200 200 200 200 200 200 200",
        "LOG 403 200 200 200 200 200 200 200 200",
    ),
    # Acknowledging is the zone's operators' (beamrider's with a verified session).
    "jobs:alert_acknowledge": {
        "beamrider alert": (
            "405 405 405 405 405 405 405 405 405 405",
            "LOG 403 404 404 404 403 302 302 403 403",
        ),
        "sunjammer alert": (
            "405 405 405 405 405 405 405 405 405 405",
            "LOG 403 403 302 302 404 404 404 403 302",
        ),
    },
    "jobs:plan": (
        "LOG 403 200 200 200 200 200 200 200 200",
        "LOG 403 200 200 200 200 200 200 200 200",
    ),
    # An empty form applies nothing: the page says what the plan needs (400).
    "jobs:plan_apply": (
        "405 405 405 405 405 405 405 405 405 405",
        "LOG 403 400 400 400 400 400 400 400 400",
    ),
    "jobs:plan_batch": {
        "beamrider plan": (
            "LOG 403 404 404 404 200 200 200 200 200",
            "LOG 403 404 404 404 200 200 200 200 200",
        ),
        "sunjammer plan": (
            "LOG 403 200 200 200 404 404 404 200 200",
            "LOG 403 200 200 200 404 404 404 200 200",
        ),
    },
    # The plans have not stopped at a failed step: whoever sees one is sent back with a message.
    "jobs:plan_resume": {
        "beamrider plan": (
            "405 405 405 405 405 405 405 405 405 405",
            "LOG 403 404 404 404 302 302 302 302 302",
        ),
        "sunjammer plan": (
            "405 405 405 405 405 405 405 405 405 405",
            "LOG 403 302 302 302 404 404 404 302 302",
        ),
    },
    # Personal API tokens: everyone signed in has their own; one revokes only one's own (a
    # superadmin anyone's, from a verified session).
    "access:tokens": (
        "LOG 200 200 200 200 200 200 200 200 200",
        "405 405 405 405 405 405 405 405 405 405",
    ),
    "access:token_new": (
        "405 405 405 405 405 405 405 405 405 405",
        "LOG 400 400 400 400 400 400 400 400 400",
    ),
    "access:token_revoke": {
        "dan's token": (
            "405 405 405 405 405 405 405 405 405 405",
            "LOG 404 302 404 404 404 404 404 404 403",
        ),
    },
    "access_report": (
        "LOG 403 403 403 200 403 403 200 200 200",
        "LOG 403 403 403 200 403 403 200 200 200",
    ),
    "access_report_csv": (
        "LOG 403 403 403 200 403 403 200 200 200",
        "LOG 403 403 403 200 403 403 200 200 200",
    ),
    "access:people": (
        "LOG 403 403 403 200 403 403 200 403 200",
        "LOG 403 403 403 200 403 403 200 403 200",
    ),
    "access:person_new": (
        "LOG 403 403 403 200 403 403 200 403 403",
        "LOG 403 403 403 200 403 403 200 403 403",
    ),
    "access:person": {
        "person dan": (
            "LOG 403 403 403 200 403 403 200 403 200",
            "LOG 403 403 403 200 403 403 200 403 200",
        ),
    },
    "access:person_deactivate": {
        "person dan": (
            "405 405 405 405 405 405 405 405 405 405",
            "LOG 403 403 403 302 403 403 302 403 403",
        ),
    },
    "access:grant_new": (
        "LOG 403 403 403 200 403 403 200 403 403",
        "LOG 403 403 403 200 403 403 200 403 403",
    ),
    "access:grant_revoke": {
        "carol's sunjammer grant": (
            "405 405 405 405 405 405 405 405 405 405",
            "LOG 403 403 403 302 403 403 404 403 403",
        ),
        "bob's beamrider grant": (
            "405 405 405 405 405 405 405 405 405 405",
            "LOG 403 403 403 404 403 403 302 403 403",
        ),
        # A global grant is visible to whoever may grant; only a superadmin may change it
        # (the others get a 302 back to the report with the refusal as a message).
        "ivan's global grant": (
            "405 405 405 405 405 405 405 405 405 405",
            "LOG 403 403 403 302 403 403 302 403 403",
        ),
    },
    "access:grant_expiry": {
        "carol's sunjammer grant": (
            "405 405 405 405 405 405 405 405 405 405",
            "LOG 403 403 403 302 403 403 404 403 403",
        ),
        "bob's beamrider grant": (
            "405 405 405 405 405 405 405 405 405 405",
            "LOG 403 403 403 404 403 403 302 403 403",
        ),
        "ivan's global grant": (
            "405 405 405 405 405 405 405 405 405 405",
            "LOG 403 403 403 302 403 403 302 403 403",
        ),
    },
    "access:confirm_password": (
        "LOG 200 200 200 200 200 200 200 200 200",
        "LOG 200 200 200 200 200 200 200 200 200",
    ),
    # The one-time link works for whoever holds it (that is what it is for); a wrong token
    # shows the "link is no longer valid" page.
    "access:set_password": {
        "valid link": (
            "302 302 302 302 302 302 302 302 302 302",
            "302 302 302 302 302 302 302 302 302 302",
        ),
        "wrong token": (
            "200 200 200 200 200 200 200 200 200 200",
            "200 200 200 200 200 200 200 200 200 200",
        ),
    },
    # An enrolled but unverified session (bob, ivan, bernie) must verify before it may change
    # the second factor: it is sent to the verify page.
    "access:two_factor": (
        "LOG 200 200 200 200 200 200 200 200 200",
        "LOG 200 200 200 200 302 200 200 302 302",
    ),
    "access:two_factor_verify": (
        "LOG 302 302 302 302 200 200 200 200 200",
        "LOG 302 302 302 302 200 200 200 200 200",
    ),
    "access:recovery_codes": (
        "405 405 405 405 405 405 405 405 405 405",
        "LOG 302 302 302 302 302 200 200 302 302",
    ),
    # Zone admins (erin, alice) read their own zones' events; auditors and superadmins all.
    "audit:list": (
        "LOG 403 403 403 200 403 403 200 200 200",
        "405 405 405 405 405 405 405 405 405 405",
    ),
    "audit:event": {
        "an audit event": (
            "LOG 403 403 403 404 403 403 404 200 200",
            "405 405 405 405 405 405 405 405 405 405",
        ),
        "a beamrider audit event": (
            "LOG 403 403 403 404 403 403 200 200 200",
            "405 405 405 405 405 405 405 405 405 405",
        ),
    },
    "audit:export_csv": (
        "LOG 403 403 403 200 403 403 200 200 200",
        "405 405 405 405 405 405 405 405 405 405",
    ),
    "audit:export_jsonl": (
        "LOG 403 403 403 200 403 403 200 200 200",
        "405 405 405 405 405 405 405 405 405 405",
    ),
    "audit:verify": (
        "405 405 405 405 405 405 405 405 405 405",
        "LOG 403 403 403 403 403 403 403 302 302",
    ),
    "audit:verification": {
        "a verification": (
            "LOG 403 403 403 403 403 403 403 302 302",
            "405 405 405 405 405 405 405 405 405 405",
        ),
    },
    # Archiving and pruning: a superadmin with a verified session only (bernie never verified).
    "audit:retention": (
        "LOG 403 403 403 403 403 403 403 200 200",
        "405 405 405 405 405 405 405 405 405 405",
    ),
    "audit:prune": (
        "405 405 405 405 405 405 405 405 405 405",
        "LOG 403 403 403 403 403 403 403 403 403",
    ),
    "audit:archive": {
        "an archive": (
            "LOG 403 403 403 403 403 403 403 200 200",
            "405 405 405 405 405 405 405 405 405 405",
        ),
    },
    "jobs:runs": (
        "LOG 200 200 200 200 200 200 200 200 200",
        "LOG 200 200 200 200 200 200 200 200 200",
    ),
    "jobs:run": {
        "bob's beamrider run": (
            "LOG 404 404 404 404 200 200 200 200 200",
            "LOG 404 404 404 404 200 200 200 200 200",
        ),
        "carol's sunjammer run": (
            "LOG 404 200 200 200 404 404 404 200 200",
            "LOG 404 200 200 200 404 404 404 200 200",
        ),
    },
    "jobs:run_output": {
        "bob's beamrider run": (
            "LOG 404 404 404 404 200 200 200 200 200",
            "LOG 404 404 404 404 200 200 200 200 200",
        ),
        "carol's sunjammer run": (
            "LOG 404 200 200 200 404 404 404 200 200",
            "LOG 404 200 200 200 404 404 404 200 200",
        ),
    },
    # The runs have finished: whoever may cancel is sent back to the run with a message.
    "jobs:run_cancel": {
        "bob's beamrider run": (
            "405 405 405 405 405 405 405 405 405 405",
            "LOG 404 404 404 404 403 302 302 403 403",
        ),
        "carol's sunjammer run": (
            "405 405 405 405 405 405 405 405 405 405",
            "LOG 404 403 302 302 404 404 404 403 302",
        ),
    },
    # Asking a lost run's host, or killing what runs of it there: the right to cancel it.
    "jobs:run_check": {
        "bob's beamrider run": (
            "405 405 405 405 405 405 405 405 405 405",
            "LOG 404 404 404 404 403 302 302 403 403",
        ),
        "carol's sunjammer run": (
            "405 405 405 405 405 405 405 405 405 405",
            "LOG 404 403 302 302 404 404 404 403 302",
        ),
    },
    "jobs:run_kill": {
        "bob's beamrider run": (
            "405 405 405 405 405 405 405 405 405 405",
            "LOG 404 404 404 404 403 302 302 403 403",
        ),
        "carol's sunjammer run": (
            "405 405 405 405 405 405 405 405 405 405",
            "LOG 404 403 302 302 404 404 404 403 302",
        ),
    },
    "jobs:run_approve": {
        "bob's beamrider run": (
            "405 405 405 405 405 405 405 405 405 405",
            "LOG 404 404 404 404 403 403 302 403 403",
        ),
        "carol's sunjammer run": (
            "405 405 405 405 405 405 405 405 405 405",
            "LOG 404 403 403 302 404 404 404 403 302",
        ),
    },
    "jobs:run_reject": {
        "bob's beamrider run": (
            "405 405 405 405 405 405 405 405 405 405",
            "LOG 404 404 404 404 403 403 302 403 403",
        ),
        "carol's sunjammer run": (
            "405 405 405 405 405 405 405 405 405 405",
            "LOG 404 403 403 302 404 404 404 403 302",
        ),
    },
    "jobs:launch": {
        "host beamrider": (
            "LOG 404 404 404 404 200 200 200 200 200",
            "LOG 404 404 404 404 200 200 200 200 200",
        ),
        "host sunjammer": (
            "LOG 404 200 200 200 404 404 404 200 200",
            "LOG 404 200 200 200 404 404 404 200 200",
        ),
    },
    # The hosts' SSH points at a closed local port: a scan fails at once, with a message.
    "jobs:scan_key": {
        "host beamrider": (
            "405 405 405 405 405 405 405 405 405 405",
            "LOG 404 404 404 404 403 403 302 403 403",
        ),
        "host sunjammer": (
            "405 405 405 405 405 405 405 405 405 405",
            "LOG 404 403 403 302 404 404 404 403 302",
        ),
    },
    "jobs:trust_key": {
        "host beamrider": (
            "405 405 405 405 405 405 405 405 405 405",
            "LOG 404 404 404 404 403 403 302 403 403",
        ),
        "host sunjammer": (
            "405 405 405 405 405 405 405 405 405 405",
            "LOG 404 403 403 302 404 404 404 403 302",
        ),
    },
}


# --- Walking the URL configuration ------------------------------------------------------------


def named_urls(resolver: URLResolver | None = None, namespace: str = "") -> dict[str, str]:
    """Every named pattern, "namespace:name" → route, through every nested include."""
    resolver = resolver or get_resolver()
    found: dict[str, str] = {}
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            inner = namespace
            if pattern.namespace:
                inner = f"{namespace}{pattern.namespace}:"
            for name, route in named_urls(pattern, inner).items():
                found[name] = f"{pattern.pattern}{route}"
        elif isinstance(pattern, URLPattern) and pattern.name:
            found[f"{namespace}{pattern.name}"] = str(pattern.pattern)
    return found


ALL_URLS = named_urls()
# The API's URLs have a matrix of their own (test_api_matrix.py): sessions and both scopes of
# tokens.
CONSOLE_URLS = sorted(name for name in ALL_URLS if not name.startswith(("admin:", "api:")))
API_URLS = sorted(name for name in ALL_URLS if name.startswith("api:"))
ADMIN_URLS = sorted(name for name in ALL_URLS if name.startswith("admin:"))


# --- Filling in path parameters with real objects --------------------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _host(name: str) -> dict:
    """The host, its SSH pointed at a closed local port (no test reaches the internet)."""
    Host.objects.filter(name=name).update(address="127.0.0.1", ssh_port=_closed_port())
    return {"name": name}


def _finished_run(host: str, requested_by) -> dict:
    run = JobRun.objects.create(
        batch=uuid.uuid4(),
        recipe="check_services",
        script="true",
        host=Host.objects.get(name=host),
        timeout=60,
        requested_by=requested_by,
        state=RunState.SUCCEEDED,
    )
    return {"pk": run.pk}


def _plan_on(host: str, requested_by) -> dict:
    from hosts.models import GrowthPhase
    from jobs.models import PlanBatch

    batch = PlanBatch.objects.create(
        to_phase=GrowthPhase.objects.get(number=2),
        from_phase=GrowthPhase.objects.get(number=1),
        requested_by=requested_by,
        status=PlanBatch.Status.SUCCEEDED,
    )
    batch.steps.create(
        position=1, recipe="host_health", host=Host.objects.get(name=host), why="test"
    )
    return {"pk": batch.pk}


def _schedule_on(host: str, owner) -> dict:
    from django.utils import timezone

    from jobs.models import Schedule

    schedule = Schedule.objects.create(
        name=f"{host}-health", recipe="host_health", cron="*/5 * * * *", owner=owner,
        checked_until=timezone.now(),
    )  # fmt: skip
    schedule.hosts.add(Host.objects.get(name=host))
    return {"pk": schedule.pk}


def _alert_on(host: str) -> dict:
    from jobs.alerts import raise_alert

    alert = raise_alert(
        "check", f"check:{host}", f"{host} check fails", host=Host.objects.get(name=host)
    )
    return {"pk": alert.pk}


def _window_in(zone: str) -> dict:
    from jobs.models import Maintenance
    from remora_admin.access.models import Zone

    window = Maintenance.objects.create(
        kind="window", zone=Zone.objects.get(name=zone), cron="0 2 * * 0", duration_minutes=60,
        reason="weekly",
    )  # fmt: skip
    return {"pk": window.pk}


def _verification() -> dict:
    from django.utils import timezone

    from remora_admin.audit.models import ChainVerification

    done = ChainVerification.objects.create(finished_at=timezone.now(), checked=1, seconds=0.1)
    return {"pk": done.pk}


def _archive() -> dict:
    from django.utils import timezone

    from remora_admin.audit import retention
    from remora_admin.audit.models import AuditArchive

    archive = AuditArchive.objects.create(
        older_than_days=30, first=1, through=2, status=AuditArchive.Status.DONE,
        filename=f"matrix-{uuid.uuid4().hex}.jsonl.gz", finished_at=timezone.now(),
    )  # fmt: skip
    retention.write_archive(1, 2, retention.archive_dir() / archive.filename)
    return {"pk": archive.pk}


def _token_of(username: str) -> dict:
    from datetime import timedelta

    from django.contrib.auth import get_user_model

    from remora_admin.access import tokens

    owner = get_user_model().objects.get(username=username)
    token, _ = tokens.create(owner, name="matrix", scope="read", lifetime=timedelta(days=1))
    return {"pk": token.pk}


def _grant_of(username: str) -> dict:
    return {"pk": Grant.objects.get(user__username=username).pk}


def _set_password_link(token_ok: bool) -> dict:
    newcomer = make_user("newcomer" if token_ok else "stranger")
    newcomer.set_unusable_password()
    newcomer.save()
    token = default_token_generator.make_token(newcomer) if token_ok else "bad-token"
    return {"uidb64": urlsafe_base64_encode(force_bytes(newcomer.pk)), "token": token}


TARGETS = {
    "host beamrider": lambda cast: _host("beamrider"),
    "host sunjammer": lambda cast: _host("sunjammer"),
    "no such host": lambda cast: {"name": "nowhere"},
    "person dan": lambda cast: {"pk": cast.dan.pk},
    "beamrider plan": lambda cast: _plan_on("beamrider", cast.alice),
    "beamrider schedule": lambda cast: _schedule_on("beamrider", cast.alice),
    "beamrider alert": lambda cast: _alert_on("beamrider"),
    "beamrider window": lambda cast: _window_in("beamrider"),
    "a verification": lambda cast: _verification(),
    "an audit event": lambda cast: {
        "sequence": AuditEvent.objects.filter(zone="").order_by("sequence").first().sequence
    },
    "a beamrider audit event": lambda cast: {
        "sequence": AuditEvent.objects.filter(zone="beamrider")
        .order_by("sequence")
        .first()
        .sequence
    },
    "an archive": lambda cast: _archive(),
    "sunjammer window": lambda cast: _window_in("sunjammer"),
    "sunjammer alert": lambda cast: _alert_on("sunjammer"),
    "sunjammer schedule": lambda cast: _schedule_on("sunjammer", cast.erin),
    "sunjammer plan": lambda cast: _plan_on("sunjammer", cast.erin),
    "carol's sunjammer grant": lambda cast: _grant_of("carol"),
    "bob's beamrider grant": lambda cast: _grant_of("bob"),
    "ivan's global grant": lambda cast: _grant_of("ivan"),
    "bob's beamrider run": lambda cast: _finished_run("beamrider", cast.bob),
    "carol's sunjammer run": lambda cast: _finished_run("sunjammer", cast.carol),
    "dan's token": lambda cast: _token_of("dan"),
    "recipe host_health": lambda cast: {"name": "host_health"},
    "valid link": lambda cast: _set_password_link(token_ok=True),
    "wrong token": lambda cast: _set_password_link(token_ok=False),
}


def _rows_of(name: str) -> dict[str, tuple[str, str]]:
    entry = EXPECTED[name]
    return {"": entry} if isinstance(entry, tuple) else entry


def _client_for(role: str, cast) -> Client:
    if role == "anonymous":
        return Client(raise_request_exception=False)
    username, _, extra = role.partition("+")
    return sign_in(getattr(cast, username), verified=extra == "2fa", sudo=True)


def _observed(response) -> str:
    if response.status_code == 302:
        location = response.headers["Location"].split("?", 1)[0]
        return "LOG" if location == reverse("login") else "302"
    return str(response.status_code)


# --- The matrix -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CONSOLE_URLS)
def test_each_url_answers_each_role_as_the_table_says(name, cast):
    assert name in EXPECTED, f"add {name} to the expected table"
    has_params = "<" in ALL_URLS[name]
    mismatches = []
    for target, (get_row, post_row) in _rows_of(name).items():
        assert bool(target) == has_params, (
            f"{name} ({ALL_URLS[name]}) needs one row per target when it has path parameters, "
            "and a single row when it has none"
        )
        url = reverse(name, kwargs=TARGETS[target](cast) if target else None)
        for method, row in zip(METHODS, (get_row, post_row), strict=True):
            codes = row.split()
            assert len(codes) == len(ROLES), f"{name} {target} {method}: one code per role"
            for role, expected in zip(ROLES, codes, strict=True):
                client = _client_for(role, cast)
                response = client.get(url) if method == "GET" else client.post(url, {})
                got = _observed(response)
                if got != expected:
                    mismatches.append(
                        f"{method} {url} as {role}: expected {expected}, got {got}"
                        + (f" → {response.headers['Location']}" if got in {"302", "LOG"} else "")
                    )
    assert not mismatches, f"{name}:\n" + "\n".join(mismatches)


def test_every_row_of_the_table_names_a_real_url_and_every_target_is_known():
    stale = sorted(set(EXPECTED) - set(CONSOLE_URLS))
    unknown = sorted(
        target for name in EXPECTED for target in _rows_of(name) if target and target not in TARGETS
    )

    assert stale == [], f"remove {stale} from the expected table: no such URL names"
    assert unknown == [], f"add {unknown} to TARGETS"


def test_the_matrix_is_every_console_url_times_every_role_times_both_methods(capsys):
    cases = sum(len(_rows_of(name)) for name in CONSOLE_URLS if name in EXPECTED)
    size = cases * len(ROLES) * len(METHODS)

    with capsys.disabled():
        print(
            f"\naccess matrix: {len(CONSOLE_URLS)} named URLs ({cases} with their targets) × "
            f"{len(ROLES)} roles × {len(METHODS)} methods = {size} requests"
        )
    missing = sorted(set(CONSOLE_URLS) - set(EXPECTED))
    assert missing == [], f"add {missing} to the expected table"
    assert size >= len(CONSOLE_URLS) * len(ROLES) * len(METHODS)


# --- Django's admin ---------------------------------------------------------------------------


def _admin_pages_without_parameters() -> list[str]:
    skip = {"admin:login", "admin:logout"}
    return [n for n in ADMIN_URLS if "<" not in ALL_URLS[n] and n not in skip]


def test_djangos_admin_refuses_everyone_but_verified_superusers_even_staff(cast):
    staff = make_user("sam", is_staff=True)
    pages = _admin_pages_without_parameters()
    admin_login = reverse("admin:login")
    assert "admin:index" in pages and len(pages) > 5

    for user in (staff, cast.erin, cast.alice, cast.ivan, cast.zed):
        client = sign_in(user, verified=user in (cast.alice,), sudo=True)
        for name in pages:
            response = client.get(reverse(name))
            assert response.status_code == 302, f"{user} reached {name}"
            assert response.headers["Location"].startswith(admin_login), (
                f"{user} on {name} was not sent to the admin sign-in"
            )

    # A superuser needs a session verified with the second factor too: the admin can change
    # the restricted zone's hosts.
    unverified = sign_in(cast.bernie).get(reverse("admin:index"), follow=True)
    assert unverified.wsgi_request.path == reverse("access:two_factor_verify")
    assert sign_in(cast.bernie, verified=True).get(reverse("admin:index")).status_code == 200


def test_the_admin_signs_people_in_through_the_console_and_still_refuses_staff(topology):
    staff = make_user("sam", is_staff=True)
    client = Client()

    response = client.get(reverse("admin:index"), follow=True)
    assert response.wsgi_request.path == reverse("login")
    assert response.wsgi_request.GET["next"] == reverse("admin:index")

    client.post(reverse("login"), {"username": staff.username, "password": PASSWORD})
    response = client.get(reverse("admin:index"), follow=True)
    assert response.wsgi_request.path == reverse("admin:login")
    assert "not authorized to access this page" in response.text
