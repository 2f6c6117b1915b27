"""A run's whole story on its audit event's page, in order: who asked, the exact script, who
approved and why, how it ended, and the way to its output."""

import pytest

from jobs import launch as launching
from jobs.recipes import Category
from jobs.tasks import execute_run
from remora_admin.audit.models import AuditEvent
from tests.access.helpers import authenticator, give, make_user, sign_in

pytestmark = pytest.mark.django_db


def test_a_runs_story_is_told_in_order_with_its_script_and_decisions(
    alice, lab_host, zone, make_recipe
):
    zone.requires_approval = True
    zone.save()
    bob = make_user("bob")
    give(bob, "zone_admin", "lab")
    auditor = make_user("ivan")
    give(auditor, "auditor")
    authenticator(auditor)
    recipe = make_recipe("provision_probe", lambda p: "echo provisioned-here",
                         category=Category.PROVISION)  # fmt: skip
    [run] = launching.launch(alice, recipe, [lab_host], {}, second_factor=True)
    launching.approve(bob, run, "routine check", second_factor=True)
    execute_run(run.pk)

    requested = AuditEvent.objects.get(action="run.requested", target_id=str(run.pk))
    page = sign_in(auditor, verified=True).get(f"/audit/{requested.sequence}/").content.decode()
    story = page.split("Its whole story")[1]
    positions = [story.index(a) for a in ("run.requested", "run.approved", "run.started",
                                         "run.succeeded")]  # fmt: skip
    assert positions == sorted(positions)
    assert "“routine check”" in story and "by bob" in story
    assert "The exact script" in page and "echo provisioned-here" in page
    assert f'href="/runs/{run.pk}/"' in page
