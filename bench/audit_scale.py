"""The audit log at scale: a million generated events, measured as an auditor sees them.

Fills the MariaDB database `remora_bench_audit` with `manage.py remora_scale_data` (N events,
N/10 runs, 1,000 hosts; kept between runs and reused when it already holds N generated events,
recreated with `--fresh`), then measures through Django's test client, signed in as an auditor
with a verified second factor, DEBUG off and no off-box copy (the machine's load average is
printed: other work on it shows in the p95s):

- server time p50/p95 (≥ 30 requests each) of the review page: unfiltered, by zone, by person,
  by kind (group=run), a page 90% back (keyset), by host, free-text search (a host name; a
  word that is nowhere, the worst case), refusals, provisioning runs (the run kind) alone and
  with a zone and the last week; a page over 100 ms prints its slowest query's EXPLAIN;
  the deep page's query with OFFSET, the baseline;
- the CSV export of everything: rows/s, and its peak memory beside a ~10k-row export (flat:
  about equal), as tracemalloc's peak and the growth of the process's peak RSS;
- verify_chain() over everything: seconds and events/s;
- SQL queries for /audit/ with 10 events (`remora_bench_audit_small`, recreated) and with N.

Targets (2 cores): pages p95 < 100 ms, verify ≤ 10 s, export memory flat, queries equal.

Run: .venv/bin/python bench/audit_scale.py [--events N] [--fresh] [--repeat 30]
"""

import argparse
import io
import os
import secrets
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB, SMALL = "remora_bench_audit", "remora_bench_audit_small"
PAGE_TARGET_MS, VERIFY_TARGET_S = 100, 10


def prepare(events: int, fresh: bool) -> bool:
    """Recreate the small database; keep the big one if it holds `events` generated events.
    Returns whether the big one must be filled."""
    import pymysql

    conn = pymysql.connect(host="127.0.0.1", user="root", password="")
    cur = conn.cursor()
    reuse = False
    if not fresh:
        try:
            cur.execute(f"SELECT sequence FROM {DB}.audit_chainhead WHERE id = 1")  # noqa: S608
            have = (cur.fetchone() or (0,))[0]
            cur.execute(f"SELECT COUNT(*) FROM {DB}.hosts_host WHERE name = 'gen-host-0001'")  # noqa: S608
            reuse = have >= events and cur.fetchone()[0] == 1
        except pymysql.MySQLError:
            pass
    for name in [SMALL] if reuse else [SMALL, DB]:
        cur.execute(f"DROP DATABASE IF EXISTS {name}")
        cur.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    conn.close()
    os.environ["DATABASE_URL"] = f"mysql://root:@127.0.0.1:3306/{DB}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "remora_admin.settings"
    os.environ["REMORA_AUDIT_SINK"] = "none"  # no copy off the box: a million lines
    for key, value in (
        ("DEBUG", "false"),
        ("ALLOWED_HOSTS", "testserver"),
        ("SECURE_SSL_REDIRECT", "false"),
        ("SECRET_KEY", secrets.token_hex(32)),
        # DEBUG off serves collected, hashed static files (collected in main(), as on a server).
        ("STATIC_ROOT", tempfile.mkdtemp(prefix="remora-bench-static-")),
    ):
        os.environ.setdefault(key, value)
    return not reuse


def use(name: str) -> None:
    """Point the default connection at another database (and migrate it)."""
    from django.core.management import call_command
    from django.db import connections

    connections.close_all()
    connections["default"].settings_dict["NAME"] = name
    call_command("migrate", verbosity=0)


