"""``helpdesk import``, ``helpdesk worker`` and ``helpdesk ingest``."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click
from sqlalchemy.exc import OperationalError

from helpdesk_core.cli.common import EX_NOUSER, EX_TEMPFAIL, CliState, describe, emit, fail, handle_errors
from helpdesk_core.errors import DatabaseUnavailable, HelpdeskError, NotFoundError
from helpdesk_core.hooktypes import ImportStatus
from helpdesk_core.mail.controls import terminal_safe
from helpdesk_core.services.imports import import_targets, ingest_raw, run_import, run_worker
from helpdesk_core.services.permissions import SYSTEM, Actor

if TYPE_CHECKING:
    from helpdesk_core.inbound.importer import CycleResult

#: sysexits.h: the input data was incorrect (the mail server bounces it to the sender)
EX_DATAERR = 65


def _run_with_progress(state: CliState, actor: Actor, targets: list[tuple[int, str]],
                       show: bool) -> list[CycleResult]:
    """Run the cycles; with ``show`` (standard output is a terminal, no ``--json``) under a rich
    progress bar per department: imported of waiting (the provider's count, when it reports one),
    rate and time left. Without it nothing but the summary is printed."""
    app = state.app()
    if not show:
        return [run_import(app, actor=actor, department_id=dept_id) for dept_id, _ in targets]
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    # rich draws with cursor and colour sequences, which the terminal-safe stdout would strip:
    # it writes to the unfiltered stream, and the one stranger-controlled text it shows (the
    # department name) is made safe here
    out = sys.stdout
    console = Console(file=getattr(out, "unfiltered", out))
    results: list[CycleResult] = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"),
                  TimeRemainingColumn(), console=console, transient=False) as bar:
        for dept_id, name in targets:
            task = bar.add_task(terminal_safe(name), total=None, rate="")

            def progress(done: int, total: int | None, _task: Any = task) -> None:
                bar.update(_task, completed=done, total=total)
                speed = bar.tasks[_task].speed  # rich's moving estimate, None until it has two points
                bar.update(_task, rate=f"{speed:.1f} msg/s" if speed else "")

            results.append(run_import(app, actor=actor, department_id=dept_id, progress=progress))
    return results


def _cycle_line(r: CycleResult) -> str:
    line = (f"{r.department}: fetched {r.fetched}, created {r.created}, updated {r.updated}, "
            f"skipped {r.skipped}, failed {r.failed}, deleted {r.deleted}")
    return line + (f"  ERROR: {r.error}" if r.error else "")


@click.command("import")
@click.option("--department", default=None, help="Only this department.")
@click.option("--json", "as_json", is_flag=True, help="Per-department counts as JSON.")
@click.pass_obj
@handle_errors
def import_(state: CliState, department: str | None, as_json: bool) -> None:
    """Run one import cycle now (all departments with a mailbox, or one)."""
    with state.session(commit=False) as (app, session, actor):
        targets = import_targets(app, session, actor=actor, department=department)
    results = _run_with_progress(state, actor, targets, show=sys.stdout.isatty() and not as_json)
    emit({r.department: r.as_json() for r in results}, as_json, _cycle_line,
         "No department has a mailbox yet.", rows=results)
    if any(r.error and r.error_kind != "leased" for r in results):
        sys.exit(1)


@click.command()
@click.option("--once", is_flag=True, help="Run every due department once, then exit.")
@click.option("--threads", default=4, show_default=True, help="Departments imported in parallel.")
@click.pass_obj
@handle_errors
def worker(state: CliState, once: bool, threads: int) -> None:
    """Run import cycles forever, each department on its own interval. Stops on SIGTERM/SIGINT."""
    run_worker(state.app(), actor=SYSTEM, threads=threads, once=once)  # the daemon acts for the installation


@click.command()
@click.option("--department", required=True)
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.pass_obj
def ingest(state: CliState, department: str, files: tuple[str, ...]) -> None:
    """Import raw RFC 5322 messages from FILES or standard input (e.g. a Postfix pipe).

    Exit 0 when stored (a ticket message, or kept: skipped, held, duplicate or failed, see
    'helpdesk log'), 65 when a message is refused (empty, or larger than
    mail.max_message_size_mb: the mail server bounces it to the sender), 67 for an unknown
    department, 75 when the database is unavailable (the mail server should retry).
    """
    refused: list[str] = []
    try:
        with state.session() as (app, session, actor):
            for raw in _read_messages(files):
                outcome = ingest_raw(app, session, actor=actor, department=department, raw=raw)
                if outcome.status == ImportStatus.REFUSED:
                    refused.append(outcome.reason)
                    continue
                click.echo(f"{outcome.status}" + (f" ticket {outcome.ticket_id}" if outcome.ticket_id else "")
                           + (f": {outcome.reason}" if outcome.reason else ""), err=True)
    except NotFoundError as exc:
        fail(describe(exc), EX_NOUSER)
    except (DatabaseUnavailable, OperationalError) as exc:
        fail(f"Database unavailable, try again later: {_one_line(exc)}", EX_TEMPFAIL)
    except HelpdeskError as exc:  # e.g. not initialised: fix it, the mail server retries meanwhile
        fail(describe(exc), EX_TEMPFAIL)
    except Exception as exc:  # noqa: BLE001 - the MTA should retry rather than bounce
        fail(f"Temporary failure: {type(exc).__name__}: {_one_line(exc)}", EX_TEMPFAIL)
    if refused:
        fail("message refused: " + "; ".join(refused), EX_DATAERR)


def _read_messages(files: tuple[str, ...]) -> Iterator[bytes]:
    """The raw messages one at a time, each read as a single ``bytes`` of its size: a file is
    sized by ``fstat``; standard input (a pipe, size unknown) is first copied to a temporary file
    in 1 MiB steps, so a big message is never held as read chunks plus their join."""
    if files:
        for name in files:
            with open(name, "rb", buffering=0) as f:
                yield f.readall()
        return
    with tempfile.TemporaryFile(buffering=0) as spool:
        shutil.copyfileobj(sys.stdin.buffer, spool, 1024 * 1024)
        spool.seek(0)
        yield spool.readall()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:500]

