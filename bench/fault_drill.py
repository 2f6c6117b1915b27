"""Fault drill: a dead worker, one host's line and throughput, in numbers (bench/README.md).

Two real `remora_worker`s, a real `remora_ticker`, five hosts on one sshd of its own (127.0.0.61),
REMORA_RUN_HEARTBEAT_TIMEOUT=5: 1. kill -> lost, 2. lost -> resolved (and the next run's wait on
the host-side lock), 3. lock hand-over between runs on one host beside the same runs on 5 hosts,
4. throughput of 60 short runs with one and two workers. Database `remora_bench_faults`
(recreated each run), Redis db 14.
Run: .venv/bin/python bench/fault_drill.py [--runs 60] [--sleep 5] [--user NAME]
"""

import argparse
import contextlib
import getpass
import itertools
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB = "remora_bench_faults"
REDIS_URL = "redis://127.0.0.1:6379/14"
ADDRESS = "127.0.0.61"
PROCS: list[subprocess.Popen] = []  # every process started here, stopped at the end


def start_sshd(work: Path, account: str):
    from tests.fixtures.sshd import SshdHost, generate_ed25519_key

    host_key, client_key = work / "host_key", work / "client_key"
    host_public = generate_ed25519_key(host_key, "drill-host")
    (work / "authorized_keys").write_text(generate_ed25519_key(client_key, "drill") + "\n")
    work.chmod(0o755)  # sshd reads authorized_keys as the account logging in
    with contextlib.suppress(PermissionError):
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    with socket.socket() as s:
        s.bind((ADDRESS, 0))
        port = s.getsockname()[1]
    sshd = SshdHost(ADDRESS, port, account, host_key, host_public, client_key, work)
    sshd.start()
    return sshd


def setup(args, sshd):
    """A fresh database and Redis db; five hosts on the sshd, and a superuser."""
    import pymysql

    with pymysql.connect(host="127.0.0.1", user="root", password="") as conn:
        conn.cursor().execute(f"DROP DATABASE IF EXISTS {DB}")
        conn.cursor().execute(f"CREATE DATABASE {DB} CHARACTER SET utf8mb4")
    os.environ.update(
        DATABASE_URL=f"mysql://root:@127.0.0.1:3306/{DB}", REDIS_URL=REDIS_URL, DEBUG="true",
        DJANGO_SETTINGS_MODULE="remora_admin.settings", LOG_LEVEL="WARNING",
        REMORA_RUN_HEARTBEAT_TIMEOUT=str(args.heartbeat_timeout), REMORA_AUDIT_SINK="none",
    )  # fmt: skip
    import django

    django.setup()
    import django_rq
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    django_rq.get_connection("default").flushdb()
    from django.contrib.auth import get_user_model

    from hosts.credentials import encrypt, fingerprint, parse_private_key
    from hosts.models import Credential, Host
    from remora_admin.access.models import Zone

    zone = Zone.objects.create(name="drill")
    private, kind, public = parse_private_key(sshd.client_key_path.read_text())
    credential = Credential.objects.create(
        name="drill", zone=zone, key_type=kind, public_key=public,
        fingerprint=fingerprint(public), encrypted_private_key=encrypt(private),
    )  # fmt: skip
    host = dict(address=sshd.address, ssh_port=sshd.port, ssh_user=sshd.user, zone=zone,
                credential=credential, host_key=sshd.host_public_key,
                host_key_fingerprint=fingerprint(sshd.host_public_key))  # fmt: skip
    hosts = [Host.objects.create(name=f"drill{i}", **host) for i in range(1, 6)]
    return hosts, get_user_model().objects.create_superuser("drill", "drill@example.org", "x")


