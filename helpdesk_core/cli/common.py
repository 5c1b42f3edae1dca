"""What every ``helpdesk`` command module shares: the state of one invocation, output, errors.

The command modules (and plugins adding commands) import this module, never :mod:`.main`, so the
group that assembles the commands can import them without a circle.

Services raise :class:`~helpdesk_core.errors.HelpdeskError` with a machine-readable ``kind`` and
``details``; :func:`describe` words the details for the command line (which command to run next,
which option was wrong), the way the web app words them for a page.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import click
from sqlalchemy.orm import Session

from helpdesk_core.app import Helpdesk
from helpdesk_core.config import Config
from helpdesk_core.errors import DatabaseUnavailable, HelpdeskError
from helpdesk_core.plugins import Hooks
from helpdesk_core.db import is_initialised
from helpdesk_core.mail.controls import escape_controls, terminal_safe
from helpdesk_core.services.permissions import Actor, resolve_actor

#: exit codes from sysexits.h: bad usage, unknown addressee, temporary failure (the MTA retries)
EX_USAGE, EX_NOUSER, EX_TEMPFAIL = 64, 67, 75


@dataclass
class CliState:
    database_url: str | None
    actor_email: str | None
    #: the invocation's hook facade, built by :class:`~helpdesk_core.cli.main.HelpdeskGroup`
    #: (None if the plugins failed to load)
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
            raise HelpdeskError("The database has no help-desk tables yet.", kind="not_initialised",
                                details={"hint": "init"})
        with app.session() as session:
            actor = resolve_actor(session, self.actor_email)
            yield app, session, actor
            if commit:
                session.commit()


def json_line(data: Any, **kwargs: Any) -> str:
    """``data`` as JSON text that prints safely: control characters escaped, not raw."""
    return escape_controls(json.dumps(data, ensure_ascii=False, default=str, **kwargs))


def echo_json(data: Any) -> None:
    click.echo(json_line(data, indent=2))


class TerminalSafeStream:
    """A text stream that removes terminal escape sequences and control characters (but newline
    and tab) from everything written to it (:func:`~helpdesk_core.mail.controls.terminal_safe`):
    subjects, names and bodies come from strangers' mail, and an OSC or CSI sequence in them would
    retitle, recolour or rewrite the operator's terminal. Bytes written to ``.buffer`` (raw mail or
    attachment exports, meant for a file) pass unchanged. Installed by ``helpdesk`` around every
    command for stdout and stderr (:func:`install_terminal_safe_output`)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError("write() argument must be str, not bytes")  # so click sees a text stream
        self._stream.write(terminal_safe(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    @property
    def unfiltered(self) -> Any:
        """The stream underneath, for a writer that makes its own text safe and needs its own
        terminal sequences to pass (the rich progress bar of ``helpdesk import``)."""
        return self._stream

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def install_terminal_safe_output(ctx: click.Context) -> None:
    """Filter ``sys.stdout``/``sys.stderr`` through :class:`TerminalSafeStream` until ``ctx`` closes."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = TerminalSafeStream(saved[0]), TerminalSafeStream(saved[1])

    def restore() -> None:
        sys.stdout, sys.stderr = saved

    ctx.call_on_close(restore)


def emit(data: Any, as_json: bool, line: Callable[[Any], str | Iterable[str]], nothing: str | None = None,
         rows: Iterable[Any] | None = None) -> None:
    """Print ``data`` as JSON (``--json``), or each row (``rows``, default ``data``) as the line(s)
    ``line`` makes of it, or the ``nothing`` line when there are no rows."""
    if as_json:
        echo_json(data)
        return
    items = list(data if rows is None else rows)
    for item in items:
        out = line(item)
        for text in [out] if isinstance(out, str) else out:
            click.echo(text)
    if not items and nothing:
        click.echo(nothing)


def listing(line: Callable[[Any], str | Iterable[str]], nothing: str | None = None,
            rows: Callable[[Any], Iterable[Any]] | None = None) -> Callable[[Callable[..., Any]], Callable[..., None]]:
    """Make a read-only command of a function ``fn(app, session, actor, **options)`` that returns
    what to show: it gains ``--json``, runs in a session that is never committed, and prints the
    data with :func:`emit` (``line``, ``nothing``; ``rows(data)`` when the rows are not the data).
    Put ``@group.command(...)`` and the command's options above it."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., None]:
        @click.option("--json", "as_json", is_flag=True, help="Machine-readable output (JSON).")
        @click.pass_obj
        @handle_errors
        @functools.wraps(fn)
        def command(state: CliState, as_json: bool, **options: Any) -> None:
            with state.session(commit=False) as (app, session, actor):
                data = fn(app, session, actor, **options)
            emit(data, as_json, line, nothing, None if rows is None else rows(data))

        return command

    return decorate


def kept_filters(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The filters the lists of failed, held and logged mail share (as their web pages do):
    ``--department``, ``--since``/``--until`` (UTC days, YYYY-MM-DD) and ``--text``; they reach
    ``fn`` as the service's keywords (``department``, ``since``, ``until``, ``text``)."""
    day = click.DateTime(formats=["%Y-%m-%d"])

    @click.option("--department", default=None, help="Only this department.")
    @click.option("--since", type=day, default=None, help="Only from this day on (YYYY-MM-DD, UTC).")
    @click.option("--until", type=day, default=None, help="Only up to this day (YYYY-MM-DD, UTC).")
    @click.option("--text", default=None, help="Only those whose subject, sender or reason contains TEXT.")
    @functools.wraps(fn)
    def command(*args: Any, since: Any = None, until: Any = None, **options: Any) -> Any:
        return fn(*args, since=since and since.date(), until=until and until.date(), **options)

    return command


def kept_mail_group(name: str, doc: str, *, list_doc: str, everything: str, line: Callable[[Any], str],
                    nothing: str, rows: Callable[..., list[dict[str, Any]]]) -> click.Group:
    """The group of one kind of kept mail (``helpdesk failed``, ``helpdesk held``) with its
    ``list`` command: ``--all`` (help ``everything``), the :func:`kept_filters`, ``--json``, one
    ``line`` per row or ``nothing``; ``rows(session, actor=..., everything=..., **filters)`` is
    the service call. The kind's own commands are added to the group by its module."""
    group = click.Group(name, help=doc)

    @group.command("list", help=list_doc)
    @click.option("--all", "everything", is_flag=True, help=everything)
    @listing(line, nothing)
    @kept_filters
    def list_kept(_app: Helpdesk, session: Session, actor: Actor, everything: bool,
                  **filters: Any) -> list[dict[str, Any]]:
        return rows(session, actor=actor, everything=everything, **filters)

    return group


def action(fn: Callable[..., str]) -> Callable[..., None]:
    """Make a command of a function ``fn(app, session, actor, **options)`` that changes something
    through a service and returns the line that says what was done: it runs in one session,
    committed when ``fn`` returns, and the line is printed after the commit. Put
    ``@group.command(...)`` and the command's options above it."""

    @click.pass_obj
    @handle_errors
    @functools.wraps(fn)
    def command(state: CliState, **options: Any) -> None:
        with state.session() as (app, session, actor):
            done = fn(app, session, actor, **options)
        click.echo(done)

    return command


#: how the command line words a service's ``details["hint"]`` (formatted with the details)
HINTS: dict[str, str] = {
    "init": "Run 'helpdesk init' first.",
    "add_department": "Create it with 'helpdesk department add {department!r} --sender ADDRESS'.",
    "set_mailbox": "Configure one with 'helpdesk department set-mailbox {department!r} ...'.",
    "add_user": "Add one with 'helpdesk user add {email} --role ...'.",
    "ask_admin": "Ask an admin to do this, or to make you a department admin "
                 "('helpdesk user add EMAIL --role admin --department NAME').",
    "ask_admin_staff": "Ask an admin to add you ('helpdesk user add EMAIL --role agent --department NAME').",
    "internal_note": "Add an internal note instead (--internal).",
    "list_tickets": "See 'helpdesk ticket list'.",
    "list_failed": "See 'helpdesk failed list'.",
    "list_held": "See 'helpdesk held list'.",
    "list_outbox": "See 'helpdesk outbox list'.",
    "reactivate": "An admin can reactivate them ('helpdesk user set {email} --activate').",
    "deactivated_requester": "Add an internal note instead (--internal), or reactivate them "
                             "('helpdesk user set {email} --activate').",
}

#: the option that gives a service argument (``details["field"]``)
OPTIONS: dict[str, str] = {"sender": "--sender", "interval_minutes": "--interval", "body": "--body-file"}


def describe(exc: HelpdeskError) -> str:
    """The error's message plus the command-line wording of its hint or wrong field."""
    details = getattr(exc, "details", None) or {}
    template = HINTS.get(details.get("hint", ""))
    if template is not None:
        try:
            return f"{exc.message} {template.format_map(details)}"
        except (KeyError, ValueError):
            return exc.message
    option = OPTIONS.get(details.get("field", ""))
    return f"{exc.message} (option {option})" if option else exc.message


def fail(message: str, code: int = 1) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn HelpdeskError into a one-line message and a non-zero exit (75 when temporary)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DatabaseUnavailable as exc:
            fail(describe(exc), EX_TEMPFAIL)
        except HelpdeskError as exc:
            fail(describe(exc), 1)

    return wrapper
