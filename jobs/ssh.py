"""Strict SSH: the only module that imports paramiko.

Host keys are pinned (the host's trusted key is the only one accepted, `RejectPolicy` for
anything else); the private key comes decrypted from the caller and is never logged. A script
goes to the remote `bash -s` on stdin, under the remote `timeout`, so nothing of it is in a
command line. The first line the remote shell writes to stderr is its session id, which lets a
second channel kill the whole session's processes on cancel.
"""

import base64
import hashlib
import io
import re
import select
import shlex
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import paramiko

HOST_KEY_TYPES = [
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
]
_KEY_CLASSES = {
    "ssh-ed25519": paramiko.Ed25519Key,
    "ecdsa": paramiko.ECDSAKey,
    "rsa": paramiko.RSAKey,
}
SID_MARKER = b"REMORA-SID "
READ_SIZE = 65536
KILL_GRACE = 5  # seconds between the remote timeout's TERM and its KILL


class SSHFailure(Exception):
    """A failure in words, with a short kind: unreachable, auth, host_key_unknown,
    host_key_mismatch, connection_lost, protocol."""

    def __init__(self, kind: str, message: str, seen_key: str = ""):
        super().__init__(message)
        self.kind = kind
        self.seen_key = seen_key


@dataclass(frozen=True)
class Target:
    address: str
    port: int
    user: str
    host_key: str  # "type base64", the pinned key
    private_key: str  # OpenSSH text, decrypted just for this connection
    key_type: str

    @property
    def known_hosts_name(self) -> str:
        return self.address if self.port == 22 else f"[{self.address}]:{self.port}"


@dataclass
class Outcome:
    exit_code: int | None
    timed_out: bool = False
    cancelled: bool = False


def _socket(address: str, port: int, timeout: float) -> socket.socket:
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except TimeoutError:
        raise SSHFailure("unreachable", f"unreachable: no answer from {address}:{port}") from None
    except OSError as exc:
        raise SSHFailure(
            "unreachable", f"unreachable: {address}:{port}: {exc.strerror or exc}"
        ) from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    return sock


def _public_key(line: str) -> paramiko.PKey:
    kind, blob = line.split()[:2]
    return paramiko.PKey.from_type_string(kind, base64.b64decode(blob))


def _private_key(text: str, key_type: str) -> paramiko.PKey:
    family = "ssh-ed25519" if key_type == "ssh-ed25519" else key_type.split("-")[0]
    cls = _KEY_CLASSES.get(family)
    if cls is None:
        raise SSHFailure("auth", f"authentication failed: unsupported key type {key_type}")
    return cls.from_private_key(io.StringIO(text))


def scan_host_key(address: str, port: int, timeout: float = 10.0) -> str:
    """Fetch the host's key ("type base64") without authenticating or trusting it."""
    sock = _socket(address, port, timeout)
    transport = paramiko.Transport(sock)
    transport.get_security_options().key_types = HOST_KEY_TYPES
    try:
        transport.start_client(timeout=timeout)
        key = transport.get_remote_server_key()
        return f"{key.get_name()} {key.get_base64()}"
    except (paramiko.SSHException, EOFError, OSError, ValueError) as exc:
        # Whatever answered is not an SSH server we can read a key from (or it hung up).
        why = str(exc) or type(exc).__name__
        raise SSHFailure("protocol", f"SSH handshake failed: {why}") from None
    finally:
        transport.close()


