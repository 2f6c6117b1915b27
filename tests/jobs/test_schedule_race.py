"""Exactly once across real processes: three scheduler processes tick at the same instant
against MariaDB, over twenty schedules all due at the same minute; each schedule's time is
decided once and launches once."""

import json
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import JobRun, Occurrence, Schedule
from tests.jobs.worker_process import ROOT, worker_env

pytestmark = pytest.mark.django_db(transaction=True)

TICKER = """
import json, sys, time
import django
django.setup()
from jobs.schedules import tick
start = float(sys.argv[1])
while time.time() < start:
    time.sleep(0.0005)
decided = {}
for _ in range(5):
    for outcome, n in tick().items():
        decided[outcome] = decided.get(outcome, 0) + n
print(json.dumps(decided))
"""


def test_three_tickers_racing_decide_each_due_time_exactly_once(alice, lab_host):
    now = timezone.now()
    minute = now.replace(second=0, microsecond=0)
    for number in range(20):
        schedule = Schedule.objects.create(
            name=f"race-{number}", recipe="host_health", owner=alice,
            cron=f"{minute.minute} {minute.hour} * * *",  # this minute, then not for a day
            checked_until=minute - timedelta(seconds=30), skip_while_running=False,
        )  # fmt: skip
        schedule.hosts.add(lab_host)
    start = time.time() + 3.0  # every process is loaded by then; they begin together
    tickers = [
        subprocess.Popen(
            [sys.executable, "-c", TICKER, str(start)],
            cwd=ROOT,
            env=worker_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(3)
    ]
    outputs = [t.communicate(timeout=60) for t in tickers]
    for ticker, (_, err) in zip(tickers, outputs, strict=True):
        assert ticker.returncode == 0, err[-2000:]

    occurrences = Occurrence.objects.filter(scheduled_for=minute)
    assert occurrences.count() == 20
    assert set(occurrences.values_list("outcome", flat=True)) == {"launched"}
    assert JobRun.objects.count() == 20  # one run per schedule, not one per ticker
    assert len(set(JobRun.objects.values_list("batch", flat=True))) == 20
    launched = [json.loads(out.strip().splitlines()[-1]).get("launched", 0) for out, _ in outputs]
    assert sum(launched) == 20
    print(f"\nthree tickers racing: {launched} launches each, 20 in all, 0 twice")
