"""The Redis that `manage.py devstack` runs against, for development only.

Three kinds, chosen in this order by `choose_redis("auto", ...)`:

- `ExternalRedis`: the server REDIS_URL names; devstack only checks that it answers.
- `PrivateRedisServer`: a `redis-server` from PATH, started on a free port of 127.0.0.1 with no
  persistence, its directory and log under var/redis/, stopped with the stack.
- `FakeRedisServer`: fakeredis's TCP server in a daemon thread of the devstack process, for a
  machine with nothing but Python. Its data lives in memory and goes with the process.
"""

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis

LOOPBACK = "127.0.0.1"
MODES = ("auto", "server", "fake")


class RedisUnavailable(Exception):
    """The chosen Redis could not be started or does not answer; the message says why."""


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def safe_url(url: str) -> str:
    """The URL with any password replaced by ***, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def ping(url: str, timeout: float = 2.0) -> None:
    """Raise redis.RedisError unless the server at `url` answers PING."""
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        client.ping()
    finally:
        client.close()


class DevRedis:
    url: str = ""
    description: str = ""
    ours = True  # started (and stopped) by devstack

    def start(self) -> None:
        """Make the server answer at self.url, or raise RedisUnavailable."""

    def stop(self) -> None:
        """Stop what start() started. Safe to call twice, or after a failed start."""

    def exited(self) -> str | None:
        """Why the Redis we started is gone, or None while it runs (or is not ours)."""
        return None


class ExternalRedis(DevRedis):
    ours = False

    def __init__(self, url: str) -> None:
        self.url = url
        self.description = f"{safe_url(url)} (REDIS_URL from the environment)"

    def start(self) -> None:
        try:
            ping(self.url)
        except redis.RedisError as exc:
            raise RedisUnavailable(
                f"REDIS_URL={safe_url(self.url)} does not answer ({exc}). Start that Redis, or "
                "unset REDIS_URL to let devstack run its own."
            ) from None


class PrivateRedisServer(DevRedis):
    """A redis-server child process of our own, on a free loopback port."""

    def __init__(self, executable: str, var_dir: Path) -> None:
        self.executable = executable
        self.dir = var_dir / "redis"
        self.log = self.dir / "redis.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        # A free port can be taken between our probe and redis-server's bind; try a few.
        for _attempt in range(3):
            port = free_port()
            options = {
                "bind": LOOPBACK,
                "port": port,
                "save": "",  # no snapshots, no append-only file: a throwaway Redis
                "appendonly": "no",
                "dir": self.dir,
                "logfile": self.log,
                "daemonize": "no",
            }
            argv = [self.executable]
            for name, value in options.items():
                argv += [f"--{name}", str(value)]
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                # Its own process group: a Ctrl-C in the terminal reaches devstack only, which
                # stops the web server and the worker before their Redis.
                process_group=0,
            )
            self.url = f"redis://{LOOPBACK}:{port}/0"
            self.description = (
                f"{self.url} (private redis-server, pid {self.process.pid}, log {self.log})"
            )
            if self._wait_until_ready(timeout=10.0):
                return
            self.stop()
        raise RedisUnavailable(
            f"{self.executable} did not start; the end of {self.log}:\n{self._log_tail()}"
        )

    def _wait_until_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                ping(self.url, timeout=0.5)
                return True
            except redis.RedisError:
                time.sleep(0.05)
        return False

    def exited(self) -> str | None:
        if self.process is not None and self.process.poll() is not None:
            return f"redis-server exited with status {self.process.returncode} (see {self.log})"
        return None

    def _log_tail(self, lines: int = 10) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log written)"

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _fake_request_handler():
    """fakeredis's TCP request handler, made to answer an error reply and keep the connection.

    fakeredis 2.40's handler closes the connection after any error reply (an unknown command,
    WRONGTYPE, ...). A real server just sends "-ERR ..." and goes on, and clients rely on it:
    rq asks `INFO server` (which fakeredis lacks) and expects a plain ResponseError back, but
    gets a dropped connection, so the worker loops on "could not connect to Redis". Here the
    error comes back as the reply value, which the handler encodes as "-ERR ..." like any other.
    """
    from fakeredis._clients._tcp_server import TCPFakeRequestHandler

    class ErrorReplyingHandler(TCPFakeRequestHandler):
        def setup(self) -> None:
            super().setup()
            client = self.current_client
            read_response = client.read_response

            def read_response_or_error(**kwargs):
                try:
                    return read_response(**kwargs)
                except redis.ResponseError as exc:
                    return exc

            client.read_response = read_response_or_error

    return ErrorReplyingHandler


class FakeRedisServer(DevRedis):
    """fakeredis's Redis-protocol TCP server, served from a daemon thread of this process."""

    def __init__(self) -> None:
        self.server = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        from fakeredis import TcpFakeServer

        # Port 0: the kernel picks a free port as it binds, so nothing can take it first.
        self.server = TcpFakeServer((LOOPBACK, 0), server_type="redis")
        # Connection threads must not hold the process open, nor be joined on close.
        self.server.daemon_threads = True
        self.server.RequestHandlerClass = _fake_request_handler()
        port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="fakeredis", daemon=True
        )
        self.thread.start()
        self.url = f"redis://{LOOPBACK}:{port}/0"
        self.description = f"{self.url} (in-process fakeredis; data is lost on exit)"
        try:
            ping(self.url)
        except redis.RedisError as exc:
            self.stop()
            raise RedisUnavailable(
                f"The in-process fakeredis server does not answer: {exc}"
            ) from None

    def stop(self) -> None:
        server, self.server = self.server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()

    def exited(self) -> str | None:
        if self.thread is not None and not self.thread.is_alive():
            return "the in-process fakeredis server stopped"
        return None


def choose_redis(mode: str, var_dir: Path, environ=os.environ) -> DevRedis:
    """The Redis for `mode`: "auto" (REDIS_URL, else redis-server on PATH, else fakeredis),
    "server" (a private redis-server, required) or "fake" (fakeredis)."""
    if mode not in MODES:
        raise RedisUnavailable(f"Unknown Redis mode {mode!r}; use one of {', '.join(MODES)}.")
    if mode == "auto" and environ.get("REDIS_URL"):
        return ExternalRedis(environ["REDIS_URL"])
    if mode in ("auto", "server"):
        executable = shutil.which("redis-server", path=environ.get("PATH"))
        if executable:
            return PrivateRedisServer(executable, var_dir)
        if mode == "server":
            raise RedisUnavailable(
                "No redis-server on PATH. Install it (apt-get install redis-server) or use "
                "the in-process fakeredis (--redis=fake)."
            )
    return FakeRedisServer()
