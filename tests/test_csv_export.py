"""CSV exports neutralise formula-like cells (OWASP CSV injection), through one writer."""

import csv
import io
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.urls import reverse

from remora_admin.access.models import Role
from remora_admin.audit.export import FORMULA_STARTS, csv_writer, neutralise
from tests.access.helpers import PASSWORD, User, authenticator, give, make_user, sign_in

BASE_DIR = Path(__file__).resolve().parent.parent
WRITER_MODULE = BASE_DIR / "remora_admin" / "audit" / "export.py"


def _written(row) -> list[str]:
    out = io.StringIO()
    csv_writer(out).writerow(row)
    return next(csv.reader(io.StringIO(out.getvalue())))


# --- The writer -------------------------------------------------------------------------------


@pytest.mark.parametrize("first", ["=", "+", "-", "@", "\t", "\r"])
def test_a_cell_starting_with_a_formula_character_is_written_as_text(first):
    cell = f'{first}HYPERLINK("http://x")'

    assert _written(["host", cell]) == ["host", "'" + cell]


def test_every_dangerous_first_character_is_covered():
    assert set(FORMULA_STARTS) == {"=", "+", "-", "@", "\t", "\r"}


@pytest.mark.parametrize(
    "cell",
    ["beamrider", "", "a=b", "x-1", "mail me@example.org", " leading space", "'quoted", "1+1"],
)
def test_ordinary_text_is_written_unchanged(cell):
    assert _written([cell]) == [cell]


def test_numbers_are_written_as_numbers_and_negative_looking_text_is_neutralised():
    assert _written([3, -5, 2.5, -0.5, Decimal("-1.20"), True, None]) == [
        "3",
        "-5",
        "2.5",
        "-0.5",
        "-1.20",
        "True",
        "",
    ]
    # The same text typed by a person (a reason, a name) could be "-2+3" or "-1+cmd|...".
    assert _written(["-5", "-2+3"]) == ["'-5", "'-2+3"]
    assert neutralise("+41 79 000 00 00") == "'+41 79 000 00 00"


def test_writerows_and_quoting_of_embedded_separators():
    out = io.StringIO()
    csv_writer(out).writerows([["a,b", '=1,"2"'], ["@x", "ok"]])

    assert list(csv.reader(io.StringIO(out.getvalue()))) == [
        ["a,b", '\'=1,"2"'],
        ["'@x", "ok"],
    ]


# --- End to end: the access report ------------------------------------------------------------


@pytest.fixture
def bernie(topology):
    """The lead admin, a superuser with an authenticator (the access tests' bernie)."""
    user = User.objects.create_superuser("bernie", "bernie@example.org", PASSWORD)
    authenticator(user)
    return user


def _export(client) -> list[dict[str, str]]:
    response = client.get(reverse("access_report_csv"))
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def _no_cell_is_a_formula(rows: list[dict[str, str]]) -> None:
    for row in rows:
        for value in row.values():
            assert not value.startswith(FORMULA_STARTS), row


def test_a_formula_in_a_grant_reason_comes_out_of_the_access_report_neutralised(bernie):
    grant = give(make_user("mallory"), Role.VIEWER, "sunjammer", by=bernie)
    grant.reason = '=HYPERLINK("http://x")'
    grant.save()

    rows = _export(sign_in(bernie, verified=True))

    mallory = [r for r in rows if r["person"] == "mallory"]
    assert mallory, "mallory's grant is in the export"
    assert all('=HYPERLINK("http://x")' in r["grants"] for r in mallory)
    _no_cell_is_a_formula(rows)


def test_a_formula_like_user_name_comes_out_of_the_access_report_neutralised(bernie):
    """Django allows user names such as "-2+3" or "+1+1" (letters, digits and @.+-_); in the
    export they start their cell, where a spreadsheet would evaluate them."""
    for name in ("-2+3", "+1+1", "@sum"):
        give(make_user(name), Role.VIEWER, "sunjammer", by=bernie)

    rows = _export(sign_in(bernie, verified=True))

    people = {r["person"] for r in rows}
    assert {"'-2+3", "'+1+1", "'@sum"} <= people
    _no_cell_is_a_formula(rows)


# --- One writer for every export --------------------------------------------------------------

_SKIP = {".venv", "var", "tests", ".git", "node_modules", "static", "templates"}
_RAW_WRITER = re.compile(
    r"\bcsv\s*\.\s*(writer|DictWriter)\s*\(|from\s+csv\s+import\s+[^\n]*\b(writer|DictWriter)\b"
)


def _python_sources():
    for path in BASE_DIR.rglob("*.py"):
        parts = path.relative_to(BASE_DIR).parts
        if parts[0] in _SKIP or parts[0].startswith(".") or parts[0].endswith(".egg-info"):
            continue
        yield path


def test_no_module_but_the_export_module_writes_csv_itself():
    sources = list(_python_sources())
    assert WRITER_MODULE in sources and len(sources) > 50, "the scan sees the source tree"
    offenders = [
        f"{path.relative_to(BASE_DIR)}:{text.count(chr(10), 0, match.start()) + 1}"
        for path in sources
        if path != WRITER_MODULE
        for text in [path.read_text(encoding="utf-8")]
        for match in _RAW_WRITER.finditer(text)
    ]
    assert offenders == [], (
        "Use remora_admin.audit.export.csv_writer (it neutralises formula cells), not "
        f"csv.writer: {offenders}"
    )
