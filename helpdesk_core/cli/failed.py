"""``helpdesk failed …``: messages that could not be imported."""

from __future__ import annotations

import sys
from typing import Any

import click
from sqlalchemy.orm import Session

from helpdesk_core.app import Helpdesk
from helpdesk_core.cli.common import CliState, fail, handle_errors, kept_filters, listing
from helpdesk_core.hooktypes import IMPORTED
from helpdesk_core.services import failed as svc
from helpdesk_core.services.permissions import Actor


@click.group()
def failed() -> None:
    """Messages that could not be imported (kept raw, nothing lost)."""


@failed.command("list")
@click.option("--all", "include_retried", is_flag=True, help="Include retried and discarded ones.")
@listing(lambda f: f"{f['id']:>5}  {f['department']}  {f['sender']}  {f['subject']!r}  {f['error']}",
         "No failed imports.")
@kept_filters
def failed_list(_app: Helpdesk, session: Session, actor: Actor, include_retried: bool,
                **filters: Any) -> list[dict[str, Any]]:
    """List failed imports, oldest first."""
    return svc.list_failed(session, actor=actor, include_retried=include_retried, **filters)


@failed.command("retry")
@click.argument("failed_id", type=int)
@click.pass_obj
@handle_errors
def failed_retry(state: CliState, failed_id: int) -> None:
    """Import a failed message again."""
    with state.session() as (app, session, actor):
        outcome = svc.retry_failed(app, session, actor=actor, failed_id=failed_id)
    if outcome.status in IMPORTED:
        click.echo(f"Imported ({outcome.status}, ticket {outcome.ticket_id}).")
    else:
        fail(f"Still failing: {outcome.reason}")


@failed.command("export")
@click.argument("failed_id", type=int)
@click.pass_obj
@handle_errors
def failed_export(state: CliState, failed_id: int) -> None:
    """Write the raw message to standard output (e.g. > message.eml)."""
    with state.session(commit=False) as (_app, session, actor):
        raw = svc.get_failed(session, actor=actor, failed_id=failed_id).raw
    sys.stdout.buffer.write(raw)
