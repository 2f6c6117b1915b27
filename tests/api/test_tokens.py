"""Personal API tokens: shown once, hashed at rest, refused with the reason in words when expired,
revoked or their owner deactivated; a read token only reads; an act token acts within its
owner's roles and, in a restricted zone, only when created from a verified session (and then
for at most 12 hours); creation, use from a new address and revocation are audited, and the
secret is in no event nor in the exported log; the console page needs sudo mode.

Real MariaDB and Redis (tests/settings.py); hosts point at a closed local port and no worker
runs, so launched runs stay queued.
"""

import hashlib
import json
import re
import uuid
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from jobs.models import JobRun
from remora_admin.access import tokens
from remora_admin.access.models import ApiToken, Role
from remora_admin.audit.models import AuditEvent
from tests.access.helpers import events, give, sign_in

pytestmark = pytest.mark.django_db

SECRET = re.compile(r'<code class="secret" id="new-token">(rma_[A-Za-z0-9_\-]+)</code>')


def api(raw: str, address: str = "127.0.0.1") -> Client:
    """A client that calls the API with token `raw`, from `address`."""
    return Client(
        raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {raw}", REMOTE_ADDR=address
    )


def launch(client: Client, host: str, recipe: str = "host_health"):
    return client.post(
        "/api/runs/", {"recipe": recipe, "hosts": [host]}, content_type="application/json"
    )


def make(user, *, scope: str = "read", lifetime=timedelta(days=30), restricted=False):
    if restricted:
        user.is_verified = lambda: True  # as a session verified with the second factor
    return tokens.create(
        user, name=f"{scope} token", scope=scope, lifetime=lifetime, restricted=restricted
    )


def new_form() -> str:
    """The hidden id a fresh token form carries (a re-posted form makes no second token)."""
    return uuid.uuid4().hex


def new_in_console(user, **form) -> tuple[str, object]:
    """Create a token on the console page (signed in, sudo mode); its secret and the page."""
    client = sign_in(user, sudo=True, verified=form.pop("verified", False))
    data = {"name": "laptop CLI", "scope": "read", "lifetime": "30d", "form_id": new_form(), **form}
    page = client.post(reverse("access:token_new"), data, follow=True)
    assert page.status_code == 200, page.content.decode()[:2000]
    found = SECRET.search(page.content.decode())
    assert found, "the creation page shows the new token"
    return found.group(1), client


def row_columns(token: ApiToken) -> dict:
    """Every column of the token's row, as the database holds it."""
    table = connection.ops.quote_name(ApiToken._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} WHERE id = %s", [token.pk])  # noqa: S608
        names = [c[0] for c in cursor.description]
        return dict(zip(names, cursor.fetchone(), strict=True))


def event_text(event: AuditEvent) -> str:
    fields = {f.attname: getattr(event, f.attname) for f in AuditEvent._meta.concrete_fields}
    return json.dumps(fields, default=str)


# --- Shown once, hashed at rest ---------------------------------------------------------------


def test_token_is_shown_once_and_only_its_digest_is_stored(erin):
    raw, client = new_in_console(erin, name="laptop CLI", scope="act")
    token = ApiToken.objects.get(user=erin)
    assert raw.startswith("rma_") and len(raw) > 40
    assert token.prefix == raw[: tokens.SHOWN] and token.scope == "act"

    listing = client.get(reverse("access:tokens"))
    assert listing.status_code == 200
    assert raw not in listing.content.decode()
    assert token.prefix in listing.content.decode()  # what tells tokens apart is shown
    again = client.get(reverse("access:tokens"))
    assert raw not in again.content.decode()
    assert "no-cache" in listing.headers.get("Cache-Control", "")

    columns = row_columns(token)
    assert columns["digest"] == hashlib.sha256(raw.encode()).hexdigest()
    for name, value in columns.items():
        assert raw not in str(value), f"column {name} holds the secret"
        assert raw[len(tokens.PREFIX) :] not in str(value), f"column {name} holds the secret"
    # Nor does the session that showed it keep it (sessions are rows in the database too).
    for session in Session.objects.all():
        assert raw not in json.dumps(session.get_decoded(), default=str)
        assert raw not in session.session_data

    # A reload posts the same form again: no second token, the secret not shown again.
    form = {"name": "laptop CLI", "scope": "act", "lifetime": "30d", "form_id": new_form()}
    first = client.post(reverse("access:token_new"), form)
    again = client.post(reverse("access:token_new"), form, follow=True)
    assert SECRET.search(first.content.decode())
    assert not SECRET.search(again.content.decode())
    assert "already made its token" in again.content.decode()
    assert ApiToken.objects.filter(user=erin).count() == 2

    # The API never gives it back either, and it works.
    caller = api(raw)
    for url in ("/api/tokens/", "/api/me/"):
        answer = caller.get(url)
        assert answer.status_code == 200, answer.content
        assert raw not in answer.content.decode()
        assert token.digest not in answer.content.decode()
    assert caller.get("/api/me/").json()["username"] == "erin"


