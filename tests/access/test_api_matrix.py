"""Every API URL × every role × GET and POST × three ways to call: the browser's session, a
read-only token and a token that may act. The session's answers are written by hand below;
the tokens' follow from them by rule, and the rule is the test:

  - an act token answers exactly as its owner's session (its second factor is the session's:
    a +2fa role's token was created from a verified session, the others' not);
  - a read token answers GET as the session does, and refuses every POST (403, its scope);
  - no credentials, or a token that is not one, get 401 everywhere.

POSTs carry an empty JSON body: they prove who gets past the guards, never change much.
Codes: 200, 201, 400, 401, 403, 404, 405, 409 as such.
"""

import os
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from remora_admin.access import tokens

from .helpers import sign_in
from .test_matrix import API_URLS, METHODS, ROLES, TARGETS

#                        anon zed dan carol erin bob bob+2fa alice+2fa ivan bernie
EXPECTED: dict[str, tuple[str, str] | dict[str, tuple[str, str]]] = {
    "api:alert_ack": {
        "beamrider alert": (
            "401 403 405 405 405 405 405 405 405 405",
            "401 403 404 404 404 403 200 200 403 403",
        ),
        "sunjammer alert": (
            "401 403 405 405 405 405 405 405 405 405",
            "401 403 403 200 200 404 404 404 403 200",
        ),
    },
    "api:alerts": (
        "401 403 200 200 200 200 200 200 200 200",
        "401 403 405 405 405 405 405 405 405 405",
    ),
    "api:batch": {
        "beamrider plan": (
            "401 403 404 404 404 200 200 200 200 200",
            "401 403 405 405 405 405 405 405 405 405",
        ),
        "sunjammer plan": (
            "401 403 200 200 200 404 404 404 200 200",
            "401 403 405 405 405 405 405 405 405 405",
        ),
    },
    "api:batch_resume": {
        "beamrider plan": (
            "401 403 405 405 405 405 405 405 405 405",
            "401 403 404 404 404 409 409 409 409 409",
        ),
        "sunjammer plan": (
            "401 403 405 405 405 405 405 405 405 405",
            "401 403 409 409 409 404 404 404 409 409",
        ),
    },
    "api:docs": (
        "401 200 200 200 200 200 200 200 200 200",
        "401 405 405 405 405 405 405 405 405 405",
    ),
    "api:event": {
        "an audit event": (
            "401 403 403 403 404 403 403 404 200 200",
            "401 403 403 403 405 403 403 405 405 405",
        ),
        "a beamrider audit event": (
            "401 403 403 403 404 403 403 200 200 200",
            "401 403 403 403 405 403 403 405 405 405",
        ),
    },
    "api:events": (
        "401 403 403 403 200 403 403 200 200 200",
        "401 403 403 403 405 403 403 405 405 405",
    ),
    "api:export": (
        "401 403 403 403 200 403 403 200 200 200",
        "401 403 403 403 405 403 403 405 405 405",
    ),
    "api:host": {
        "host beamrider": (
            "401 403 404 404 404 200 200 200 200 200",
            "401 403 405 405 405 405 405 405 405 405",
        ),
        "host sunjammer": (
            "401 403 200 200 200 404 404 404 200 200",
            "401 403 405 405 405 405 405 405 405 405",
        ),
        "no such host": (
            "401 403 404 404 404 404 404 404 404 404",
            "401 403 405 405 405 405 405 405 405 405",
        ),
    },
    "api:hosts": (
        "401 403 200 200 200 200 200 200 200 200",
        "401 403 405 405 405 405 405 405 405 405",
    ),
    "api:me": (
        "401 200 200 200 200 200 200 200 200 200",
        "401 405 405 405 405 405 405 405 405 405",
    ),
    "api:phases": (
        "401 403 200 200 200 200 200 200 200 200",
        "401 403 405 405 405 405 405 405 405 405",
    ),
    "api:plan": (
        "401 403 200 200 200 200 200 200 200 200",
        "401 403 405 405 405 405 405 405 405 405",
    ),
    "api:plan_apply": (
        "401 403 405 405 405 405 405 405 405 405",
        "401 403 400 400 400 400 400 400 400 400",
    ),
    "api:recipe": {
        "recipe host_health": (
            "401 403 200 200 200 200 200 200 200 200",
            "401 403 405 405 405 405 405 405 405 405",
        ),
    },
    "api:recipes": (
        "401 403 200 200 200 200 200 200 200 200",
        "401 403 405 405 405 405 405 405 405 405",
    ),
    "api:run": {
        "bob's beamrider run": (
            "401 403 404 404 404 200 200 200 200 200",
            "401 403 405 405 405 405 405 405 405 405",
        ),
        "carol's sunjammer run": (
            "401 403 200 200 200 404 404 404 200 200",
            "401 403 405 405 405 405 405 405 405 405",
        ),
    },
    "api:run_approve": {
        "bob's beamrider run": (
            "401 403 405 405 405 405 405 405 405 405",
            "401 403 404 404 404 403 403 400 403 403",
        ),
        "carol's sunjammer run": (
            "401 403 405 405 405 405 405 405 405 405",
            "401 403 403 403 400 404 404 404 403 400",
        ),
    },
    "api:run_cancel": {
        "bob's beamrider run": (
            "401 403 405 405 405 405 405 405 405 405",
            "401 403 404 404 404 403 409 409 403 403",
        ),
        "carol's sunjammer run": (
            "401 403 405 405 405 405 405 405 405 405",
            "401 403 403 409 409 404 404 404 403 409",
        ),
    },
    "api:run_output": {
        "bob's beamrider run": (
            "401 403 404 404 404 200 200 200 200 200",
            "401 403 405 405 405 405 405 405 405 405",
        ),
        "carol's sunjammer run": (
            "401 403 200 200 200 404 404 404 200 200",
            "401 403 405 405 405 405 405 405 405 405",
        ),
    },
    "api:run_reject": {
        "bob's beamrider run": (
            "401 403 405 405 405 405 405 405 405 405",
            "401 403 404 404 404 403 403 400 403 403",
        ),
        "carol's sunjammer run": (
            "401 403 405 405 405 405 405 405 405 405",
            "401 403 403 403 400 404 404 404 403 400",
        ),
    },
    "api:runs": (
        "401 403 200 200 200 200 200 200 200 200",
        "401 403 400 400 400 400 400 400 400 400",
    ),
    "api:schedule": {
        "beamrider schedule": (
            "401 403 404 404 404 200 200 200 200 200",
            "401 403 405 405 405 405 405 405 405 405",
        ),
        "sunjammer schedule": (
            "401 403 200 200 200 404 404 404 200 200",
            "401 403 405 405 405 405 405 405 405 405",
        ),
    },
    "api:schedule_disable": {
        "beamrider schedule": (
            "401 403 405 405 405 405 405 405 405 405",
            "401 403 404 404 404 403 403 200 403 403",
        ),
        "sunjammer schedule": (
            "401 403 405 405 405 405 405 405 405 405",
            "401 403 403 403 200 404 404 404 403 200",
        ),
    },
    "api:schedule_enable": {
        "beamrider schedule": (
            "401 403 405 405 405 405 405 405 405 405",
            "401 403 404 404 404 403 403 200 403 403",
        ),
        "sunjammer schedule": (
            "401 403 405 405 405 405 405 405 405 405",
            "401 403 403 403 200 404 404 404 403 200",
        ),
    },
    "api:schedules": (
        "401 403 200 200 200 200 200 200 200 200",
        "401 403 405 405 405 405 405 405 405 405",
    ),
    "api:schema": (
        "401 200 200 200 200 200 200 200 200 200",
        "401 405 405 405 405 405 405 405 405 405",
    ),
    "api:services": (
        "401 403 200 200 200 200 200 200 200 200",
        "401 403 405 405 405 405 405 405 405 405",
    ),
    "api:token_revoke": {
        "dan's token": (
            "401 405 405 405 405 405 405 405 405 405",
            "401 404 200 404 404 404 404 404 404 403",
        ),
    },
    "api:workers": (
        "401 403 403 403 403 403 403 403 200 200",
        "401 403 403 403 403 403 403 403 405 405",
    ),
    "api:tokens": (
        "401 200 200 200 200 200 200 200 200 200",
        "401 405 405 405 405 405 405 405 405 405",
    ),
}

