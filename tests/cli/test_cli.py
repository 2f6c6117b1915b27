"""The `remora` command line, end to end: the installed script as a subprocess, talking HTTP to
a live console (its API, policy and database), with a real worker running jobs over SSH on a
loopback sshd. Nothing is mocked."""

import csv
import io
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from hosts.models import Host
from jobs.models import JobRun, RunState
from remora_admin.access import tokens
from remora_admin.access.models import ApiToken
from remora_admin.audit.models import AuditEvent

from .conftest import token_for

pytestmark = pytest.mark.django_db(transaction=True)

CONSOLE_PACKAGES = {"django", "rest_framework", "remora_admin", "hosts", "jobs", "lab"}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _line(stream, seconds: float = 90.0) -> bytes:
    """The next line of a process's stdout or stderr. (The limit only keeps a broken CLI from
    hanging the suite; nothing is asserted about how long it took.)"""
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(seconds)
    assert got, "no line came while the run was still going: the CLI does not stream"
    return got[0]


def _gated(gate) -> str:
    """A command that prints, waits until the test opens the gate (a file), then prints."""
    return (
        "echo first-line; "
        f"for i in $(seq 1 600); do [ -e {gate} ] && break; sleep 0.1; done; "
        "echo second-line"
    )


def _follow_gated(start_remora, user, gate):
    """`remora run adhoc --follow` of a gated command on sunjammer, as a live process."""
    return start_remora(
        "run", "adhoc", "--host", "sunjammer", "-p", f"command={_gated(gate)}",
        "-p", "changes_host=false", "--follow", token=token_for(user),
    )  # fmt: skip


# --- The client is only a client -------------------------------------------------------------


def test_the_cli_imports_nothing_of_the_console():
    code = "import sys, remora_cli.main; print(' '.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {name.split(".")[0] for name in done.stdout.split()}
    assert "remora_cli" in loaded
    assert not loaded & CONSOLE_PACKAGES
    assert "requests" not in loaded  # standard library HTTP only


# --- Signing in -------------------------------------------------------------------------------


def test_login_checks_the_token_and_keeps_it_readable_by_its_owner_only(
    remora, console, home, carol
):
    raw = token_for(carol)

    done = remora("login", "--url", console, "--token-stdin", input=raw + "\n", url="")

    assert done.returncode == 0, done.stderr
    assert "as carol" in done.stdout
    path = home / "config" / "remora" / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text()) == {"url": console, "token": raw}
    assert raw not in done.stdout + done.stderr

    # Later commands use the stored login (no REMORA_URL, no REMORA_TOKEN).
    me = remora("whoami", url="")
    assert me.returncode == 0, me.stderr
    assert "carol" in me.stdout
    assert f"token from:    {path}" in me.stdout
    assert raw not in me.stdout

    out = remora("logout", url="")
    assert out.returncode == 0, out.stderr
    assert not path.exists()
    after = remora("hosts", url="")
    assert after.returncode == 1
    assert after.stderr.strip() == "remora: not signed in: run `remora login` (or set REMORA_TOKEN)"


def test_login_with_a_token_the_console_refuses_stores_nothing(remora, console, home, carol):
    done = remora("login", "--url", console, "--token-stdin", input="rma_not-a-real-one\n")

    assert done.returncode == 1
    assert "This token is not known" in done.stderr
    assert "rma_not-a-real-one" not in done.stdout + done.stderr
    assert not (home / "config" / "remora" / "config.json").exists()


def test_logout_revoke_revokes_the_token_on_the_console(remora, console, carol):
    raw = token_for(carol)
    assert remora("login", "--token-stdin", input=raw + "\n").returncode == 0

    done = remora("logout", "--revoke", url="")

    assert done.returncode == 0, done.stderr
    assert ApiToken.objects.get(user=carol).revoked_at is not None


def test_without_a_token_it_says_how_to_sign_in(remora, topology):
    done = remora("runs")

    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == "remora: not signed in: run `remora login` (or set REMORA_TOKEN)\n"


