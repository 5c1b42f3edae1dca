"""``helpdesk ticket reply`` and ``helpdesk outbox …``: staff replies and outgoing mail."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from helpdesk_core.cli.main import CliState, echo_json, fail, handle_errors
from helpdesk_core.models import OutboxMessage
from helpdesk_core.outbound.outbox import flush_outbox, list_outbox, retry_outbox
from helpdesk_core.services.permissions import require_manage_settings
from helpdesk_core.services.replies import reply_to_ticket


@click.command("reply")
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
@click.pass_obj
@handle_errors
def ticket_reply(state: CliState, ticket_id: int, body_file: click.utils.LazyFile | None, as_email: str | None,
                 attach: tuple[str, ...], internal: bool, no_cc: bool, queue_only: bool,
                 template: str | None = None) -> None:
    """Reply to a ticket: stored on the ticket, then mailed to the requester from the department's address."""
    if as_email:
        state.actor_email = as_email
    if (body_file is None) == (template is None):
        fail("Give the reply's text with --body-file FILE or --template NAME (one of them).", 2)
    body = body_file.read() if body_file is not None else ""
    files = [(Path(p).name, Path(p).read_bytes()) for p in attach]
    with state.session() as (app, session, actor):
        if template is not None:
            from helpdesk_core.services.reply_templates import render_template
            from helpdesk_core.services.tickets import get_ticket

            body = render_template(session, actor=actor, name=template,
                                   ticket=get_ticket(session, actor=actor, ticket_id=ticket_id))
        result = reply_to_ticket(app, session, actor=actor, ticket_id=ticket_id, body=body,
                                 attachments=files, internal=internal, cc=not no_cc)
        ticket_message_id = result.ticket_message.id
        outbox_id = result.outbox.id if result.outbox else None
        department_id = result.ticket_message.department_id
        recipients = ", ".join(result.outbox.recipients) if result.outbox else ""
    if outbox_id is None:
        click.echo(f"Internal note {ticket_message_id} added to ticket {ticket_id}.")
        return
    if queue_only:
        click.echo(f"Reply {ticket_message_id} queued for {recipients} (outbox {outbox_id}).")
        return
    flush_outbox(app, department=department_id)
    with app.session() as session:
        row = session.get(OutboxMessage, outbox_id)
        assert row is not None
        status, error = row.status, row.last_error
    if status == "sent":
        click.echo(f"Reply {ticket_message_id} sent to {recipients}.")
    elif status == "failed":
        fail(f"Reply {ticket_message_id} is stored on the ticket but could not be sent: {error} "
             f"(outbox {outbox_id}).")
    else:
        click.echo(f"Reply {ticket_message_id} stored and queued (outbox {outbox_id}); not sent yet: {error} "
                   "It will be retried by 'helpdesk worker' or 'helpdesk outbox flush'.", err=True)


@click.group()
def outbox() -> None:
    """Outgoing mail (staff replies, acknowledgements) and its delivery state."""


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
        require_manage_settings(actor)
        data = list_outbox(session, status=status, department=department, limit=limit)
    if as_json:
        echo_json(data)
        return
    if not data:
        click.echo("The outbox is empty.")
    for r in data:
        line = (f"{r['id']:>5}  {r['status']:<7} {r['kind']:<15} {r['department']}  "
                f"to {', '.join(r['recipients'])}  {r['subject']!r}  attempts {r['attempts']}")
        if r["status"] == "queued" and r["next_attempt_at"]:
            line += f"  next {r['next_attempt_at']}"
        if r["status"] == "sent":
            line += f"  sent {r['sent_at']}"
        click.echo(line)
        if r["last_error"] and r["status"] != "sent":
            click.echo(f"       {r['last_error']}")


@outbox.command("flush")
@click.option("--department", default=None, help="Only this department.")
@click.option("--retry-now", is_flag=True, help="Also send mail waiting for its next retry (after a fix).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@handle_errors
def outbox_flush(state: CliState, department: str | None, retry_now: bool, as_json: bool) -> None:
    """Send the outgoing mail that is due now."""
    with state.session(commit=False) as (app, _session, actor):
        require_manage_settings(actor)
    counts = flush_outbox(app, department=department, ignore_backoff=retry_now).as_json()
    if as_json:
        echo_json(counts)
        return
    click.echo(", ".join(f"{k} {v}" for k, v in counts.items()))
    if counts["retry"] or counts["failed"]:
        click.echo("See 'helpdesk outbox list' for the reasons.", err=True)
        sys.exit(1)


@outbox.command("retry")
@click.argument("outbox_id", type=int)
@click.pass_obj
@handle_errors
def outbox_retry(state: CliState, outbox_id: int) -> None:
    """Queue a failed mail again (sent by the next flush)."""
    with state.session() as (_app, session, actor):
        require_manage_settings(actor)
        retry_outbox(session, outbox_id)
    click.echo(f"Outbox message {outbox_id} queued again.")


def register(main: click.Group, ticket: click.Group) -> None:
    main.add_command(outbox)
    ticket.add_command(ticket_reply)
