"""The MariaDB recipes without the lab: every one renders for the demo inventory and passes
`bash -n` and shellcheck (script and status companion); the forms propose the inventory's
values and refuse bad parameters in words; secrets never enter the script text."""

import pytest

from hosts.models import Host
from jobs.recipes import get, mariadb, mariadb_replica, render_status
from tests.recipes.scripts import check_script

pytestmark = pytest.mark.django_db

SECRETS = {
    "app_password": "app-Secret-123456",
    "repl_password": "repl-Secret-123456",
    "seed_password": "seed-Secret-123456",
}
SAMPLES = {
    "mariadb_master": ("beamrider", {**SECRETS}),
    "mariadb_replica": ("remora2", {**SECRETS}),
    "mariadb_backup": ("beamrider", {}),
    "mariadb_restore": ("beamrider", {"backup": "remora-20261126T010203Z.sql.gz"}),
    "mariadb_promote": ("remora2", {}),
}


def _form(name: str, host: str, params: dict):
    return get(name).form(params, host=Host.objects.get(name=host))


def test_every_recipe_of_the_module_has_a_render_sample():
    assert {r.name for r in mariadb.RECIPES + mariadb_replica.RECIPES} == set(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_renders_and_passes_bash_n_and_shellcheck(topology, name):
    host, params = SAMPLES[name]
    recipe = get(name)
    form = _form(name, host, params)
    assert form.is_valid(), form.errors
    script = recipe.render(form.cleaned_data)
    check_script(script)
    for secret in SECRETS.values():
        assert secret not in script
    status = render_status(recipe, form.cleaned_data)
    if status is not None:
        check_script(status)
        for secret in SECRETS.values():
            assert secret not in status
    assert recipe.as_root and recipe.changes_host


def test_forms_propose_the_inventorys_values(topology):
    beamrider, remora2 = Host.objects.get(name="beamrider"), Host.objects.get(name="remora2")
    master = _form("mariadb_master", "beamrider", SECRETS)
    assert master.is_valid(), master.errors
    data = master.cleaned_data
    assert data["database"] == "remora" and data["port"] == 3306
    assert data["bind_address"] == beamrider.reach_address
    assert data["replica_address"] == remora2.reach_address  # the phase 3 placement
    assert "localhost" in data["app_clients"]
    replica = _form("mariadb_replica", "remora2", SECRETS)
    assert replica.is_valid(), replica.errors
    assert replica.cleaned_data["master_address"] == beamrider.reach_address
    assert replica.cleaned_data["server_id"] != master.cleaned_data["server_id"]


@pytest.mark.parametrize(
    "name, params, field, words",
    [
        ("mariadb_master", {"database": "remora'; DROP"}, "database", "letters, digits"),
        ("mariadb_master", {"replica_address": "10.0.0.4 x"}, "replica_address", "IP address"),
        ("mariadb_master", {"port": 70000}, "port", "less than or equal"),
        ("mariadb_master", {"port": 0}, "port", "greater than or equal"),
        ("mariadb_master", {"app_clients": "localhost bad'host"}, "app_clients", "not a host"),
        ("mariadb_master", {"app_password": "short"}, "app_password", "12 to 128"),
        ("mariadb_master", {"app_password": "quote'quote'quote"}, "app_password", "quotes"),
        ("mariadb_master", {"server_id": 0}, "server_id", "greater than or equal"),
        ("mariadb_replica", {"master_port": 65536}, "master_port", "less than or equal"),
        ("mariadb_replica", {"master_address": "a b"}, "master_address", "IP address"),
        ("mariadb_backup", {"keep": 0}, "keep", "greater than or equal"),
        ("mariadb_backup", {"directory": "relative/dir"}, "directory", "absolute"),
        ("mariadb_backup", {"directory": "/var/../etc"}, "directory", ".."),
        ("mariadb_restore", {"backup": "../../etc/shadow"}, "backup", "no slashes"),
        ("mariadb_restore", {"backup": "x/remora-20261126T010203Z.sql.gz"}, "backup", "name"),
        ("mariadb_restore", {"backup": "other-20261126T010203Z.sql.gz"}, "backup", "not a backup"),
    ],
)
def test_bad_parameters_are_refused_in_words(topology, name, params, field, words):
    host, sample = SAMPLES[name]
    form = _form(name, host, {**sample, **params})
    assert not form.is_valid()
    assert field in form.errors, form.errors
    assert words in " ".join(form.errors[field])


def test_master_without_a_replica_needs_no_replication_secrets(topology):
    form = _form("mariadb_master", "beamrider", {"replica_address": "", **SECRETS})
    form.data.pop("repl_password")
    assert form.is_valid(), form.errors
    assert "REPLICATION SLAVE" not in get("mariadb_master").render(form.cleaned_data)
    form = _form("mariadb_master", "beamrider", {"app_password": SECRETS["app_password"]})
    assert not form.is_valid() and "repl_password" in form.errors
