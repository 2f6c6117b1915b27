"""Scale data for benchmarks and manual review: hosts, finished runs and a long audit log.

    manage.py remora_scale_data [--events 1000000] [--runs 100000] [--hosts 1000] [--seed 1]

Creates what is missing of the hosts `gen-host-0001`... (spread over the zones `gen-a`,
restricted and asking for approvals, and `gen-b`, created if missing, plus beamrider and
sunjammer when they exist) and of the people `gen-user-01`... (who cannot sign in). Then adds
`--runs` finished runs of the registry's recipes on those hosts, requested by those people over
the last `--days` (180), and chains exactly `--events` audit events through
`audit.log.append_generated`: the new inventory rows' `*.created`; each run's story as the real
code writes it (run.requested with its exact script, run.approved or run.rejected by a second
person where the zone asks for approval, run.started and run.succeeded/failed/timed_out by the
worker, now and then a cancel); and around them sign-ins, sign-outs, refusals and host edits.

Generated history, not changes: runs are written in their final state with bulk_create (no
state machine, no queue) and the events are back-dated. Their times increase with the sequence
within one generation and stay in the past; they append after whatever chain exists (which
still verifies), so on a database with recent events they are older than those before them.
For a database of its own (benchmarks, a demo), never the production console's.
"""

import heapq
import itertools
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from hosts.changes import snapshot
from hosts.models import Host
from remora_admin.access.models import Zone
from remora_admin.audit.log import append_generated

from ...models import JobRun, RunState
from ...recipes import Category, get

S = RunState
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SECOND = 1_000_000  # times are whole microseconds since EPOCH until written
RUN_BATCH = 5000
# The recipes the runs use, how often, and the parameters they were launched with.
RECIPES: list[tuple[str, int, list[dict[str, Any]]]] = [
    ("host_health", 20, [{}]),
    ("disk_usage", 14, [{"threshold": 90}, {"threshold": 80}]),
    ("service_health", 14, [{"service": k, "lag_limit": 60}
                            for k in ("mysql_master", "mysql_replica", "php_frontend", "perlbal")]),
    ("service_status", 10, [{"service": "mysql_master"}, {"service": "nfs_server"}]),
    ("tail_log", 8, [{"log": log, "lines": 100, "grep": grep} for log, grep in
                     (("syslog", ""), ("mysql", "ERROR"), ("apache-error", "PHP Fatal"))]),
    ("service_restart", 6, [{"service": "php_frontend"}, {"service": "perlbal"}]),
    ("service_reload", 5, [{"service": "perlbal"}]),
    ("mariadb_backup", 8, [{"database": "remora", "directory": "/var/backups/remora",
                            "keep": 7}]),
    ("perlbal_pool_status", 4, [{"pool": "remora", "manage_port": 60000}]),
    ("security_upgrades", 5, [{}]),
    ("nfs_exports", 3, [{"files_dir": "/srv/remora/files", "staging_dir": "/srv/remora/staging",
                         "clients": ["10.77.0.21", "10.77.0.22"]}]),
    ("mariadb_promote", 1, [{}]),
]  # fmt: skip
RECIPE_WEIGHTS = list(itertools.accumulate(weight for _, weight, _ in RECIPES))
# The longest a run of each kind takes, in seconds.
LONGEST = {Category.CHECK: 20, Category.OPERATE: 60, Category.MAINTENANCE: 900,
           Category.PROVISION: 1200}  # fmt: skip
AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
)
REASONS = ("planned change, announced on the list", "replica rebuild after the disk swap",
           "ticket #{n}", "as discussed on IRC", "follow-up of the failover test")  # fmt: skip
REJECTIONS = ("wrong host", "not during the release freeze", "needs a backup first")
FAILURES = ("exit status 1", "exit status 2", "exit status 127",
            "unreachable: could not connect to {address}:22 (timed out)",
            "authentication failed for root@{address}")  # fmt: skip
