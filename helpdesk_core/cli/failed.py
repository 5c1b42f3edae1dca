"""``helpdesk failed …``: messages that could not be imported."""

from __future__ import annotations

import sys

import click

from helpdesk_core.cli.common import CliState, fail, handle_errors, kept_mail_group
from helpdesk_core.hooktypes import IMPORTED
from helpdesk_core.services import failed as svc


failed = kept_mail_group(
    "failed", "Messages that could not be imported (kept raw, nothing lost).",
    list_doc="List failed imports, oldest first.", everything="Include retried and discarded ones.",
    line=lambda f: f"{f['id']:>5}  {f['department']}  {f['sender']}  {f['subject']!r}  {f['error']}",
    nothing="No failed imports.",
    rows=lambda session, *, actor, everything, **filters: svc.list_failed(
        session, actor=actor, include_retried=everything, **filters))


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