DUMP = os.environ.get("REMORA_MATRIX_DUMP") == "1"

# The targets of URLs with path parameters (test_matrix.TARGETS makes them).
RUNS = ["bob's beamrider run", "carol's sunjammer run"]
TARGETS_OF = {
    "api:host": ["host beamrider", "host sunjammer", "no such host"],
    "api:recipe": ["recipe host_health"],
    "api:batch": ["beamrider plan", "sunjammer plan"],
    "api:batch_resume": ["beamrider plan", "sunjammer plan"],
    "api:run": RUNS,
    "api:run_output": RUNS,
    "api:run_cancel": RUNS,
    "api:run_approve": RUNS,
    "api:run_reject": RUNS,
    "api:schedule": ["beamrider schedule", "sunjammer schedule"],
    "api:schedule_enable": ["beamrider schedule", "sunjammer schedule"],
    "api:schedule_disable": ["beamrider schedule", "sunjammer schedule"],
    "api:alert_ack": ["beamrider alert", "sunjammer alert"],
    "api:event": ["an audit event", "a beamrider audit event"],
    "api:token_revoke": ["dan's token"],
}


def _rows_of(name: str) -> dict[str, tuple[str, str]]:
    entry = EXPECTED.get(name, {})
    return {"": entry} if isinstance(entry, tuple) else entry


