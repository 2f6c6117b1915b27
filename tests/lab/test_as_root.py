"""Recipes that change the system run as root through the deploy account's passwordless sudo,
on a real Debian host; cancelling one kills its root processes too."""

import threading
import time

import pytest

from hosts.models import Host
from jobs import launch as launching
from jobs.models import RunState
from jobs.recipes import REGISTRY, Category, Recipe, RecipeForm
from jobs.tasks import execute_run
from lab import control
from lab.config import BY_NAME
from remora_admin import lab_demo
from remora_admin.access.models import Role
from tests.access.helpers import authenticator, give, make_user

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def root_recipes():
    made = [
        Recipe(
            "whoami_root",
            "Who am I (root)",
            "test",
            Category.OPERATE,
            RecipeForm,
            lambda p: "id -u; touch /root/remora-as-root",
            as_root=True,
        ),  # fmt: skip
        Recipe(
            "sleep_root",
            "Sleep as root",
            "test",
            Category.OPERATE,
            RecipeForm,
            lambda p: "echo started; exec sleep 300",
            as_root=True,
            timeout=600,
        ),  # fmt: skip
        Recipe("whoami", "Who am I", "test", Category.OPERATE, RecipeForm, lambda p: "id -u"),
    ]
    for recipe in made:
        REGISTRY[recipe.name] = recipe
    yield {r.name: r for r in made}
    for recipe in made:
        REGISTRY.pop(recipe.name, None)


@pytest.fixture
def carol(fresh_lab, topology):
    from django.contrib.auth import get_user_model

    lead = get_user_model().objects.create_superuser("bernie", "b@example.org", "pw-lead-1")
    authenticator(lead)
    lab_demo.adopt(fresh_lab, actor=lead)
    user = make_user("carol")
    give(user, Role.OPERATOR, "sunjammer")
    return user


def _output(run) -> str:
    return b"".join(bytes(c.data) for c in run.chunks.order_by("offset")).decode()


def test_an_as_root_recipe_runs_as_root_and_a_plain_one_as_deploy(carol, root_recipes):
    sunjammer = Host.objects.get(name="sunjammer")
    [as_root] = launching.launch(carol, root_recipes["whoami_root"], [sunjammer], {})
    [plain] = launching.launch(carol, root_recipes["whoami"], [sunjammer], {})

    execute_run(as_root.pk)
    execute_run(plain.pk)

    as_root.refresh_from_db()
    plain.refresh_from_db()
    assert as_root.state == RunState.SUCCEEDED, as_root.error
    assert _output(as_root).split()[0] == "0"
    assert _output(plain).split()[0] != "0"
    check = control.run(BY_NAME["sunjammer"], "test -e /root/remora-as-root && echo yes")
    assert check.stdout.strip() == "yes"


def test_cancelling_a_root_run_kills_its_root_processes(carol, root_recipes):
    sunjammer = Host.objects.get(name="sunjammer")
    [run] = launching.launch(carol, root_recipes["sleep_root"], [sunjammer], {})
    worker = threading.Thread(target=execute_run, args=(run.pk,), daemon=True)
    worker.start()
    deadline = time.monotonic() + 20
    while "started" not in _output(run) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "sleep 300" in control.run(BY_NAME["sunjammer"], "ps -eo args").stdout

    launching.cancel(carol, run)
    worker.join(30)

    run.refresh_from_db()
    assert run.state == RunState.CANCELLED
    left = control.run(BY_NAME["sunjammer"], "ps -eo user,args").stdout
    assert "sleep 300" not in left, left
