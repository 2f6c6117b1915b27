import pytest
from django.test import RequestFactory

from jobs import launch as launching
from jobs.models import JobRun, RunState
from jobs.recipes import get
from jobs.tasks import execute_run


def _request(user):
    request = RequestFactory().post("/")
    request.user = user
    return request


@pytest.mark.django_db(transaction=True)
def test_a_health_run_streams_output_and_succeeds(lab_host, carol, redis_conn):
    recipe = get("host_health")
    [run] = launching.launch(carol, recipe, [lab_host], {}, request=_request(carol))
    assert execute_run(run.pk) == "done"
    run.refresh_from_db()
    text = b"".join(bytes(c.data) for c in run.chunks.order_by("offset"))
    assert run.state == RunState.SUCCEEDED, run.error
    assert b"== uptime and load" in text
    assert JobRun.objects.get(pk=run.pk).exit_code == 0
