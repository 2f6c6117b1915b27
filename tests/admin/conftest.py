"""The signed-in lead admin and the objects the admin tests work on."""

from types import SimpleNamespace

import pytest

from hosts.models import Host
from remora_admin.access.models import Zone
from tests.access.conftest import bernie  # noqa: F401 - a fixture
from tests.access.helpers import make_user, sign_in

# --- The world the walk works in ---------------------------------------------------------------


@pytest.fixture
def admin_client(bernie):  # noqa: F811
    """Bernie, a superuser with an authenticator, in a session verified with it."""
    return sign_in(bernie, verified=True, sudo=True)


@pytest.fixture
def world(bernie):  # noqa: F811
    zoe = make_user("zoe")
    # The admin shows times to the second; a whole second keeps a round trip a no-op.
    zoe.date_joined = zoe.date_joined.replace(microsecond=0)
    zoe.save(update_fields=["date_joined"])
    sunjammer = Zone.objects.get(name="sunjammer")
    spare = Host.objects.create(name="spare", address="10.0.0.6", zone=sunjammer)
    return SimpleNamespace(bernie=bernie, zoe=zoe, sunjammer=sunjammer, spare=spare)