def test_an_expired_token_gets_the_servers_reason(remora, carol):
    raw = token_for(carol)
    ApiToken.objects.filter(user=carol).update(expires_at=timezone.now() - timedelta(hours=1))

    done = remora("hosts", token=raw)

    assert done.returncode == 1
    assert done.stderr.startswith("remora: the server refused the token: This token expired on ")
    assert "`remora login` again" in done.stderr
    assert raw not in done.stderr


def test_a_revoked_token_gets_the_servers_reason(remora, carol):
    raw = token_for(carol)
    tokens.revoke(carol, ApiToken.objects.get(user=carol))

    done = remora("hosts", token=raw)

    assert done.returncode == 1
    assert done.stderr.startswith("remora: the server refused the token: This token was revoked")
    assert raw not in done.stderr


def test_the_environment_overrides_the_stored_login(remora, console, carol, dan):
    assert remora("login", "--token-stdin", input=token_for(carol) + "\n").returncode == 0

    done = remora("whoami", token=token_for(dan))

    assert done.returncode == 0, done.stderr
    assert "user:          dan" in done.stdout
    assert "token from:    REMORA_TOKEN" in done.stdout


# --- Talking to the server --------------------------------------------------------------------


def test_an_unreachable_console_is_named_with_the_os_error(remora, carol):
    url = f"http://127.0.0.1:{_closed_port()}"

    done = remora("hosts", token=token_for(carol), url=url)

    assert done.returncode == 1
    assert done.stderr == f"remora: cannot reach {url}: Connection refused\n"


def test_an_answer_that_is_not_json_says_its_status_and_first_line(remora, console, carol):
    done = remora("hosts", token=token_for(carol), url=f"{console}/not-the-console")

    assert done.returncode == 1
    assert done.stderr.startswith("remora: GET /api/hosts/ answered 404 Not Found, not JSON: ")
    assert len(done.stderr.splitlines()) == 1


def test_a_usage_error_exits_2(remora, carol):
    done = remora("run", "host_health", token=token_for(carol))  # no --host

    assert done.returncode == 2
    assert "--host" in done.stderr


# --- Inventory and runs, as a person reads them ----------------------------------------------


def test_hosts_recipes_and_plan_in_plain_columns(remora, carol, sunjammer):
    raw = token_for(carol)

    hosts = remora("hosts", token=raw)
    recipes = remora("recipes", "--host", "sunjammer", token=raw)
    plan = remora("plan", token=raw)

    assert hosts.returncode == recipes.returncode == plan.returncode == 0
    header, row = hosts.stdout.splitlines()
    assert header.split() == ["HOST", "ZONE", "SSH", "ACTIVE", "KEY", "SERVICES"]
    assert row.split()[:2] == ["sunjammer", "sunjammer"]
    assert row.index("sunjammer", 1) == header.index("ZONE")  # aligned
    assert "beamrider" not in hosts.stdout  # carol may not see it
    assert any(line.startswith("host_health ") for line in recipes.stdout.splitlines())
    assert "    -p lines=NUMBER  required; 1..5000; default 100" in recipes.stdout
    assert "adhoc" not in recipes.stdout  # not hers to launch
    assert plan.stdout.startswith("Plan: phase 1 -> phase 2\n")
    assert "php_frontend on sunjammer" in plan.stdout
    assert "steps on hosts you may not see" in plan.stdout


def test_json_prints_the_apis_document(remora, carol, sunjammer):
    raw = token_for(carol)

    hosts = remora("--json", "hosts", token=raw)
    runs = remora("runs", "--json", token=raw)
    me = remora("whoami", "--json", token=raw)

    assert [h["name"] for h in json.loads(hosts.stdout)] == ["sunjammer"]
    assert json.loads(runs.stdout) == {"results": []}
    assert json.loads(me.stdout)["username"] == "carol"


