"""`remora alerts`, `schedules`, `tokens`, `workers`."""

from __future__ import annotations

import click

from .base import (
    State,
    cli,
    dump,
    json_option,
)
from .output import table, when

# --- Alerts, schedules, tokens, workers ------------------------------------------------------


@cli.command()
@click.option("--open/--cleared", "open_", default=None, help="Only open or only cleared ones.")
@json_option
@click.pass_obj
def alerts(obj: State, open_: bool | None) -> None:
    """Alerts you may see: open ones first."""
    wanted = None if open_ is None else str(open_).lower()
    found = obj.client().get("/api/alerts/", {"open": wanted})
    if obj.json:
        return dump(found)
    rows = [
        [
            a["id"],
            when(a.get("raised_at")),
            "open" if a.get("open") else "cleared",
            a.get("kind"),
            a.get("host") or a.get("schedule"),
            a.get("title"),
            a.get("acknowledged_by"),
        ]
        for a in found
    ]
    table(["ALERT", "RAISED", "STATE", "KIND", "ON", "TITLE", "ACK BY"], rows, empty="No alerts.")


@cli.command()
@json_option
@click.pass_obj
def schedules(obj: State) -> None:
    """The schedules you may see."""
    found = obj.client().get("/api/schedules/")
    if obj.json:
        return dump(found)
    rows = [
        [
            s["id"],
            s["name"],
            s["recipe"],
            ", ".join(s.get("hosts") or []) or s.get("service_kind"),
            f"{s['cron']} ({s.get('timezone')})",
            "on" if s.get("enabled") else "off",
            s.get("owner"),
        ]
        for s in found
    ]
    table(
        ["ID", "NAME", "RECIPE", "HOSTS", "WHEN", "ENABLED", "OWNER"], rows, empty="No schedules."
    )


@cli.command()
@json_option
@click.pass_obj
def tokens(obj: State) -> None:
    """Your API tokens (never their secrets)."""
    found = obj.client().get("/api/tokens/")
    if obj.json:
        return dump(found)
    rows = [
        [
            t["id"],
            t["name"],
            t["prefix"] + "...",
            t["scope"],
            t.get("state"),
            when(t.get("expires_at")),
            when(t.get("last_used_at")),
        ]
        for t in found
    ]
    table(
        ["ID", "NAME", "TOKEN", "SCOPE", "STATE", "EXPIRES", "LAST USED"], rows, empty="No tokens."
    )


@cli.command()
@json_option
@click.pass_obj
def workers(obj: State) -> None:
    """The job workers on every machine, the run each is on, and the backlog."""
    found = obj.client().get("/api/workers/")
    if obj.json:
        return dump(found)
    if found.get("queue_error"):
        click.echo(f"The job queue (Redis) does not answer: {found['queue_error']}", err=True)
    rows = [
        [w["name"], w["state"], f"#{w['run']}" if w.get("run") else "", when(w.get("since")),
         when(w.get("last_heard"))]
        for w in found["workers"]
    ]  # fmt: skip
    table(["WORKER", "STATE", "RUN", "UP SINCE", "LAST HEARD"], rows, empty="No worker is running.")
    backlog = f"{found['queued']} queued"
    if found.get("oldest_queued"):
        backlog += f" (the oldest since {when(found['oldest_queued'])})"
    waiting = found["waiting_for_host"]
    click.echo(f"{found['alive']} alive; {backlog}; {waiting} waiting for their host")


def main() -> None:  # pragma: no cover - the console script is `cli`
    cli()
