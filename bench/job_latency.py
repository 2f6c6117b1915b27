"""Job latency: from "Launch" to the run's first output byte, beside OpenSSH's `ssh host true`.

In one run, against the same sshd (started here on 127.0.0.60 with fresh keys):

- launch-to-first-output: POST the launch form of a one-line recipe (`echo first`) through the
  whole web stack (Django's test client: middleware, policy, form, run row + audit, enqueue on
  commit), then poll the database every 2 ms until the run's first output chunk is stored, as
  the run page's poll would see it; a real `manage.py remora_worker` process runs the jobs;
- baseline: the system OpenSSH client, `ssh -i key -p PORT user@127.0.0.60 true`, strict host
  key checking against a known_hosts file, a new process each time;
- launches per second through the web endpoint for 10 s (the worker drains them meanwhile).

Both sides log in as the same account: by default `remora-bench`, an ordinary account created
here when running as root (`--user` to choose another). The account matters: every SSH session
starts the account's shell, and a heavy ~/.bashrc (root's on these machines runs `pyenv init`,
about 100 ms) is paid by both sides alike; a deploy account on a real host has a plain one.

Uses the MariaDB database `remora_bench_jobs` (recreated each run) and Redis db 14.
Run: .venv/bin/python bench/job_latency.py [--runs 50]
"""

import argparse
import getpass
import os
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
DB = "remora_bench_jobs"
REDIS_URL = "redis://127.0.0.1:6379/14"
ADDRESS = "127.0.0.60"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((ADDRESS, 0))
        return s.getsockname()[1]


