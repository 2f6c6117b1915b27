"""The API against its own OpenAPI schema: schemathesis generates requests for every operation
the schema (/api/schema/) describes and sends them to the real WSGI application, against the
test database (MariaDB) and Redis; every answer must be no server error, with a status code,
content type and body the schema documents.

It calls as the lead admin (a superadmin: every operation is open to him) with a read token
and with an act token from a verified session (it may act in restricted zones), and, for the
operations that change things, as a zone operator with an act token: refusals must be
documented answers too. There are real objects to find (hosts, runs, a schedule, an alert, a
plan's batch, events, tokens): the integers and names the fuzzer tries first (0, 1, ...) hit
some; one more test calls each operation once with real ones, which must succeed.

The world is made once for the module and committed; each operation's test runs in a
transaction rolled back after it (so a launch writes its runs and audit events, and its
enqueue-on-commit never happens: no worker runs, and the hosts' SSH points at a closed local
port anyway). Output is asked with `wait` capped at a fraction of a second, and the callers'
own tokens are never revoked (a revocation aims at another person's token instead), so that
every request of the fuzz is made as intended. The schema is generated at collection, as the
view generates it (schemathesis's lazy `from_fixture` loader does not work with pytest 9.2).
"""

import json
import uuid
from datetime import timedelta

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core import signals
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from hosts.models import GrowthPhase, Host
from hosts.topology import load_topology
from jobs import recipes
from jobs.alerts import raise_alert
from jobs.models import Alert, JobRun, PlanBatch, RunState, Schedule
from remora_admin.access import tokens
from remora_admin.access.models import ApiToken, Role
from tests.access.helpers import give, make_user

from .conftest import make_launchable

User = get_user_model()
pytestmark = pytest.mark.django_db

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
FUZZ = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
    derandomize=True,  # the same requests each run: a failure is reproducible
    database=None,
)


def _token(user, scope: str, *, restricted: bool = False) -> tuple[ApiToken, str]:
    if restricted:
        user.is_verified = lambda: True  # as a session verified with the second factor
    lifetime = timedelta(hours=12) if restricted else timedelta(days=30)
    return tokens.create(
        user, name=f"fuzz {scope}", scope=scope, lifetime=lifetime, restricted=restricted
    )


def _world(bernie) -> dict:
    """Things for path parameters to find, in both zones."""
    names = ("beamrider", "sunjammer")
    hosts = {name: make_launchable(Host.objects.get(name=name)) for name in names}
    operator = make_user("olga")
    give(operator, Role.OPERATOR, "sunjammer", by=bernie)
    for host in hosts.values():
        for state in (RunState.SUCCEEDED, RunState.QUEUED, RunState.AWAITING_APPROVAL):
            JobRun.objects.create(
                batch=uuid.uuid4(),
                recipe="host_health",
                script="true",
                host=host,
                timeout=60,
                requested_by=operator,
                state=state,
            )
    for name, host in hosts.items():
        schedule = Schedule.objects.create(
            name=f"{name}-health",
            recipe="host_health",
            cron="0 3 * * *",
            owner=bernie,
            checked_until=timezone.now(),
        )
        schedule.hosts.add(host)
        raise_alert(Alert.Kind.CHECK, f"check:{name}", f"{name} check fails", host=host)
    batch = PlanBatch.objects.create(
        to_phase=GrowthPhase.objects.get(number=2),
        from_phase=GrowthPhase.objects.get(number=1),
        requested_by=bernie,
        status=PlanBatch.Status.SUCCEEDED,
    )
    batch.steps.create(position=1, recipe="host_health", host=hosts["beamrider"], why="fuzz")
    # Somebody else's tokens, for the revocations to aim at.
    decoys = [_token(operator, "read")[0] for _ in range(3)]
    waiting = JobRun.objects.filter(state=RunState.AWAITING_APPROVAL).order_by("pk")
    known = {
        "waiting": [run.pk for run in waiting],
        "schedule": Schedule.objects.order_by("pk").first().pk,
        "alert": Alert.objects.order_by("pk").first().pk,
        "batch": batch.pk,
    }
    return {"operator": operator, "decoys": decoys, "known": known}