def test_two_tokens_are_different_and_each_is_its_own_digest(erin):
    first, first_raw = make(erin)
    second, second_raw = make(erin)
    assert first_raw != second_raw and first.digest != second.digest
    assert first.digest == tokens.digest(first_raw)


# --- Refused tokens say why -------------------------------------------------------------------


def test_expired_token_is_refused_with_the_reason(dan):
    token, raw = make(dan)
    assert api(raw).get("/api/me/").status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    answer = api(raw).get("/api/me/")
    assert answer.status_code == 401
    assert "expired" in answer.json()["detail"]
    assert "create a new one" in answer.json()["detail"]
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_revoked_token_is_refused_with_the_reason(dan):
    token, raw = make(dan)
    client = api(raw)
    assert client.get("/api/hosts/").status_code == 200
    answer = client.post(f"/api/tokens/{token.pk}/revoke/")
    assert answer.status_code == 403  # a read token only reads: revoke it in the console
    sign_in(dan).post(reverse("access:token_revoke", args=[token.pk]))
    token.refresh_from_db()
    assert token.revoked_by == dan
    answer = client.get("/api/hosts/")
    assert answer.status_code == 401
    assert "was revoked on" in answer.json()["detail"]


def test_unknown_and_malformed_tokens_are_refused_with_the_reason(dan):
    token, raw = make(dan)
    answer = api(raw[:-2] + "xx").get("/api/me/")
    assert answer.status_code == 401 and "not known" in answer.json()["detail"]
    answer = api("not-a-token").get("/api/me/")
    assert answer.status_code == 401 and "start with 'rma_'" in answer.json()["detail"]
    answer = Client(HTTP_AUTHORIZATION=f"Bearer {raw} extra").get("/api/me/")
    assert answer.status_code == 401 and "one word" in answer.json()["detail"]
    answer = Client().get("/api/me/")
    assert (
        answer.status_code == 401 and "'Authorization: Bearer <token>'" in answer.json()["detail"]
    )
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="remora"'


def test_a_deactivated_users_token_is_refused(carol):
    token, raw = make(carol, scope="act")
    assert api(raw).get("/api/me/").status_code == 200
    carol.is_active = False
    carol.save(update_fields=["is_active"])
    answer = api(raw).get("/api/me/")
    assert answer.status_code == 401
    assert "deactivated" in answer.json()["detail"]


# --- Scope and the second factor --------------------------------------------------------------


def test_a_read_token_cannot_act(carol, launchable):
    token, raw = make(carol, scope="read")
    answer = launch(api(raw), "sunjammer")
    assert answer.status_code == 403
    assert "may only read" in answer.json()["detail"]
    assert "'act' scope" in answer.json()["detail"]
    assert not JobRun.objects.exists()
    # It still reads.
    assert api(raw).get("/api/runs/").status_code == 200


