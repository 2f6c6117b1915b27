"""The PHP front-end recipe without the lab: it renders for the demo inventory and passes
`bash -n` and shellcheck (script and status companion); the form proposes the inventory's
values and refuses bad parameters in words; the passwords never enter the script text."""

import pytest
from django.http import QueryDict

from hosts.models import Host
from jobs.recipes import get, render_status, secret_env
from jobs.recipes.frontend import RECIPES
from tests.recipes.scripts import check_script

pytestmark = pytest.mark.django_db

PASSWORD = "master-Secret-'quoted'-123"
SHADOW_PASSWORD = "shadow-Secret-123456"
PARAMS = {
    "repo_url": "https://git.example.org/remora/site.git",
    "ref": "release/2026.11",
    "db_password": PASSWORD,
    "shadow_db_password": SHADOW_PASSWORD,
}


def _form(params: dict, host: str = "sunjammer"):
    return get("php_frontend").form(params, host=Host.objects.get(name=host))


def test_the_module_lists_the_front_end_recipe():
    assert [r.name for r in RECIPES] == ["php_frontend"]
    recipe = RECIPES[0]
    assert recipe.as_root and recipe.changes_host and recipe.category == "provision"
    assert set(recipe.secret_fields) == {"db_password", "shadow_db_password"}


def test_renders_and_passes_bash_n_and_shellcheck(topology):
    recipe = get("php_frontend")
    form = _form(PARAMS)
    assert form.is_valid(), form.errors
    script = recipe.render(form.cleaned_data)
    status = render_status(recipe, form.cleaned_data)
    check_script(script)
    check_script(status)
    for secret in (PASSWORD, SHADOW_PASSWORD, "master-Secret", "shadow-Secret"):
        assert secret not in script and secret not in status
    # The deploy reads the passwords from the worker's environment; the status never does.
    assert secret_env("db_password") in script
    assert "REMORA_SECRET" not in status
    for expected in ("DB_HOST", "SHADOW_DB_HOST", "REPO_PATH", "PUBLIC_STAGING_PATH"):
        assert expected in script


def test_the_form_proposes_the_inventorys_values(topology):
    beamrider = Host.objects.get(name="beamrider")
    form = _form(PARAMS)
    assert form.is_valid(), form.errors
    data = form.cleaned_data
    # Phase 1: no shadow replica yet, so reads go to the master too.
    assert data["db_host"] == beamrider.reach_address == data["shadow_db_host"]
    assert data["db_name"] == "remora" and data["db_port"] == 3306
    assert data["files_dir"] == "/srv/remora/files"
    assert data["staging_dir"] == "/srv/remora/public-staging"
    assert data["server_name"] == "sunjammer" and data["port"] == 8080
    assert data["deploy_root"] == "/srv/remora" and data["ref"] == "release/2026.11"
    unbound = get("php_frontend").form(host=beamrider)
    assert unbound.fields["db_host"].initial == beamrider.reach_address


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("ref", "main branch", "no spaces"),
        ("ref", "main;reboot", "only letters"),
        ("ref", "../etc", "not a valid git ref"),
        ("ref", "--upload-pack", "not a valid git ref"),
        ("files_dir", "srv/remora/files", "not an absolute path"),
        ("staging_dir", "/srv/../etc", "plain absolute path"),
        ("deploy_root", "relative", "not an absolute path"),
        ("repo_url", "https://git.example.org/site.git;reboot", "no shell characters"),
        ("repo_url", "https://git.example.org/$(reboot)", "no shell characters"),
        ("repo_url", "ssh://git.example.org/site.git", "http://, https:// or git://"),
        ("repo_url", "file:///etc", "http://, https:// or git://"),
        ("port", "70000", "less than or equal to 65535"),
        ("db_host", "db host", "host name"),
        ("db_user", "remora'--", "Letters, digits and underscores"),
        ("web_dir", "../../etc", "inside the application"),
        ("health_path", "health", "starting with /"),
        ("db_password", "", "required"),
    ],
)
def test_bad_parameters_are_refused_in_words(topology, field, value, words):
    form = _form({**PARAMS, field: value})
    assert not form.is_valid()
    assert words in " ".join(form.errors[field]), form.errors


@pytest.mark.parametrize("path", ["/etc", "/srv", "/var/lib/mysql", "/usr/local/share", "/var"])
def test_a_data_directory_is_never_a_system_directory(topology, path):
    form = _form({**PARAMS, "staging_dir": path})
    assert not form.is_valid()
    assert "is a system directory" in str(form.errors["staging_dir"])


def test_a_data_directory_cannot_be_a_release_or_the_other_one(topology):
    for path in ("/srv/remora/releases/x", "/srv/remora/current/files", "/srv/remora"):
        form = _form({**PARAMS, "files_dir": path})
        assert not form.is_valid() and "cannot hold or be the deploy root" in str(
            form.errors["files_dir"]
        )
    form = _form({**PARAMS, "staging_dir": "/srv/remora/files"})
    assert not form.is_valid() and "must differ" in str(form.errors["staging_dir"])


def test_a_posted_form_takes_the_proposals_for_what_it_leaves_out(topology):
    posted = QueryDict(mutable=True)
    posted.update({"repo_url": PARAMS["repo_url"], "db_password": PASSWORD, "ref": "v1.2"})
    form = _form(posted)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["port"] == 8080 and form.cleaned_data["ref"] == "v1.2"
    posted["db_host"] = ""  # sent empty: the person's choice, checked like any other
    assert "required" in str(_form(posted).errors["db_host"])
