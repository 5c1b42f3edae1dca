"""Ticket queries, scoped by who is asking."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Subquery, func, or_, select
from sqlalchemy.orm import Session, object_session, selectinload

from helpdesk_core.errors import NotFoundError
from helpdesk_core.models import Department, Direction, Ticket, TicketEvent, TicketMessage, TicketPriority
from helpdesk_core.services.departments import get_department
from helpdesk_core.services.permissions import (
    Actor, require_ticket_visible, sees_internal, staff_department_ids, visible_tickets,
)


def _addr(email: str | None, name: str | None) -> dict[str, str] | None:
    return None if email is None else {"email": email, "name": name or ""}


def ticket_summary(ticket: Ticket, message_count: int) -> dict[str, Any]:
    return {
        "id": ticket.id, "number": ticket.number, "department": ticket.department.name,
        "subject": ticket.subject, "status": str(ticket.status),
        "requester": _addr(ticket.requester.email, ticket.requester.name) if ticket.requester else None,
        "message_count": message_count,
        "created_at": ticket.created_at.isoformat(), "updated_at": ticket.updated_at.isoformat(),
        "mentions": ticket.mentions,
        "sender_verified": ticket.sender_verified,
        "assignee": ticket.assignee.email if ticket.assignee else None,
        "priority": str(ticket.priority or TicketPriority.NORMAL), "tags": ticket.tags,
    }


def event_json(event: TicketEvent) -> dict[str, Any]:
    return {"id": event.id, "kind": event.kind, "actor": event.actor_email, "old": event.old, "new": event.new,
            "at": event.created_at.isoformat()}


def ticket_events(session: Session, ticket: Ticket) -> list[TicketEvent]:
    """The history of ``ticket``, oldest first."""
    return list(session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
                                .order_by(TicketEvent.id)))


def message_json(m: TicketMessage) -> dict[str, Any]:
    return {
        "id": m.id, "direction": str(m.direction), "kind": m.kind, "message_id": m.message_id,
        "from": _addr(m.from_email, m.from_name), "to": m.to, "cc": m.cc, "subject": m.subject,
        "date": m.date.isoformat() if m.date else None,
        "body_text": m.body_text, "body_html": m.body_html, "body_display": m.body_display,
        "attachments": [{"filename": a.filename, "content_type": a.content_type, "size": a.size,
                         "sha256": a.sha256, "content_id": a.content_id, "inline": a.inline}
                        for a in m.attachments],
        "removed_attachments": m.removed_attachments, "defects": m.defects,
    }


def ticket_json(ticket: Ticket, *, internal: bool = True) -> dict[str, Any]:
    """The whole ticket; without its internal notes unless ``internal`` (callers decide with
    :func:`~helpdesk_core.services.permissions.sees_internal`, as :func:`show_ticket` does)."""
    messages = [m for m in ticket.messages if internal or m.direction != Direction.NOTE]
    data = ticket_summary(ticket, len(messages))
    data["participants"] = ticket.participants
    data["messages"] = [message_json(m) for m in messages]
    session = object_session(ticket)
    data["events"] = [event_json(e) for e in ticket_events(session, ticket)] if session is not None else []
    return data


def message_counts(actor: Actor) -> Subquery:
    """``(ticket_id, n)``: the messages per ticket ``actor`` sees (notes only for the staff)."""
    counted = select(TicketMessage.ticket_id, func.count(TicketMessage.id).label("n"))
    staff_of = staff_department_ids(actor)
    if staff_of is not None:
        counted = counted.where(or_(TicketMessage.direction != Direction.NOTE,
                                    TicketMessage.department_id.in_(staff_of or {-1})))
    return counted.group_by(TicketMessage.ticket_id).subquery()


def list_tickets(session: Session, *, actor: Actor, department: str | None = None) -> list[dict[str, Any]]:
    counts = message_counts(actor)
    query = (select(Ticket, func.coalesce(counts.c.n, 0))
             .outerjoin(counts, counts.c.ticket_id == Ticket.id)
             .options(selectinload(Ticket.requester), selectinload(Ticket.department),
                      selectinload(Ticket.assignee), selectinload(Ticket.tag_rows))
             .order_by(Ticket.department_id, Ticket.number))
    if department:
        query = query.where(Ticket.department_id == get_department(session, department).id)
    query = visible_tickets(actor, query)
    return [ticket_summary(t, n) for t, n in session.execute(query).all()]


def get_ticket(session: Session, *, actor: Actor, ticket_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFoundError(f"No ticket {ticket_id}.", details={"hint": "list_tickets"})
    require_ticket_visible(actor, ticket)
    return ticket


def show_ticket(session: Session, *, actor: Actor, ticket_id: int) -> dict[str, Any]:
    """:func:`ticket_json` of a ticket ``actor`` may see, internal notes only for its staff."""
    ticket = get_ticket(session, actor=actor, ticket_id=ticket_id)
    return ticket_json(ticket, internal=sees_internal(actor, ticket))


def find_ticket_by_number(session: Session, *, actor: Actor, department: str, number: int) -> Ticket:
    dept: Department = get_department(session, department)
    ticket = session.scalar(select(Ticket).where(Ticket.department_id == dept.id, Ticket.number == number))
    if ticket is None:
        raise NotFoundError(f"No ticket #{number} in {department!r}.")
    require_ticket_visible(actor, ticket)
    return ticket


def export_tickets(session: Session, *, actor: Actor, department: str | None = None,
                   chunk: int = 200) -> Iterator[dict[str, Any]]:
    query = (select(Ticket).options(selectinload(Ticket.messages).selectinload(TicketMessage.attachments),
                                    selectinload(Ticket.requester), selectinload(Ticket.department))
             .order_by(Ticket.id))
    if department:
        query = query.where(Ticket.department_id == get_department(session, department).id)
    query = visible_tickets(actor, query)
    last = 0
    while True:
        rows = list(session.scalars(query.where(Ticket.id > last).limit(chunk)))
        if not rows:
            return
        for t in rows:
            yield ticket_json(t, internal=sees_internal(actor, t))
        last = rows[-1].id
        session.expunge_all()
