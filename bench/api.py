"""The REST API through a real HTTP server: launches per second, and launch -> first output byte,
beside OpenSSH's `ssh host true`.

In one run, against one sshd (started here on 127.0.0.60 with fresh keys, by job_latency.py's
helpers, as are the database, the inventory and the worker):

- the console as production serves it: gunicorn, 2 sync workers on 127.0.0.1, DEBUG off, the
  audit log's off-box copy on (a file in the scratch folder), a real `manage.py remora_worker`;
  every request carries a personal token (`Authorization: Bearer rma_...`) and the header the
  TLS front proxy adds (`X-Forwarded-Proto: https`); a new TCP connection per request (gunicorn's
  sync workers close each one);
- launch -> first output byte: POST /api/runs/ (the ad-hoc recipe, `echo first`, no host lock,
  as job_latency.py launches it), then GET /api/runs/<id>/output/?wait=10 until text arrives
  (the long poll answers as soon as the first chunk is stored); median and p95 over --runs
  runs (after 3 to warm up), with the POST alone and the server's own created -> claimed time;
- baseline: the system OpenSSH client, `ssh -i key -p PORT user@127.0.0.60 true`, strict host
  key checking, a new process each time, as many times;
- launches per second: N client threads (--clients, default 1, 4, 8), each POSTing --per-client
  launches one after the other; launches/s over the wall time, with each POST's p50/p95. The
  worker drains the runs meanwhile (it shares the 2 cores); between levels the bench waits for
  the queue to empty, so each level starts alike.

Uses the MariaDB database `remora_bench_api` (recreated each run) and Redis db 7 (flushed).
Run: .venv/bin/python bench/api.py [--runs 20] [--clients 1,4,8] [--per-client 25]
"""

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from http.client import HTTPConnection
from pathlib import Path

import job_latency as jl  # bench/ is on the path when this script runs

ROOT = jl.ROOT
DB = "remora_bench_api"
REDIS_URL = "redis://127.0.0.1:6379/7"
GUNICORN = Path(sys.executable).with_name("gunicorn")
COMMAND = "echo first"


class Api:
    """A client of the console's API: one new connection per request, as the token's owner."""

    def __init__(self, port: int, token: str):
        self.port, self.token = port, token

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, object]:
        headers = {
            "Authorization": f"Bearer {self.token}",
            "X-Forwarded-Proto": "https",  # as the TLS front proxy says
            "Accept": "application/json",
        }
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        connection = HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            payload = response.read()
        finally:
            connection.close()
        return response.status, json.loads(payload) if payload else None

    def launch(self, host: str) -> int:
        body = {"recipe": "adhoc", "hosts": [host],
                "params": {"command": COMMAND, "changes_host": False}}  # fmt: skip
        status, answer = self.call("POST", "/api/runs/", body)
        if status != 201:
            raise SystemExit(f"launch refused: {status} {answer}")
        runs = answer["runs"] if isinstance(answer, dict) else answer  # {"runs", "refusals"}
        return runs[0]["id"]

    def first_output(self, run_id: int) -> str:
        while True:
            status, answer = self.call("GET", f"/api/runs/{run_id}/output/?wait=10")
            if status != 200:
                raise SystemExit(f"output: {status} {answer}")
            if answer["text"]:
                return answer["text"]
            if answer["finished"]:
                raise SystemExit(f"run {run_id} ended without output: {answer}")


