"""The cast of the access tests, their grants, and ways to sign them in.

bernie   lead admin, Django superuser (so superadmin everywhere), with an authenticator app
alice    zone admin of beamrider (restricted), with an authenticator app
bob      operator on beamrider, with an authenticator app
carol    operator on sunjammer (standard)
dan      viewer on sunjammer
erin     zone admin of sunjammer
ivan     auditor (global), with an authenticator app (a global role reaches beamrider too)
zed      signed in, but holds no grant at all

Every one of them has the password PASSWORD (tests/access/helpers.py). Grants are made with the
ORM here; the grant functions and views are what the tests themselves exercise.
"""

from types import SimpleNamespace

import pytest

from hosts.models import Host
from remora_admin.access.models import Role

from .helpers import PASSWORD, User, authenticator, give, make_user

# --- Fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def beamrider_host(topology) -> Host:
    return Host.objects.get(name="beamrider")


@pytest.fixture
def sunjammer_host(topology) -> Host:
    return Host.objects.get(name="sunjammer")


@pytest.fixture
def bernie(topology):
    user = User.objects.create_superuser("bernie", "bernie@example.org", PASSWORD)
    authenticator(user)
    return user


@pytest.fixture
def alice(topology, bernie):
    user = make_user("alice")
    give(user, Role.ZONE_ADMIN, "beamrider", by=bernie)
    authenticator(user)
    return user


@pytest.fixture
def bob(topology, bernie):
    user = make_user("bob")
    give(user, Role.OPERATOR, "beamrider", by=bernie)
    authenticator(user)
    return user


@pytest.fixture
def carol(topology, bernie):
    user = make_user("carol")
    give(user, Role.OPERATOR, "sunjammer", by=bernie)
    return user


@pytest.fixture
def dan(topology, bernie):
    user = make_user("dan")
    give(user, Role.VIEWER, "sunjammer", by=bernie)
    return user


@pytest.fixture
def erin(topology, bernie):
    user = make_user("erin")
    give(user, Role.ZONE_ADMIN, "sunjammer", by=bernie)
    return user


@pytest.fixture
def ivan(topology, bernie):
    user = make_user("ivan")
    give(user, Role.AUDITOR, by=bernie)
    authenticator(user)
    return user


@pytest.fixture
def zed(topology):
    return make_user("zed")


@pytest.fixture
def cast(bernie, alice, bob, carol, dan, erin, ivan, zed) -> SimpleNamespace:
    """Everyone at once, for tests that walk through every role."""
    return SimpleNamespace(
        bernie=bernie, alice=alice, bob=bob, carol=carol, dan=dan, erin=erin, ivan=ivan, zed=zed
    )
