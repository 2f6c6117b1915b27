"""Signing in and out: where it leads, what it tells the person, and what the audit log keeps."""

import pytest

from remora_admin.audit.models import AuditEvent

PASSWORD = "correct-horse-battery-staple"
WRONG_PASSWORD = "Tr0ub4dor&3-not-it"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) RemoraTests/1.0"


@pytest.fixture
def alice(django_user_model):
    """A person with no role in a restricted zone, so no second factor is asked of her here
    (tests/access/test_two_factor.py covers sign-in with one)."""
    return django_user_model.objects.create_user(
        "alice", email="alice@example.org", password=PASSWORD
    )


def _sign_in(client, username: str, password: str):
    return client.post(
        "/login/", {"username": username, "password": password}, headers={"user-agent": BROWSER}
    )


def test_signing_in_leads_to_the_dashboard(client, alice):
    response = _sign_in(client, "alice", PASSWORD)

    assert response.status_code == 302
    assert response.url == "/"
    assert client.get("/").status_code == 200


def test_signing_in_follows_next_to_the_page_asked_for(client, alice):
    response = client.post(
        "/login/", {"username": "alice", "password": PASSWORD, "next": "/hosts/"}
    )

    assert response.status_code == 302
    assert response.url == "/hosts/"


def test_signing_in_is_audited_with_the_address_and_browser(client, alice):
    _sign_in(client, "alice", PASSWORD)

    event = AuditEvent.objects.get(action="auth.login")
    assert event.actor_id == alice.pk
    assert event.actor_name == "alice"
    assert event.ip == "127.0.0.1"
    assert event.user_agent == BROWSER


def test_signing_out_by_post_ends_the_session_and_is_audited(client, alice):
    _sign_in(client, "alice", PASSWORD)

    response = client.post("/logout/", headers={"user-agent": BROWSER})

    assert response.status_code == 302
    assert response.url == "/login/"
    event = AuditEvent.objects.get(action="auth.logout")
    assert (event.actor_id, event.actor_name) == (alice.pk, "alice")
    assert event.ip == "127.0.0.1"
    assert client.get("/").status_code == 302


def test_signing_out_by_get_is_not_allowed(client, alice):
    client.force_login(alice)

    response = client.get("/logout/")

    assert response.status_code == 405
    assert not AuditEvent.objects.filter(action="auth.logout").exists()
    assert client.get("/").status_code == 200


def test_a_wrong_password_says_so_on_the_page(client, alice):
    response = _sign_in(client, "alice", WRONG_PASSWORD)

    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content
    assert b'role="alert"' in response.content
    assert "_auth_user_id" not in client.session


def test_a_wrong_password_is_audited_with_the_user_name_tried(client, alice):
    _sign_in(client, "alice", WRONG_PASSWORD)

    event = AuditEvent.objects.get(action="auth.login_failed")
    assert event.actor_name == "alice"
    assert event.actor_id is None
    assert event.details == {"username": "alice"}
    assert event.ip == "127.0.0.1"
    assert event.user_agent == BROWSER


def test_a_failed_sign_in_keeps_no_trace_of_the_password_tried(client, alice):
    _sign_in(client, "alice", WRONG_PASSWORD)

    event = AuditEvent.objects.get(action="auth.login_failed")
    assert WRONG_PASSWORD not in event.canonical().decode()
    assert WRONG_PASSWORD not in str(event.details)


def test_an_unknown_user_name_is_audited_as_tried(client, db):
    response = _sign_in(client, "mallory", WRONG_PASSWORD)

    assert response.status_code == 200
    event = AuditEvent.objects.get(action="auth.login_failed")
    assert event.actor_name == "mallory"
    assert event.details == {"username": "mallory"}
    assert WRONG_PASSWORD not in event.canonical().decode()


def test_the_dashboard_sends_a_stranger_to_sign_in(client, db):
    response = client.get("/")

    assert response.status_code == 302
    assert response.url == "/login/?next=/"
