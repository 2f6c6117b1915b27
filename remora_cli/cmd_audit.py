"""`remora audit`: the audit log, listed or exported."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import click

from .base import (
    State,
    cli,
    dump,
    json_option,
)
from .client import Client
from .output import table, when

# --- The audit log ----------------------------------------------------------------------------

_AGO = re.compile(r"^(\d+)\s*([dw])$")


def _day(value: str | None, option: str) -> str | None:
    """7d / 2w (days or weeks ago, UTC days as the API counts them), today, or YYYY-MM-DD."""
    if not value:
        return None
    value = value.strip().lower()
    today = datetime.now(UTC).date()
    if value == "today":
        return today.isoformat()
    ago = _AGO.match(value)
    if ago:
        days = int(ago.group(1)) * (7 if ago.group(2) == "w" else 1)
        return (today - timedelta(days=days)).isoformat()
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: give a date (2026-12-01), 'today', or days/weeks ago (7d, 2w)",
            param_hint=option,
        ) from None


def _event_rows(events: list[dict]) -> list[list[Any]]:
    return [
        [
            e["sequence"],
            when(e.get("occurred_at")),
            e.get("actor_name"),
            e.get("action"),
            e.get("target_repr"),
            e.get("zone"),
            e.get("host"),
        ]
        for e in events
    ]


def _export(client: Client, params: dict[str, Any], fmt: str) -> Iterator[bytes]:
    """The export's body in chunks; the request is made (and refused) before this returns."""
    chunks = client.stream("/api/audit/export/", {**params, "format": fmt})
    first = next(chunks, b"")
    return itertools.chain([first], chunks)


@cli.command()
@click.option("--since", help="From this day: 2026-12-01, 7d (7 days ago), 2w, today.")
@click.option("--until", help="Up to this day (same forms).")
@click.option("--host", help="Events about this host.")
@click.option("--person", help="Events by this person (user name).")
@click.option("--action", help="One action, e.g. run.requested.")
@click.option("--group", help="A kind of event: the part before the dot, e.g. run.")
@click.option("--zone", help="Events in this zone.")
@click.option("--search", help="Text in the target or details.")
@click.option("--refused", is_flag=True, help="Only refusals and denials.")
@click.option("--limit", type=click.IntRange(1, 1000000), default=50, show_default=True)
@click.option(
    "--export",
    "export",
    type=click.Choice(["csv", "jsonl"]),
    help="Stream every matching event as CSV or JSON Lines (audited).",
)
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Path(dir_okay=False, writable=True),
    help="With --export: write to this file (mode 0600), not stdout.",
)
@json_option
@click.pass_obj
def audit(
    obj: State,
    since,
    until,
    host,
    person,
    action,
    group,
    zone,
    search,
    refused,
    limit,
    export,
    output,
) -> None:
    """The audit log, newest first (or --export it whole)."""
    params = {
        "since": _day(since, "--since"),
        "until": _day(until, "--until"),
        "host": host,
        "person": person,
        "action": action,
        "group": group,
        "zone": zone,
        "q": search,
        "outcome": "refused" if refused else None,
    }
    client = obj.client()
    if output and not export:
        raise click.UsageError("-o/--output goes with --export csv|jsonl")
    if export:
        chunks = _export(client, params, export)
        if output:
            fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as file:
                for chunk in chunks:
                    file.write(chunk)
            click.echo(f"Wrote {output}.", err=True)
        else:
            out = click.get_binary_stream("stdout")
            for chunk in chunks:
                out.write(chunk)
                out.flush()
        return
    found: list[dict] = []
    before = None
    while len(found) < limit:
        page = client.get("/api/audit/events/", {**params, "before": before})
        found += page.get("results") or []
        before = page.get("next_before")
        if before is None:
            break
    found = found[:limit]
    if obj.json:
        more = found[-1]["sequence"] if before and found else None
        return dump({"results": found, "next_before": more})
    table(
        ["SEQ", "WHEN", "WHO", "ACTION", "TARGET", "ZONE", "HOST"],
        _event_rows(found),
        empty="No events match.",
    )
