"""``helpdesk outbox …``: outgoing mail and its delivery state."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import click

from helpdesk_core.cli.common import CliState, emit, handle_errors
from helpdesk_core.services import outbox as svc


@click.group()
def outbox() -> None:
    """Outgoing mail (staff replies, acknowledgements) and its delivery state."""


def _outbox_lines(r: dict[str, Any]) -> Iterator[str]:
    line = (f"{r['id']:>5}  {r['status']:<7} {r['kind']:<15} {r['department']}  "
            f"to {', '.join(r['recipients'])}  {r['subject']!r}  attempts {r['attempts']}")
    if r["status"] == "queued" and r["next_attempt_at"]:
        line += f"  next {r['next_attempt_at']}"
    if r["status"] == "sent":
        line += f"  sent {r['sent_at']}"
    yield line
    if r["last_error"] and r["status"] != "sent":
        yield f"       {r['last_error']}"


@outbox.command("list")
@click.option("--status", type=click.Choice(["queued", "sending", "sent", "failed"]), default=None)
@click.option("--department", default=None)
@click.option("--limit", default=100, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@handle_errors
def outbox_list(state: CliState, status: str | None, department: str | None, limit: int, as_json: bool) -> None:
    """List outgoing mail, newest first, with why it is waiting or failed."""
    with state.session(commit=False) as (_app, session, actor):
        data = svc.list_outbox(session, actor=actor, status=status, department=department, limit=limit)
    emit(data, as_json, _outbox_lines, "The outbox is empty.")


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
@click.pass_obj
@handle_errors
def outbox_retry(state: CliState, outbox_id: int) -> None:
    """Queue a failed mail again (sent by the next flush)."""
    with state.session() as (_app, session, actor):
        svc.retry(session, actor=actor, outbox_id=outbox_id)
    click.echo(f"Outbox message {outbox_id} queued again.")