def auditor():
    """A test client signed in as an auditor whose session proved the second factor."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from remora_admin.access.models import Grant, Role
    from tests.access.helpers import authenticator, sign_in

    user, made = get_user_model().objects.get_or_create(username="bench-auditor")
    if made:
        Grant.objects.create(user=user, role=Role.AUDITOR, reason="benchmark")
        authenticator(user)
    return sign_in(user, verified=True, client=Client())


def get(client, path: str):
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response


def queries(client, path: str = "/audit/") -> tuple[int, list[dict]]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    get(client, path)  # warm: the session's first request may differ
    with CaptureQueriesContext(connection) as captured:
        get(client, path)
    return len(captured), captured.captured_queries


def timed(fn, repeat: int) -> tuple[float, float]:
    fn()
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples), statistics.quantiles(samples, n=20)[18]


def peak_rss_kb() -> int:
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))


def export(client, path: str, traced: bool) -> tuple[int, float, float]:
    """Stream an export to the end: (rows, seconds, peak MB: tracemalloc's or RSS growth)."""
    Path("/proc/self/clear_refs").write_text("5")  # the peak RSS starts again from here
    before = peak_rss_kb()
    if traced:
        tracemalloc.start()
    began, rows = time.perf_counter(), -1  # the header is no event
    response = get(client, path)
    for _ in response.streaming_content:
        rows += 1  # one chunk per CSV line
    response.close()
    elapsed = time.perf_counter() - began
    if traced:
        peak = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
    else:
        peak = (peak_rss_kb() - before) / 1024
    return rows, elapsed, peak


def explain(captured: list[dict]) -> str:
    from django.db import connection

    slowest = max(captured, key=lambda q: float(q["time"]))
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {slowest['sql']}")
        names = [c[0] for c in cursor.description]
        plan = [", ".join(f"{n}={v}" for n, v in zip(names, row, strict=True) if v is not None)
                for row in cursor.fetchall()]  # fmt: skip
    sql, ms = slowest["sql"], float(slowest["time"]) * 1000
    where = sql[sql.find(" FROM ") :][:300]
    return f"    slowest query ({ms:.0f} ms): ...{where}\n    EXPLAIN: " + "\n      ".join(plan)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--fresh", action="store_true", help="drop and fill the database again")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    fill = prepare(args.events, args.fresh)
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    from hosts.topology import load_topology
    from remora_admin.audit.chain import verify_chain
    from remora_admin.audit.models import AuditEvent, ChainHead

    call_command("collectstatic", interactive=False, verbosity=0)
    use(SMALL)
    small_client = auditor()  # its sign-in is the first event; the generator writes 9 more
    call_command("remora_scale_data", events=9, runs=1, hosts=1, people=2, stdout=io.StringIO())
    small_events = AuditEvent.objects.count()
    small_queries, _ = queries(small_client)

    use(DB)
    generated = ""
    if fill:
        load_topology()  # beamrider and sunjammer, as on a real console
        began = time.monotonic()
        call_command("remora_scale_data", events=args.events, runs=args.events // 10)
        took = time.monotonic() - began
        generated = f"generated in {took:.0f} s: {args.events / took:,.0f} events/s"
        print(generated)
    client = auditor()
    total = ChainHead.objects.get(id=1).sequence
    deep = total // 10  # a page 90% of the way back
    load = "load average " + " ".join(f"{n:.1f}" for n in os.getloadavg())
    print(f"database {DB}: {total:,} events; {load}")
    week = (datetime.now(UTC) - timedelta(days=7)).date().isoformat()
    pages = ["/audit/", "/audit/?zone=beamrider", "/audit/?person=gen-user-01",
             "/audit/?group=run", f"/audit/?before={deep}", "/audit/?host=gen-host-0042",
             "/audit/?q=gen-host-0042", "/audit/?q=nowhere-at-all", "/audit/?outcome=refused",
             "/audit/?kind=provision",
             f"/audit/?zone=beamrider&kind=provision&since={week}",
             # The other pages an auditor opens, over the same 1,000 hosts and N/10 runs.
             "/runs/", "/runs/?state=failed", "/runs/?host=gen-host-0042", "/",
             "/hosts/"]  # fmt: skip
    results = []
    for path in pages:
        p50, p95 = timed(lambda path=path: get(client, path), args.repeat)
        results.append((path, f"p50 {p50:7.1f} ms   p95 {p95:7.1f} ms", p95 < PAGE_TARGET_MS))
        print(f"{path:34} {results[-1][1]}")
        if p95 >= PAGE_TARGET_MS:
            print(explain(queries(client, path)[1]))

    def offset_baseline():  # what an OFFSET paginator does for the deep page
        list(AuditEvent.objects.order_by("-sequence")[total - deep : total - deep + 50])

    offset = timed(offset_baseline, 5)[0]
    day = (timezone.now() - timedelta(days=90)).date()
    some = f"/audit/export.csv?since={day}&until={day + timedelta(days=1)}"  # 2 days: ~10k
    rows, seconds, rss = export(client, "/audit/export.csv", traced=False)
    some_rows, _, some_rss = export(client, some, traced=False)
    some_traced, all_traced = (
        export(client, p, traced=True)[2] for p in (some, "/audit/export.csv")
    )
    began = time.monotonic()
    report = verify_chain()
    verify_s = time.monotonic() - began
    big_queries, _ = queries(client)

    flat = all_traced <= some_traced * 1.5 + 1
    verified = report.ok and verify_s <= VERIFY_TARGET_S
    table = [
        *((path, text, "ok" if ok else "OVER") for path, text, ok in results),
        ("OFFSET query alone, deep page", f"p50 {offset:7.1f} ms", "baseline"),
        ("export all (CSV)", f"{rows / seconds:,.0f} rows/s ({rows:,} in {seconds:.1f} s)", ""),
        ("export memory, tracemalloc peak", f"{all_traced:.1f} MB all, {some_traced:.1f} MB "
         f"for {some_rows:,} rows", "flat" if flat else "NOT FLAT"),
        ("export, growth of peak RSS", f"{max(rss, 0):.1f} MB all, {max(some_rss, 0):.1f} MB "
         f"for {some_rows:,} rows", ""),
        ("verify_chain", f"{verify_s:.1f} s ({report.checked / verify_s:,.0f} events/s), "
         f"intact={report.ok}", "ok" if verified else "OVER"),
        ("SQL queries for /audit/", f"{small_queries} with {small_events} events, "
         f"{big_queries} with {total:,}", "equal" if small_queries == big_queries else "DIFFER"),
    ]  # fmt: skip
    print(f"\n== Summary: {total:,} events ({generated or 'reused'}); {load} at the start")
    for name, value, verdict in table:
        print(f"  {name:34} {value:52} {verdict}")


if __name__ == "__main__":
    main()
