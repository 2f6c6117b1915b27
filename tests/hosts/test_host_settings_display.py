"""The host page shows each service setting as it is: text whole (not `r, e, m, o, r, a`),
lists joined with commas, numbers as numbers, empty values as a dash."""

import re

import pytest
from django.urls import reverse

from hosts.models import Host, Service, ServiceKind
from hosts.templatetags.host_settings import setting_value
from tests.access.helpers import PASSWORD, User, authenticator, sign_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def page(topology):
    """beamrider's page, its MySQL master configured with a string, a list, numbers and an
    empty value, as a verified superuser sees it."""
    beamrider = Host.objects.get(name="beamrider")
    service = Service.objects.get(host=beamrider, kind=ServiceKind.MYSQL_MASTER)
    service.settings = {
        "database": "remora",
        "port": 3307,
        "buffer_pool_mb": 0,
        "replicas": ["remora2", "sunjammer"],
        "binlog": "",
    }
    service.save()
    user = User.objects.create_superuser("bernie", "bernie@example.org", PASSWORD)
    authenticator(user)
    response = sign_in(user, verified=True).get(reverse("hosts:detail", args=["beamrider"]))
    assert response.status_code == 200
    return response.content.decode()


def _setting(html: str, name: str) -> str:
    """The text shown for one setting, the first time it appears."""
    match = re.search(rf"<li><code>{name}</code>: (.*?)</li>", html)
    assert match, f"{name} is not shown"
    return match.group(1)


def test_a_text_setting_is_shown_whole(page):
    assert _setting(page, "database") == "remora"
    assert "r, e, m, o" not in page


def test_a_list_setting_is_joined_with_commas(page):
    assert _setting(page, "replicas") == "remora2, sunjammer"
    # The NFS server's default exports, a list too.
    assert _setting(page, "exports") == "/srv/remora/files, /srv/remora/public-staging"


def test_a_number_setting_is_shown_as_a_number_even_zero(page):
    assert _setting(page, "port") == "3307"
    assert _setting(page, "buffer_pool_mb") == "0"


def test_an_empty_setting_is_a_dash(page):
    assert _setting(page, "binlog") == "—"


def test_setting_values_as_text():
    assert setting_value("remora") == "remora"
    assert setting_value(["a", "b"]) == "a, b"
    assert setting_value([]) == ""
    assert setting_value(3306) == "3306"
    assert setting_value(0) == "0"
    assert setting_value(None) == ""
    assert setting_value(True) == "yes"
    assert setting_value({"host": "beamrider", "port": 80}) == "host: beamrider, port: 80"


def test_setting_values_are_escaped_on_the_page(topology):
    beamrider = Host.objects.get(name="beamrider")
    service = Service.objects.get(host=beamrider, kind=ServiceKind.MYSQL_MASTER)
    service.settings = {"database": "<b>x</b>", "replicas": ["<i>y</i>"]}
    service.save()
    user = User.objects.create_superuser("bernie", "bernie@example.org", PASSWORD)
    authenticator(user)
    html = sign_in(user, verified=True).get(reverse("hosts:detail", args=["beamrider"])).text

    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert "<i>y</i>" not in html and "&lt;i&gt;y&lt;/i&gt;" in html
