"""The auditor the review tests sign in as: an auditor (a global role) with a verified second
factor, on the seed's topology."""

import pytest

from tests.access.helpers import authenticator, give, make_user, sign_in


@pytest.fixture
def auditor(topology):
    user = make_user("ivan")
    give(user, "auditor")
    authenticator(user)
    return sign_in(user, verified=True)