def _generated_schema() -> dict:
    """The schema /api/schema/ serves (the same generator), made without a request: the
    operations are known when the tests are collected."""
    generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(generated))


SCHEMA = _generated_schema()
schema = schemathesis.openapi.from_dict(SCHEMA)
schema.app = get_wsgi_application()


@pytest.fixture(scope="module")
def fuzz(django_db_setup, django_db_blocker):
    """One world for the whole module, committed (made once: a fresh database for each of the
    ~90 operation tests would take most of the time), emptied at the end as a transactional
    test's database is. Each operation's changes roll back with its test."""
    with django_db_blocker.unblock():
        load_topology()
        bernie = User.objects.create_superuser("bernie", "bernie@example.org", "fuzz-password")
        world = _world(bernie)
        read, read_raw = _token(bernie, "read")
        act, act_raw = _token(bernie, "act", restricted=True)
        operator_act, operator_raw = _token(world["operator"], "act")
    yield {
        "headers": {
            "read": {"Authorization": f"Bearer {read_raw}"},
            "act": {"Authorization": f"Bearer {act_raw}"},
            "operator": {"Authorization": f"Bearer {operator_raw}"},
        },
        "own": {read.pk, act.pk, operator_act.pk},
        "decoy": world["decoys"][0].pk,
        "other_decoy": world["decoys"][1].pk,
        "known": world["known"],
    }
    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)


@pytest.fixture(autouse=True)
def in_the_test_transaction(settings):
    """Each operation's requests run in its test's transaction (rolled back after it), as the
    test client's do: the WSGI handler must not close the connection after each request."""
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "localhost"]
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def test_the_served_schema_is_the_one_fuzzed(fuzz):
    served = Client(headers=fuzz["headers"]["read"]).get("/api/schema/?format=json")
    assert served.status_code == 200
    assert served.json() == SCHEMA
    assert len(SCHEMA["paths"]) >= 25


def test_requests_that_succeed_answer_as_documented(fuzz):
    """The fuzz's random names and ids mostly find nothing: here each operation once with real
    ones, as the lead admin with his act token; every answer a documented success."""
    known = fuzz["known"]

    def ok(path, method="GET", **parts):
        case = schema[path][method].Case(**parts)
        response = case.call(headers=fuzz["headers"]["act"])
        case.validate_response(response, checks=CHECKS)
        assert response.status_code < 300, (path, response.status_code, response.text[:500])
        return None if path == "/api/audit/export/" else response.json()

    ok("/api/me/")
    ok("/api/hosts/")
    ok("/api/hosts/{name}/", path_parameters={"name": "beamrider"})
    ok("/api/services/")
    ok("/api/phases/")
    ok("/api/plan/")
    ok("/api/plan/", query={"from": "nothing"})
    ok("/api/plan/batches/{id}/", path_parameters={"id": known["batch"]})
    ok("/api/recipes/")
    ok("/api/recipes/", query={"host": "sunjammer"})
    ok("/api/recipes/{name}/", path_parameters={"name": "host_health"}, query={"host": "beamrider"})
    launched = ok(
        "/api/runs/",
        "POST",
        body={"recipe": "host_health", "hosts": ["sunjammer", "beamrider"]},
        media_type="application/json",
    )
    assert sorted(run["host"] for run in launched["runs"]) == ["beamrider", "sunjammer"]
    assert launched["refusals"] == []
    run = launched["runs"][0]["id"]
    ok("/api/runs/", query={"host": "sunjammer", "state": "queued", "limit": 5})
    ok("/api/runs/{id}/", path_parameters={"id": run})
    ok("/api/runs/{id}/output/", path_parameters={"id": run}, query={"offset": 0, "wait": 0})
    ok("/api/runs/{id}/cancel/", "POST", path_parameters={"id": run})
    approve, reject = known["waiting"][:2]
    reason = {"body": {"reason": "looked at it"}, "media_type": "application/json"}
    ok("/api/runs/{id}/approve/", "POST", path_parameters={"id": approve}, **reason)
    ok("/api/runs/{id}/reject/", "POST", path_parameters={"id": reject}, **reason)
    ok("/api/schedules/")
    ok("/api/schedules/{id}/", path_parameters={"id": known["schedule"]})
    ok("/api/schedules/{id}/disable/", "POST", path_parameters={"id": known["schedule"]})
    ok("/api/schedules/{id}/enable/", "POST", path_parameters={"id": known["schedule"]})
    ok("/api/alerts/", query={"open": True})
    ok("/api/alerts/{id}/acknowledge/", "POST", path_parameters={"id": known["alert"]})
    page = ok("/api/audit/events/", query={"action": "run.requested"})
    assert page["results"]
    sequence = page["results"][0]["sequence"]
    ok("/api/audit/events/{sequence}/", path_parameters={"sequence": sequence})
    ok("/api/audit/export/", query={"format": "jsonl"})
    ok("/api/audit/export/", query={"format": "csv", "group": "run"})
    ok("/api/tokens/")
    ok("/api/tokens/{id}/revoke/", "POST", path_parameters={"id": fuzz["other_decoy"]})


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=5,
)