def start_gunicorn(work: Path, port: int, env: dict) -> subprocess.Popen:
    if not GUNICORN.exists():
        raise SystemExit(f"{GUNICORN} is missing: .venv/bin/pip install gunicorn")
    log = (work / "gunicorn.log").open("w")
    server = subprocess.Popen(
        [
            str(GUNICORN),
            "--workers",
            "2",
            "--worker-class",
            "sync",
            "--bind",
            f"127.0.0.1:{port}",
            "--timeout",
            "60",
            "--forwarded-allow-ips",
            "127.0.0.1",
            "remora_admin.wsgi:application",
        ],  # fmt: skip
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    for _ in range(200):
        if server.poll() is not None:
            raise SystemExit(f"gunicorn stopped: {(work / 'gunicorn.log').read_text()[-2000:]}")
        try:
            connection = HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/login/", headers={"X-Forwarded-Proto": "https"})
            connection.getresponse().read()
            connection.close()
            return server
        except OSError:
            time.sleep(0.1)
    raise SystemExit("gunicorn did not answer")


def wait_until_drained(timeout: float = 300) -> float:
    from jobs.models import JobRun, RunState

    started = time.perf_counter()
    waiting = [RunState.QUEUED, RunState.RUNNING]
    while JobRun.objects.filter(state__in=waiting).exists():
        if time.perf_counter() - started > timeout:
            raise SystemExit("the worker did not drain the queue")
        time.sleep(0.05)
    return time.perf_counter() - started


def ssh_baseline(work: Path, port: int, account: str, runs: int) -> list[float]:
    command = ["ssh", "-q", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
               "-o", f"UserKnownHostsFile={work / 'known_hosts'}", "-o", "IdentitiesOnly=yes",
               "-i", str(work / "client_key"), "-p", str(port), f"{account}@{jl.ADDRESS}",
               "true"]  # fmt: skip
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def throughput(api: Api, host: str, clients: int, per_client: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()
    gate = threading.Barrier(clients + 1)
    failures: list[BaseException] = []

    def client() -> None:
        mine = []
        gate.wait()
        try:
            for _ in range(per_client):
                started = time.perf_counter()
                api.launch(host)
                mine.append((time.perf_counter() - started) * 1000)
        except BaseException as failure:  # noqa: BLE001 - reported by the main thread
            failures.append(failure)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    gate.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if failures:
        raise SystemExit(f"a client failed: {failures[0]}")
    return clients * per_client / wall, latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--clients", default="1,4,8", help="client threads per level")
    parser.add_argument("--per-client", type=int, default=25, help="launches per client")
    parser.add_argument("--user", default="remora-bench", help="the SSH account on the host")
    args = parser.parse_args()
    levels = [int(n) for n in args.clients.split(",")]
    load_at_start = os.getloadavg()[0]
    account = jl.ensure_user(args.user)
    work = Path(tempfile.mkdtemp(prefix="remora-bench-api-"))
    # Production's settings for every process (the console, its worker, this script's setup).
    os.environ.update(
        SECRET_KEY=secrets.token_urlsafe(50),
        REMORA_CREDENTIALS_KEY=fernet_key(),
        REMORA_AUDIT_SINK=f"file:{work / 'audit-sink.jsonl'}",
    )
    sshd, ssh_port = jl.start_sshd(work)
    worker = server = None
    try:
        jl.DB, jl.REDIS_URL = DB, REDIS_URL  # job_latency.setup_django reads these
        jl.setup_django()  # DEBUG on for this script's own setup only
        os.environ.update(DEBUG="false", ALLOWED_HOSTS="127.0.0.1")
        host, user = jl.inventory(work, ssh_port, account)
        from remora_admin.access import tokens

        _, raw = tokens.create(user, name="bench", scope="act", lifetime=timedelta(days=1))
        worker = jl.start_worker()
        web_port = local_port()
        server = start_gunicorn(work, web_port, os.environ.copy())
        api = Api(web_port, raw)

        from jobs.models import JobRun

        first_ms, post_ms, queued_ms = [], [], []
        for i in range(args.runs + 3):
            started = time.perf_counter()
            run_id = api.launch(host.name)
            posted = time.perf_counter()
            text = api.first_output(run_id)
            done = time.perf_counter()
            assert text.startswith("first"), text
            if i >= 3:  # the first few warm the web workers and the worker up
                first_ms.append((done - started) * 1000)
                post_ms.append((posted - started) * 1000)
                run = JobRun.objects.get(pk=run_id)
                queued_ms.append((run.started_at - run.created_at).total_seconds() * 1000)
        wait_until_drained()
        ssh_ms = ssh_baseline(work, ssh_port, account, args.runs)

        rates = []
        for clients in levels:
            rate, latencies = throughput(api, host.name, clients, args.per_client)
            drain = wait_until_drained()
            rates.append((clients, rate, latencies, drain))

        fp50, fp95 = statistics.median(first_ms), jl.pct(first_ms, 95)
        sp50, sp95 = statistics.median(ssh_ms), jl.pct(ssh_ms, 95)
        print("API through gunicorn (2 sync workers, DEBUG off), token auth, one worker")
        print(
            f"launch -> first output byte via the API ({len(first_ms)} runs): "
            f"p50 {fp50:.1f} ms, p95 {fp95:.1f} ms"
        )
        print(
            f"  of which POST /api/runs/: p50 {statistics.median(post_ms):.1f} ms, "
            f"p95 {jl.pct(post_ms, 95):.1f} ms; run row created -> claimed by the worker: "
            f"p50 {statistics.median(queued_ms):.1f} ms"
        )
        print(f"OpenSSH `ssh host true` ({len(ssh_ms)} runs): p50 {sp50:.1f} ms, p95 {sp95:.1f} ms")
        print(f"ratio API launch/ssh: p50 {fp50 / sp50:.2f}, p95 {fp95 / sp95:.2f}")
        print(f"account on the host: {account}")
        for clients, rate, latencies, drain in rates:
            print(
                f"launches through POST /api/runs/, {clients} client(s) x {args.per_client}: "
                f"{rate:.1f} per second; each POST p50 {statistics.median(latencies):.1f} ms, "
                f"p95 {jl.pct(latencies, 95):.1f} ms (the worker drained the rest in "
                f"{drain:.1f} s)"
            )
        print(
            f"load average (1 min) at the start {load_at_start:.2f}, at the end "
            f"{os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)"
        )
    finally:
        for process in (server, worker):
            if process is not None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
        sshd.terminate()
        sshd.wait()
        shutil.rmtree(work, ignore_errors=True)


def fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def local_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


if __name__ == "__main__":
    main()
