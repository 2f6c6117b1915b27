"""`remora plan` and `remora plan apply`: the growth plan from a terminal."""

from __future__ import annotations

import sys
import time

import click

from .base import (
    BATCH_POLL,
    State,
    cli,
    dump,
    fail,
    json_option,
    parse_pairs,
)
from .client import Client
from .output import cell

# --- The growth plan --------------------------------------------------------------------------


def _get_plan(client: Client, from_nothing: bool) -> dict:
    return client.get("/api/plan/", {"from": "nothing" if from_nothing else None})


def _print_plan(client: Client, plan: dict) -> None:
    start = "nothing" if plan.get("from_nothing") else f"phase {cell(plan.get('current'))}"
    if plan.get("target") is None:
        click.echo(f"At {start}: there is no phase to go to.")
        return
    click.echo(f"Plan: {start} -> phase {plan['target']}")
    steps = plan.get("steps") or []
    if steps:
        click.echo("Steps, in order:")
        for st in steps:
            extra = ", ".join(f"{k}={v}" for k, v in (st.get("params") or {}).items())
            click.echo(
                f"  {st['number']:>2}. {st['recipe']} on {st['host']}"
                + (f" ({extra})" if extra else "")
                + f": {st.get('why', '')}"
            )
    elif plan.get("hidden_steps"):
        click.echo("No steps on hosts you may see.")
    else:
        click.echo("No steps: everything is in place.")
    if plan.get("hidden_steps"):
        click.echo(f"  ... and {plan['hidden_steps']} steps on hosts you may not see.")
    inputs = plan.get("inputs") or []
    if inputs:
        click.echo("Inputs (give them as --input name=value):")
        for i in inputs:
            how = "secret, asked hidden" if i.get("secret") else f"default {cell(i.get('initial'))}"
            click.echo(
                f"  {i['name']}: {i.get('label')} ({how})"
                + (f". {i['help']}" if i.get("help") else "")
            )
    if plan.get("running_batch"):
        click.echo(
            f"A plan is running: batch {plan['running_batch']} "
            f"(`remora plan batch {plan['running_batch']}`)."
        )
    click.echo(
        "You may apply it: `remora plan apply`."
        if plan.get("may_apply")
        else "You may not apply it (a step needs a right you do not hold)."
    )


@cli.group(invoke_without_command=True)
@click.option("--from-nothing", is_flag=True, help="Install the current phase on fresh hosts.")
@json_option
@click.pass_context
def plan(ctx: click.Context, from_nothing: bool) -> None:
    """The growth plan: from the current phase to the next, its steps and the inputs it needs."""
    if ctx.invoked_subcommand is not None:
        ctx.meta["from_nothing"] = from_nothing
        return
    obj: State = ctx.obj
    client = obj.client()
    found = _get_plan(client, from_nothing)
    if obj.json:
        return dump(found)
    _print_plan(client, found)


def _print_batch(batch: dict) -> None:
    start = f"phase {batch['from_phase']}" if batch.get("from_phase") else "nothing"
    click.echo(f"Batch {batch['id']}: {start} -> phase {batch['to_phase']}, {batch['status']}")
    for st in batch.get("steps") or []:
        run = f" run {st['run']}" if st.get("run") else ""
        note = f": {st['note']}" if st.get("note") else ""
        click.echo(
            f"  {st['position']:>2}. {st['recipe']} on {st['host']}: "
            f"{st['status'].replace('_', ' ')}{run}{note}"
        )


def _follow_batch(client: Client, batch: dict, as_json: bool) -> dict:
    seen: dict[int, str] = {}
    while True:
        for st in batch.get("steps") or []:
            key = (st["status"], st.get("run"))
            if seen.get(st["position"]) != key and not as_json:
                run = f" (run {st['run']})" if st.get("run") else ""
                click.echo(
                    f"step {st['position']} {st['recipe']} on {st['host']}: "
                    f"{st['status'].replace('_', ' ')}{run}",
                    err=False,
                )
            seen[st["position"]] = key
        if batch["status"] != "running":
            return batch
        time.sleep(BATCH_POLL)
        batch = client.get(f"/api/plan/batches/{batch['id']}/")


def _watch_batch(client: Client, batch: dict, as_json: bool) -> dict:
    try:
        return _follow_batch(client, batch, as_json)
    except KeyboardInterrupt:
        click.echo(
            f"\nStopped watching; the plan goes on (`remora plan batch {batch['id']}`).", err=True
        )
        sys.exit(130)


@plan.command("apply")
@click.option("--from-nothing", is_flag=True, help="Install the current phase on fresh hosts.")
@click.option(
    "--input",
    "inputs",
    multiple=True,
    metavar="NAME=VALUE",
    help="A value the plan needs (repeatable); secrets missing are asked hidden.",
)
@click.option("--follow", "-f", is_flag=True, help="Watch the steps until the batch ends.")
@json_option
@click.pass_context
def plan_apply(ctx: click.Context, from_nothing: bool, inputs, follow: bool) -> None:
    """Apply the plan: its steps run in order as a batch of runs."""
    obj: State = ctx.obj
    from_nothing = from_nothing or ctx.meta.get("from_nothing", False)
    client = obj.client()
    current = _get_plan(client, from_nothing)
    if current.get("target") is None:
        fail("there is no phase to go to")
    values = parse_pairs(inputs, "input")
    for i in current.get("inputs") or []:
        if i["name"] in values:
            continue
        if i.get("secret"):
            if not sys.stdin.isatty():
                fail(
                    f"the plan needs {i['name']} ({i.get('label')}): give --input "
                    f"{i['name']}=... or run at a terminal to be asked"
                )
            values[i["name"]] = click.prompt(
                f"{i.get('label')} (hidden)", hide_input=True, err=True
            )
        elif i.get("initial") not in (None, ""):
            values[i["name"]] = str(i["initial"])  # as the console's form offers it
        elif sys.stdin.isatty():
            values[i["name"]] = click.prompt(str(i.get("label")), err=True)
    batch = client.post(
        "/api/plan/apply/",
        {"to": current["target"], "from_nothing": from_nothing, "inputs": values},
    )
    if follow:
        if not obj.json:
            click.echo(f"Batch {batch['id']} started (phase {current['target']}).")
        batch = _watch_batch(client, batch, obj.json)
    if obj.json:
        dump(batch)
    elif not follow:
        _print_batch(batch)
    else:
        click.echo(f"Batch {batch['id']}: {batch['status']}")
    if follow and batch["status"] != "succeeded":
        sys.exit(1)


@plan.command("batch")
@click.argument("batch_id", type=int)
@click.option("--follow", "-f", is_flag=True, help="Watch the steps until the batch ends.")
@json_option
@click.pass_obj
def plan_batch(obj: State, batch_id: int, follow: bool) -> None:
    """A plan's batch: each step's status and run."""
    client = obj.client()
    batch = client.get(f"/api/plan/batches/{batch_id}/")
    if follow:
        batch = _watch_batch(client, batch, obj.json)
    if obj.json:
        return dump(batch)
    _print_batch(batch)