def test_an_act_token_without_second_factor_launches_in_a_standard_zone_only(bob, launchable):
    # bob: operator on beamrider (restricted), and here on sunjammer (standard) too.
    give(bob, Role.OPERATOR, "sunjammer")
    token, raw = make(bob, scope="act")
    assert not token.second_factor
    client = api(raw)

    refused = launch(client, "beamrider")
    assert refused.status_code == 403, refused.content
    body = refused.json()
    assert body["code"] == "needs_2fa"
    assert "second factor" in body["detail"]
    assert [r["host"] for r in body["refusals"]] == ["beamrider"]
    assert not JobRun.objects.filter(host__name="beamrider").exists()

    launched = launch(client, "sunjammer")
    assert launched.status_code == 201, launched.content
    [run] = launched.json()["runs"]
    assert run["host"] == "sunjammer" and run["requested_by"] == "bob"
    assert JobRun.objects.get(pk=run["id"]).requested_by == bob

    # Both at once (a check: each host stands alone): sunjammer runs, beamrider says why not.
    both = client.post(
        "/api/runs/",
        {"recipe": "host_health", "hosts": ["beamrider", "sunjammer"]},
        content_type="application/json",
    )
    assert both.status_code == 201, both.content
    assert [r["host"] for r in both.json()["runs"]] == ["sunjammer"]
    [refusal] = both.json()["refusals"]
    assert refusal["host"] == "beamrider" and refusal["code"] == "needs_2fa"
    assert not JobRun.objects.filter(host__name="beamrider").exists()


def test_an_act_token_acts_only_as_far_as_the_role_allows(dan, launchable):
    token, raw = make(dan, scope="act")  # dan only views sunjammer
    answer = launch(api(raw), "sunjammer")
    assert answer.status_code == 403
    assert answer.json()["code"] == "no_role"
    assert "operator" in answer.json()["detail"].lower()
    assert not JobRun.objects.exists()


def test_a_token_from_a_verified_session_launches_in_the_restricted_zone(bob, launchable):
    token, raw = make(bob, scope="act", lifetime=timedelta(hours=12), restricted=True)
    assert token.second_factor
    answer = launch(api(raw), "beamrider")
    assert answer.status_code == 201, answer.content
    assert api(raw).get("/api/me/").json()["second_factor"] is True


def test_a_restricted_token_needs_a_verified_session_and_12_hours_at_most(bob):
    with pytest.raises(tokens.TokenRefused, match="verified with your second factor"):
        tokens.create(bob, name="x", scope="act", lifetime=timedelta(hours=12), restricted=True)
    bob.is_verified = lambda: True
    with pytest.raises(tokens.TokenRefused, match="at most 12 hours"):
        tokens.create(
            bob, name="x", scope="act", lifetime=timedelta(hours=12, seconds=1), restricted=True
        )
    with pytest.raises(tokens.TokenRefused, match="at most 12 hours"):
        tokens.create(bob, name="x", scope="act", lifetime=timedelta(days=7), restricted=True)
    assert not ApiToken.objects.exists()
    token, _ = tokens.create(
        bob, name="x", scope="act", lifetime=timedelta(hours=12), restricted=True
    )
    assert token.second_factor
    assert token.expires_at - token.created_at == timedelta(hours=12)


def test_the_console_refuses_a_restricted_token_unverified_or_longer_than_12_hours(bob):
    form = {"name": "deploy", "scope": "act", "lifetime": "12h", "restricted": "on",
            "form_id": new_form()}  # fmt: skip
    unverified = sign_in(bob, sudo=True)
    page = unverified.post(reverse("access:token_new"), form)
    assert page.status_code == 400
    assert "verified with your second factor" in page.content.decode()
    assert not SECRET.search(page.content.decode())

    verified = sign_in(bob, sudo=True, verified=True)
    page = verified.post(reverse("access:token_new"), {**form, "lifetime": "7d"})
    assert page.status_code == 400
    assert "at most 12 hours" in page.content.decode()
    assert not ApiToken.objects.exists()
    assert not events("api_token.created")

    page = verified.post(reverse("access:token_new"), form, follow=True)
    assert page.status_code == 200
    assert SECRET.search(page.content.decode())
    token = ApiToken.objects.get(user=bob)
    assert token.second_factor and token.scope == "act"
    assert token.expires_at - token.created_at == timedelta(hours=12)