def test_run_follow_prints_the_output_as_it_arrives(
    start_remora, bernie, sunjammer, worker, tmp_path
):
    gate = tmp_path / "gate"
    process = _follow_gated(start_remora, bernie, gate)

    first = _line(process.stdout)
    run = JobRun.objects.get(recipe="adhoc")
    state_meanwhile = run.state
    gate.touch()
    rest, err = process.communicate(timeout=120)

    assert first == b"first-line\n"
    assert state_meanwhile == RunState.RUNNING  # the first line came while the run went on
    assert rest == b"second-line\n"
    assert process.returncode == 0
    assert f"run {run.pk} on sunjammer: queued".encode() in err  # ids on stderr, not stdout
    run.refresh_from_db()
    assert run.state == RunState.SUCCEEDED


def test_host_health_follow_exits_0_with_the_report(remora, carol, sunjammer, worker):
    done = remora("run", "host_health", "--host", "sunjammer", "--follow", token=token_for(carol))

    assert done.returncode == 0, done.stderr
    assert "== uptime and load" in done.stdout
    assert "== memory" in done.stdout
    assert JobRun.objects.get().state == RunState.SUCCEEDED


def test_a_failing_run_exits_with_its_exit_code(remora, bernie, sunjammer, worker):
    done = remora(
        "run",
        "adhoc",
        "--host",
        "sunjammer",
        "-p",
        "command=echo oops; exit 7",
        "--follow",
        token=token_for(bernie),
    )

    run = JobRun.objects.get()
    assert done.returncode == 7
    assert done.stdout == "oops\n"
    assert f"remora: run {run.pk} on sunjammer failed (exit 7)" in done.stderr


def test_json_with_follow_prints_the_finished_runs(remora, bernie, sunjammer, worker):
    done = remora(
        "run", "adhoc", "--host", "sunjammer", "-p", "command=echo quiet; exit 3", "--follow",
        "--json", token=token_for(bernie),
    )  # fmt: skip

    [run] = json.loads(done.stdout)
    assert done.returncode == 3
    assert (run["state"], run["exit_code"], run["host"]) == ("failed", 3, "sunjammer")
    assert "script" in run


def test_several_hosts_are_followed_in_turn_with_their_names_and_the_worst_status(
    remora, bernie, sunjammer, make_sshd, worker
):
    other = make_sshd()
    Host.objects.create(
        name="sunjammer2",
        zone=sunjammer.zone,
        credential=sunjammer.credential,
        address=other.address,
        ssh_port=other.port,
        ssh_user=other.user,
        host_key=other.host_public_key,
        host_key_fingerprint=sunjammer.host_key_fingerprint,
    )
    # Each host says which address it was reached on; only the second one fails.
    command = (
        "at=$(echo $SSH_CONNECTION | cut -d' ' -f3); echo reached $at; "
        f'[ "$at" = {sunjammer.address} ] || exit 4'
    )

    done = remora(
        "run",
        "adhoc",
        "--host",
        "sunjammer",
        "--host",
        "sunjammer2",
        "-p",
        f"command={command}",
        "-p",
        "changes_host=false",
        "--follow",
        token=token_for(bernie),
    )

    assert done.stdout == (
        f"sunjammer: reached {sunjammer.address}\nsunjammer2: reached {other.address}\n"
    )
    assert done.returncode == 4
    assert "on sunjammer2 failed (exit 4)" in done.stderr


def test_ctrl_c_stops_following_and_leaves_the_run_alone(
    start_remora, bernie, sunjammer, worker, tmp_path
):
    gate = tmp_path / "gate"
    process = _follow_gated(start_remora, bernie, gate)
    assert _line(process.stdout) == b"first-line\n"

    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)

    run = JobRun.objects.get()
    assert process.returncode == 130
    assert f"remora cancel {run.pk}".encode() in err
    assert run.state == RunState.RUNNING  # still going: following stopped, not the run
    gate.touch()


def test_show_gives_the_run_with_its_script(remora, bernie, sunjammer, worker):
    raw = token_for(bernie)
    remora("run", "adhoc", "--host", "sunjammer", "-p", "command=echo shown", "--follow", token=raw)
    run = JobRun.objects.get()

    done = remora("show", str(run.pk), "--output", token=raw)
    listed = remora("runs", "--mine", "--state", "succeeded", token=raw)

    assert done.returncode == 0, done.stderr
    assert "state:        succeeded" in done.stdout
    assert "script:\n" in done.stdout
    assert "\n    echo shown\n" in done.stdout.split("script:\n")[1]
    assert done.stdout.endswith("output:\nshown\n")
    assert listed.stdout.splitlines()[1].split()[:1] == [str(run.pk)]


