"""`remora run` (and --follow), `runs`, `show`, `cancel`, `approve`, `reject`."""

from __future__ import annotations

import sys
from typing import Any

import click

from .base import (
    FOLLOW_WAIT,
    LIST_PAGE,
    State,
    cli,
    dump,
    fail,
    json_option,
    parse_pairs,
)
from .client import ApiError, Client
from .output import fields, table, when

# --- Runs -------------------------------------------------------------------------------------


def _cursor(next_url: str | None) -> str | None:
    if not next_url:
        return None
    from urllib.parse import parse_qs, urlsplit

    return (parse_qs(urlsplit(next_url).query).get("cursor") or [None])[0]


def _run_rows(runs: list[dict]) -> list[list[Any]]:
    return [
        [
            r["id"],
            when(r.get("created_at")),
            r["recipe"] + (" (dry run)" if r.get("dry_run") else ""),
            r["host"],
            r["state"],
            r.get("requested_by"),
            r.get("exit_code"),
        ]
        for r in runs
    ]


RUN_HEADERS = ["RUN", "CREATED", "RECIPE", "HOST", "STATE", "BY", "EXIT"]


@cli.command()
@click.option("--host", help="Only runs on this host.")
@click.option("--state", help="Only runs in this state (e.g. running, failed).")
@click.option("--recipe", help="Only runs of this recipe.")
@click.option("--person", help="Only runs this person requested.")
@click.option("--mine", is_flag=True, help="Only the runs you requested.")
@click.option("--limit", type=click.IntRange(1, 100000), default=20, show_default=True)
@json_option
@click.pass_obj
def runs(obj: State, host, state, recipe, person, mine, limit) -> None:
    """Runs you may see, newest first."""
    client = obj.client()
    if mine:
        person = obj.me()["username"]
    params: dict[str, Any] = {"host": host, "state": state, "recipe": recipe, "person": person}
    found: list[dict] = []
    cursor = None
    while len(found) < limit:
        page = client.get(
            "/api/runs/", {**params, "limit": min(LIST_PAGE, limit - len(found)), "cursor": cursor}
        )
        found += page.get("results", [])
        cursor = _cursor(page.get("next"))
        if cursor is None:
            break
    if obj.json:
        return dump({"results": found[:limit]})
    table(RUN_HEADERS, _run_rows(found[:limit]), empty="No runs.")


def _output(client: Client, run_id: int) -> str:
    text, offset = [], 0
    while True:
        got = client.get(f"/api/runs/{run_id}/output/", {"offset": offset})
        if not got["text"] or got["next_offset"] == offset:
            return "".join(text)
        text.append(got["text"])
        offset = got["next_offset"]


@cli.command()
@click.argument("run_id", type=int)
@click.option("--output", "with_output", is_flag=True, help="Print the run's output too.")
@json_option
@click.pass_obj
def show(obj: State, run_id: int, with_output: bool) -> None:
    """One run, with the exact script it ran."""
    client = obj.client()
    run = _about_run(run_id, lambda: client.get(f"/api/runs/{run_id}/"))
    if obj.json:
        if with_output:
            run = {**run, "output": _output(client, run_id)}
        return dump(run)
    params = run.get("params") or {}
    fields(
        [
            ("run", run["id"]),
            ("recipe", run["recipe"] + (" (dry run)" if run.get("dry_run") else "")),
            ("host", f"{run['host']} (zone {run.get('zone')})"),
            ("state", run["state"] + (f": {run['status_note']}" if run.get("status_note") else "")),
            ("exit code", run.get("exit_code")),
            ("error", run.get("error")),
            ("requested by", run.get("requested_by")),
            ("approved by", run.get("approved_by")),
            ("reason", run.get("decision_reason")),
            ("params", ", ".join(f"{k}={v}" for k, v in params.items()) or "-"),
            ("created", when(run.get("created_at"))),
            ("started", when(run.get("started_at"))),
            ("finished", when(run.get("finished_at"))),
            ("output", f"{run.get('output_bytes') or 0} bytes"),
            ("url", run.get("url")),
        ]
    )
    click.echo("script:")
    for line in (run.get("script") or "").strip("\n").splitlines() or ["(none)"]:
        click.echo(f"    {line}")
    if with_output:
        click.echo("output:")
        click.echo(_output(client, run_id), nl=False)


