"""A pool of worker processes under one supervisor: many runs at once, each in its own process.

`manage.py remora_worker --concurrency N` (default `REMORA_WORKER_CONCURRENCY`) starts one
supervisor that forks N workers, each a whole `RemoraWorker` (RQ's SimpleWorker: it runs its
runs in its own process and keeps its SSH connections warm) exactly as a lone
`remora_worker` runs. One launch on 50 hosts (`jobs.launch.launch_many`) is 50 jobs on the
queue; N idle workers take N of them at once, so what a run spends waiting (the SSH handshake,
the commands on the host) overlaps. What the runs share does not: the machine's cores, and the
audit chain's lock that each run's events take in turn (bench/README.md, `fanout.py`).

Why processes, not threads in one worker. Everything that keeps runs honest assumes one run per
process, and holds unchanged with processes: the run's claim and its heartbeats (the reaper
finds a dead worker by a run whose heartbeat stopped: a process killed, frozen or out of memory
takes only its own run with it); RQ's job timeout (a SIGALRM, delivered to the main thread
only); the cold shutdown (RQ raises SystemExit in the main thread: the run in progress kills its
command on the host and ends failed; in a thread pool the other runs would go on unseen); and
RQ's worker registry, by which the reconciler tells a live worker from a dead one. paramiko is
partly pure Python (key exchange, packet handling) and a run's output is written to the
database in Python: threads would share one interpreter lock on a 2-core machine. The price is
memory: each worker is a whole Django process. The supervisor imports everything first and
forks, so the children share those pages until they write them (`gc.freeze()` keeps the
collectors of the workers off them, as Python's documentation advises for fork without exec);
the figures are in bench/README.md (bench/fanout.py).

Why not RQ's own `rq.worker_pool.WorkerPool` (rq 2.x): it starts every worker with RQ's
scheduler on (ours runs in the ticker), builds the workers and their Redis connection itself
(not django-rq's queues and job class, nor the `rqworker` command a lone worker runs), passes
every signal on as SIGINT, and leaves its workers running when it is killed itself.

Here:

- Each worker is the same `rqworker` command a lone worker runs, so a worker's life (its
  heartbeats, STOPPED handling, the host lines, cancel, redelivery) is the one already tested.
- A signal to the supervisor (SIGTERM, SIGINT) goes on to every worker as it came: the first
  is RQ's warm shutdown (each worker ends its run, takes no new one), a second one at least a
  second later is the cold shutdown (each worker kills its run's command, marks the run failed,
  exits); signals sooner or after those two are not passed on. A Ctrl-C reaches the supervisor
  and the workers both; RQ ignores a second signal within a second.
- The supervisor exits once every worker has: 0, or the first non-zero exit status of a worker.
- A worker that dies while the pool is not stopping (killed, out of memory) is replaced (its
  run, if any, is the reaper's). One that dies within 10 s of its start is replaced after a
  growing pause; five in a row like that stop the pool with exit status 1 (it cannot work, and
  systemd should say so).
- A worker whose supervisor dies (SIGKILL) gets SIGTERM (Linux parent-death signal): a warm
  shutdown, its run ends normally. A SIGKILL to the process group kills them all at once, as it
  kills a lone worker.
- With `--burst` every worker stops once the queue is empty, and none is replaced.
"""

import contextlib
import ctypes
import gc
import logging
import os
import signal
import time
from collections.abc import Callable

from django.db import connections

log = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
QUICK_DEATH = 10.0  # seconds: a worker that dies this soon after its start could not work
GIVE_UP_AFTER = 5  # quick deaths in a row
BACKOFF = 1.0  # seconds, doubled for each quick death in a row (at most 30)
PR_SET_PDEATHSIG = 1


class Pool:
    """`size` worker processes, each running `work()` (which returns an exit status)."""

    def __init__(self, size: int, work: Callable[[], int | None], *, burst: bool = False):
        if size < 1:
            raise ValueError("a pool has at least one worker")
        self.size = size
        self.work = work
        self.burst = burst
        self.workers: dict[int, float] = {}  # pid -> when it started (monotonic)
        self.stops = 0  # stop signals received
        self.forwarded: list[float] = []  # when stop signals were passed on
        self.status = 0
        self.pid = os.getpid()

    def run(self) -> int:
        """Start the workers, keep them at `size` until a stop signal (or, in burst mode, until
        they are done), then wait for them all. Returns the pool's exit status."""
        # Shared pages: close what a child must not share (database connections) and keep the
        # collector off the objects imported so far (copy-on-write keeps them shared).
        connections.close_all()
        gc.collect()
        gc.freeze()
        previous = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        try:
            for _ in range(self.size):
                if self.stops:  # stopped while starting: no more
                    break
                self._start()
            quick = 0
            while self.workers:
                try:
                    pid, wait_status = os.waitpid(-1, 0)
                except ChildProcessError:
                    break
                started = self.workers.pop(pid, None)
                if started is None:
                    continue
                code = os.waitstatus_to_exitcode(wait_status)
                if self.stops or self.burst:
                    if code in (-signal.SIGTERM, -signal.SIGINT) and self.stops:
                        code = 0  # stopped before it had its own handlers: a clean stop
                    if code and not self.status:
                        self.status = code if code > 0 else 128 - code
                    continue
                lived = time.monotonic() - started
                quick = quick + 1 if lived < QUICK_DEATH else 0
                log.warning(
                    "Worker process %s %s after %.0f s; starting another.",
                    pid,
                    f"was killed by signal {-code}" if code < 0 else f"exited with {code}",
                    lived,
                )
                if quick >= GIVE_UP_AFTER:
                    log.error("%s workers in a row died at start: stopping the pool.", quick)
                    self.status = 1
                    self._on_signal(signal.SIGTERM, None)
                    continue
                if quick:
                    time.sleep(min(30, BACKOFF * 2**quick))  # a signal still stops the pool
                if not self.stops:
                    self._start()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            gc.unfreeze()
        return self.status

    def _on_signal(self, signum: int, frame) -> None:
        # Passed on: the first (warm) and one more at least a second later (cold; RQ ignores a
        # second one sooner). No third: another SystemExit in a worker that is already
        # stopping cold would cut short its clean-up (killing the command, failing the run).
        now = time.monotonic()
        self.stops += 1
        if self.forwarded and (len(self.forwarded) > 1 or now - self.forwarded[0] < 1.0):
            return
        self.forwarded.append(now)
        for pid in list(self.workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def _start(self) -> None:
        # Signals wait until the new worker is in `workers` (the parent) or has its own
        # handlers (the child): none is lost, none runs the parent's handler in the child.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            pid = os.fork()
            if pid == 0:
                self._child()  # never returns
            self.workers[pid] = time.monotonic()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    def _child(self) -> None:
        status = 1
        try:
            for sig in STOP_SIGNALS:
                signal.signal(sig, signal.SIG_DFL)  # until RQ installs its own
            _die_with_parent(self.pid)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
            # What the supervisor froze stays frozen here: a collection that walked those
            # objects would write to (and so copy) every page that holds one.
            status = self.work() or 0
        except SystemExit as exit_:
            status = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        except BaseException:  # noqa: BLE001 - a worker's crash is its exit status, logged
            log.exception("Worker process %s crashed", os.getpid())
        finally:
            logging.shutdown()
            os._exit(status)


def _die_with_parent(parent: int) -> None:
    """Ask Linux for SIGTERM (a warm shutdown) when the supervisor dies; if it already has,
    stop now."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(0)
