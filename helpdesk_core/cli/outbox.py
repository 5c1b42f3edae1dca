"""``helpdesk outbox …``: outgoing mail and its delivery state."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import click
from sqlalchemy.orm import Session

from helpdesk_core.app import Helpdesk
from helpdesk_core.cli.common import CliState, action, emit, handle_errors, listing
from helpdesk_core.services import outbox as svc
from helpdesk_core.services.outbox import OutboxStatus
from helpdesk_core.services.permissions import Actor


@click.group()
def outbox() -> None:
    """Outgoing mail (staff replies, acknowledgements) and its delivery state."""


def _outbox_lines(r: dict[str, Any]) -> Iterator[str]:
    line = (f"{r['id']:>5}  {r['status']:<7} {r['kind']:<15} {r['department']}  "
            f"to {', '.join(r['recipients'])}  {r['subject']!r}  attempts {r['attempts']}")
    if r["status"] == OutboxStatus.QUEUED and r["next_attempt_at"]:
        line += f"  next {r['next_attempt_at']}"
    if r["status"] == OutboxStatus.SENT:
        line += f"  sent {r['sent_at']}"
    yield line
    if r["last_error"] and r["status"] != OutboxStatus.SENT:
        yield f"       {r['last_error']}"


@outbox.command("list")
@click.option("--status", type=click.Choice([s.value for s in OutboxStatus]), default=None)
@click.option("--department", default=None)
@click.option("--limit", default=100, show_default=True, type=int)
@listing(_outbox_lines, "The outbox is empty.")
def outbox_list(_app: Helpdesk, session: Session, actor: Actor, status: str | None, department: str | None,
                limit: int) -> list[dict[str, Any]]:
    """List outgoing mail, newest first, with why it is waiting or failed."""
    return svc.list_outbox(session, actor=actor, status=status, department=department, limit=limit)


@outbox.command("flush")
@click.option("--department", default=None, help="Only this department.")
@click.option("--retry-now", is_flag=True, help="Also send mail waiting for its next retry (after a fix).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@handle_errors
def outbox_flush(state: CliState, department: str | None, retry_now: bool, as_json: bool) -> None:
    """Send the outgoing mail that is due now."""
    with state.session(commit=False) as (app, _session, actor):
        counts = svc.flush(app, actor=actor, department=department, retry_now=retry_now).as_json()
    emit(counts, as_json, lambda c: ", ".join(f"{k} {v}" for k, v in c.items()), rows=[counts])
    if not as_json and (counts["retry"] or counts["failed"]):
        click.echo("See 'helpdesk outbox list' for the reasons.", err=True)
        sys.exit(1)


@outbox.command("retry")
@click.argument("outbox_id", type=int)
@action
def outbox_retry(_app: Helpdesk, session: Session, actor: Actor, outbox_id: int) -> str:
    """Queue a failed mail again (sent by the next flush)."""
    svc.retry(session, actor=actor, outbox_id=outbox_id)
    return f"Outbox message {outbox_id} queued again."
