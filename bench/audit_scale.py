"""The audit log at scale: page latency and chain verification with many events.

Fills a dedicated MariaDB database (`remora_bench_audit`, kept between runs) with a valid
hash chain of N events (default 1,000,000; `--events` to change), then measures, in one run:

- the audit page's first page and a page deep in the log (keyset paging by sequence), through
  Django's test client as a signed-in superuser, median of 20 requests each;
- the baseline: the same deep page fetched with OFFSET/LIMIT, as a naive paginator would;
- `verify_chain()` over the whole log (events per second).

Run: .venv/bin/python bench/audit_scale.py [--events N]
"""

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB = "remora_bench_audit"


def setup_django() -> None:
    import pymysql

    conn = pymysql.connect(host="127.0.0.1", user="root", password="")
    conn.cursor().execute(f"CREATE DATABASE IF NOT EXISTS {DB} CHARACTER SET utf8mb4")
    conn.close()
    os.environ["DATABASE_URL"] = f"mysql://root:@127.0.0.1:3306/{DB}"
    os.environ.setdefault("DEBUG", "true")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    os.environ["DJANGO_SETTINGS_MODULE"] = "remora_admin.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def fill(target: int) -> None:
    from remora_admin.audit.models import GENESIS_HASH, AuditEvent, ChainHead

    head = ChainHead.objects.get(id=1)
    have = head.sequence
    if have >= target:
        print(f"events: {have:,} already in {DB}")
        return
    started = time.monotonic()
    previous = head.hash if have else GENESIS_HASH
    base = datetime(2026, 1, 1, tzinfo=UTC)
    batch: list[AuditEvent] = []
    actions = ["auth.login", "host.updated", "run.requested", "run.succeeded", "access.denied"]
    for seq in range(have + 1, target + 1):
        event = AuditEvent(
            sequence=seq,
            occurred_at=base + timedelta(seconds=seq),
            actor_name=f"user{seq % 40}",
            action=actions[seq % len(actions)],
            target_type="hosts.host",
            target_id=str(seq % 3 + 1),
            target_repr=("beamrider", "sunjammer", "remora2")[seq % 3],
            zone=("beamrider", "sunjammer")[seq % 2],
            ip="127.0.0.1",
            details={"n": seq},
            previous_hash=previous,
        )
        event.hash = event.compute_hash()
        previous = event.hash
        batch.append(event)
        if len(batch) == 5000:
            AuditEvent.objects.bulk_create(batch)
            batch = []
    if batch:
        AuditEvent.objects.bulk_create(batch)
    ChainHead.objects.filter(id=1).update(sequence=target, hash=previous)
    print(f"events: filled {target - have:,} in {time.monotonic() - started:.0f}s")


def timed(fn, repeat: int = 20) -> float:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    setup_django()
    fill(args.events)

    from django.contrib.auth import get_user_model
    from django.test import Client

    from remora_admin.audit.chain import verify_chain
    from remora_admin.audit.models import AuditEvent

    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"is_superuser": True, "is_staff": True}
    )
    client = Client()
    client.force_login(user)
    total = AuditEvent.objects.count()
    deep = total // 10  # a page 90% of the way back in time

    def first_page():
        assert client.get("/audit/").status_code == 200

    def deep_page():
        assert client.get(f"/audit/?before={deep}").status_code == 200

    def offset_baseline():
        # What an OFFSET paginator does for the same page: skip the newer rows one by one.
        list(AuditEvent.objects.order_by("-sequence")[total - deep : total - deep + 50])

    first = timed(first_page)
    keyset = timed(deep_page)
    offset = timed(offset_baseline, repeat=5)
    print(f"audit page, newest 50 of {total:,}: {first:.1f} ms (median of 20)")
    print(f"audit page, 50 events {total - deep:,} back (keyset): {keyset:.1f} ms")
    print(f"baseline OFFSET query for that page (query alone): {offset:.1f} ms")
    print(f"ratio OFFSET / keyset page: {offset / keyset:.1f}x")
    started = time.monotonic()
    report = verify_chain()
    elapsed = time.monotonic() - started
    print(
        f"verify_chain: {report.checked:,} events in {elapsed:.1f}s "
        f"({report.checked / elapsed:,.0f} events/s), intact={report.ok}"
    )


if __name__ == "__main__":
    main()