WORKERS = ("remora-worker-1", "remora-worker-2", "remora-worker-3")
# The other events, around the runs, and their weights.
BACKGROUND = (("auth.login", 22), ("auth.2fa_verified", 10), ("auth.logout", 14),
              ("auth.session_expired", 6), ("auth.login_failed", 8), ("access.denied", 12),
              ("host.updated", 10), ("host.host_key_scanned", 4),
              ("auth.reauthenticated", 3))  # fmt: skip
BACKGROUND_WEIGHTS = list(itertools.accumulate(weight for _, weight in BACKGROUND))


def _us(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def _at(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


@dataclass(slots=True)
class Person:
    id: int
    name: str
    ip: str
    agent: str


@dataclass(slots=True, kw_only=True)
class Story:
    """One generated run and what became of it, for its row and its audit events."""

    recipe: str
    host: Host
    params: dict[str, Any]
    script: str
    batch: uuid.UUID
    by: Person
    times: dict[str, int]  # requested, [decided], [started], [cancel], [finished]
    outcome: str  # the state it ended in
    decider: Person | None = None
    reason: str = ""
    exit_code: int | None = None
    error: str = ""
    output_bytes: int = 0
    worker: str = ""
    run: int = 0  # its id, once written

    def events(self) -> list[tuple[int, str]]:
        """(time, action) of each event of its story, in order."""
        t = self.times
        found = [(t["requested"], "run.requested")]
        if self.decider is not None:
            decision = "run.rejected" if self.outcome == S.REJECTED else "run.approved"
            found.append((t["decided"], decision))
        if self.outcome == S.REJECTED:
            return found
        found.append((t["started"], "run.started"))
        if "cancel" in t:
            found.append((t["cancel"], "run.cancel_requested"))
        found.append((t["finished"], f"run.{self.outcome}"))
        return found


@contextmanager
def _created_at_kept():
    """JobRun.created_at is auto_now_add: for back-dated runs, keep the value given."""
    field = JobRun._meta.get_field("created_at")
    field.auto_now_add = False
    try:
        yield
    finally:
        field.auto_now_add = True


class Command(BaseCommand):
    help = "Generate hosts, finished runs and a long audit log (benchmarks, manual review)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--events", type=int, default=1_000_000)
        parser.add_argument("--runs", type=int, default=100_000)
        parser.add_argument("--hosts", type=int, default=1000)
        parser.add_argument("--people", type=int, default=8, help="gen-user-01... (default 8)")
        parser.add_argument("--days", type=int, default=180, help="How far back (default 180).")
        parser.add_argument("--seed", type=int, default=1)

    def handle(self, *args: Any, **options: Any) -> None:
        events, runs = options["events"], options["runs"]
        if min(options["hosts"] - 1, options["people"] - 2, runs, events) < 0:
            raise CommandError("--hosts at least 1, --people at least 2, none negative.")
        self.rng = random.Random(options["seed"])  # noqa: S311 - generated data, not secrets
        self.began = time.monotonic()
        self.end = _us(timezone.now()) - 60 * SECOND
        self.start = self.end - options["days"] * 86400 * SECOND
        self.inventory: list[dict[str, Any]] = []  # the events of the rows created here
        self.scripts: dict[tuple[str, str], str] = {}
        with transaction.atomic():  # refused below: nothing was created
            zones = self._zones()
            self.people = self._people(options["people"])
            self.hosts = self._hosts(options["hosts"], zones)
            span = self.end - self.start - 3600 * SECOND
            stories = [self._story(self.start + 60 * SECOND
                                   + int(span * (n + self.rng.random()) / runs))
                       for n in range(runs)]  # fmt: skip
            told = sum(len(s.events()) for s in stories)
            background = events - len(self.inventory) - told
            if background < 0:
                raise CommandError(
                    f"--events {events} is too few: the runs' stories and the new inventory "
                    f"need {told + len(self.inventory):,} events; ask for more."
                )
        self._write_runs(stories)
        self._say(f"events: chaining {events:,} ({told:,} of runs' stories)")
        timeline = self._progress(self._timeline(stories, background), events)
        self._say(f"events: {append_generated(timeline):,} written")

    # --- Output -----------------------------------------------------------------------------

    def _say(self, text: str) -> None:
        self.stdout.write(f"[{time.monotonic() - self.began:6.1f}s] {text}")

    def _progress(self, rows: Iterator[dict[str, Any]], total: int) -> Iterator[dict[str, Any]]:
        began, step = time.monotonic(), max(total // 10, 50_000)
        for n, row in enumerate(rows, 1):
            yield row
            if n % step == 0:
                rate = n / max(time.monotonic() - began, 1e-9)
                self._say(f"events: {n:,} of {total:,} ({rate:,.0f}/s)")

    # --- The inventory ----------------------------------------------------------------------

    def _created(self, obj: Any, zone: str, after: dict[str, Any]) -> None:
        self.inventory.append({
            "action": f"{obj._meta.model_name}.created", "actor_name": "system",
            "target_type": obj._meta.label_lower, "target_id": str(obj.pk),
            "target_repr": str(obj), "zone": zone, "details": {"after": after, "generated": True},
        })  # fmt: skip

    def _zones(self) -> list[Zone]:
        wanted = {
            "gen-a": {"sensitivity": Zone.Sensitivity.RESTRICTED, "requires_approval": True,
                      "description": "Generated (remora_scale_data): restricted, approvals."},
            "gen-b": {"description": "Generated (remora_scale_data)."},
        }  # fmt: skip
        zones = []
        for name, values in wanted.items():
            zone, made = Zone.objects.get_or_create(name=name, defaults=values)
            if made:
                self._created(zone, zone.name, snapshot(zone))
            zones.append(zone)
        return zones + list(Zone.objects.filter(name__in=["beamrider", "sunjammer"]))

    def _people(self, count: int) -> list[Person]:
        User = get_user_model()
        people = []
        for n in range(1, count + 1):
            name = f"gen-user-{n:02d}"
            user = User.objects.filter(username=name).first()
            if user is None:
                user = User(username=name, email=f"{name}@example.org", first_name=f"Gen {n}")
                user.set_unusable_password()
                user.save()
                self._created(user, "", {"username": name})
            people.append(Person(user.pk, name, f"198.51.100.{10 + n}", AGENTS[n % len(AGENTS)]))
        return people

    def _hosts(self, count: int, zones: list[Zone]) -> list[Host]:
        names = [f"gen-host-{n:04d}" for n in range(1, count + 1)]
        have = set(Host.objects.filter(name__in=names).values_list("name", flat=True))
        Host.objects.bulk_create(
            [Host(name=name, address=f"10.77.{n // 250}.{n % 250 + 1}", zone=zones[n % len(zones)],
                  description="Generated (remora_scale_data).")
             for n, name in enumerate(names) if name not in have],
            batch_size=1000,
        )  # fmt: skip
        hosts = list(Host.objects.filter(name__in=names).select_related("zone").order_by("name"))
        for host in hosts:
            if host.name not in have:
                self._created(host, host.zone.name, snapshot(host))
        self._say(f"hosts: {len(hosts) - len(have):,} created, {len(hosts):,} in all")
        return hosts

    # --- Runs -------------------------------------------------------------------------------

    def _story(self, created: int) -> Story:
        """A run requested at `created` and how it went (times in microseconds)."""
        rng = self.rng
        name, _, variants = rng.choices(RECIPES, cum_weights=RECIPE_WEIGHTS)[0]
        recipe, params = get(name), rng.choice(variants)
        key = (name, repr(params))
        if key not in self.scripts:
            self.scripts[key] = recipe.render(params)
        host, by = rng.choice(self.hosts), rng.choice(self.people)
        story = Story(recipe=name, host=host, params=params, script=self.scripts[key],
                      batch=uuid.UUID(int=rng.getrandbits(128), version=4), by=by,
                      times={"requested": created}, outcome=S.SUCCEEDED)  # fmt: skip
        at = created
        if recipe.category == Category.PROVISION and host.zone.requires_approval:
            story.decider = rng.choice([p for p in self.people if p is not by])
            at = story.times["decided"] = at + rng.randint(120, 6 * 3600) * SECOND
            if rng.random() < 0.1:
                story.outcome, story.reason = S.REJECTED, rng.choice(REJECTIONS)
                return self._in_the_past(story)
            story.reason = rng.choice(REASONS).format(n=rng.randint(100, 999))
        at = story.times["started"] = at + rng.randint(SECOND // 5, 8 * SECOND)
        duration = rng.randint(SECOND // 2, LONGEST[recipe.category] * SECOND)
        roll = rng.random()
        if roll < 0.86:
            story.exit_code = 0
        elif roll < 0.96:
            story.outcome = S.FAILED
            story.error = rng.choice(FAILURES).format(address=host.address)
            if story.error.startswith("exit status"):
                story.exit_code = int(story.error.rsplit(" ", 1)[1])
        elif roll < 0.98:
            story.outcome, duration = S.TIMED_OUT, recipe.timeout * SECOND
            story.error = f"timeout: still running after {recipe.timeout} s, killed"
        else:
            story.outcome, story.error = S.CANCELLED, "cancelled"
            story.times["cancel"] = at + duration // 2
            duration = duration // 2 + rng.randint(SECOND, 3 * SECOND)
        story.times["finished"] = at + duration
        story.worker = f"{rng.choice(WORKERS)}:{rng.randint(1000, 60000)}"
        story.output_bytes = 0 if story.outcome == S.CANCELLED else rng.randint(0, 40_000)
        return self._in_the_past(story)

    def _in_the_past(self, story: Story) -> Story:
        """Squeeze a story that would end after the window's end into it."""
        created, ended = story.times["requested"], max(story.times.values())
        if ended > self.end:
            scale = (self.end - created) / (ended - created + 1)
            story.times = {k: created + int((v - created) * scale) for k, v in story.times.items()}
        return story

    def _row(self, s: Story) -> JobRun:
        recipe, t = get(s.recipe), {k: _at(v) for k, v in s.times.items()}
        rejected = s.outcome == S.REJECTED
        return JobRun(
            batch=s.batch, recipe=s.recipe, params=s.params, script=s.script, host=s.host,
            changes_host=recipe.changes_host, timeout=recipe.timeout, requested_by_id=s.by.id,
            approved_by_id=s.decider.id if s.decider else None, decision_reason=s.reason,
            state=s.outcome, exit_code=s.exit_code, error=s.error, created_at=t["requested"],
            queued_at=None if rejected else t.get("decided", t["requested"]),
            started_at=t.get("started"), finished_at=t.get("finished", t.get("decided")),
            worker=s.worker, output_bytes=s.output_bytes,
        )  # fmt: skip

    def _write_runs(self, stories: list[Story]) -> None:
        began = time.monotonic()
        with _created_at_kept():
            for first in range(0, len(stories), RUN_BATCH):
                batch = stories[first : first + RUN_BATCH]
                with transaction.atomic():
                    runs = JobRun.objects.bulk_create([self._row(s) for s in batch])
                for story, run in zip(batch, runs, strict=True):
                    if run.pk is None:
                        raise CommandError("The database did not return the new runs' ids.")
                    story.run = run.pk
        rate = len(stories) / max(time.monotonic() - began, 1e-9)
        self._say(f"runs: {len(stories):,} written ({rate:,.0f}/s)")

    # --- The events -------------------------------------------------------------------------

    def _run_event(self, s: Story, action: str) -> dict[str, Any]:
        host, verb = s.host, action.removeprefix("run.")
        row = {"action": action, "target_type": "jobs.jobrun", "target_id": str(s.run),
               "target_repr": f"run #{s.run} {s.recipe} on {host.name}", "zone": host.zone.name,
               "actor_name": "worker"}  # fmt: skip
        person = {"requested": s.by, "cancel_requested": s.by}.get(verb)
        if verb in ("approved", "rejected"):
            person = s.decider
        if person is not None:
            row.update(actor_id=person.id, actor_name=person.name, ip=person.ip,
                       user_agent=person.agent)  # fmt: skip
        if verb == "requested":
            waits = s.decider is not None
            row["details"] = {
                "recipe": s.recipe, "host": host.name, "params": s.params, "secret_params": [],
                "script": s.script, "dry_run": False, "batch": str(s.batch),
                "state": S.AWAITING_APPROVAL if waits else S.QUEUED,
                "second_factor": host.zone.is_restricted,
            }  # fmt: skip
        elif verb in ("approved", "rejected"):
            row["details"] = {"from": S.AWAITING_APPROVAL, "to": S.REJECTED if s.outcome ==
                              S.REJECTED else S.QUEUED, "reason": s.reason,
                              "requested_by": s.by.name}  # fmt: skip
        elif verb == "started":
            row["details"] = {"from": S.QUEUED, "to": S.RUNNING, "worker": s.worker}
        elif verb == "cancel_requested":
            row["details"] = {"state_before": S.RUNNING}
        else:
            row["details"] = {"from": S.RUNNING, "to": s.outcome, "exit_code": s.exit_code,
                              "error": s.error, "output_bytes": s.output_bytes}  # fmt: skip
        return row

    def _background_event(self, action: str) -> dict[str, Any]:
        rng = self.rng
        person = rng.choice(self.people)
        row = {"action": action, "actor_id": person.id, "actor_name": person.name,
               "ip": person.ip, "user_agent": person.agent, "details": {}}  # fmt: skip
        if action == "auth.login_failed":
            tried = rng.choice([person.name, "admin", "root", "test"])
            row.update(actor_id=None, actor_name=tried, ip=f"203.0.113.{rng.randint(1, 254)}",
                       details={"username": tried})  # fmt: skip
        elif action == "auth.2fa_verified":
            row["details"] = {"method": "totp"}
        elif action == "auth.session_expired":
            row["details"] = {"why": rng.choice(["idle for too long", "signed in too long ago"])}
        elif action.startswith(("access.", "host.")):
            host = rng.choice(self.hosts)
            row.update(target_type="hosts.host", target_id=str(host.pk), target_repr=host.name,
                       zone=host.zone.name)  # fmt: skip
            if action == "access.denied":
                row["details"] = {"action": "operate", "reason": "no_role", "method": "POST",
                                  "message": f"You have no role that may operate {host.name}.",
                                  "path": f"/hosts/{host.name}/launch/"}  # fmt: skip
            elif action == "host.updated":
                before, after = rng.sample(["", "web front end", "database", "spare"], 2)
                row["details"] = {"before": {"description": before},
                                  "after": {"description": after}}  # fmt: skip
            else:
                row["details"] = {"address": host.address, "key_type": "ssh-ed25519"}
        return row

    def _runs_in_time_order(self, stories: list[Story]) -> Iterator[tuple[int, int, Any]]:
        """Every run event by time: runs come in the order they were requested, and each one's
        later events wait in a heap until their time."""
        waiting: list[tuple[int, int, int, str]] = []
        order = itertools.count()
        for index, story in enumerate(stories):
            while waiting and waiting[0][0] < story.times["requested"]:
                when, _, i, action = heapq.heappop(waiting)
                yield when, 0, (stories[i], action)
            for when, action in story.events():
                heapq.heappush(waiting, (when, next(order), index, action))
        while waiting:
            when, _, i, action = heapq.heappop(waiting)
            yield when, 0, (stories[i], action)

    def _background(self, count: int) -> Iterator[tuple[int, int, Any]]:
        actions, span = [a for a, _ in BACKGROUND], self.end - self.start
        for n in range(count):
            when = self.start + int(span * (n + self.rng.random()) / count)
            yield when, 1, self.rng.choices(actions, cum_weights=BACKGROUND_WEIGHTS)[0]

    def _timeline(self, stories: list[Story], background: int) -> Iterator[dict[str, Any]]:
        """The new inventory's events first, then the runs' and the rest merged by time, each
        at least a microsecond after the one before."""
        last = self.start - len(self.inventory) - 1
        for row in self.inventory:
            last += 1
            yield {**row, "occurred_at": _at(last)}
        merged = heapq.merge(self._runs_in_time_order(stories), self._background(background),
                             key=lambda item: (item[0], item[1]))  # fmt: skip
        for when, kind, what in merged:
            last = max(when, last + 1)
            row = self._run_event(*what) if kind == 0 else self._background_event(what)
            row["occurred_at"] = _at(last)
            yield row
