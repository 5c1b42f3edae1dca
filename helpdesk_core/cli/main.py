"""The ``helpdesk`` group: global options, ``init``, ``plugins``, and every command group assembled.

Each top-level command group lives in a module of its own and imports only :mod:`.common`; this
module imports them (never the other way round). Commands and JSON shapes are a contract: keep them
stable.

One invocation builds one plugin manager (one :class:`~helpdesk_core.plugins.Hooks`): the top-level
group builds it before parsing its arguments, lets plugins add their commands with it
(``helpdesk_register_commands``) and hands it to the invocation's application (:meth:`CliState.app`).
"""

from __future__ import annotations

import logging

import click

from helpdesk_core.cli import (
    departments, failed, held, imports, lifecycle, log, outbox, scale, settings, tickets, users, web,
)
from helpdesk_core.cli.common import (  # noqa: F401 - re-exported for plugins written against cli.main
    install_terminal_safe_output,
    EX_NOUSER,
    EX_TEMPFAIL,
    EX_USAGE,
    CliState,
    echo_json,
    emit,
    fail,
    handle_errors,
)
from helpdesk_core.plugins import Hooks

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
    install_terminal_safe_output(ctx)  # text from mail never drives the terminal (logs included)
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


def _plugin_lines(p: dict) -> list[str]:
    flag = " (default)" if p["default"] else ""
    lines = [f"{p['name']}{flag}  {p['version'] or ''}  hooks: {', '.join(p['hooks'])}"]
    for prov in p["providers"]:
        fields = ", ".join(f["name"] for f in prov["fields"])
        lines.append(f"    provider {prov['name']}: {prov['label']} [{fields}]")
    return lines


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
@handle_errors
def plugins(state: CliState, as_json: bool) -> None:
    """List installed plugins and the mailbox providers they offer."""
    from helpdesk_core.plugins import describe_plugins

    app = state.app()
    data = describe_plugins(app.pm, app.providers)
    emit({"plugins": data, "providers": [p.describe() for _, p in sorted(app.providers.providers.items())]},
         as_json, _plugin_lines, rows=data)


for command in (departments.department, settings.settings, users.user, imports.import_, imports.worker,
                imports.ingest, tickets.ticket, failed.failed, log.log_, held.held, outbox.outbox, web.web):
    main.add_command(command)
lifecycle.register(main)                        # ticket set/create/move …, reply-template
scale.register(main)                            # helpdesk status, watch, department push


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
