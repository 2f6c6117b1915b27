"""`remora login`, `logout`, `whoami`: the stored sign-in."""

from __future__ import annotations

import os
import sys

import click

from . import config
from .base import (
    CliError,
    State,
    cli,
    dump,
    fail,
    json_option,
)
from .client import ApiError, Client
from .output import fields, when

# --- Signing in -------------------------------------------------------------------------------


@cli.command()
@click.option("--url", "login_url", help="The console's URL, e.g. https://remora.example.org.")
@click.option("--token-stdin", is_flag=True, help="Read the token from standard input.")
@json_option
@click.pass_obj
def login(obj: State, login_url: str | None, token_stdin: bool) -> None:
    """Check a personal token with the console and remember it (file mode 0600)."""
    stored = config.load()
    url = login_url or obj.url_option or os.environ.get("REMORA_URL")
    if not url:
        if token_stdin:
            fail("give the console's URL with --url when the token comes from stdin")
        url = click.prompt("Console URL", default=stored.get("url") or None, err=True)
    if token_stdin:
        token = sys.stdin.readline().strip()
    elif obj.token_option:
        token = obj.token_option
    else:
        token = click.prompt("Token (input hidden)", hide_input=True, err=True).strip()
    if not token:
        fail("no token given: create one in the console (Access > API tokens)")
    client = Client(url, token)
    me = client.get("/api/me/")
    path = config.save(client.url, token)
    if obj.json:
        dump(me)
        return
    info = me.get("token") or {}
    click.echo(
        f"Signed in to {client.url} as {me.get('username')} with token "
        f"'{info.get('name', '?')}' ({info.get('scope', '?')}, expires "
        f"{when(info.get('expires_at'))}). Saved in {path}."
    )
    if os.environ.get("REMORA_TOKEN"):
        click.echo("note: REMORA_TOKEN is set and overrides the saved token.", err=True)


@cli.command()
@click.option("--revoke", is_flag=True, help="Revoke the token on the console first.")
@click.pass_obj
def logout(obj: State, revoke: bool) -> None:
    """Forget the stored URL and token."""
    problem = None
    if revoke:
        try:
            client = obj.client()
            token = (obj.me().get("token") or {}).get("id")
            if token is None:
                problem = "the console did not say which token this is"
            else:
                client.post(f"/api/tokens/{token}/revoke/")
                click.echo(f"Revoked the token on {client.url}.")
        except (ApiError, CliError) as error:
            problem = str(error.format_message() if isinstance(error, CliError) else error)
    if config.forget():
        click.echo(f"Signed out: removed {config.config_path()}.")
    else:
        click.echo("Not signed in: nothing to forget.")
    if revoke and problem:
        fail(f"could not revoke the token: {problem}")
    if not revoke:
        click.echo(
            "The token still works until it expires: revoke it in the console "
            "(Access > API tokens), or next time use `remora logout --revoke`.",
            err=True,
        )


@cli.command()
@json_option
@click.pass_obj
def whoami(obj: State) -> None:
    """Who the console takes you for, and the token in use."""
    me = obj.me()
    if obj.json:
        return dump(me)
    token = me.get("token") or {}
    fields(
        [
            ("user", me.get("username")),
            ("console", f"{obj.client().url} (from {obj.settings().url_from})"),
            ("roles", ", ".join(me.get("roles") or []) or "none"),
            ("second factor", me.get("second_factor")),
            ("token", f"{token.get('name')} ({token.get('prefix')}..., {token.get('scope')})"),
            ("expires", when(token.get("expires_at"))),
            ("token from", obj.settings().token_from),
        ]
    )
