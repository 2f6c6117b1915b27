"""Too many wrong passwords lock the sign-in for a while; sessions end when idle or old."""

import time
from datetime import timedelta

from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from remora_admin.access.middleware import LAST_SEEN, SIGNED_IN_AT

from .helpers import PASSWORD, events, sign_in

LOGIN = reverse("login")
LOCKED = "Too many wrong passwords"


def _try(client: Client, password: str, username: str = "carol"):
    return client.post(LOGIN, {"username": username, "password": password})


def _lock_out(client: Client, username: str = "carol") -> list:
    return [_try(client, "wrong-password", username) for _ in range(settings.AXES_FAILURE_LIMIT)]


def _age_session(client: Client, **seconds_ago: float) -> None:
    keys = {"last_seen": LAST_SEEN, "signed_in": SIGNED_IN_AT}
    session = client.session
    for name, ago in seconds_ago.items():
        session[keys[name]] = time.time() - ago
    session.save()


# --- Lockout ----------------------------------------------------------------------------------


def test_wrong_passwords_below_the_limit_leave_the_right_one_working(carol):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert "correct username and password" in _try(client, "wrong-password").text

    response = _try(client, PASSWORD)

    assert response.status_code == 302
    assert events("auth.locked_out") == []
    assert len(events("auth.login_failed", actor_name="carol")) == settings.AXES_FAILURE_LIMIT - 1


def test_after_the_limit_even_the_right_password_gets_the_lockout_page(carol):
    client = Client()
    attempts = _lock_out(client)

    response = _try(client, PASSWORD)

    assert settings.AXES_FAILURE_LIMIT == 5
    assert LOCKED in attempts[-1].text, "the attempt that reaches the limit is told at once"
    assert response.status_code == 429
    assert LOCKED in response.text
    assert f"({settings.AXES_FAILURE_LIMIT} in a row)" in response.text
    assert not response.wsgi_request.user.is_authenticated
    assert events("auth.login", actor=carol) == []


def test_a_lockout_is_audited_with_the_user_name_and_the_limit(carol):
    _lock_out(Client())

    [locked] = events("auth.locked_out")
    assert locked.actor_name == "carol"
    assert locked.details == {"username": "carol", "failures": settings.AXES_FAILURE_LIMIT}


def test_after_the_cool_off_the_right_password_works_and_the_end_of_the_lockout_is_audited(
    carol,
):
    client = Client()
    _lock_out(client)
    assert _try(client, PASSWORD).status_code == 429
    long_ago = timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    assert AccessAttempt.objects.update(attempt_time=long_ago) >= 1

    response = _try(client, PASSWORD)

    assert response.status_code == 302
    assert response.headers["Location"] == reverse("dashboard")
    assert client.get(reverse("dashboard")).status_code == 200
    [expired] = events("auth.lockout_expired")
    assert expired.actor_name == "carol"
    assert len(events("auth.login", actor=carol)) == 1


def test_before_the_cool_off_ends_the_lockout_holds(carol):
    client = Client()
    _lock_out(client)
    almost = timezone.now() - settings.AXES_COOLOFF_TIME + timedelta(minutes=1)
    AccessAttempt.objects.update(attempt_time=almost)

    response = _try(client, PASSWORD)

    assert response.status_code == 429
    assert events("auth.lockout_expired") == []


# --- Session lifetimes ------------------------------------------------------------------------


def test_an_idle_session_is_signed_out_and_audited(carol):
    client = sign_in(carol)
    _age_session(client, last_seen=settings.REMORA_SESSION_IDLE_MINUTES * 60 + 60)

    response = client.get(reverse("hosts:list"))

    assert response.status_code == 302
    assert response.headers["Location"] == f"{LOGIN}?next=/hosts/"
    [expired] = events("auth.session_expired")
    assert expired.actor == carol
    assert expired.details == {
        "why": f"idle for more than {settings.REMORA_SESSION_IDLE_MINUTES} minutes"
    }
    assert client.get(reverse("dashboard")).wsgi_request.user.is_anonymous


def test_a_session_older_than_its_absolute_lifetime_is_signed_out_however_busy(carol):
    client = sign_in(carol)
    _age_session(client, last_seen=5, signed_in=settings.REMORA_SESSION_MAX_HOURS * 3600 + 60)

    response = client.get(reverse("dashboard"))

    assert response.status_code == 302
    assert response.headers["Location"].startswith(LOGIN)
    [expired] = events("auth.session_expired")
    assert expired.actor == carol
    assert expired.details == {
        "why": f"signed in more than {settings.REMORA_SESSION_MAX_HOURS} hours ago"
    }
    assert client.get(reverse("dashboard")).wsgi_request.user.is_anonymous


def test_a_session_in_use_within_both_limits_stays_signed_in(carol):
    client = sign_in(carol)
    _age_session(
        client,
        last_seen=settings.REMORA_SESSION_IDLE_MINUTES * 60 - 60,
        signed_in=settings.REMORA_SESSION_MAX_HOURS * 3600 - 60,
    )

    response = client.get(reverse("dashboard"))

    assert response.status_code == 200
    assert events("auth.session_expired") == []
    assert time.time() - client.session[LAST_SEEN] < 5, "the idle clock restarts on use"
