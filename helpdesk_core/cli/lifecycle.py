"""Working tickets and administering departments and users: ``helpdesk ticket set/move/create/
attachment/auto-close``, ``department remove``, ``user set/remove-membership`` and
``reply-template …``. The commands attach to the core's groups (:func:`register`)."""

from __future__ import annotations

import sys
from pathlib import Path

from typing import Any

import click
from sqlalchemy.orm import Session

from helpdesk_core.app import Helpdesk
from helpdesk_core.cli.common import CliState, action, echo_json, handle_errors, listing
from helpdesk_core.services import administration as admin
from helpdesk_core.services import lifecycle as svc
from helpdesk_core.services.permissions import Actor
from helpdesk_core.services import reply_templates as templates
from helpdesk_core.services.attachments import get_attachment
from helpdesk_core.services.tickets import event_json


@click.command("set")
@click.argument("ticket_id", type=int)
@click.option("--status", type=click.Choice(["open", "pending", "resolved", "closed"]), default=None)
@click.option("--assign", "assign", metavar="EMAIL", default=None, help="Assign to this agent/admin.")
@click.option("--unassign", is_flag=True)
@click.option("--priority", type=click.Choice(["low", "normal", "high", "urgent"]), default=None)
@click.option("--tag", "tags", multiple=True, help="Add a tag (repeatable).")
@click.option("--untag", "untags", multiple=True, help="Remove a tag (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the new events.")
@click.pass_obj
@handle_errors
def ticket_set(state: CliState, ticket_id: int, status: str | None, assign: str | None, unassign: bool,
               priority: str | None, tags: tuple[str, ...], untags: tuple[str, ...], as_json: bool) -> None:
    """Change a ticket's status, assignee, priority or tags (recorded in its history)."""
    with state.session() as (app, session, actor):
        events = svc.set_ticket(app, session, actor=actor, ticket_id=ticket_id, status=status, assign=assign,
                                unassign=unassign, priority=priority, add_tags=tags, remove_tags=untags)
        data = [event_json(e) for e in events]
        queued = svc.queued_for(session, ticket_id)
    svc.send_queued(app, queued)
    if as_json:
        echo_json(data)
        return
    for e in data:
        click.echo(f"{e['kind']}: {e['old'] if e['old'] is not None else '-'} → "
                   f"{e['new'] if e['new'] is not None else '-'}")
    if not data:
        click.echo(f"Ticket {ticket_id} unchanged.")


@click.command("move")
@click.argument("ticket_id", type=int)
@click.option("--department", required=True, help="The department that takes the ticket over.")
@action
def ticket_move(app: Helpdesk, session: Session, actor: Actor, ticket_id: int, department: str) -> str:
    """Move a ticket to another department (new number; the old reference keeps threading)."""
    ticket = svc.move_ticket(app, session, actor=actor, ticket_id=ticket_id, department=department)
    return f"Ticket {ticket.id} is now {ticket.department.name} #{ticket.number}."


@click.command("create")
@click.option("--department", required=True)
@click.option("--requester", default="", metavar="EMAIL",
              help="Who the ticket is for (staff: anyone; a requester: themselves, the default).")
@click.option("--subject", required=True)
@click.option("--body-file", required=True, type=click.File("r", encoding="utf-8"),
              help="Text of the ticket ('-' for standard input).")