def _exit_status(run: dict) -> int:
    if run["state"] == "succeeded":
        return 0
    code = run.get("exit_code")
    if run["state"] == "failed" and isinstance(code, int) and code != 0:
        return min(max(code, 1), 255)
    return 1


def _ending(run: dict, output: dict | None = None) -> str:
    latest = {**run, **(output or {})}
    words = f"run {run['id']} on {run['host']} {latest['state'].replace('_', ' ')}"
    if latest.get("exit_code") is not None:
        words += f" (exit {latest['exit_code']})"
    if latest.get("error"):
        words += f": {latest['error']}"
    return words


class _Lines:
    """Writes text as it comes, each line prefixed (several hosts), flushed at once."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.at_line_start = True
        self.stream = click.get_binary_stream("stdout")  # the run's text as is, any locale

    def write(self, text: str) -> None:
        if not text:
            return
        if self.prefix:
            out = []
            for piece in text.splitlines(keepends=True):
                if self.at_line_start:
                    out.append(self.prefix)
                out.append(piece)
                self.at_line_start = piece.endswith("\n")
            text = "".join(out)
        self.stream.write(text.encode("utf-8", errors="replace"))
        self.stream.flush()

    def end(self) -> None:
        if self.prefix and not self.at_line_start:
            self.write("\n")


def follow_run(client: Client, run: dict, *, prefix: str = "", quiet: bool = False) -> dict:
    """Stream a run's output to stdout until it finishes; the last output answer."""
    lines = _Lines(prefix)
    offset = 0
    told_waiting = False
    while True:
        got = client.get(
            f"/api/runs/{run['id']}/output/",
            {"offset": offset, "wait": FOLLOW_WAIT},
            timeout=FOLLOW_WAIT + 30,
        )
        if not quiet:
            lines.write(got.get("text") or "")
        offset = got.get("next_offset", offset)
        if got.get("finished"):
            lines.end()
            return got
        if got.get("state") == "awaiting_approval" and not told_waiting:
            click.echo(
                f"run {run['id']} on {run['host']} is waiting for approval by a second person "
                f"(`remora approve {run['id']} --reason ...`); still following, Ctrl-C stops.",
                err=True,
            )
            told_waiting = True


