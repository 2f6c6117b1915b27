"""Fan-out: the same check on 50 hosts beside the same check on one host, in wall time.

Starts 50 real OpenSSH servers on 127.0.2.1 .. 127.0.2.50 (each its own host key, pinned in
the database), 50 hosts on them, and one `manage.py remora_worker --concurrency N` (a pool of N
worker processes, jobs/pool.py). Then, through the real path (`launch_many` -> run rows and
audit events -> RQ -> the pool -> SSH), the check recipe `host_health` (uptime, df, free):

- baseline: launched on one host, from the call until its run has ended (polled in the
  database every 5 ms), `--rounds` times, each round on the next host;
- fan-out: launched on all 50 hosts at once, until the last of the 50 runs has ended,
  `--rounds` times;

printing the medians (and the first, cold, round of each apart: new SSH connections) and the
ratio (target: 50 hosts <= 3x one host). Then the memory of the pool's processes (RSS and PSS
from /proc/PID/smaps_rollup; PSS counts a page shared by k processes as 1/k), per worker and
in all.

SSH logs in as `remora-bench` (created when run as root; `--user` for another account): every
run starts the account's shell, and root's ~/.bashrc here is heavy. Uses the MariaDB database
`remora_bench_fanout` (recreated each run) and Redis db 12.
Run: .venv/bin/python bench/fanout.py [--hosts 50] [--concurrency 25] [--rounds 5]
"""

import argparse
import contextlib
import os
import secrets
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
from job_latency import ensure_user  # noqa: E402 (bench/ is on the path when this runs)

DB = "remora_bench_fanout"
REDIS_URL = "redis://127.0.0.1:6379/12"


def address(i: int) -> str:
    return f"127.0.2.{i + 1}"


def start_sshds(work: Path, account: str, n: int) -> list:
    """n sshd servers, each on its own loopback address with a fresh host key; one client key."""
    from tests.fixtures.sshd import SshdHost, generate_ed25519_key

    client_key = work / "client_key"
    client_public = generate_ed25519_key(client_key, "fanout")
    work.chmod(0o755)  # sshd reads authorized_keys as the account logging in
    with contextlib.suppress(PermissionError):
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    servers = []
    for i in range(n):
        directory = work / address(i)
        directory.mkdir()
        directory.chmod(0o755)
        (directory / "authorized_keys").write_text(client_public + "\n")
        host_key = directory / "host_key"
        host_public = generate_ed25519_key(host_key, f"fanout-host-{i}")
        with socket.socket() as s:
            s.bind((address(i), 0))
            port = s.getsockname()[1]
        server = SshdHost(address(i), port, account, host_key, host_public, client_key, directory)
        server.start()
        servers.append(server)
    return servers


def setup(servers) -> tuple[list, object]:
    """A fresh database and Redis db; a host per server, and a superuser."""
    import pymysql

    with pymysql.connect(host="127.0.0.1", user="root", password="") as conn:
        conn.cursor().execute(f"DROP DATABASE IF EXISTS {DB}")
        conn.cursor().execute(f"CREATE DATABASE {DB} CHARACTER SET utf8mb4")
    from cryptography.fernet import Fernet

    # Production's settings (DEBUG off: no query log in the workers) for every process.
    os.environ.update(
        DATABASE_URL=f"mysql://root:@127.0.0.1:3306/{DB}", REDIS_URL=REDIS_URL, DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50), REMORA_CREDENTIALS_KEY=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="localhost", DJANGO_SETTINGS_MODULE="remora_admin.settings",
        LOG_LEVEL="WARNING", REMORA_AUDIT_SINK="none",
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

    zone = Zone.objects.create(name="fanout")
    private, kind, public = parse_private_key(servers[0].client_key_path.read_text())
    credential = Credential.objects.create(
        name="fanout", zone=zone, key_type=kind, public_key=public,
        fingerprint=fingerprint(public), encrypted_private_key=encrypt(private),
    )  # fmt: skip
    hosts = [
        Host.objects.create(
            name=f"fan{i + 1:02d}",
            address=s.address,
            ssh_port=s.port,
            ssh_user=s.user,
            zone=zone,
            credential=credential,
            host_key=s.host_public_key,
            host_key_fingerprint=fingerprint(s.host_public_key),
        )  # fmt: skip
        for i, s in enumerate(servers)
    ]
    return hosts, get_user_model().objects.create_superuser("fan", "fan@example.org", "x")