@click.option("--attach", "attach", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Attach a file (repeatable).")
@click.option("--notify", is_flag=True, help="Mail the requester the ticket reference (needs the "
                                             "department's outgoing mail).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@handle_errors
def ticket_create(state: CliState, department: str, requester: str, subject: str,
                  body_file: click.utils.LazyFile, attach: tuple[str, ...], notify: bool, as_json: bool) -> None:
    """Open an internal ticket (phone call, walk-in; works without a mailbox)."""
    files = [(Path(p).name, Path(p).read_bytes()) for p in attach]
    body = body_file.read()
    with state.session() as (app, session, actor):
        ticket, row = svc.create_ticket(app, session, actor=actor, department=department, requester=requester,
                                        subject=subject, body=body, attachments=files, notify=notify)
        data = {"id": ticket.id, "number": ticket.number, "department": ticket.department.name,
                "requester": ticket.requester.email if ticket.requester else None,
                "outbox": row.id if row is not None else None}
        queued = svc.queued_for(session, ticket.id)
    svc.send_queued(app, queued)
    if as_json:
        echo_json(data)
        return
    mailed = " (requester notified)" if data["outbox"] else (" (not mailed: the department has no mailbox)"
                                                               if notify else "")
    click.echo(f"Ticket {data['id']} opened: {data['department']} #{data['number']}{mailed}.")


@click.command("attachment")
@click.argument("ticket_id", type=int)
@click.argument("name_or_index")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write to this file (default: standard output).")
@click.pass_obj
@handle_errors
def ticket_attachment(state: CliState, ticket_id: int, name_or_index: str, output: str | None) -> None:
    """Write a stored attachment (by file name or its number in 'ticket show', from 1)."""
    with state.session(commit=False) as (app, session, actor):
        found = get_attachment(app, session, actor=actor, ticket_id=ticket_id, name_or_index=name_or_index)
    if output:
        Path(output).write_bytes(found.data)
        click.echo(f"{found.attachment.filename}: {len(found.data)} bytes written to {output}.", err=True)
    else:
        sys.stdout.buffer.write(found.data)
        sys.stdout.buffer.flush()


@click.command("auto-close")
@action
def ticket_auto_close(_app: Helpdesk, session: Session, _actor: Actor) -> str:
    """Close resolved tickets of departments with --auto-close-days (the worker does this too)."""
    return f"{svc.auto_close_resolved(session)} resolved tickets closed."


@click.command("remove")
@click.argument("name")
@click.option("--move-tickets-to", default=None, metavar="DEPARTMENT",
              help="Move its tickets there first (needed while it has tickets).")
@action
def department_remove(app: Helpdesk, session: Session, actor: Actor, name: str, move_tickets_to: str | None) -> str:
    """Remove a department with its mailbox configuration and secrets."""
    moved = admin.remove_department(app, session, actor=actor, department=name, move_tickets_to=move_tickets_to)
    return f"Department {name!r} removed" + (f"; {moved} tickets moved to {move_tickets_to!r}." if moved else ".")


@click.command("set")
@click.argument("email")
@click.option("--name", default=None)
@click.option("--activate/--deactivate", "active", default=None,
              help="A deactivated user can't act and gets no mail; their tickets stay.")
@click.option("--notifications/--no-notifications", default=None, help="Staff notification mails.")
@action
def user_set(_app: Helpdesk, session: Session, actor: Actor, email: str, name: str | None, active: bool | None,
             notifications: bool | None) -> str:
    """Change a user's name, activate/deactivate them, or their notifications."""
    u = admin.set_user(session, actor=actor, email=email, name=name, active=active, notifications=notifications)
    return (f"User {u.email}: {'active' if u.active else 'deactivated'}, notifications "
            f"{'on' if u.notifications else 'off'}{f', name {u.name!r}' if u.name else ''}.")


@click.command("remove-membership")
@click.argument("email")
@click.option("--department", required=True)
@action
def user_remove_membership(_app: Helpdesk, session: Session, actor: Actor, email: str, department: str) -> str:
    """Remove a user from a department's staff (their tickets there are unassigned)."""
    n = admin.remove_membership(session, actor=actor, email=email, department=department)
    return f"{email} removed from {department!r}" + (f"; {n} tickets unassigned." if n else ".")


@click.group("reply-template")
def reply_template() -> None:
    """Canned replies per department ('ticket reply --template NAME')."""


@reply_template.command("add")
@click.argument("name")
@click.option("--department", required=True)
@click.option("--body-file", required=True, type=click.File("r", encoding="utf-8"),
              help="The text (jinja2: {{ requester_name }}, {{ reference }}, {{ ticket.subject }} …).")
@click.option("--replace", is_flag=True, help="Change an existing template.")
@action
def reply_template_add(_app: Helpdesk, session: Session, actor: Actor, name: str, department: str,
                       body_file: click.utils.LazyFile, replace: bool) -> str:
    """Add a canned reply."""
    templates.add_template(session, actor=actor, department=department, name=name, body=body_file.read(),
                           replace=replace)
    return f"Reply template {name!r} saved for {department!r}."


def _template_line(t: dict[str, Any]) -> str:
    first = (t["body"].strip().splitlines() or [""])[0]
    return f"{t['name']}  {first[:60]}"


@reply_template.command("list")
@click.option("--department", required=True)
@listing(_template_line)
def reply_template_list(_app: Helpdesk, session: Session, actor: Actor, department: str) -> list[dict[str, Any]]:
    """List a department's canned replies."""
    return [{"name": t.name, "body": t.body} for t in
            templates.list_templates(session, actor=actor, department=department)]


@reply_template.command("remove")
@click.argument("name")
@click.option("--department", required=True)
@action
def reply_template_remove(_app: Helpdesk, session: Session, actor: Actor, name: str, department: str) -> str:
    """Remove a canned reply."""
    templates.remove_template(session, actor=actor, department=department, name=name)
    return f"Reply template {name!r} removed from {department!r}."


def register(main: click.Group) -> None:
    """Attach the commands to ``ticket``, ``department`` and ``user``; add ``reply-template``."""
    groups = main.commands
    for command in (ticket_set, ticket_move, ticket_create, ticket_attachment, ticket_auto_close):
        groups["ticket"].add_command(command)  # type: ignore[attr-defined]
    groups["department"].add_command(department_remove)  # type: ignore[attr-defined]
    groups["user"].add_command(user_set)  # type: ignore[attr-defined]
    groups["user"].add_command(user_remove_membership)  # type: ignore[attr-defined]
    main.add_command(reply_template)
