"""Values full of shell metacharacters reach the host as exactly the bytes that were typed."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs.models import RunState
from jobs.ssh import quote

from .conftest import output_of

pytestmark = pytest.mark.django_db

NASTY = "$`\"'\\;|&<>(){}[]*?~!#%^=\n\r\t -–ü日\u200b"
values = st.text(
    alphabet=st.one_of(
        st.sampled_from(NASTY),
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    ),
    min_size=1,
    max_size=200,
) | st.sampled_from(["$(touch /tmp/pwned)", "`id`", "'; rm -rf / #", "a\nb", "--help", "-n"])


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=values)
def test_the_host_receives_exactly_the_bytes_of_each_parameter(
    text, lab_host, carol, make_recipe, run_now
):
    recipe = _echo_recipe(make_recipe)
    form = recipe.form({"text": text}, host=lab_host)
    assert form.is_valid(), form.errors

    [run] = run_now(carol, recipe, [lab_host], form.cleaned_data)

    assert run.state == RunState.SUCCEEDED, run.error
    assert output_of(run, "out") == text.encode()
    assert quote(text) in run.script  # the stored script is the one that ran, value quoted


def _echo_recipe(make_recipe):
    from jobs.recipes import get

    recipe = get("echo_text")
    if recipe is None:
        forms = make_recipe.forms
        recipe = make_recipe(
            "echo_text",
            lambda p: f"printf '%s' {quote(p['text'])}",
            fields={"text": forms.CharField(strip=False, max_length=2000)},
        )
    return recipe