def connect(target: Target, timeout: float = 10.0) -> paramiko.SSHClient:
    if not target.host_key:
        raise SSHFailure(
            "host_key_unknown",
            "host key not trusted yet: scan the host and have a zone admin trust its key",
        )
    client = paramiko.SSHClient()
    client.get_host_keys().add(
        target.known_hosts_name, target.host_key.split()[0], _public_key(target.host_key)
    )
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    sock = _socket(target.address, target.port, timeout)
    try:
        client.connect(
            target.address,
            port=target.port,
            username=target.user,
            pkey=_private_key(target.private_key, target.key_type),
            sock=sock,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            allow_agent=False,
            look_for_keys=False,
        )
    except paramiko.BadHostKeyException as exc:
        client.close()
        seen = f"{exc.key.get_name()} {exc.key.get_base64()}"
        raise SSHFailure(
            "host_key_mismatch", "host key changed: refusing to connect", seen
        ) from None
    except paramiko.AuthenticationException:
        client.close()
        raise SSHFailure("auth", f"authentication failed for {target.user}") from None
    except paramiko.SSHException as exc:
        client.close()
        if "not found in known_hosts" in str(exc):
            raise SSHFailure("host_key_unknown", "host key not trusted: refusing") from None
        raise SSHFailure("protocol", f"SSH failed: {exc}") from None
    except OSError as exc:
        client.close()
        raise SSHFailure("unreachable", f"unreachable: {exc}") from None
    client.get_transport().set_keepalive(5)
    return client


# Warm connections, kept by the (non-forking) worker between runs: a run then costs one new
# channel, not a TCP + key exchange + authentication. A connection is lent to one run at a time
# and is only ever reused for the same address, user, pinned host key and private key.
POOL_IDLE_SECONDS = 300
_pool: dict[tuple, tuple[paramiko.SSHClient, float]] = {}
_pool_lock = threading.Lock()


def _pool_key(target: Target) -> tuple:
    secret = hashlib.sha256(target.private_key.encode()).hexdigest()
    return (target.address, target.port, target.user, target.host_key, secret)


def borrow(
    target: Target, on_connect: Callable[[str], None] | None = None
) -> tuple[paramiko.SSHClient, bool]:
    """A connected client for `target`, and whether it came warm from the pool.

    `on_connect` hears "connecting to …" before a new connection is made, and "" once it is.
    """
    now = time.monotonic()
    with _pool_lock:
        for key, (client, since) in list(_pool.items()):
            if now - since > POOL_IDLE_SECONDS:
                del _pool[key]
                client.close()
        entry = _pool.pop(_pool_key(target), None)
    if entry is not None:
        client = entry[0]
        transport = client.get_transport()
        if transport is not None and transport.is_active():
            return client, True
        client.close()
    if on_connect:
        on_connect(f"connecting to {target.address}:{target.port}")
    client = connect(target)
    if on_connect:
        on_connect("")
    return client, False


def give_back(target: Target, client: paramiko.SSHClient) -> None:
    """Return a healthy client to the pool (a broken one is closed)."""
    transport = client.get_transport()
    if transport is None or not transport.is_active():
        client.close()
        return
    with _pool_lock:
        old = _pool.pop(_pool_key(target), None)
        _pool[_pool_key(target)] = (client, time.monotonic())
    if old is not None:
        old[0].close()


def remote_command(
    timeout: int, dry_run: bool, as_root: bool = False, run: str = "", lock: str = ""
) -> str:
    """The remote shell that reads the script on stdin. A recipe that changes the system runs
    it as root through the SSH user's passwordless sudo (`sudo -n`: never a password prompt).

    Given the run's token (`run`), the shell on the host marks every process of the run with it
    (REMORA_RUN in their environment, kept by children that leave the session), and writes the
    script's exit status to a file when it ends, also when this console is no longer listening
    (a worker died): `run_record` reads it back. With `lock`, the run first takes the host's
    lock (`flock` on a file under /run/lock) and holds it for as long as its command lives, so
    two host-changing commands never run at once on a host, whatever happened to the console.
    `lock` names the host as the console knows it (one lock per host of the inventory).
    """
    marker = f"printf '{SID_MARKER.decode()}%s\\n' \"$$\" >&2; "
    if not run or dry_run:
        runner = "bash -n" if dry_run else "bash -s"
        if as_root and not dry_run:
            runner = f"sudo -n {runner}"
        return marker + f"exec timeout --kill-after={KILL_GRACE} {int(timeout)} {runner}"
    token = _token(run)
    # sudo resets the environment: the mark is handed on explicitly.
    runner = f"sudo -n env REMORA_RUN={token} bash -s" if as_root else "bash -s"
    name = _token(lock.replace(".", "-")) if lock else ""
    lockfile, holder = f'"$d/remora-{name}.lock"', f'"$d/remora-{name}.holder"'
    locking = (
        f"if [ -w {lockfile} ] || [ ! -e {lockfile} ]; then exec 9>>{lockfile}; "
        f"else exec 9<{lockfile}; fi; "
        "if ! flock -n 9; then "
        "printf 'remora: waiting for the host: a command of %s still runs here\\n' "
        f'"$(cat {holder} 2>/dev/null || echo another run)" >&2; '
        f"flock -w {int(timeout)} 9 || {{ printf 'remora: the host stayed busy for {int(timeout)} "
        "s; nothing was run\\n' >&2; exit 75; }; fi; "
        f"{{ echo {token} >{holder}; }} 2>/dev/null; "
        if lock
        else ""
    )
    return (
        marker + f"REMORA_RUN={token}; export REMORA_RUN; "
        f"d=/run/lock; [ -d $d ] && [ -w $d ] || d=/tmp; {locking}"
        # Exit records older than a week are no longer asked for (/run/lock is also emptied at
        # boot).
        "find \"$d\" -maxdepth 1 -name 'remora-*.exit' -mtime +7 -delete 2>/dev/null; "
        # (The script does not inherit the lock: a daemon it leaves behind must not hold it.)
        f"timeout --kill-after={KILL_GRACE} {int(timeout)} {runner} 9>&-; rc=$?; "
        f'{{ echo $rc >"$d/remora-{token}.exit"; }} 2>/dev/null; exit $rc'
    )


