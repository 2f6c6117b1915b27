"""`make run`: the whole console on this machine, for development.

Redis first (REDIS_URL, else a private redis-server, else fakeredis in this process; see
remora_admin/devredis.py), then the database (migrate, topology, demo people), then the
processes in CHILDREN, each a `manage.py` command with REDIS_URL in its environment. Ctrl-C or
SIGTERM stops them all and the Redis we started; when one of them dies the rest are stopped
and the command fails naming it.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from jobs import ssh
from jobs.schedules import ensure_demo_maintenance
from remora_admin import devredis, lab_demo
from remora_admin.access.management.commands.load_demo_users import (
    DEMO_PASSWORD,
    create_demo_users,
    login_lines,
)

# The processes of the stack: a name and its manage.py command; "{port}" is the web port.
CHILDREN = [
    ("web", ["runserver", "--noreload", "127.0.0.1:{port}"]),
    ("worker", ["remora_worker"]),
    ("ticker", ["remora_ticker"]),
]
HOST = "127.0.0.1"
STOP_GRACE_SECONDS = 10
WEB_START_SECONDS = 60


@dataclass
class Child:
    name: str
    process: subprocess.Popen

    def exited(self) -> str | None:
        code = self.process.poll()
        if code is None:
            return None
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with {code}"
        return f"the {self.name} process (pid {self.process.pid}) {how}"


class Command(BaseCommand):
    help = (
        "Run the console for development: Redis, migrations, topology and demo people, then "
        "the web server and an RQ worker until Ctrl-C."
    )
    # The checks open the SQLite database, whose directory may not exist yet on a fresh clone;
    # handle() creates it, then runs them.
    requires_system_checks = []

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--redis",
            choices=devredis.MODES,
            default=os.environ.get("REMORA_DEV_REDIS", "auto"),
            help="auto (default): REDIS_URL if set, else a private redis-server from PATH, else "
            "in-process fakeredis. server or fake force one of the last two. "
            "Default from REMORA_DEV_REDIS.",
        )

    def handle(self, *args, redis: str, **options) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "devstack is for development and creates demo users with a published password; "
                "run it with DEBUG=true (make run does)."
            )
        started = time.monotonic()
        port = self._port()
        var_dir = Path(settings.VAR_DIR)
        var_dir.mkdir(parents=True, exist_ok=True)
        self.check(display_num_errors=False)

        self.stop_signal: str | None = None
        self.hurry = False
        handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in handled}
        server: devredis.DevRedis | None = None
        children: list[Child] = []
        death: str | None = None
        try:
            try:
                server = devredis.choose_redis(redis, var_dir)
                server.start()
            except devredis.RedisUnavailable as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"Redis: {server.description}")
            self._use_redis(server.url)
            if not self.stop_signal:
                self._prepare_database()
            for name, command in CHILDREN:
                if self.stop_signal:
                    break
                children.append(self._start(name, command, port, server.url))
            death = self._wait_for_web(port, children, server)
            if not death and not self.stop_signal:
                self._banner(port, server, children, time.monotonic() - started)
                death = self._watch(children, server)
        finally:
            self._stop(children, server)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if death:
            raise CommandError(f"Stopped everything because {death}.")
        self.stdout.write(f"Stopped ({self.stop_signal}).")

    def _on_signal(self, signum, frame) -> None:
        # Only flags here: printing from a signal handler can collide with a print in progress.
        if self.stop_signal is None:
            self.stop_signal = signal.Signals(signum).name
        elif signum == signal.SIGINT:
            self.hurry = True  # a second Ctrl-C: stop at once, no grace period

    def _port(self) -> int:
        raw = os.environ.get("PORT", "8000")
        try:
            port = int(raw)
        except ValueError:
            raise CommandError(f"PORT must be a port number, not {raw!r}.") from None
        if not 1 <= port <= 65535:
            raise CommandError(f"PORT must be between 1 and 65535, not {port}.")
        if not devredis.port_is_free(port, HOST):
            raise CommandError(
                f"Port {port} on {HOST} is in use (another `make run`?). Stop that, or choose "
                f"another port: PORT={port + 1} make run"
            )
        return port

    def _use_redis(self, url: str) -> None:
        """Point this process and every child at `url`. The settings computed RQ_QUEUES from
        REDIS_URL at import, so the children must get it in their environment."""
        os.environ["REDIS_URL"] = url
        old = settings.REDIS_URL
        settings.REDIS_URL = url
        for queue in settings.RQ_QUEUES.values():
            if queue.get("URL") == old:
                queue["URL"] = url

    def _prepare_database(self) -> None:
        t = time.monotonic()
        self.stdout.write("Migrating the database...")
        call_command("migrate", interactive=False, verbosity=0)
        call_command("load_topology")
        created = create_demo_users()
        self.stdout.write(
            f"Demo users: {len(created)} created." if created else "Demo users already exist."
        )
        self._use_lab()
        connections.close_all()  # the children open their own
        self.stdout.write(f"Database ready in {time.monotonic() - t:.1f}s.")

    def _use_lab(self) -> None:
        """With the lab up, the demo inventory points at its hosts (audited as the lead
        admin's set-up); without it, say how to get real hosts."""
        try:
            state = lab_demo.lab_state()
            if state is None:
                self.stdout.write(
                    "Lab: down, so the demo hosts are unreachable. For real Debian hosts to run "
                    "jobs on: make lab (as root), then make run again."
                )
                return
            for line in lab_demo.adopt(state):
                self.stdout.write(f"Lab: {line}")
            made = ensure_demo_maintenance(lab_demo.lead_admin())
            if made:
                self.stdout.write("Lab: maintenance set up: " + ", ".join(made))
        except (lab_demo.LabUnusable, ssh.SSHFailure) as exc:
            self.stdout.write(f"Lab: not used: {exc}")

    def _start(self, name: str, command: list[str], port: int, redis_url: str) -> Child:
        argv = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
        argv += [part.format(port=port) for part in command]
        env = {**os.environ, "REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(
            argv,
            cwd=settings.BASE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            # Its own process group: Ctrl-C reaches devstack alone, which stops the children in
            # order (and can then kill anything a child left behind, e.g. an RQ work horse).
            process_group=0,
        )
        return Child(name, process)

    def _first_death(self, children: list[Child], server: devredis.DevRedis) -> str | None:
        for child in children:
            if reason := child.exited():
                return reason
        return server.exited()

    def _wait_for_web(
        self, port: int, children: list[Child], server: devredis.DevRedis
    ) -> str | None:
        deadline = time.monotonic() + WEB_START_SECONDS
        while not self.stop_signal:
            if death := self._first_death(children, server):
                return death
            try:
                socket.create_connection((HOST, port), timeout=0.5).close()
                return None
            except OSError:
                if time.monotonic() > deadline:
                    return f"the web server did not answer on port {port} in {WEB_START_SECONDS}s"
                time.sleep(0.1)
        return None

    def _watch(self, children: list[Child], server: devredis.DevRedis) -> str | None:
        while not self.stop_signal:
            if death := self._first_death(children, server):
                return death
            time.sleep(0.2)
        return None

    def _stop(self, children: list[Child], server: devredis.DevRedis | None) -> None:
        running = [c for c in children if c.process.poll() is None]
        names = [c.name for c in running] + (["Redis"] if server and server.ours else [])
        if names:
            self.stdout.write(f"Stopping {', '.join(names)}...")
        for child in running:
            child.process.send_signal(signal.SIGTERM)
        asked = time.monotonic()
        self._wait_for_exit(children, asked + 1, stop_if_hurried=True)
        if (slow := [c.name for c in children if c.process.poll() is None]) and not self.hurry:
            self.stdout.write(
                f"Waiting up to {STOP_GRACE_SECONDS}s for {', '.join(slow)} to finish "
                "(Ctrl-C again stops at once)..."
            )
            self._wait_for_exit(children, asked + STOP_GRACE_SECONDS, stop_if_hurried=True)
        if any(c.process.poll() is None for c in children):
            # A second SIGTERM means "now": an RQ worker then kills its job's work horse (which
            # is in a process group of its own) and exits. RQ ignores a repeat within 1s.
            time.sleep(max(0.0, asked + 1.2 - time.monotonic()))
            for child in children:
                if child.process.poll() is None:
                    child.process.send_signal(signal.SIGTERM)
            self._wait_for_exit(children, time.monotonic() + 3)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.process.pid, signal.SIGKILL)  # whatever is left in its group
            child.process.wait()
        if server is not None:
            server.stop()

    def _wait_for_exit(
        self, children: list[Child], deadline: float, stop_if_hurried: bool = False
    ) -> None:
        while any(c.process.poll() is None for c in children) and time.monotonic() < deadline:
            if stop_if_hurried and self.hurry:
                return
            time.sleep(0.05)

    def _banner(
        self, port: int, server: devredis.DevRedis, children: list[Child], elapsed: float
    ) -> None:
        db = settings.DATABASES["default"]
        if db["ENGINE"].endswith("sqlite3"):
            database = f"SQLite {db['NAME']}"
        else:
            database = f"MariaDB {db.get('HOST') or 'localhost'}:{db.get('PORT') or 3306}"
            database += f"/{db['NAME']}"
        processes = ", ".join(f"{c.name} (pid {c.process.pid})" for c in children)
        rule = "=" * 78
        lines = [
            rule,
            f"Remora Admin is running at http://{HOST}:{port}/   (ready in {elapsed:.1f}s)",
            f"  Redis:     {server.description}",
            f"  Database:  {database}",
            f"  Processes: {processes}",
            f"  Sign in as any of these, password {DEMO_PASSWORD}:",
            *(f"    {line}" for line in login_lines()),
            "Ctrl-C stops everything.",
            rule,
        ]
        self.stdout.write("\n".join(lines))
