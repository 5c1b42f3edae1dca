"""``helpdesk ticket …`` and ``helpdesk failed …``."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

import click

from helpdesk_core.cli.main import CliState, echo_json, fail, handle_errors
from helpdesk_core.services import failed as failed_svc
from helpdesk_core.services import tickets as svc
from helpdesk_core.services.search import SORTS, search_tickets


@click.group()
def ticket() -> None:
    """Tickets."""


@ticket.command("list")
@click.option("--department", default=None)
@click.option("--status", default=None, help="open, pending, resolved, closed (several: comma-separated).")
@click.option("--assignee", default=None, metavar="me|EMAIL|none")
@click.option("--requester", default=None, metavar="EMAIL")
@click.option("--tag", default=None)
@click.option("--since", type=click.DateTime(), default=None, help="Updated at or after (UTC).")
@click.option("--query", default=None, metavar="TEXT", help="Full-text search: subject, bodies, addresses.")
@click.option("--sort", type=click.Choice(SORTS), default="number", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None)
@click.option("--offset", type=click.IntRange(min=0), default=0)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@handle_errors
def ticket_list(state: CliState, department: str | None, as_json: bool, since: datetime | None,
                **filters: Any) -> None:
    """List the tickets you may see (filtered, searched)."""
    with state.session(commit=False) as (_app, session, actor):
        data = search_tickets(session, actor=actor, department=department,
                              since=since.replace(tzinfo=UTC) if since else None, **filters)
    if as_json:
        echo_json(data)
        return
    for t in data:
        who = t["requester"]["email"] if t["requester"] else "-"
        click.echo(f"{t['id']:>6}  {t['department']} #{t['number']}  [{t['status']}]  {t['subject']}  "
                   f"({who}, {t['message_count']} messages)")


@ticket.command("show")
@click.argument("ticket_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@handle_errors
def ticket_show(state: CliState, ticket_id: int, as_json: bool) -> None:
    """Show one ticket with its messages."""
    with state.session(commit=False) as (_app, session, actor):
        data = svc.ticket_json(svc.get_ticket(session, actor=actor, ticket_id=ticket_id))
    if as_json:
        echo_json(data)
        return
    req = data["requester"]["email"] if data["requester"] else "-"
    click.echo(f"{data['department']} #{data['number']} [{data['status']}] {data['subject']}  ({req})")
    click.echo(f"priority {data['priority']}, assignee {data['assignee'] or '-'}, "
               f"tags {', '.join(data['tags']) or '-'}")
    for e in data["events"]:
        click.echo(f"  {e['at']}  {e['actor']}: {e['kind']} {e['old'] if e['old'] is not None else '-'} → "
                   f"{e['new'] if e['new'] is not None else '-'}")
    for m in data["messages"]:
        sender = m["from"]["email"] if m["from"] else "-"
        click.echo(f"\n--- {m['direction']} {m['kind']} from {sender} at {m['date']}")
        click.echo(m["body_display"] or m["body_text"])
        for a in m["attachments"]:
            click.echo(f"    [attachment] {a['filename']} ({a['content_type']}, {a['size']} bytes)")
        for a in m["removed_attachments"]:
            click.echo(f"    [removed] {a['filename']}: {a['reason']}")


@ticket.command("export")
@click.option("--department", default=None)
@click.pass_obj
@handle_errors
def ticket_export(state: CliState, department: str | None) -> None:
    """Export tickets as JSON Lines (one full ticket per line, same shape as 'show --json')."""
    with state.session(commit=False) as (_app, session, actor):
        for data in svc.export_tickets(session, actor=actor, department=department):
            sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")


@click.group()
def failed() -> None:
    """Messages that could not be imported (kept raw, nothing lost)."""


@failed.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.option("--all", "include_retried", is_flag=True, help="Include retried ones.")
@click.pass_obj
@handle_errors
def failed_list(state: CliState, as_json: bool, include_retried: bool) -> None:
    """List failed imports."""
    with state.session(commit=False) as (_app, session, _actor):
        data = failed_svc.list_failed(session, include_retried=include_retried)
    if as_json:
        echo_json(data)
        return
    if not data:
        click.echo("No failed imports.")
    for f in data:
        click.echo(f"{f['id']:>5}  {f['department']}  {f['sender']}  {f['subject']!r}  {f['error']}")


@failed.command("retry")
@click.argument("failed_id", type=int)
@click.pass_obj
@handle_errors
def failed_retry(state: CliState, failed_id: int) -> None:
    """Import a failed message again."""
    with state.session() as (app, session, actor):
        outcome = failed_svc.retry_failed(app, session, actor=actor, failed_id=failed_id)
    if outcome.status in ("created", "updated", "duplicate"):
        click.echo(f"Imported ({outcome.status}, ticket {outcome.ticket_id}).")
    else:
        fail(f"Still failing: {outcome.reason}")


@failed.command("export")
@click.argument("failed_id", type=int)
@click.pass_obj
@handle_errors
def failed_export(state: CliState, failed_id: int) -> None:
    """Write the raw message to standard output (e.g. > message.eml)."""
    with state.session(commit=False) as (_app, session, _actor):
        raw = failed_svc.get_failed(session, failed_id).raw
    sys.stdout.buffer.write(raw)


def register(main: click.Group) -> None:
    main.add_command(ticket)
    main.add_command(failed)
