"""Human output: aligned columns, times in local time, short and plain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click


def when(value: Any) -> str:
    """An API time (ISO 8601, UTC) as local "YYYY-MM-DD HH:MM"; "-" when there is none."""
    if not value:
        return "-"
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return " ".join(str(value).split())


def table(headers: list[str], rows: list[list[Any]], *, empty: str = "Nothing to show.") -> None:
    if not rows:
        click.echo(empty)
        return
    texts = [[cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in texts:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], len(text))
    lines = [headers, *texts]
    for line in lines:
        padded = [text.ljust(widths[i]) for i, text in enumerate(line[:-1])]
        click.echo("  ".join([*padded, line[-1]]).rstrip())


def fields(pairs: list[tuple[str, Any]]) -> None:
    """A "name: value" block, names aligned."""
    width = max(len(name) for name, _ in pairs)
    for name, value in pairs:
        click.echo(f"{(name + ':').ljust(width + 1)} {cell(value)}")