def start_sshd(work: Path) -> tuple[subprocess.Popen, int]:
    for name in ("host_key", "client_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / name)], check=True
        )
    shutil.copy(work / "client_key.pub", work / "authorized_keys")
    # sshd reads authorized_keys as the account logging in.
    work.chmod(0o755)
    (work / "authorized_keys").chmod(0o644)
    port = free_port()
    config = work / "sshd_config"
    config.write_text(
        f"ListenAddress {ADDRESS}\nPort {port}\nHostKey {work / 'host_key'}\n"
        f"AuthorizedKeysFile {work / 'authorized_keys'}\nPidFile {work / 'sshd.pid'}\n"
        "UsePAM no\nStrictModes no\nPasswordAuthentication no\n"
        "PermitRootLogin prohibit-password\nMaxStartups 200\nMaxSessions 200\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    proc = subprocess.Popen(
        ["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], stderr=subprocess.DEVNULL
    )
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex((ADDRESS, port)) == 0:
                return proc, port
        time.sleep(0.05)
    raise SystemExit("sshd did not start")


def setup_django() -> None:
    import pymysql

    conn = pymysql.connect(host="127.0.0.1", user="root", password="")
    cur = conn.cursor()
    cur.execute(f"DROP DATABASE IF EXISTS {DB}")
    cur.execute(f"CREATE DATABASE {DB} CHARACTER SET utf8mb4")
    conn.close()
    os.environ.update(
        DATABASE_URL=f"mysql://root:@127.0.0.1:3306/{DB}",
        REDIS_URL=REDIS_URL,
        DEBUG="true",
        ALLOWED_HOSTS="testserver",
        DJANGO_SETTINGS_MODULE="remora_admin.settings",
        LOG_LEVEL="WARNING",
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def ensure_user(name: str) -> str:
    if name == getpass.getuser():
        return name
    if subprocess.run(["id", name], capture_output=True).returncode != 0:
        if os.geteuid() != 0:
            raise SystemExit(f"no account {name}; run as root or pass --user {getpass.getuser()}")
        subprocess.run(["useradd", "-m", "-s", "/bin/bash", name], check=True)
        subprocess.run(["usermod", "-p", "*", name], check=True)  # no password, not locked
    return name


def inventory(work: Path, port: int, account: str):
    from django.contrib.auth import get_user_model

    from hosts.credentials import encrypt, fingerprint, parse_private_key
    from hosts.models import Credential, Host
    from remora_admin.access.models import Zone

    zone = Zone.objects.create(name="bench")
    private, kind, public = parse_private_key((work / "client_key").read_text())
    credential = Credential.objects.create(
        name="bench",
        zone=zone,
        key_type=kind,
        public_key=public,
        fingerprint=fingerprint(public),
        encrypted_private_key=encrypt(private),
    )
    host_key = " ".join((work / "host_key.pub").read_text().split()[:2])
    host = Host.objects.create(
        name="benchhost",
        address=ADDRESS,
        ssh_port=port,
        ssh_user=account,
        zone=zone,
        credential=credential,
        host_key=host_key,
        host_key_fingerprint=fingerprint(host_key),
    )
    (work / "known_hosts").write_text(f"[{ADDRESS}]:{port} {host_key}\n")
    user = get_user_model().objects.create_superuser("bench", "bench@example.org", "x")
    return host, user


def start_worker() -> subprocess.Popen:
    import django_rq

    django_rq.get_connection("default").flushdb()
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "remora_worker"],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    from rq import Worker

    connection = django_rq.get_connection("default")
    for _ in range(200):
        if Worker.all(connection=connection):
            return worker
        time.sleep(0.05)
    raise SystemExit("the worker did not start")


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--user", default="remora-bench", help="the SSH account on the host")
    args = parser.parse_args()
    account = ensure_user(args.user)
    work = Path(tempfile.mkdtemp(prefix="remora-bench-"))
    sshd, port = start_sshd(work)
    worker = None
    try:
        setup_django()
        host, user = inventory(work, port, account)
        worker = start_worker()
        from django.test import Client

        from jobs.models import JobRun, OutputChunk

        client = Client()
        client.force_login(user)
        url = f"/hosts/{host.name}/launch/?recipe=adhoc"
        form = {"recipe": "adhoc", "command": "echo first", "launch": "1"}

        def launch() -> int:
            response = client.post(url, form)
            assert response.status_code == 302, response.status_code
            return int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])

        launch_ms, queued_ms = [], []
        for i in range(args.runs + 3):
            started = time.perf_counter()
            run_id = launch()
            while not OutputChunk.objects.filter(run_id=run_id).exists():
                if time.perf_counter() - started > 30:
                    raise SystemExit(
                        f"run {run_id} gave no output: {JobRun.objects.get(pk=run_id).error}"
                    )
                time.sleep(0.002)
            if i >= 3:  # the first few warm the worker up
                launch_ms.append((time.perf_counter() - started) * 1000)
                run = JobRun.objects.get(pk=run_id)
                queued_ms.append((run.started_at - run.created_at).total_seconds() * 1000)

        ssh_cmd = [
            "ssh",
            "-q",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={work / 'known_hosts'}",
            "-o",
            "IdentitiesOnly=yes",
            "-i",
            str(work / "client_key"),
            "-p",
            str(port),
            f"{account}@{ADDRESS}",
            "true",
        ]
        ssh_ms = []
        for _ in range(args.runs):
            started = time.perf_counter()
            subprocess.run(ssh_cmd, check=True)
            ssh_ms.append((time.perf_counter() - started) * 1000)

        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < 10:
            launch()
            count += 1
        rate = count / (time.perf_counter() - started)

        lp50, lp95 = statistics.median(launch_ms), pct(launch_ms, 95)
        sp50, sp95 = statistics.median(ssh_ms), pct(ssh_ms, 95)
        print(
            f"launch -> first output byte stored ({len(launch_ms)} runs): "
            f"p50 {lp50:.1f} ms, p95 {lp95:.1f} ms"
        )
        print(
            "  of which run row created -> claimed by the worker: "
            f"p50 {statistics.median(queued_ms):.1f} ms"
        )
        print(f"OpenSSH `ssh host true` ({len(ssh_ms)} runs): p50 {sp50:.1f} ms, p95 {sp95:.1f} ms")
        print(f"ratio launch/ssh: p50 {lp50 / sp50:.2f}, p95 {lp95 / sp95:.2f} (target <= 0.5)")
        print(f"account on the host: {account}")
        print(f"launches through the web endpoint: {rate:.0f} per second ({count} in 10 s)")
    finally:
        if worker is not None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)
        sshd.terminate()
        sshd.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