def _callers(role: str, cast) -> dict[str, tuple[Client, dict]]:
    """The session client, and the two token headers, of one role."""
    if role == "anonymous":
        bogus = {"HTTP_AUTHORIZATION": "Bearer rma_not-a-token"}
        return {"session": (Client(raise_request_exception=False), {}),
                "read": (Client(raise_request_exception=False), bogus),
                "act": (Client(raise_request_exception=False), {})}  # fmt: skip
    username, _, extra = role.partition("+")
    user = getattr(cast, username)
    verified = extra == "2fa"
    found = {"session": (sign_in(user, verified=verified, sudo=True), {})}
    for scope in ("read", "act"):
        user.is_verified = lambda v=verified: v  # as the creating session was
        restricted = scope == "act" and verified and tokens.reaches_restricted(user)
        lifetime = timedelta(hours=12) if restricted else timedelta(days=1)
        _, raw = tokens.create(user, name=f"matrix {scope}", scope=scope, lifetime=lifetime,
                               restricted=restricted)  # fmt: skip
        del user.is_verified
        found[scope] = (Client(raise_request_exception=False),
                        {"HTTP_AUTHORIZATION": f"Bearer {raw}"})  # fmt: skip
    return found


def _call(client: Client, headers: dict, method: str, url: str):
    if method == "GET":
        return client.get(url, **headers)
    return client.post(url, {}, content_type="application/json", **headers)


# Changes that happen once: the session did it, so its owner's act token is told it is done.
ONCE = {"api:token_revoke"}


def _expected_for(name: str, caller: str, method: str, session_code: str, role: str) -> str:
    if role == "anonymous":
        return "401"
    if caller == "read" and method == "POST":
        return "403"
    if caller == "act" and name in ONCE and session_code == "200":
        return "409"
    return session_code


@pytest.mark.parametrize("name", API_URLS)
def test_each_api_url_answers_each_role_and_token_as_the_table_says(name, cast):
    assert DUMP or name in EXPECTED, f"add {name} to the expected table"
    rows = _rows_of(name) if not DUMP else None
    targets = TARGETS_OF.get(name, [""])
    if not DUMP:
        assert sorted(rows) == sorted(targets), f"{name}: one row per target {targets}"
    everyone = {role: _callers(role, cast) for role in ROLES}
    mismatches, dump = [], []
    for target in targets:
        url = reverse(name, kwargs=TARGETS[target](cast) if target else None)
        for method in METHODS:
            observed = []
            for role in ROLES:
                callers = everyone[role]
                got = {c: str(_call(cl, h, method, url).status_code)
                       for c, (cl, h) in callers.items()}  # fmt: skip
                observed.append(got)
            if DUMP:
                codes = " ".join(o["session"] for o in observed)
                dump.append(f"{name} {target!r} {method}: {codes}")
                continue
            expected_row = rows[target][METHODS.index(method)].split()
            for role, want, got in zip(ROLES, expected_row, observed, strict=True):
                for caller, code in got.items():
                    expect = _expected_for(name, caller, method, want, role)
                    if code != expect:
                        mismatches.append(f"{method} {url} as {role} ({caller}): expected "
                                          f"{expect}, got {code}")  # fmt: skip
    if DUMP:
        print("\n" + "\n".join(dump))
    assert not mismatches, f"{name}:\n" + "\n".join(mismatches)
