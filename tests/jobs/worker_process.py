"""A real `manage.py remora_worker` process against the test database and Redis."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def worker_env() -> dict[str, str]:
    db = connection.settings_dict
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"mysql://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "TEST_REDIS_URL": settings.REDIS_URL,  # the Redis db this test run uses
        "LOG_LEVEL": "WARNING",
    }


def start_worker(*, burst: bool = False) -> subprocess.Popen:
    command = [sys.executable, "manage.py", "remora_worker", *(["--burst"] if burst else [])]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=worker_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_listening(worker: subprocess.Popen, redis_conn, seconds: float = 20.0) -> None:
    from rq import Worker

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if Worker.all(connection=redis_conn):
            return
        if worker.poll() is not None:
            raise AssertionError(f"the worker exited: {worker.stdout.read().decode()[-2000:]}")
        time.sleep(0.05)
    raise AssertionError("the worker did not start listening")


def stop(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
