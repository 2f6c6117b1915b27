"""Every audit action the code writes is in the catalogue, with a meaning in words.

The static half reads every `record(...)` call in the application's source: a literal name must
be catalogued; a name built at run time is allowed only at the few places listed below, whose
names the catalogue covers as families (`<model>.<verb>`, `run.<state>`, `<change>.refused`).
The dynamic half is `record()` itself, which refuses an uncatalogued name.
"""

import ast
from pathlib import Path

import pytest

from remora_admin.audit.catalogue import ACTIONS, ROW_MODELS, all_actions, groups, meaning
from remora_admin.audit.log import record
from remora_admin.audit.models import AuditEvent

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["hosts", "jobs", "remora_admin"]
# Where a name is built at run time, and from what.
BUILT_NAMES = {
    ("hosts/changes.py", "_action(obj, verb)"),  # <model>.created|updated
    ("hosts/changes.py", "_action(obj, 'deleted')"),
    ("remora_admin/admin_audit.py", "action_name(obj, verb)"),
    ("remora_admin/admin_audit.py", "action_name(user, 'updated')"),
    ("remora_admin/access/grants.py", "f'{action}.refused'"),  # grant, user.create, ...
    ("jobs/states.py", "audit_action or f'run.{to}'"),  # run.<state>
    ("jobs/batches.py", "action"),  # plan.step_<what happened>, each catalogued
    ("jobs/schedules.py", "EVENTS[outcome]"),  # schedule.fired|skipped|refused
    (
        "remora_admin/audit/verification.py",
        "'audit.verified' if broken_at is None else 'audit.chain_broken'",
    ),
    ("jobs/schedules.py", "'schedule.created' if before is None else 'schedule.updated'"),
    ("jobs/launch.py", "'access.denied' if by_policy else 'run.refused'"),
    (
        "remora_admin/lab_demo.py",
        "'credential.created' if existing is None else 'credential.updated'",
    ),
    ("jobs/resolve.py", "'run.kill_on_host_requested' if kill else 'run.check_requested'"),
}


def _record_calls():
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                if name == "record":
                    yield str(path.relative_to(ROOT)), node.lineno, node.args[0]


def test_every_literal_action_in_the_code_is_catalogued():
    calls = list(_record_calls())
    literal = [(f, line, a.value) for f, line, a in calls if isinstance(a, ast.Constant)]
    missing = [f"{f}:{line} {name}" for f, line, name in literal if meaning(name) is None]

    assert len(literal) > 30, "the walk found the record() calls"
    assert missing == [], "add these to remora_admin/audit/catalogue.py"


def test_names_built_at_run_time_only_where_the_catalogue_covers_them():
    built = {(f, ast.unparse(a)) for f, _, a in _record_calls() if not isinstance(a, ast.Constant)}

    assert built <= BUILT_NAMES, f"a new built name: list it here and catalogue it: {built}"


def test_the_families_of_built_names_are_catalogued():
    for verb in ("created", "updated", "deleted"):
        for model in ("host", "service", "zone", "user", "group", "totpdevice"):
            assert meaning(f"{model}.{verb}"), f"{model}.{verb}"
    for state in ("started", "succeeded", "failed", "cancelled", "timed_out", "lost"):
        assert meaning(f"run.{state}"), state
    for change in ("grant", "grant.change", "grant.revoke", "user.create", "user.deactivate"):
        assert meaning(f"{change}.refused"), change


def test_every_meaning_is_a_sentence_of_words():
    for action in all_actions():
        text = meaning(action)
        assert text and len(text) > 8, action
        assert "_" not in text, f"{action}: {text}"


def test_the_review_groups_cover_every_action_once():
    grouped = groups()

    flat = [a for names in grouped.values() for a in names]
    assert sorted(flat) == all_actions()
    assert {"auth", "access", "grant", "run", "host", "user"} <= set(grouped)
    assert set(ROW_MODELS) <= set(grouped)
    assert set(ACTIONS) <= set(flat)


@pytest.mark.django_db
def test_record_refuses_an_uncatalogued_action_and_writes_nothing():
    with pytest.raises(ValueError, match="not in the audit catalogue"):
        record("host.teleported")

    assert not AuditEvent.objects.filter(action="host.teleported").exists()