def test_the_console_page_needs_sudo_mode(erin):
    client = sign_in(erin)  # signed in, not in sudo mode
    answer = client.post(
        reverse("access:token_new"),
        {"name": "x", "scope": "read", "lifetime": "30d", "form_id": new_form()},
    )
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith(reverse("access:confirm_password"))
    assert not ApiToken.objects.exists()
    assert not events("api_token.created")
    # The page with the form asks for the password before, too.
    answer = client.get(reverse("access:tokens"))
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith(reverse("access:confirm_password"))
    # In sudo mode, the same POST makes the token.
    sudo = sign_in(erin, sudo=True)
    answer = sudo.post(
        reverse("access:token_new"),
        {"name": "x", "scope": "read", "lifetime": "30d", "form_id": new_form()},
    )
    assert answer.status_code in (200, 302)
    assert ApiToken.objects.filter(user=erin).count() == 1


# --- Audit --------------------------------------------------------------------------------------


def test_creation_new_address_and_revocation_are_audited_without_the_secret(erin, bernie):
    raw, console = new_in_console(erin, scope="act")
    token = ApiToken.objects.get(user=erin)
    [created] = events("api_token.created")
    assert created.actor_name == "erin"
    assert created.details["prefix"] == token.prefix and created.details["scope"] == "act"

    assert api(raw, "198.51.100.7").get("/api/me/").status_code == 200
    assert api(raw, "198.51.100.7").get("/api/hosts/").status_code == 200  # known: no event
    assert api(raw, "203.0.113.9").get("/api/me/").status_code == 200
    seen = events("api_token.new_address")
    assert [e.details["address"] for e in seen] == ["198.51.100.7", "203.0.113.9"]
    assert all(e.actor_name == "erin" and e.details["prefix"] == token.prefix for e in seen)
    assert [e.ip for e in seen] == ["198.51.100.7", "203.0.113.9"]

    answer = api(raw, "203.0.113.9").post(f"/api/tokens/{token.pk}/revoke/")
    assert answer.status_code == 200, answer.content
    assert answer.json()["state"] == "revoked"
    [revoked] = events("api_token.revoked")
    assert revoked.actor_name == "erin" and revoked.details["owner"] == "erin"
    assert api(raw, "203.0.113.9").get("/api/me/").status_code == 401

    for event in AuditEvent.objects.all():
        text = event_text(event)
        assert raw not in text, f"event {event.action} holds the secret"
        assert token.digest not in text, f"event {event.action} holds the digest"

    auditor = sign_in(bernie, verified=True)
    for url in (reverse("audit:export_csv"), reverse("audit:export_jsonl")):
        exported = auditor.get(url)
        assert exported.status_code == 200
        body = b"".join(exported.streaming_content).decode()
        assert "api_token.created" in body and "api_token.revoked" in body
        assert "api_token.new_address" in body and token.prefix in body
        assert raw not in body and token.digest not in body


# --- Revoking ---------------------------------------------------------------------------------


def test_revoking_someone_elses_token_is_refused_unless_superadmin(carol, erin, bernie):
    token, raw = make(erin, scope="act")
    carols, carols_raw = make(carol, scope="act")

    answer = api(carols_raw).post(f"/api/tokens/{token.pk}/revoke/")
    assert answer.status_code == 404
    console = sign_in(carol)
    assert console.post(reverse("access:token_revoke", args=[token.pk])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None and not events("api_token.revoked")
    assert api(raw).get("/api/me/").status_code == 200
    # Nor does erin see carol's token.
    assert [t["id"] for t in api(raw).get("/api/tokens/").json()] == [token.pk]

    lead, lead_raw = make(bernie, scope="act", lifetime=timedelta(hours=12), restricted=True)
    answer = api(lead_raw).post(f"/api/tokens/{token.pk}/revoke/")
    assert answer.status_code == 200, answer.content
    token.refresh_from_db()
    assert token.revoked_at is not None and token.revoked_by == bernie
    [revoked] = events("api_token.revoked")
    assert revoked.actor_name == "bernie" and revoked.details["owner"] == "erin"
    assert api(raw).get("/api/me/").status_code == 401

    console = sign_in(bernie, verified=True)
    response = console.post(reverse("access:token_revoke", args=[carols.pk]))
    assert response.status_code == 302
    carols.refresh_from_db()
    assert carols.revoked_by == bernie


def test_revoking_twice_says_so(erin):
    token, raw = make(erin, scope="act")
    tokens.revoke(erin, token)
    with pytest.raises(tokens.TokenRefused, match="already revoked"):
        tokens.revoke(erin, token)