def start_pool(work: Path, concurrency: int) -> tuple[subprocess.Popen, list[int]]:
    """The worker pool, once its workers all listen; its process and its workers' pids."""
    import django_rq
    from rq import Worker

    log = open(work / "pool.log", "wb")  # noqa: SIM115
    pool = subprocess.Popen(
        [sys.executable, "manage.py", "remora_worker", "--concurrency", str(concurrency)],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    redis = django_rq.get_connection("default")
    deadline = time.monotonic() + 60
    while True:
        pids = [w.pid for w in Worker.all(connection=redis)]
        if len(pids) == concurrency:
            return pool, pids
        if pool.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the pool did not start: {(work / 'pool.log').read_text()[-2000:]}")
        time.sleep(0.05)


def stop_pool(pool: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pool.pid, signal.SIGTERM)
    try:
        pool.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(pool.pid, signal.SIGKILL)
        pool.wait()


def memory(pid: int) -> tuple[int, int]:
    """RSS and PSS of a process, in kB."""
    found = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss"):
            found[key] = int(rest.split()[0])
    return found["Rss"], found["Pss"]


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU time of a process (with `children`: of its children it reaped)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text[text.rindex(")") + 2 :].split()
    used = sum(int(x) for x in fields[11:13] + (fields[13:15] if children else []))
    return used / os.sysconf("SC_CLK_TCK")


def pids_of(name: str) -> list[int]:
    found = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True).stdout
    return [int(p) for p in found.split()]


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (every core, all but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def cpu_split(workers: list[int], pool: int) -> dict[str, float]:
    """CPU seconds used so far by the pool's workers, MariaDB, Redis and this process, and by
    the whole machine: the rest of it is the hosts' side (each session's sshd, its key
    exchange, bash and the commands: processes that come and go) and whatever else ran."""
    return {
        "workers": sum(cpu_seconds(p) for p in workers) + cpu_seconds(pool),
        "MariaDB": sum(cpu_seconds(p) for p in pids_of("mariadbd") + pids_of("mysqld")),
        "Redis": sum(cpu_seconds(p) for p in pids_of("redis-server")),
        "this process (launch_many, polling)": cpu_seconds(os.getpid()),
        "machine": machine_busy_seconds(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=25, help="worker processes")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--user", default="remora-bench", help="the SSH account on the hosts")
    args = parser.parse_args()
    began, load_before = time.monotonic(), " ".join(f"{x:.2f}" for x in os.getloadavg())
    account = ensure_user(args.user)
    work = Path(tempfile.mkdtemp(prefix="remora-fanout-"))
    servers, pool, ok = [], None, False
    try:
        servers = start_sshds(work, account, args.hosts)
        hosts, user = setup(servers)
        pool, workers = start_pool(work, args.concurrency)
        from jobs.launch import launch_many
        from jobs.models import FINISHED, JobRun, RunState
        from jobs.recipes import get

        recipe = get("host_health")

        def once(on_hosts) -> tuple[float, float]:
            """Wall time from the call until every run ended, and of the launch call alone."""
            started = time.perf_counter()
            fan = launch_many(user, recipe, on_hosts, {})
            launched = time.perf_counter() - started
            if fan.refusals:
                raise SystemExit(f"refused: {fan.refusals}")
            ids = [r.pk for r in fan.runs]
            done = JobRun.objects.filter(pk__in=ids, state__in=FINISHED)
            while done.count() < len(ids):
                if time.perf_counter() - started > 120:
                    raise SystemExit(f"runs {ids} did not all end in 120 s")
                time.sleep(0.005)
            took = time.perf_counter() - started
            if bad := list(done.exclude(state=RunState.SUCCEEDED).values_list("pk", "error")):
                raise SystemExit(f"runs failed: {bad[:5]}")
            return took, launched

        one = [once([hosts[i % len(hosts)]]) for i in range(args.rounds + 1)]
        many = [once(hosts)]
        before, cpu_wall = cpu_split(workers, pool.pid), time.perf_counter()
        many += [once(hosts) for _ in range(args.rounds)]
        after, cpu_wall = cpu_split(workers, pool.pid), time.perf_counter() - cpu_wall
        spent = {k: (after[k] - before[k]) / args.rounds for k in after}
        machine = spent.pop("machine")
        spent["the hosts' sshd sessions and commands (the rest)"] = max(
            0.0, machine - sum(spent.values())
        )
        runs = JobRun.objects.filter(host__in=hosts).order_by("-pk")[: len(hosts)]
        each = statistics.median((r.finished_at - r.started_at).total_seconds() for r in runs)
        used = len({r.worker for r in runs})
        sizes = {pid: memory(pid) for pid in workers}
        supervisor = memory(pool.pid) if pool.pid not in workers else (0, 0)  # 1: no pool

        def med(samples) -> float:
            return statistics.median(s[0] for s in samples[1:]) * 1000

        m1, mn = med(one), med(many)
        floor = sum(spent.values()) / (os.cpu_count() or 1)
        rss = [r for r, _ in sizes.values()]
        pss = [p for _, p in sizes.values()]
        print(
            f"Fan-out: `host_health` through launch_many -> RQ -> a pool of {args.concurrency} "
            f"workers, {args.hosts} loopback sshd (account {account}); load average "
            f"{load_before}, {os.cpu_count()} cores\n"
            f"1 host:   median {m1:.0f} ms over {args.rounds} rounds (first, cold: "
            f"{one[0][0] * 1000:.0f} ms)\n"
            f"{args.hosts} hosts: median {mn:.0f} ms over {args.rounds} rounds (first, cold: "
            f"{many[0][0] * 1000:.0f} ms); of which the launch_many call "
            f"{statistics.median(s[1] for s in many[1:]) * 1000:.0f} ms; a run, claim -> end: "
            f"median {each * 1000:.0f} ms; {used} workers ran the last round\n"
            f"ratio {args.hosts} hosts / 1 host: {mn / m1:.2f} (target <= 3)\n"
            f"CPU per {args.hosts}-host round (mean of {args.rounds}, wall "
            f"{cpu_wall / args.rounds:.2f} s): "
            + ", ".join(f"{k} {v:.2f} s" for k, v in spent.items())
            + f"; in all {sum(spent.values()):.2f} s = "
            f"{sum(spent.values()) / (cpu_wall / args.rounds):.2f} of {os.cpu_count()} cores; "
            f"{sum(spent.values()) / args.hosts * 1000:.0f} ms of CPU a host: with every core "
            f"ours the {args.hosts} hosts take at least {floor * 1000:.0f} ms, "
            f"{floor * 1000 / m1:.1f}x one host\n"
            f"memory per worker process: RSS median {statistics.median(rss) / 1024:.1f} MiB "
            f"(max {max(rss) / 1024:.1f}), PSS median {statistics.median(pss) / 1024:.1f} MiB "
            f"(max {max(pss) / 1024:.1f}); supervisor RSS {supervisor[0] / 1024:.1f} MiB, PSS "
            f"{supervisor[1] / 1024:.1f} MiB; the pool in all: PSS "
            f"{(sum(pss) + supervisor[1]) / 1024:.0f} MiB"
        )
        ok = True
    finally:
        if pool is not None:
            stop_pool(pool)
        for server in servers:
            server.stop()
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"the pool's log is kept in {work}", file=sys.stderr)
    load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average at the end {load_after}; wall time {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
