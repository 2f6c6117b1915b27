"""Odd query parameters never make a page answer 5xx.

Every page that reads request.GET (grep it across hosts/, jobs/, remora_admin/) is asked, as a
verified superuser in sudo mode (so no check stops the request before the parameter is read),
with values people and scanners really send: digits that only Unicode calls digits, numbers
beyond any column, negative numbers, NUL bytes, very long text, random text, several values.
"""

import os
import string
import uuid

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hosts.models import Host
from jobs.models import JobRun, OutputChunk, RunState
from remora_admin.audit_views import parse_sequence
from tests.access.helpers import PASSWORD, User, authenticator, sign_in

pytestmark = pytest.mark.django_db

# --- Odd values ---------------------------------------------------------------------------------

UNICODE_DIGITS = ["²", "³", "¹", "٣", "۴", "१२", "໒", "１２", "𝟗", "⑦", "½", "Ⅻ", "〇"]
TRICKY = [
    "",
    " ",
    "0",
    "-0",
    "+5",
    " 5",
    "5 ",
    "1e9",
    "0x10",
    "NaN",
    "inf",
    "-1",
    "1.5",
    "true",
    "\x00",
    "a\x00b",
    "%00",
    "../../etc/passwd",
    "//evil.example.org/",
    "https://evil.example.org/",
    "javascript:alert(1)",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "🦈",
    "\u202e",
    "\ufeff1",
    str(uuid.uuid4()),
    str(2**63 - 1),
    str(2**63),
    str(2**64),
    "9" * 400,
]

numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=2**31 - 2, max_value=2**31 + 2),
    st.integers(min_value=2**63 - 2, max_value=2**64 + 2),
).map(str)
unicode_digits = st.one_of(
    st.sampled_from(UNICODE_DIGITS),
    st.text(st.characters(categories=["Nd", "No", "Nl"]), min_size=1, max_size=12),
)
random_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
with_nul = st.builds(lambda a, b: f"{a}\x00{b}", random_text, random_text)
very_long = st.builds(
    lambda c, n: c * n, st.sampled_from(["a", "9", "é", "\x00", "𝟗"]), st.integers(1000, 20000)
)
ascii_junk = st.text(string.printable, max_size=60)
one_value = st.one_of(
    st.sampled_from(TRICKY), numbers, unicode_digits, random_text, with_nul, very_long, ascii_junk
)
# A parameter is sent once, or several times (?zone=a&zone=b), or not at all.
param_value = st.one_of(one_value, st.lists(one_value, min_size=2, max_size=3))


def query(names: list[str]):
    return st.dictionaries(st.sampled_from(names), param_value, max_size=len(names))


# --- The pages ------------------------------------------------------------------------------------

# (URL, the GET parameters it reads or might). "{run}" is a run's pk.
PAGES = [
    ("/hosts/", ["zone"]),
    ("/runs/", ["host", "recipe", "state", "person", "batch"]),
    ("/hosts/beamrider/launch/", ["recipe"]),
    ("/runs/{run}/output/", ["after"]),
    ("/runs/{run}/", ["after"]),
    ("/audit/", ["before"]),
    ("/access/grants/new/", ["user", "zone"]),
    ("/access/people/", ["zone", "user", "page"]),
    ("/access/", ["zone", "format"]),
    ("/access/report.csv", ["zone", "format"]),
    ("/access/two-factor/", ["replace", "required", "next"]),
    ("/access/two-factor/verify/", ["next"]),
    ("/access/confirm-password/", ["next"]),
    ("/login/", ["next"]),
    ("/admin/login/", ["next"]),
    ("/admin/auth/user/", ["q", "p", "o", "is_staff__exact", "all"]),
    ("/", ["zone", "next"]),
]
# Per page; ODD_PARAMETER_EXAMPLES=500 for a longer hunt.
EXAMPLES = int(os.environ.get("ODD_PARAMETER_EXAMPLES", "12"))


@pytest.fixture
def superuser(topology):
    user = User.objects.create_superuser("bernie", "bernie@example.org", PASSWORD)
    authenticator(user)
    return user


@pytest.fixture
def run_pk(superuser) -> int:
    run = JobRun.objects.create(
        batch=uuid.uuid4(),
        recipe="host_health",
        script="uptime",
        host=Host.objects.get(name="beamrider"),
        timeout=60,
        requested_by=superuser,
        state=RunState.RUNNING,
    )
    OutputChunk.objects.create(run=run, offset=0, stream="out", data=b"first\n")
    return run.pk


@pytest.fixture
def client(superuser) -> Client:
    return sign_in(superuser, verified=True, sudo=True)


def _ask(client: Client, url: str, params: dict, htmx: bool):
    headers = {"HX-Request": "true"} if htmx else {}
    response = client.get(url, params, headers=headers)
    shown = {
        k: (v if len(str(v)) < 80 else f"{str(v)[:80]}... ({len(str(v))} chars)")
        for k, v in params.items()
    }
    assert response.status_code < 500, (
        f"GET {url} {shown!r} (htmx={htmx}) answered {response.status_code}"
    )


@pytest.mark.parametrize(("url", "names"), PAGES, ids=[url for url, _ in PAGES])
def test_odd_query_parameters_never_cause_a_server_error(client, run_pk, url, names):
    url = url.format(run=run_pk)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(params=query(names), htmx=st.booleans())
    def check(params, htmx):
        _ask(client, url, params, htmx)

    check()


@pytest.mark.parametrize("url", [url for url, _ in PAGES])
@pytest.mark.parametrize("value", ["²", "\x00", "9" * 40, "-1", ["1", "²"]])
def test_the_known_troublemakers_on_every_page(client, run_pk, url, value):
    """The values that broke pages before, on every parameter of every page, every run."""
    names = dict(PAGES)[url]
    _ask(client, url.format(run=run_pk), dict.fromkeys(names, value), htmx=False)


# --- The audit page's `before` ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("10", 10),
        ("0", 0),
        ("007", 7),
        ("", None),
        ("²", None),
        ("١٢", None),
        ("-1", None),
        ("+1", None),
        (" 1", None),
        ("1\x00", None),
        (str(2**63 - 1), 2**63 - 1),
        (str(2**63), None),
        ("9" * 400, None),
    ],
)
def test_the_audit_page_reads_before_as_ascii_digits_within_the_column(raw, parsed):
    assert parse_sequence(raw) == parsed
