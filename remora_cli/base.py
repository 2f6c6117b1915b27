"""The `remora` command: the console's REST API from a terminal.

Exit status: 0 done; 1 refused or failed (the reason on stderr, one line per reason); 2 a usage
error; 130 interrupted while following a run. `remora run --follow` exits with the run's own
status: 0 succeeded, the run's exit code when it failed with one (1..255), else 1 (cancelled,
timed out, lost, rejected, failed without an exit code); several runs: the worst (highest).
A run waiting for a second person's approval is waited for (said once on stderr); Ctrl-C stops
following and leaves the run alone.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

import click

from . import config
from .client import ApiError, Client

FOLLOW_WAIT = 10  # seconds each output request may wait on the server for news
BATCH_POLL = 2.0  # seconds between looks at a plan's batch
LIST_PAGE = 500  # the API's largest page of runs


class CliError(click.ClickException):
    """A refusal or failure: one line (or a few indented ones) on stderr, exit 1."""

    exit_code = 1

    def show(self, file=None) -> None:
        click.echo(f"remora: {self.format_message()}", err=True)


class Interrupted(Exception):
    def __init__(self, code: int):
        self.code = code


class Remora(click.Group):
    """The root group: turns the client's and the config's errors into one line on stderr."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ApiError as error:
            raise CliError(str(error)) from None
        except config.ConfigError as error:
            raise CliError(str(error)) from None


class State:
    def __init__(self, url: str | None, token: str | None, as_json: bool):
        self.url_option = url
        self.token_option = token
        self.json = as_json
        self._client: Client | None = None
        self._me: dict | None = None

    def settings(self) -> config.Settings:
        return config.resolve(self.url_option, self.token_option)

    def client(self) -> Client:
        if self._client is None:
            found = self.settings()
            if not found.token:
                raise CliError("not signed in: run `remora login` (or set REMORA_TOKEN)")
            if not found.url:
                raise CliError("no console URL: run `remora login --url URL` (or set REMORA_URL)")
            self._client = Client(found.url, found.token)
        return self._client

    def me(self) -> dict:
        if self._me is None:
            self._me = self.client().get("/api/me/")
        return self._me


def _set_json(ctx: click.Context, _param, value: bool) -> None:
    if value:
        ctx.ensure_object(State).json = True


def json_option(f):
    """--json, also accepted after the command's name."""
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        expose_value=False,
        callback=_set_json,
        help="Print the API's JSON as it is (one document).",
    )(f)


def dump(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, sort_keys=False, ensure_ascii=False))


def fail(message: str) -> NoReturn:
    raise CliError(message)


@click.group(cls=Remora, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", envvar=None, help="The console's URL (else REMORA_URL, else the login).")
@click.option("--token", envvar=None, help="A personal token (else REMORA_TOKEN, else the login).")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON as it is.")
@click.version_option(package_name="remora-admin", prog_name="remora")
@click.pass_context
def cli(ctx: click.Context, url: str | None, token: str | None, as_json: bool) -> None:
    """Remora Admin from a terminal: hosts, recipes, runs, the growth plan and the audit log.

    Sign in once with `remora login` (a personal token from the console, Access > API tokens);
    REMORA_URL and REMORA_TOKEN override the stored login.
    """
    ctx.obj = State(url, token, as_json)


def parse_pairs(pairs: tuple[str, ...], what: str) -> dict[str, Any]:
    """name=value pairs; a name given twice becomes a list (a multiple choice)."""
    found: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise click.UsageError(f"{what} {pair!r} is not name=value")
        if name in found:
            earlier = found[name]
            found[name] = [*(earlier if isinstance(earlier, list) else [earlier]), value]
        else:
            found[name] = value
    return found
