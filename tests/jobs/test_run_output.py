"""What a run stores of its output: in order, streams apart, byte-exact, capped as documented."""

import hashlib

import pytest
from django.test import override_settings

from jobs.models import RunState

from .conftest import output_of

pytestmark = pytest.mark.django_db


def test_output_arrives_in_order_and_in_several_pieces(lab_host, carol, make_recipe, run_now):
    recipe = make_recipe(
        "count_lines",
        lambda p: (
            'for i in $(seq 1 400); do echo "line $i"; '
            "if [ $((i % 100)) -eq 0 ]; then sleep 0.3; fi; done"
        ),
    )

    [run] = run_now(carol, recipe, [lab_host])

    expected = "".join(f"line {i}\n" for i in range(1, 401)).encode()
    assert run.state == RunState.SUCCEEDED, run.error
    assert output_of(run, "out") == expected
    assert run.chunks.count() > 1  # it streamed rather than arriving at the end
    assert run.output_bytes == len(expected)


def test_stdout_and_stderr_are_kept_apart(lab_host, carol, make_recipe, run_now):
    recipe = make_recipe("two_streams", lambda p: "echo to-out; echo to-err >&2; echo more-out")

    [run] = run_now(carol, recipe, [lab_host])

    assert output_of(run, "out") == b"to-out\nmore-out\n"
    assert output_of(run, "err") == b"to-err\n"


def test_fifty_mebibytes_are_stored_byte_exact(lab_host, carol, make_recipe, run_now, tmp_path):
    blob = tmp_path / "blob"
    recipe = make_recipe(
        "big_output",
        lambda p: f"head -c 52428800 /dev/urandom > {blob}; sha256sum {blob} >&2; cat {blob}",
        timeout=300,
    )

    [run] = run_now(carol, recipe, [lab_host])

    assert run.state == RunState.SUCCEEDED, run.error
    stored = output_of(run, "out")
    remote_sha = output_of(run, "err").split()[0].decode()
    assert len(stored) == 52428800
    assert hashlib.sha256(stored).hexdigest() == remote_sha
    assert run.discarded_bytes == 0


@override_settings(REMORA_RUN_OUTPUT_LIMIT=1_000_000)
def test_output_past_the_limit_is_counted_not_kept_and_a_notice_says_so(
    lab_host, carol, make_recipe, run_now
):
    recipe = make_recipe("too_much", lambda p: "head -c 3000000 /dev/zero | tr '\\0' a")

    [run] = run_now(carol, recipe, [lab_host])

    assert run.state == RunState.SUCCEEDED, run.error
    assert output_of(run, "out") == b"a" * 1_000_000
    assert run.output_bytes == 1_000_000
    assert run.discarded_bytes == 2_000_000
    notice = output_of(run, "note").decode()
    assert "the first 1000000 bytes are kept; 2000000 more bytes were discarded" in notice


def test_a_non_zero_exit_fails_the_run_and_says_the_status(lab_host, carol, make_recipe, run_now):
    recipe = make_recipe("exit_three", lambda p: "echo before; exit 3")

    [run] = run_now(carol, recipe, [lab_host])

    assert run.state == RunState.FAILED
    assert run.exit_code == 3
    assert run.error == "exit status 3"
    assert output_of(run) == b"before\n"


def test_a_dry_run_checks_syntax_without_running_anything(
    lab_host, carol, make_recipe, run_now, tmp_path
):
    marker = tmp_path / "ran"
    good = make_recipe("touch_marker", lambda p: f"touch {marker}")
    bad = make_recipe("broken_syntax", lambda p: "if then fi")

    [checked] = run_now(carol, good, [lab_host], dry_run=True)
    [broken] = run_now(carol, bad, [lab_host], dry_run=True)

    assert checked.state == RunState.SUCCEEDED, checked.error
    assert not marker.exists()
    assert broken.state == RunState.FAILED
    assert broken.exit_code == 2
    assert b"syntax error" in output_of(broken, "err")