# --- Refusals ---------------------------------------------------------------------------------


def test_a_read_only_token_may_not_run(remora, carol, sunjammer):
    done = remora("run", "host_health", "--host", "sunjammer", token=token_for(carol, "read"))

    assert done.returncode == 1
    assert done.stderr.startswith("remora: This token may only read.")
    assert not JobRun.objects.exists()


def test_a_launch_the_policy_refuses_says_why_and_exits_1(remora, dan, sunjammer):
    done = remora("run", "host_health", "--host", "sunjammer", token=token_for(dan))

    assert done.returncode == 1
    assert done.stderr == (
        "remora: not allowed: You need the operator role in sunjammer to launch jobs. "
        "Ask a zone admin of sunjammer.\n"
    )
    assert not JobRun.objects.exists()


def test_a_refused_launch_names_each_host_and_its_reason(remora, carol, sunjammer):
    Host.objects.create(name="spare", address="spare.example.org", zone=sunjammer.zone)

    raw = token_for(carol)
    together = remora("run", "host_health", "--host", "sunjammer", "--host", "spare",
                      "--all-or-nothing", token=raw)  # fmt: skip

    assert together.returncode == 1
    assert "spare has no SSH credential" in together.stderr
    assert "spare's host key is not trusted yet" in together.stderr
    assert not JobRun.objects.exists()

    # A check runs on each host it may by default: spare is refused, sunjammer runs.
    alone = remora("run", "host_health", "--host", "sunjammer", "--host", "spare", token=raw)

    assert alone.returncode == 1
    assert "refused on spare: spare has no SSH credential" in alone.stderr
    assert [r.host.name for r in JobRun.objects.all()] == ["sunjammer"]


def test_an_invalid_parameter_is_named(remora, carol, sunjammer):
    done = remora(
        "run",
        "tail_log",
        "--host",
        "sunjammer",
        "-p",
        "log=syslog",
        "-p",
        "lines=0",
        token=token_for(carol),
    )

    assert done.returncode == 1
    assert done.stderr == (
        "remora: invalid parameters on sunjammer:\n"
        "  lines: Ensure this value is greater than or equal to 1.\n"
    )


def test_a_run_waiting_for_approval_is_waited_for_until_a_second_person_decides(
    remora, start_remora, alice, bernie, make_recipe, topology, sshd_host, sunjammer
):
    from jobs.recipes import Category

    make_recipe("cli_provision", lambda p: "true", category=Category.PROVISION)
    beamrider = Host.objects.get(name="beamrider")
    credential = sunjammer.credential
    credential.pk, credential.name, credential.zone = None, "beamrider-key", beamrider.zone
    credential.save()
    Host.objects.filter(pk=beamrider.pk).update(
        address=sshd_host.address,
        ssh_port=sshd_host.port,
        credential=credential,
        host_key=sunjammer.host_key,
        host_key_fingerprint=sunjammer.host_key_fingerprint,
    )
    for person in (alice, bernie):  # restricted-zone tokens come from verified sessions
        person.is_verified = lambda: True
    own = tokens.create(alice, name="a", scope="act", lifetime=timedelta(hours=1), restricted=True)[
        1
    ]
    second = tokens.create(
        bernie, name="b", scope="act", lifetime=timedelta(hours=1), restricted=True
    )[1]

    follower = start_remora("run", "cli_provision", "--host", "beamrider", "--follow", token=own)
    said = _line(follower.stderr) + _line(follower.stderr)
    run = JobRun.objects.get()
    mine = remora("approve", str(run.pk), "--reason", "me", token=own)
    rejected = remora("reject", str(run.pk), "--reason", "not tonight", token=second)
    out, err = follower.communicate(timeout=120)

    assert b"waiting for approval by a second person" in said
    assert mine.returncode == 1
    assert "cannot approve or reject your own run" in mine.stderr
    assert rejected.returncode == 0, rejected.stderr
    assert rejected.stdout.startswith(f"Rejected. run {run.pk} on beamrider: rejected")
    assert follower.returncode == 1
    assert f"run {run.pk} on beamrider rejected".encode() in err