@cli.command()
@click.argument("recipe")
@click.option("--host", "hosts_", multiple=True, required=True, help="A host (repeatable).")
@click.option(
    "-p",
    "--param",
    "pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="A parameter of the recipe (repeatable).",
)
@click.option("--dry-run", is_flag=True, help="Show what would run; change nothing.")
@click.option(
    "--all-or-nothing/--each-alone",
    "together",
    default=None,
    help="One refused host stops them all, or the others run anyway (default: all or "
    "nothing for recipes that change hosts, each alone for checks).",
)
@click.option(
    "--follow", "-f", is_flag=True, help="Print the output live; exit with the run's status."
)
@json_option
@click.pass_obj
def run(obj: State, recipe: str, hosts_: tuple[str, ...], pairs, dry_run, together, follow) -> None:
    """Launch RECIPE on one or more hosts. With --follow, stream the output as it arrives and
    exit with the run's status (0 succeeded, its exit code if it failed, else 1)."""
    client = obj.client()
    params = parse_pairs(pairs, "parameter")
    hosts_list = list(dict.fromkeys(hosts_))
    _ask_secrets(client, recipe, hosts_list[0], params)
    try:
        launched = client.post(
            "/api/runs/",
            {
                "recipe": recipe,
                "hosts": hosts_list,
                "params": params,
                "dry_run": dry_run,
                "all_or_nothing": together,
            },  # fmt: skip
        )
    except ApiError as error:
        if error.status == 404:  # a host that does not exist or that one may not see
            fail(f"{error} (hosts: {', '.join(hosts_list)}; see `remora hosts`)")
        raise
    if obj.json and not follow:
        return dump(launched)
    refused = launched.get("refusals") or []
    launched = launched["runs"]
    for r in refused:  # the other hosts run: said, and the exit status is at least 1
        click.echo(f"remora: refused on {r.get('host') or '?'}: {r['message']}", err=True)
    if not obj.json:
        for r in launched:
            click.echo(
                f"run {r['id']} on {r['host']}: {r['state'].replace('_', ' ')}  {r['url']}",
                err=follow,
            )
    if not follow:
        sys.exit(1 if refused else 0)
    statuses, finals = [], []
    try:
        for r in launched:
            prefix = f"{r['host']}: " if len(launched) > 1 else ""
            last = follow_run(client, r, prefix=prefix, quiet=obj.json)
            status = _exit_status({**r, **last})
            statuses.append(status)
            finals.append(last)
            if status != 0 and not obj.json:
                click.echo(f"remora: {_ending(r, last)}", err=True)
    except KeyboardInterrupt:
        left = launched[len(finals) :]
        click.echo(
            "\nStopped following; the run keeps going. To cancel it: "
            + "; ".join(f"remora cancel {r['id']}" for r in left),
            err=True,
        )
        sys.exit(130)
    if obj.json:
        dump([client.get(f"/api/runs/{r['id']}/") for r in launched])
    sys.exit(max([*statuses, 1 if refused else 0]))


def _ask_secrets(client: Client, recipe: str, host: str, params: dict[str, Any]) -> None:
    """Ask for the recipe's secret parameters that were not given, hidden (at a terminal)."""
    if not sys.stdin.isatty():
        return
    described = client.get(f"/api/recipes/{recipe}/", {"host": host})
    for p in described.get("parameters") or []:
        if p.get("secret") and p.get("required") and p["name"] not in params:
            params[p["name"]] = click.prompt(f"{p['label']} (hidden)", hide_input=True, err=True)


def _about_run(run_id: int, call):
    """Call the API about one run; a 404 names the run."""
    try:
        return call()
    except ApiError as error:
        if error.status == 404:
            fail(f"run {run_id}: {error} (see `remora runs`)")
        raise


def _decided(obj: State, answer: dict) -> None:
    if obj.json:
        return dump(answer)
    r = answer.get("run") or {}
    click.echo(
        f"{answer.get('detail')} run {r.get('id')} on {r.get('host')}: "
        f"{str(r.get('state', '?')).replace('_', ' ')}"
    )


@cli.command()
@click.argument("run_id", type=int)
@json_option
@click.pass_obj
def cancel(obj: State, run_id: int) -> None:
    """Cancel a run (yours as an operator, anyone's as the zone's admin)."""
    client = obj.client()
    _decided(obj, _about_run(run_id, lambda: client.post(f"/api/runs/{run_id}/cancel/")))


@cli.command()
@click.argument("run_id", type=int)
@click.option("--reason", required=True, help="Why (the requester reads it).")
@json_option
@click.pass_obj
def approve(obj: State, run_id: int, reason: str) -> None:
    """Approve a run waiting for a second person."""
    client = obj.client()
    body = {"reason": reason}
    _decided(obj, _about_run(run_id, lambda: client.post(f"/api/runs/{run_id}/approve/", body)))


@cli.command()
@click.argument("run_id", type=int)
@click.option("--reason", required=True, help="Why (the requester reads it).")
@json_option
@click.pass_obj
def reject(obj: State, run_id: int, reason: str) -> None:
    """Reject a run waiting for a second person."""
    client = obj.client()
    body = {"reason": reason}
    _decided(obj, _about_run(run_id, lambda: client.post(f"/api/runs/{run_id}/reject/", body)))
