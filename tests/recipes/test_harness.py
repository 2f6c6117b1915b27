"""The recipe harness itself: a run through the console's path on the lab's beamrider (restricted,
approvals) succeeds, and its output is readable."""

import pytest

from jobs.models import RunState

from .conftest import output

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]


def test_a_recipe_runs_on_the_labs_beamrider_through_the_console(run_recipe):
    run = run_recipe("host_health", "beamrider")

    assert run.state == RunState.SUCCEEDED, run.error
    assert "== beamrider at " in output(run)