@given(data=st.data())
@settings(FUZZ, max_examples=100)
def test_launches_of_real_recipes_with_odd_parameters(fuzz, data):
    """POST /api/runs/ with the recipes that exist, on hosts that exist (or not), with their own
    parameters given odd values (and some they do not have): each answer a documented one (the
    schema fuzz's random recipe names mostly stop at "no such recipe")."""
    recipe = data.draw(st.sampled_from(sorted(recipes.REGISTRY)), label="recipe")
    names = list(recipes.get(recipe).form().fields) + ["nonsense"]
    params = data.draw(st.dictionaries(st.sampled_from(names), JSON, max_size=4), label="params")
    hosts = data.draw(
        st.lists(st.sampled_from(["sunjammer", "beamrider", "nowhere"]), min_size=1, max_size=3),
        label="hosts",
    )
    body = {"recipe": recipe, "hosts": hosts, "params": params, "dry_run": data.draw(st.booleans())}
    who = data.draw(st.sampled_from(["act", "operator"]), label="who")
    case = schema["/api/runs/"]["POST"].Case(body=body, media_type="application/json")
    response = case.call(headers=fuzz["headers"][who])
    case.validate_response(response, checks=CHECKS)
    event(f"{who}: {response.status_code}")  # --hypothesis-show-statistics shows the mix


def _shorter(wait):
    """A wait of at most 0.2 s; what is not a number is left for the API to refuse."""
    if isinstance(wait, list):
        return [_shorter(w) for w in wait]
    try:
        return min(float(wait), 0.2) if wait not in (None, "") else wait
    except (TypeError, ValueError):
        return wait


def _call(case, fuzz, who: str) -> None:
    if "wait" in (case.query or {}):
        # A queued run never ends here (no worker): a long wait would only slow the fuzz.
        case.query["wait"] = _shorter(case.query["wait"])
    if case.path == "/api/tokens/{id}/revoke/" and case.path_parameters.get("id") in fuzz["own"]:
        case.path_parameters["id"] = fuzz["decoy"]
    response = case.call(headers=fuzz["headers"][who])
    case.validate_response(response, checks=CHECKS)


@schema.parametrize()
@FUZZ
def test_fuzz_with_a_read_token(case, fuzz):
    _call(case, fuzz, "read")


@schema.parametrize()
@FUZZ
def test_fuzz_with_an_act_token(case, fuzz):
    _call(case, fuzz, "act")


@schema.include(method="POST").parametrize()
@settings(FUZZ, max_examples=10)
def test_fuzz_as_an_operator(case, fuzz):
    """The changes, as a zone operator (mostly refused: the refusals are documented too)."""
    _call(case, fuzz, "operator")