# --- The audit log ----------------------------------------------------------------------------


def test_audit_export_csv_of_a_host_since_7_days(remora, carol, ivan, sunjammer, redis_conn):
    assert (
        remora("run", "host_health", "--host", "sunjammer", token=token_for(carol)).returncode == 0
    )
    raw = token_for(ivan, "read")

    done = remora("audit", "--since", "7d", "--host", "sunjammer", "--export", "csv", token=raw)

    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(io.StringIO(done.stdout)))
    header, body = rows[0], rows[1:]
    assert "action" in header
    actions = {row[header.index("action")] for row in body}
    assert "run.requested" in actions
    assert all(row[header.index("zone")] == "sunjammer" for row in body)
    assert AuditEvent.objects.filter(action__contains="export", actor_name="ivan").exists()


def test_audit_export_to_a_file_and_the_listing(remora, home, carol, ivan, sunjammer, redis_conn):
    remora("run", "host_health", "--host", "sunjammer", token=token_for(carol))
    raw = token_for(ivan, "read")
    target = home / "events.csv"

    exported = remora("audit", "--export", "csv", "-o", str(target), token=raw)
    listed = remora("audit", "--host", "sunjammer", "--action", "run.requested", token=raw)
    as_json = remora("audit", "--limit", "2", "--json", token=raw)
    as_lines = remora("audit", "--export", "jsonl", "--host", "sunjammer", token=raw)
    bad = remora("audit", "--since", "last tuesday", token=raw)

    assert exported.returncode == 0, exported.stderr
    assert exported.stdout == ""
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert any(row["action"] == "run.requested" for row in rows)
    header, first = listed.stdout.splitlines()[:2]
    assert header.split() == ["SEQ", "WHEN", "WHO", "ACTION", "TARGET", "ZONE", "HOST"]
    assert first.split()[3:5] == ["carol", "run.requested"]
    assert len(json.loads(as_json.stdout)["results"]) == 2
    assert as_lines.returncode == 0, as_lines.stderr
    events = [json.loads(line) for line in as_lines.stdout.splitlines()]
    assert events and all(e["zone"] == "sunjammer" for e in events)
    assert any(e["action"] == "run.requested" for e in events)
    assert bad.returncode == 2
    assert "give a date (2026-12-01), 'today', or days/weeks ago (7d, 2w)" in bad.stderr


# --- The growth plan --------------------------------------------------------------------------


def test_plan_apply_sends_the_defaults_and_prints_each_reason_it_is_refused(
    remora, carol, sunjammer
):
    done = remora(
        "plan", "apply", "--input", "app_password=s3cret", "--input",
        "repo_url=https://git.example.org/remora.git",
        token=token_for(carol),
    )  # fmt: skip

    assert done.returncode == 1
    assert done.stderr.startswith("remora: refused:\n  ")
    assert "Step 5 (Provision the PHP front end on sunjammer): You need the zone admin role in " \
        "sunjammer" in done.stderr  # fmt: skip
    assert "Git ref" not in done.stderr  # its default (main) was sent, as the form offers it
    assert "s3cret" not in done.stdout + done.stderr


def test_workers_lists_the_live_worker_and_refuses_an_operator_in_words(
    remora, ivan, carol, worker
):
    import socket as _socket

    shown = remora("workers", token=token_for(ivan, scope="read"))
    refused = remora("workers", token=token_for(carol))

    assert shown.returncode == 0, shown.stderr
    header, *rows, summary = shown.stdout.splitlines()
    assert header.split() == ["WORKER", "STATE", "RUN", "UP", "SINCE", "LAST", "HEARD"]
    assert any(row.startswith(f"{_socket.gethostname()}:") and " idle " in row for row in rows)
    assert summary.startswith(f"{len(rows)} alive; 0 queued;")
    assert refused.returncode == 1
    assert "auditor role to read every run" in refused.stderr
