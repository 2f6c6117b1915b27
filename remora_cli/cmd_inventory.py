"""`remora hosts`, `remora recipes`: what the console knows."""

from __future__ import annotations

import click

from .base import (
    State,
    cli,
    dump,
    json_option,
)
from .output import cell, table

# --- Inventory --------------------------------------------------------------------------------


@cli.command()
@json_option
@click.pass_obj
def hosts(obj: State) -> None:
    """The hosts you may see, with their services."""
    found = obj.client().get("/api/hosts/")
    if obj.json:
        return dump(found)
    rows = [
        [
            h["name"],
            h.get("zone"),
            f"{h.get('ssh_user')}@{h.get('address')}:{h.get('ssh_port')}",
            "yes" if h.get("active") else "no",
            "trusted"
            if h.get("host_key_trusted")
            else ("ALERT" if h.get("host_key_alert") else "untrusted"),
            ", ".join(f"{s['kind']}:{s['state']}" for s in h.get("services") or []) or "-",
        ]
        for h in found
    ]
    table(["HOST", "ZONE", "SSH", "ACTIVE", "KEY", "SERVICES"], rows, empty="No hosts to see.")


def _describe_parameter(p: dict) -> tuple[str, str]:
    kind = {"integer": "NUMBER", "boolean": "yes|no", "choice": "CHOICE", "choices": "CHOICE,..."}
    words = []
    if p.get("required"):
        words.append("required")
    if p.get("secret"):
        words.append("secret (asked hidden)")
    if p.get("choices"):
        words.append("one of " + ", ".join(p["choices"]))
    if p.get("min") is not None or p.get("max") is not None:
        words.append(f"{cell(p.get('min'))}..{cell(p.get('max'))}")
    if p.get("initial") not in (None, ""):
        words.append(f"default {cell(p['initial'])}")
    if p.get("help"):
        words.append(p["help"])
    value = kind.get(p.get("type"), "TEXT")
    return f"-p {p['name']}={value}", "; ".join(words)


@cli.command()
@click.option("--host", help="Only recipes you may launch on this host (parameters as there).")
@json_option
@click.pass_obj
def recipes(obj: State, host: str | None) -> None:
    """The recipes, each with its parameters (give them to `remora run` as -p name=value)."""
    found = obj.client().get("/api/recipes/", {"host": host})
    if obj.json:
        return dump(found)
    if not found:
        click.echo(f"No recipe you may launch on {host}." if host else "No recipes.")
        return
    width = max(len(r["name"]) for r in found)
    for r in found:
        click.echo(f"{r['name'].ljust(width)}  {r['category']:<12} {r['title']}")
        described = [_describe_parameter(p) for p in r.get("parameters") or []]
        left = max((len(flag) for flag, _ in described), default=0)
        for flag, words in described:
            click.echo(f"    {flag.ljust(left)}  {words}".rstrip())