def _token(run: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", run):
        raise ValueError(f"not a run token: {run!r}")
    return run


def _marked(token: str) -> str:
    """Shell that prints the ids of the processes marked with the run's token."""
    return (
        "{ for p in /proc/[0-9]*; do "
        "tr '\\000' '\\n' <\"$p/environ\" 2>/dev/null | "
        f'grep -qx REMORA_RUN={_token(token)} && echo "${{p#/proc/}}"; done; true; }}'
    )


def kill_session(
    client: paramiko.SSHClient, sid: int, as_root: bool = False, run: str = ""
) -> None:
    """Kill every process of the remote session `sid` (the run's shell and its children; as
    root when the script ran as root), and every process marked with the run's token (those
    that left the session: `setsid cmd &`)."""
    sudo = "sudo -n " if as_root else ""
    parts = []
    if sid:  # (0 would be pkill's own session)
        parts.append(f"{sudo}pkill -TERM -s {int(sid)}; sleep 1; {sudo}pkill -KILL -s {int(sid)}")
    if run:
        parts.append(f"{sudo}sh -c {shlex.quote(_kill_marked(run))}")
    if not parts:
        return
    command = "; ".join(parts) + "; true"
    try:
        chan = client.get_transport().open_session(timeout=10)
        chan.exec_command(command)
        chan.recv_exit_status()
        chan.close()
    except (paramiko.SSHException, OSError):
        pass


def _kill_marked(token: str) -> str:
    return (
        f"{_marked(token)} | xargs -r kill -TERM 2>/dev/null; sleep 1; "
        f"{_marked(token)} | xargs -r kill -KILL 2>/dev/null; true"
    )


@dataclass(frozen=True)
class RunRecord:
    """What the host knows of a run: its exit status (None: not ended, or never recorded) and
    whether processes of it still live."""

    exit_code: int | None
    alive: bool


def run_record(client: paramiko.SSHClient, run: str, as_root: bool = False) -> RunRecord:
    """Read back a run's exit status file and look for its processes on the host."""
    token = _token(run)
    sudo = "sudo -n " if as_root else ""
    script = (
        "d=/run/lock; [ -d $d ] && [ -w $d ] || d=/tmp; "
        f'printf \'exit=%s\\n\' "$(cat "$d/remora-{token}.exit" 2>/dev/null)"; '
        f"printf 'alive=%s\\n' \"$({sudo}sh -c {shlex.quote(_marked(token))} | head -n1)\""
    )
    chan = client.get_transport().open_session(timeout=10)
    chan.exec_command(script)
    text = b""
    while not chan.exit_status_ready() or chan.recv_ready():
        text += chan.recv(READ_SIZE)
    chan.close()
    found = dict(line.split("=", 1) for line in text.decode().splitlines() if "=" in line)
    code = found.get("exit", "").strip()
    return RunRecord(int(code) if code.lstrip("-").isdigit() else None,
                     bool(found.get("alive", "").strip()))  # fmt: skip


def kill_run(client: paramiko.SSHClient, run: str, as_root: bool = False) -> None:
    """Kill every process of a run that still lives on the host (a person decided so)."""
    sudo = "sudo -n " if as_root else ""
    chan = client.get_transport().open_session(timeout=10)
    chan.exec_command(f"{sudo}sh -c {shlex.quote(_kill_marked(run))}")
    chan.recv_exit_status()
    chan.close()


def run_script(
    client: paramiko.SSHClient,
    script: str,
    *,
    timeout: int,
    on_output: Callable[[str, bytes], None],
    should_cancel: Callable[[], bool],
    dry_run: bool = False,
    as_root: bool = False,
    run: str = "",
    lock: str = "",
) -> Outcome:
    """Run `script` and stream its output to `on_output("out"|"err", data)` as it arrives.
    `run` and `lock`: see `remote_command`.

    `should_cancel` is polled several times a second; when it says yes, the remote session's
    processes are killed. A connection that drops raises SSHFailure("connection_lost").
    """
    transport = client.get_transport()
    try:
        chan = transport.open_session(timeout=10)
        chan.exec_command(remote_command(timeout, dry_run, as_root, run, lock))
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise SSHFailure(
            "stale", f"the connection broke before the script started: {exc}"
        ) from None
    chan.sendall(script.encode())
    chan.shutdown_write()
    sid: int | None = None
    err_head = b""
    deadline = time.monotonic() + timeout + KILL_GRACE + 10
    cancelled = timed_out = False
    try:
        while True:
            readable, _, _ = select.select([chan], [], [], 0.1)
            got = False
            while chan.recv_ready():
                data = chan.recv(READ_SIZE)
                if data:
                    on_output("out", data)
                    got = True
            while chan.recv_stderr_ready():
                data = chan.recv_stderr(READ_SIZE)
                if not data:
                    break
                got = True
                if sid is None:
                    err_head += data
                    if b"\n" not in err_head and len(err_head) < 64:
                        continue
                    line, _, rest = err_head.partition(b"\n")
                    if line.startswith(SID_MARKER):
                        sid = int(line[len(SID_MARKER) :].strip() or 0)
                        data = rest
                    else:
                        sid, data = 0, err_head
                if data:
                    on_output("err", data)
            # The exit status can arrive before the last data (sshd sends it while output still
            # waits for window space): the run is over at end of file, not at the exit status.
            ended = chan.closed or (chan.exit_status_ready() and chan.eof_received)
            if ended and not chan.recv_ready() and not chan.recv_stderr_ready():
                break
            if not got and not readable and not transport.is_active():
                raise SSHFailure("connection_lost", "connection lost while the script was running")
            if not cancelled and should_cancel():
                cancelled = True
                if sid:
                    kill_session(client, sid, as_root, run)
            if not timed_out and time.monotonic() > deadline:
                timed_out = True
                if sid:
                    kill_session(client, sid, as_root, run)
    except SSHFailure:
        raise
    except BaseException:
        # The worker is being stopped (a cold shutdown, its job's time limit) in the middle of
        # the run: the command must not go on alone on the host.
        if sid:
            kill_session(client, sid, as_root, run)
        raise
    status = chan.recv_exit_status()
    chan.close()
    if status == -1 and not (cancelled or timed_out) and not transport.is_active():
        raise SSHFailure("connection_lost", "connection lost while the script was running")
    if status == 124 or (status == 137 and not cancelled):
        timed_out = True
    if timed_out and run:  # `timeout` ends the script's group; what left it is ended here
        kill_session(client, 0, as_root, run)
    return Outcome(exit_code=status, timed_out=timed_out, cancelled=cancelled)


def quote(value: object) -> str:
    """Quote one value for the shell (the recipes' only way to put a value into a script)."""
    return shlex.quote(str(value))
