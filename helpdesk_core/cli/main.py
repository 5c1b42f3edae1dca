"""The ``helpdesk`` command line. Commands and JSON shapes are a contract: keep them stable.

One invocation builds one plugin manager (one :class:`~helpdesk_core.plugins.Hooks`): the top-level
group builds it before parsing its arguments, lets plugins add their commands with it
(``helpdesk_register_commands``) and hands it to the invocation's application (:meth:`CliState.app`).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import click
from sqlalchemy.orm import Session

from helpdesk_core.app import Helpdesk
from helpdesk_core.config import Config
from helpdesk_core.db import is_initialised
from helpdesk_core.errors import DatabaseUnavailable, HelpdeskError
from helpdesk_core.plugins import Hooks
from helpdesk_core.services.permissions import Actor, resolve_actor

EX_USAGE, EX_NOUSER, EX_TEMPFAIL = 64, 67, 75


@dataclass
class CliState:
    database_url: str | None
    actor_email: str | None
    #: the invocation's hook facade, built by :class:`HelpdeskGroup` (None if the plugins failed to load)
    hooks: Hooks | None = None
    _app: Helpdesk | None = None

    def app(self, *, create_key: bool = False) -> Helpdesk:
        if self._app is None:
            self._app = Helpdesk.from_config(Config.from_env(self.database_url), create_key=create_key,
                                             hooks=self.hooks)
        return self._app

    @contextmanager
    def session(self, *, commit: bool = True) -> Iterator[tuple[Helpdesk, Session, Actor]]:
        app = self.app()
        if not is_initialised(app.engine):
            raise HelpdeskError("The database has no help-desk tables yet: run 'helpdesk init' first.")
        with app.session() as session:
            actor = resolve_actor(session, self.actor_email)
            yield app, session, actor
            if commit:
                session.commit()


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def fail(message: str, code: int = 1) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn HelpdeskError into a one-line message and a non-zero exit."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DatabaseUnavailable as exc:
            fail(exc.message, EX_TEMPFAIL)
        except HelpdeskError as exc:
            fail(exc.message, 1)

    return wrapper


#: where :class:`HelpdeskGroup` keeps the invocation's hook facade (``click.Context.meta``)
HOOKS_KEY = "helpdesk.hooks"


class HelpdeskGroup(click.Group):
    """The top-level group: before its arguments are parsed (so ``--help`` and plugin commands
    work), it builds the invocation's one plugin manager and adds the plugins' commands with it."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[HOOKS_KEY] = register_plugin_commands(self)
        return super().parse_args(ctx, args)



@click.group(cls=HelpdeskGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--database-url", envvar="HELPDESK_DATABASE_URL", default=None,
              help="SQLAlchemy URL (default: SQLite in $HELPDESK_HOME).")
@click.option("--as", "actor_email", envvar="HELPDESK_ACTOR", default=None, metavar="EMAIL",
              help="Act as this user (permissions apply). Default: the local operator.")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
@click.pass_context
def main(ctx: click.Context, database_url: str | None, actor_email: str | None, verbose: int) -> None:
    """Help-desk email importer: department mailboxes become tickets."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("imapclient").setLevel(max(level, logging.INFO))  # protocol debug costs 7x
    ctx.obj = CliState(database_url=database_url, actor_email=actor_email, hooks=ctx.meta.get(HOOKS_KEY))


@main.command()
@click.pass_obj
@handle_errors
def init(state: CliState) -> None:
    """Create or upgrade the database and create the secret key (mode 0600)."""
    app = state.app(create_key=True)
    app.upgrade()
    click.echo(f"Database ready: {app.engine.url.render_as_string(hide_password=True)}")
    if not app.config.secret_key:
        click.echo(f"Secret key: {app.config.secret_key_file}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
@handle_errors
def plugins(state: CliState, as_json: bool) -> None:
    """List installed plugins and the mailbox providers they offer."""
    from helpdesk_core.plugins import describe_plugins

    app = state.app()
    data = describe_plugins(app.pm, app.providers)
    if as_json:
        echo_json({"plugins": data, "providers": [p.describe() for _, p in sorted(app.providers.providers.items())]})
        return
    for p in data:
        flag = " (default)" if p["default"] else ""
        click.echo(f"{p['name']}{flag}  {p['version'] or ''}  hooks: {', '.join(p['hooks'])}")
        for prov in p["providers"]:
            fields = ", ".join(f["name"] for f in prov["fields"])
            click.echo(f"    provider {prov['name']}: {prov['label']} [{fields}]")


from helpdesk_core.cli import departments as cli_departments  # noqa: E402
from helpdesk_core.cli import imports as cli_imports  # noqa: E402
from helpdesk_core.cli import log as cli_log  # noqa: E402
from helpdesk_core.cli import outbox as cli_outbox  # noqa: E402
from helpdesk_core.cli import scale as cli_scale  # noqa: E402
from helpdesk_core.cli import lifecycle as cli_lifecycle  # noqa: E402
from helpdesk_core.cli import tickets as cli_tickets  # noqa: E402

cli_departments.register(main)
cli_imports.register(main)
cli_tickets.register(main)
cli_log.register(main)                          # helpdesk log, helpdesk held
cli_outbox.register(main, cli_tickets.ticket)   # helpdesk outbox, helpdesk ticket reply
cli_lifecycle.register(main)                    # ticket set/create/move …, reply-template
cli_scale.register(main)                        # helpdesk status, watch, department push


def register_plugin_commands(group: click.Group, hooks: Hooks | None = None) -> Hooks | None:
    """Let installed plugins add commands to ``group`` (``helpdesk_register_commands``) through
    ``hooks``, built here when not given; returns the facade, for the invocation's application.

    A plugin that cannot be loaded costs only its own commands: a one-line warning is printed and
    the core's commands keep working. When not even the plugin manager could be built, None is
    returned: the application then tries again itself, so ``helpdesk plugins`` shows the real error.
    """
    built = hooks
    try:
        built = hooks or Hooks.build()
        built.register_commands(cli=group)
    except Exception as exc:  # noqa: BLE001 - never break the core CLI because of a plugin
        click.echo(f"Warning: plugin commands are unavailable ({type(exc).__name__}: {exc}); "
                   "run 'helpdesk plugins' to see which plugin fails.", err=True)
    return built
