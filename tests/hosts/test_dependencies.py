"""The seed's reliability question per phase: which hosts a.sl.o needs, and what one host's
loss costs. Phase 1 needs only beamrider; in Phase 2 losing sunjammer costs capacity, not the
site; the phases page says so under each picture."""

import pytest
from django.urls import reverse

from hosts.dependencies import reliability
from hosts.models import GrowthPhase
from tests.access import conftest as access
from tests.access.helpers import sign_in

# The access tests' cast (tests/access/conftest.py), as fixtures of this module.
bernie, alice, bob, carol, dan = access.bernie, access.alice, access.bob, access.carol, access.dan
erin, ivan, zed, cast = access.erin, access.ivan, access.zed, access.cast

pytestmark = pytest.mark.django_db


def _phase(number: int) -> GrowthPhase:
    return GrowthPhase.objects.get(number=number)


def test_phase_1_works_when_only_beamrider_is_up_and_needs_it(topology):
    answer = reliability(_phase(1))

    assert answer.needed == ["beamrider"]
    assert answer.summary == "a.sl.o needs beamrider: losing it stops the site."
    [loss] = answer.losses
    assert loss.stops_site and "the MySQL master (every write)" in loss.sentence


def test_phase_2_losing_sunjammer_costs_capacity_not_the_site(topology):
    losses = {loss.host: loss for loss in reliability(_phase(2)).losses}

    assert not losses["sunjammer"].stops_site
    assert losses["sunjammer"].sentence == (
        "Losing sunjammer costs capacity (1 of 2 front ends remain); the site keeps answering."
    )
    assert losses["beamrider"].stops_site


def test_phase_3_a_lost_replica_breaks_shadow_reads_and_moves_the_floating_address(topology):
    losses = {loss.host: loss for loss in reliability(_phase(3)).losses}

    remora2 = losses["remora2"]
    assert not remora2.stops_site and remora2.degrades
    assert "shadow database" in remora2.sentence and "floating address" in remora2.sentence
    # With the failover pair, beamrider's loss no longer takes the load balancer with it.
    assert "load balancer" not in losses["beamrider"].sentence
    assert losses["beamrider"].stops_site  # the master and the data files are still there


def test_the_phases_page_answers_it_under_each_picture(cast):
    html = sign_in(cast.bernie, verified=True).get(reverse("phases")).text

    assert html.count('aria-label="If one host is down"') == 3
    assert "Losing sunjammer costs capacity (1 of 2 front ends remain)" in html


def test_a_delegate_is_told_only_about_the_hosts_they_see(cast):
    html = sign_in(cast.carol).get(reverse("phases")).text

    assert "Losing sunjammer" in html
    assert "Losing beamrider" not in html and "Losing remora2" not in html
