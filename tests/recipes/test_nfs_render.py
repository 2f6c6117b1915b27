"""The NFS recipes without the lab: they render for the demo inventory and pass `bash -n` and
shellcheck (scripts and status companions); the forms propose the inventory's directories,
server and front ends, and refuse bad parameters in words."""

import pytest

from hosts.models import Host
from jobs.recipes import get, render_status
from jobs.recipes.nfs import ganesha_config
from tests.recipes.scripts import check_script

pytestmark = pytest.mark.django_db


def _lab_addresses() -> None:
    for name, address in (("beamrider", "10.9.0.2"), ("sunjammer", "10.9.0.3")):
        Host.objects.filter(name=name).update(service_address=address)


def _form(name: str, params: dict, host: str):
    return get(name).form(params, host=Host.objects.get(name=host))


@pytest.mark.parametrize(
    "name, host, params",
    [
        ("nfs_exports", "beamrider", {"clients": "sunjammer, 10.9.0.7"}),
        ("nfs_exports", "beamrider", {"clients": ""}),
        ("nfs_mount", "sunjammer", {"server": "beamrider"}),
    ],
)
def test_renders_and_passes_bash_n_and_shellcheck(topology, name, host, params):
    _lab_addresses()
    form = _form(name, params, host)
    assert form.is_valid(), form.errors
    recipe = get(name)
    check_script(recipe.render(form.cleaned_data))
    check_script(render_status(recipe, form.cleaned_data))
    assert recipe.as_root and recipe.changes_host


def test_the_server_form_proposes_the_inventorys_directories_and_other_front_ends(topology):
    _lab_addresses()
    Host.objects.filter(name="sunjammer").first().services.create(kind="php_frontend")
    form = _form("nfs_exports", {}, "beamrider")
    assert form.fields["files_dir"].initial == "/srv/remora/files"
    assert form.fields["staging_dir"].initial == "/srv/remora/public-staging"
    assert form.fields["clients"].initial == "sunjammer"  # not beamrider: it is the server

    # Parameters left out take the proposals (the planner passes only what differs).
    bound = _form("nfs_exports", {"clients": "sunjammer\nsunjammer"}, "beamrider")
    assert bound.is_valid(), bound.errors
    assert bound.cleaned_data["files_dir"] == "/srv/remora/files"
    assert bound.cleaned_data["clients"] == ["10.9.0.3"]  # by service address, once


def test_only_the_named_clients_get_access_and_root_is_squashed():
    config = ganesha_config(
        {"files_dir": "/srv/f", "staging_dir": "/srv/s", "clients": ["10.9.0.3", "10.9.0.4"]}
    )
    assert config.count("Access_Type = None;") == 2
    assert config.count("CLIENT { Clients = 10.9.0.3, 10.9.0.4; Access_Type = RW; }") == 2
    assert config.count("Squash = Root_Squash;") == 2
    assert 'Path = "/srv/f";' in config and 'Path = "/srv/s";' in config
    nobody = ganesha_config({"files_dir": "/srv/f", "staging_dir": "/srv/s", "clients": []})
    assert "CLIENT" not in nobody and nobody.count("Access_Type = None;") == 2


DIRS = {"files_dir": "/srv/remora/files", "staging_dir": "/srv/remora/public-staging"}


@pytest.mark.parametrize(
    "name, host, params, field, message",
    [
        ("nfs_exports", "beamrider", {"files_dir": "srv/files"}, "files_dir", "not an absolute"),
        ("nfs_exports", "beamrider", {"files_dir": "/etc/remora"}, "files_dir", "system directory"),
        ("nfs_exports", "beamrider", {"staging_dir": "/srv/remora/files/x"}, "staging_dir", "nest"),
        ("nfs_exports", "beamrider", {"clients": "nosuchhost"}, "clients", "neither an IPv4"),
        ("nfs_exports", "beamrider", {"clients": "sunjammer; reboot"}, "clients", "is not a front"),
        ("nfs_mount", "sunjammer", {"server": "beamrider", "options": "rw, hard"}, "options", ""),
        ("nfs_mount", "sunjammer", {"server": "beamrider", "options": "rw;id"}, "options", "words"),
        ("nfs_mount", "sunjammer", {"server": "sunjammer"}, "server", "NFS server itself"),
        ("nfs_mount", "sunjammer", {"server": "10.9.0.300"}, "server", "neither an IPv4"),
        (
            "nfs_mount",
            "sunjammer",
            {"server": "beamrider", "files_dir": "/srv/a b"},
            "files_dir",
            "",
        ),
    ],
)
def test_bad_parameters_are_refused_by_the_form(topology, name, host, params, field, message):
    _lab_addresses()
    form = _form(name, {**DIRS, **params}, host)
    if field == "options" and not message:  # spaces around commas are tidied, not refused
        assert form.is_valid(), form.errors
        assert form.cleaned_data["options"] == "rw,hard"
        return
    assert not form.is_valid()
    assert field in form.errors, form.errors
    assert message in str(form.errors[field])
