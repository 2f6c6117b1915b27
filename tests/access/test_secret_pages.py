"""Pages that show a secret once (a set-password link, a TOTP secret, recovery codes) are never
cached by the browser, and showing one is an audit event."""

import pytest
from django.urls import reverse

from .helpers import events, sign_in

pytestmark = pytest.mark.django_db


def _no_store(response) -> bool:
    return "no-store" in response.headers.get("Cache-Control", "")


def test_the_enrolment_page_with_a_new_totp_secret_is_not_cached_and_is_audited(zed):
    response = sign_in(zed).post(reverse("access:two_factor"), {"start": "1"})

    assert response.status_code == 200
    assert response.context["secret"]
    assert _no_store(response)
    [shown] = events("auth.2fa_secret_shown", actor=zed)
    assert response.context["secret"] not in str(shown.details)


def test_the_page_with_a_new_persons_set_password_link_is_not_cached(bernie):
    response = sign_in(bernie, verified=True).post(
        reverse("access:person_new"), {"username": "newbie", "email": "newbie@example.org"}
    )

    assert response.status_code == 200
    assert "/access/set-password/" in response.context["link"]
    assert _no_store(response)
    assert events("user.created")[-1].details["after"]["username"] == "newbie"
    assert response.context["link"] not in str([e.details for e in events("user.created")])


def test_new_recovery_codes_are_not_cached(alice):
    response = sign_in(alice, verified=True, sudo=True).post(reverse("access:recovery_codes"))

    assert len(response.context["codes"]) == 10
    assert _no_store(response)