def spawn(work: Path, *command: str) -> subprocess.Popen:
    """A manage.py command in its own process group; a worker: once it listens."""
    import django_rq
    from rq import Worker

    log = open(work / f"{command[0]}-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "manage.py", *command], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    PROCS.append(proc)
    if command[0] == "remora_worker":
        redis = django_rq.get_connection("default")
        until(lambda: any(w.pid == proc.pid for w in Worker.all(connection=redis)), 30,
              "a worker did not start")  # fmt: skip
    return proc


def stop(proc: subprocess.Popen) -> None:
    # A worker stopped just after a job may hang ~60 s in RQ's unsubscribe (redis-py's pubsub
    # thread stop() waits out its 60 s poll): its job is done, so SIGKILL after 10 s.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        print(f"{proc.args[2]} still running 10 s after SIGTERM: SIGKILL", file=sys.stderr)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def until(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"drill failed: {what}")
        time.sleep(0.02)


def marked(tokens: set[str]) -> list[int]:
    """This machine's processes marked REMORA_RUN=one of `tokens` (the hosts are this machine)."""
    wanted, found = {f"REMORA_RUN={t}".encode() for t in tokens}, []
    for entry in Path("/proc").glob("[0-9]*/environ"):
        with contextlib.suppress(OSError):
            if wanted & set(entry.read_bytes().split(b"\0")):
                found.append(int(entry.parent.name))
    return found


def ms(samples: list[float]) -> str:  # median and p95 (nearest rank)
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms"


def sec(since, until) -> float:
    return (until - since).total_seconds()


def gaps(runs) -> list[float]:  # from each run's end to the next one's start
    return [sec(p.finished_at, n.started_at) for p, n in itertools.pairwise(runs)]


def took(runs) -> float:
    return sec(min(r.started_at for r in runs), max(r.finished_at for r in runs))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--heartbeat-timeout", type=int, default=5, help="seconds (minimum 5)")
    parser.add_argument("--tick", type=float, default=0.5, help="the ticker's interval, seconds")
    parser.add_argument("--runs", type=int, default=60, help="runs of the throughput test")
    parser.add_argument("--sleep", type=float, default=5, help="the lost run's command, seconds")
    parser.add_argument("--user", default=getpass.getuser(), help="an existing SSH account")
    args = parser.parse_args()
    began, load_before = time.monotonic(), " ".join(f"{x:.2f}" for x in os.getloadavg())
    work = Path(tempfile.mkdtemp(prefix="remora-drill-"))
    sshd, ok = start_sshd(work, args.user), False
    try:
        hosts, user = setup(args, sshd)
        from django.db import transaction

        from jobs.launch import launch
        from jobs.models import FINISHED, JobRun, OutputChunk, RunState
        from jobs.output import HEARTBEAT_SECONDS
        from jobs.recipes import get

        workers = [spawn(work, "remora_worker"), spawn(work, "remora_worker")]
        spawn(work, "remora_ticker", "--interval", str(args.tick))

        def run(host, command: str, changes_host: bool = True):
            params = {"command": command, "changes_host": changes_host}
            return launch(user, get("adhoc"), [host], params)[0]

        def batch(on_hosts, n: int, command: str, changes_host: bool) -> list:
            with transaction.atomic():  # launched together: queued when this commits
                ids = [run(on_hosts[i % len(on_hosts)], command, changes_host).pk for i in range(n)]
            done = JobRun.objects.filter(pk__in=ids, state__in=FINISHED)
            until(lambda: done.count() == n, 300, f"{n} x {command!r} did not all finish")
            runs = list(JobRun.objects.filter(pk__in=ids).order_by("started_at"))
            if bad := [(r.pk, r.state, r.error) for r in runs if r.state != RunState.SUCCEEDED]:
                raise SystemExit(f"drill failed: runs did not succeed: {bad[:5]}")
            return runs

        # 1. kill -> lost: SIGKILL the worker of a `sleep` once the sleep runs on the host
        a = run(hosts[0], f"sleep {args.sleep:g}")
        until(lambda: marked({a.host_token}), 30, "the sleep did not start on the host")
        a.refresh_from_db()
        victim = next(w for w in workers if a.worker.endswith(f":{w.pid}"))
        os.killpg(victim.pid, signal.SIGKILL)
        killed = time.time()
        victim.wait()
        # 2. lost -> resolved: the next run on that host, launched right after the kill
        b = run(hosts[0], "date +%s.%N")
        lost = JobRun.objects.filter(pk=a.pk, state=RunState.LOST)
        until(lost.exists, 120, "the killed run was never marked lost")
        workers[workers.index(victim)] = spawn(work, "remora_worker")
        until(lost.exclude(resolution="").exists, 120, "the lost run was never resolved")
        a.refresh_from_db()
        until(lambda: b.refresh_from_db() or b.finished, 60, "the next run did not end")
        if b.state != RunState.SUCCEEDED:
            raise SystemExit(f"drill failed: the next run {b.state}: {b.error}")
        out = b"".join(c.data for c in OutputChunk.objects.filter(run=b).order_by("offset"))
        ran_at = float(re.search(rb"^(\d+\.\d+)$", out, re.M).group(1))  # on the host
        a_ended = Path(f"/run/lock/remora-{a.host_token}.exit").stat().st_mtime
        waited = "reported" if b"remora: waiting for the host" in out else "none"

        # 3. lock hand-over on one host, beside 5 hosts (each worker's own gaps)
        one = batch([hosts[1]], 10, "true", True)
        spread = batch(hosts, 10, "true", True)
        own = [gaps([r for r in spread if r.worker == w]) for w in {r.worker for r in spread}]
        baseline = [gap for worker_gaps in own for gap in worker_gaps]
        # 4. throughput, two workers then one
        two = batch(hosts, args.runs, "true", False)
        stop(workers.pop())
        single = batch(hosts, args.runs, "true", False)
        rate1, rate2 = args.runs / took(single), args.runs / took(two)
        each = statistics.median(sec(r.started_at, r.finished_at) for r in single)

        lost_at, claimed = a.finished_at, b.started_at.timestamp()
        end = f"{abs(a_ended - claimed) * 1000:.0f} ms {'after' if a_ended > claimed else 'before'}"
        print(
            f"Fault drill: 2 workers, a ticker every {args.tick} s, 5 hosts on one loopback sshd "
            f"(account {args.user}), REMORA_RUN_HEARTBEAT_TIMEOUT={args.heartbeat_timeout} s "
            f"(a quiet run beats every {HEARTBEAT_SECONDS} s); load average {load_before}\n"
            f"1. kill -> lost (`sleep {args.sleep:g}`): {lost_at.timestamp() - killed:.2f} s "
            f"(last heartbeat -> lost {sec(a.heartbeat_at, lost_at):.2f} s, expected about "
            f"timeout + tick = {args.heartbeat_timeout + args.tick:.1f} s)\n"
            f"2. lost -> resolved: {sec(lost_at, a.resolved_at):.2f} s (resolution "
            f"{a.resolution}, exit {a.exit_code}); the next run on the host was claimed "
            f"{sec(lost_at, b.started_at):.2f} s after the loss, ended "
            f"{sec(lost_at, b.finished_at):.2f} s after it\n"
            f"   its host-side lock wait: {waited} (claim -> its command ran on the host "
            f"{(ran_at - claimed) * 1000:.0f} ms; the lost command ended {end} the claim)\n"
            f"3. lock hand-over, 10 runs on one host: {ms(gaps(one))} (all in {took(one):.2f} s)\n"
            f"   baseline, the same on 5 hosts (a worker's own gap): {ms(baseline)} (all in "
            f"{took(spread):.2f} s); median ratio "
            f"{statistics.median(gaps(one)) / statistics.median(baseline):.2f}\n"
            f"4. throughput, {args.runs} x `true` over 5 hosts: 1 worker {rate1:.1f} runs/s, 2 "
            f"workers {rate2:.1f} runs/s, ratio {rate2 / rate1:.2f} (a run, claim -> end: median "
            f"{each * 1000:.0f} ms with one worker)"
        )
        ok = True
    finally:
        for proc in reversed(PROCS):
            if proc.poll() is None:
                stop(proc)
        with contextlib.suppress(Exception):  # what the killed worker left on the "host"
            from jobs.models import JobRun

            tokens = {r.host_token for r in JobRun.objects.all()}
            for pid in marked(tokens):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            names = [f"{t}.exit" for t in tokens] + [f"drill{i}.lock" for i in range(1, 6)]
            for name in names + [f"drill{i}.holder" for i in range(1, 6)]:
                Path(f"/run/lock/remora-{name}").unlink(missing_ok=True)
        sshd.stop()
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"the processes' logs are kept in {work}", file=sys.stderr)
    load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average at the end {load_after} on {os.cpu_count()} cores; wall time "
          f"{time.monotonic() - began:.0f} s (everything stopped)")  # fmt: skip


if __name__ == "__main__":
    main()
