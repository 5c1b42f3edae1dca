"""``helpdesk ticket …``: list, show, export and reply to tickets."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from sqlalchemy.orm import Session

from helpdesk_core.app import Helpdesk
from helpdesk_core.cli.common import CliState, emit, fail, handle_errors, json_line, listing
from helpdesk_core.services import tickets as svc
from helpdesk_core.services.permissions import Actor
from helpdesk_core.services.search import SORTS, search_tickets
from helpdesk_core.services.replies import OutboxStatus, reply_to_ticket, send_now
from helpdesk_core.services.reply_templates import render_template


@click.group()
def ticket() -> None:
    """Tickets."""


def _ticket_line(t: dict[str, Any]) -> str:
    who = t["requester"]["email"] if t["requester"] else "-"
    return (f"{t['id']:>6}  {t['department']} #{t['number']}  [{t['status']}]  {t['subject']}  "
            f"({who}, {t['message_count']} messages)")


@ticket.command("list")
@click.option("--department", default=None)
@click.option("--status", default=None, help="open, pending, resolved, closed (several: comma-separated).")
@click.option("--assignee", default=None, metavar="me|EMAIL|none")
@click.option("--requester", default=None, metavar="EMAIL")
@click.option("--tag", default=None)
@click.option("--priority", default=None, help="low, normal, high, urgent (several: comma-separated).")
@click.option("--since", type=click.DateTime(), default=None, help="Updated at or after (UTC).")
@click.option("--query", default=None, metavar="TEXT", help="Full-text search: subject, bodies, addresses.")
@click.option("--sort", type=click.Choice(SORTS), default="number", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None)
@click.option("--offset", type=click.IntRange(min=0), default=0)
@listing(_ticket_line)
def ticket_list(_app: Helpdesk, session: Session, actor: Actor, department: str | None, since: datetime | None,
                **filters: Any) -> list[dict[str, Any]]:
    """List the tickets you may see (filtered, searched)."""
    return search_tickets(session, actor=actor, department=department,
                          since=since.replace(tzinfo=UTC) if since else None, **filters)


def _ticket_lines(data: dict[str, Any]) -> Iterator[str]:
    req = data["requester"]["email"] if data["requester"] else "-"
    yield f"{data['department']} #{data['number']} [{data['status']}] {data['subject']}  ({req})"
    yield f"priority {data['priority']}, assignee {data['assignee'] or '-'}, tags {', '.join(data['tags']) or '-'}"
    for e in data["events"]:
        yield (f"  {e['at']}  {e['actor']}: {e['kind']} {e['old'] if e['old'] is not None else '-'} → "
               f"{e['new'] if e['new'] is not None else '-'}")
    for m in data["messages"]:
        sender = m["from"]["email"] if m["from"] else "-"
        yield f"\n--- {m['direction']} {m['kind']} from {sender} at {m['date']}"
        yield m["body_display"] or m["body_text"]
        for a in m["attachments"]:
            yield f"    [attachment] {a['filename']} ({a['content_type']}, {a['size']} bytes)"
        for a in m["removed_attachments"]:
            yield f"    [removed] {a['filename']}: {a['reason']}"


@ticket.command("show")
@click.argument("ticket_id", type=int)
@listing(_ticket_lines, rows=lambda data: [data])
def ticket_show(_app: Helpdesk, session: Session, actor: Actor, ticket_id: int) -> dict[str, Any]:
    """Show one ticket with its messages."""
    return svc.show_ticket(session, actor=actor, ticket_id=ticket_id)


@ticket.command("export")
@click.option("--department", default=None)
@click.pass_obj
@handle_errors
def ticket_export(state: CliState, department: str | None) -> None:
    """Export tickets as JSON Lines (one full ticket per line, same shape as 'show --json')."""
    with state.session(commit=False) as (_app, session, actor):
        for data in svc.export_tickets(session, actor=actor, department=department):
            sys.stdout.write(json_line(data) + "\n")


@ticket.command("reply")
@click.argument("ticket_id", type=int)
@click.option("--body-file", default=None, type=click.File("r", encoding="utf-8"),
              help="Text of the reply ('-' for standard input).")
@click.option("--template", default=None, metavar="NAME",
              help="Use the department's canned reply NAME (see 'helpdesk reply-template list').")
@click.option("--as", "as_email", default=None, metavar="EMAIL",
              help="Reply as this staff member (same as the global --as).")
@click.option("--attach", "attach", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Attach a file (repeatable).")
@click.option("--internal", is_flag=True, help="An internal note for staff: stored, never mailed.")
@click.option("--no-cc", is_flag=True, help="Send only to the requester, not to the other participants.")
@click.option("--queue-only", is_flag=True, help="Only queue the mail; the worker or 'outbox flush' sends it.")
@click.option("--json", "as_json", is_flag=True,
              help="Print {ticket_message, outbox, status, mailed, recipients, reason}; status is note, "
                   "not_mailed (no mailbox: stored only), queued, sent or failed.")
@click.pass_obj
@handle_errors
def ticket_reply(state: CliState, ticket_id: int, body_file: click.utils.LazyFile | None, as_email: str | None,
                 attach: tuple[str, ...], internal: bool, no_cc: bool, queue_only: bool,
                 template: str | None = None, as_json: bool = False) -> None:
    """Reply to a ticket: stored on the ticket, then mailed to the requester from the department's
    address. In a department without a mailbox the reply is only stored (the requester reads it in
    the help desk) and nothing is mailed."""
    if as_email:
        state.actor_email = as_email
    if (body_file is None) == (template is None):
        fail("Give the reply's text with --body-file FILE or --template NAME (one of them).", 2)
    body = body_file.read() if body_file is not None else ""
    files = [(Path(p).name, Path(p).read_bytes()) for p in attach]
    with state.session() as (app, session, actor):
        if template is not None:
            body = render_template(session, actor=actor, name=template,
                                   ticket=svc.get_ticket(session, actor=actor, ticket_id=ticket_id))
        result = reply_to_ticket(app, session, actor=actor, ticket_id=ticket_id, body=body,
                                 attachments=files, internal=internal, cc=not no_cc)
        ticket_message_id = result.ticket_message.id
        outbox_id = result.outbox.id if result.outbox else None
        recipients = list(result.outbox.recipients) if result.outbox else []
        department = result.ticket_message.ticket.department.name
    answer: dict[str, Any] = {"ticket_message": ticket_message_id, "outbox": outbox_id, "status": "queued",
                              "mailed": outbox_id is not None, "recipients": recipients,
                              "reason": result.not_mailed}
    if outbox_id is None:
        answer["status"] = "not_mailed" if result.not_mailed else "note"
        if as_json:
            emit(answer, True, str)
        elif result.not_mailed:
            click.echo(f"Reply {ticket_message_id} stored on ticket {ticket_id}, but not mailed: "
                       f"{result.not_mailed}. The requester sees it in the help desk; to mail replies, "
                       f"configure the mailbox with 'helpdesk department set-mailbox {department!r} ...'.")
        else:
            click.echo(f"Internal note {ticket_message_id} added to ticket {ticket_id}.")
        return
    who = ", ".join(recipients)
    if queue_only:
        if as_json:
            emit(answer, True, str)
        else:
            click.echo(f"Reply {ticket_message_id} queued for {who} (outbox {outbox_id}).")
        return
    state_now = send_now(app, actor=actor, outbox_id=outbox_id)
    answer["status"], answer["reason"] = state_now.status, state_now.error
    if as_json:
        emit(answer, True, str)
        if state_now.status == OutboxStatus.FAILED:
            raise SystemExit(1)
    elif state_now.status == OutboxStatus.SENT:
        click.echo(f"Reply {ticket_message_id} sent to {who}.")
    elif state_now.status == OutboxStatus.FAILED:
        fail(f"Reply {ticket_message_id} is stored on the ticket but could not be sent: {state_now.error} "
             f"(outbox {outbox_id}).")
    else:
        click.echo(f"Reply {ticket_message_id} stored and queued (outbox {outbox_id}); not sent yet: "
                   f"{state_now.error} It will be retried by 'helpdesk worker' or 'helpdesk outbox flush'.", err=True)
