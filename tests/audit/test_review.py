"""The review page's filters: each returns exactly the matching events, they combine, they live
in the URL (the next page keeps them, never repeating or skipping an event), htmx gets only the
rows, and a bad filter says so and shows nothing."""

import re
from datetime import UTC, datetime

import pytest
import time_machine

from remora_admin.audit.log import record
from remora_admin.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def shown(response) -> list[int]:
    page = response.content.decode()
    return [int(n) for n in re.findall(r'<tr>\s*<td><a href="/audit/\d+/">(\d+)</a></td>', page)]


@pytest.fixture
def history(topology):
    made = []
    with time_machine.travel(datetime(2026, 11, 20, 12, tzinfo=UTC), tick=False):
        made.append(record("run.requested", actor_name="bob", zone="beamrider",
                           details={"host": "beamrider", "recipe": "mariadb_backup"}))  # fmt: skip
        made.append(record("run.approved", actor_name="alice", zone="beamrider",
                           details={"host": "beamrider"}))  # fmt: skip
    with time_machine.travel(datetime(2026, 11, 28, 12, tzinfo=UTC), tick=False):
        made.append(record("run.requested", actor_name="carol", zone="sunjammer",
                           details={"host": "sunjammer", "recipe": "host_health"}))  # fmt: skip
        made.append(record("access.denied", actor_name="dan", zone="beamrider",
                           details={"reason": "no_role"}))  # fmt: skip
        made.append(record("grant.created", actor_name="bernie", zone="sunjammer",
                           details={"role": "viewer"}))  # fmt: skip
    return {f"{e.action}:{e.actor_name}": e.sequence for e in made}


@pytest.mark.parametrize(
    "query, expected",
    [
        ({"person": "bob"}, ["run.requested:bob"]),
        ({"group": "run"}, ["run.requested:carol", "run.approved:alice", "run.requested:bob"]),
        ({"action": "run.approved"}, ["run.approved:alice"]),
        ({"zone": "beamrider", "group": "run"}, ["run.approved:alice", "run.requested:bob"]),
        ({"host": "sunjammer"}, ["run.requested:carol"]),
        ({"outcome": "refused"}, ["access.denied:dan"]),
        (
            {"since": "2026-11-28"},
            ["grant.created:bernie", "access.denied:dan", "run.requested:carol"],
        ),  # fmt: skip
        ({"until": "2026-11-20"}, ["run.approved:alice", "run.requested:bob"]),
    ],
)
def test_each_filter_returns_exactly_the_matching_events(auditor, history, query, expected):
    response = auditor.get("/audit/", query)
    ours = set(history.values())  # the seed's own events (loading the topology) aside
    assert [n for n in shown(response) if n in ours] == [history[k] for k in expected]
    if "host" in query:  # the others it shows are about that host too (its services)
        for n in set(shown(response)) - ours:
            assert "sunjammer" in AuditEvent.objects.get(sequence=n).target_repr


@pytest.mark.django_db(transaction=True)  # MariaDB's full-text index sees committed rows
@pytest.mark.parametrize(
    "q, expected",
    [
        ("mariadb_back", ["run.requested:bob"]),  # the beginning of a word
        ("MariaDB_Backup", ["run.requested:bob"]),  # any case
        ("host_health", ["run.requested:carol"]),
        ("nothing-like-it", []),
        ("db", ["run.requested:bob"]),  # too short for the index: the rows are read
    ],
)
def test_the_search_finds_the_words_of_targets_and_details(auditor, history, q, expected):
    ours = set(history.values())
    found = [n for n in shown(auditor.get("/audit/", {"q": q})) if n in ours]
    assert found == [history[k] for k in expected]


def test_a_bad_filter_says_so_and_shows_nothing(auditor, history):
    response = auditor.get("/audit/", {"since": "not-a-date"})
    assert shown(response) == []
    assert "Enter a valid date." in response.content.decode()


def test_paging_keeps_the_filters_and_never_repeats_or_skips(auditor, topology):
    for i in range(60):
        record("run.requested", actor_name="bob" if i % 2 else "carol", details={"i": i})
    first = auditor.get("/audit/", {"person": "bob"})
    rows = shown(first)
    assert len(rows) == 30 and all(AuditEvent.objects.get(sequence=n).actor_name == "bob"
                                   for n in rows)  # fmt: skip
    for i in range(5):  # new events arrive while the auditor reads
        record("run.requested", actor_name="bob", details={"late": i})
    assert 'id="audit-more"' not in first.content.decode()  # 30 fit on one page
    all_bob = auditor.get("/audit/", {"group": "run"})
    page_one = shown(all_bob)
    link = re.search(r'href="\?([^"]+)" hx-get', all_bob.content.decode()).group(1)
    assert "group=run" in link
    page_two = shown(auditor.get("/audit/?" + link.replace("&amp;", "&"),
                                 headers={"HX-Request": "true"}))  # fmt: skip
    together = page_one + page_two
    assert len(together) == len(set(together)) == 65
    assert together == sorted(together, reverse=True)


def test_htmx_gets_only_the_rows(auditor, history):
    response = auditor.get("/audit/", {"person": "bob"}, headers={"HX-Request": "true"})
    assert "<html" not in response.content.decode()
    assert shown(response) == [history["run.requested:bob"]]
