"""A refused private-key import never sends the key back, and the page is never cached."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from hosts.forms import CredentialForm
from hosts.models import Credential
from remora_admin.access.models import Grant, Role, Zone

pytestmark = pytest.mark.django_db

CANARY = "CANARY-7f3a9c-do-not-echo"
# Looks like a key, is not one: refused by parse_private_key.
BAD_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    f"b3BlbnNzaC1rZXktdjEAAAAA{CANARY}AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)


@pytest.fixture
def erin(topology) -> Client:
    """Zone admin of sunjammer (a standard zone: no second factor needed to act)."""
    user = get_user_model().objects.create_user("erin")
    Grant.objects.create(
        user=user, role=Role.ZONE_ADMIN, zone=Zone.objects.get(name="sunjammer"), reason="t"
    )
    client = Client()
    client.force_login(user)
    return client


def _no_store(response) -> bool:
    return "no-store" in response.headers.get("Cache-Control", "")


def test_the_new_credential_page_is_never_cached(erin):
    response = erin.get(reverse("hosts:credential_new"))

    assert response.status_code == 200
    assert _no_store(response)


@pytest.mark.parametrize("name", ["refused-key", "not a slug!"])
def test_a_refused_import_does_not_send_the_key_back(erin, name):
    """Whether the key itself is refused or another field is wrong, the re-rendered form has
    an empty key box and the page is not stored."""
    response = erin.post(
        reverse("hosts:credential_new"),
        {"name": name, "zone": "sunjammer", "private_key": BAD_KEY},
    )

    assert response.status_code == 200
    assert response.context["form"].errors
    body = response.content.decode()
    assert CANARY not in body
    assert "BEGIN OPENSSH PRIVATE KEY" not in body
    assert _no_store(response)
    assert not Credential.objects.exists()


def test_the_key_widget_renders_no_value_whatever_it_is_given():
    form = CredentialForm(
        {"name": "x", "zone": "nowhere", "private_key": BAD_KEY}, zones=Zone.objects.none()
    )

    assert CANARY not in str(form["private_key"])
