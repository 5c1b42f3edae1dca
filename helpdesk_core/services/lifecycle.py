"""Working tickets: status, priority, assignee, tags, history, moves, internal tickets, auto-close.

Every change is a :class:`~helpdesk_core.models.TicketEvent` (actor and time) in the caller's
transaction; the caller commits (and then flushes the outbox when mail was queued). Only staff of a
ticket's department (agents, its admins, global admins, the local operator) change tickets; a
requester may open an internal ticket in a department they belong to (:func:`create_ticket`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk_core.app import Helpdesk
from helpdesk_core.defaults.store import get_or_create_requester, next_ticket_number
from helpdesk_core.errors import ConfigurationError, HelpdeskError, PermissionDenied
from helpdesk_core.mail.compose import Attachment as OutgoingAttachment
from helpdesk_core.models import (
    Attachment, Department, Direction, OutboxMessage, OutboxStatus, Ticket, TicketAlias, TicketEvent, TicketMessage,
    TicketPriority, TicketStatus, TicketTag, User,
)
from helpdesk_core.models.events import ticket_event
from helpdesk_core.outbound import notifications
from helpdesk_core.outbound.outbox import flush_outbox
from helpdesk_core.services.departments import get_department
from helpdesk_core.services.permissions import Actor, is_staff
from helpdesk_core.services.tickets import get_ticket

#: the department option that closes ``resolved`` tickets after this many days (0/absent: never)
AUTO_CLOSE_OPTION = "auto_close_days"


def acting_user(actor: Actor) -> User | None:
    """The :class:`User` behind ``actor`` (None for the local operator)."""
    return actor if isinstance(actor, User) else None


def require_staff(actor: Actor, department: Department, doing: str = "change its tickets") -> None:
    """Raise PermissionDenied unless ``actor`` is staff of ``department`` (or an admin/the operator)."""
    if not is_staff(actor, department):
        raise PermissionDenied(
            f"{actor.email} is not staff of department {department.name!r} and cannot {doing}: ask an admin "
            "to add you ('helpdesk user add EMAIL --role agent --department NAME').")


def record(session: Session, ticket: Ticket, actor: Actor, kind: str, old: Any = None,
           new: Any = None) -> TicketEvent:
    """Add one history row for ``ticket``."""
    event = ticket_event(ticket, actor=acting_user(actor), kind=kind, old=old, new=new, actor_email=actor.email)
    session.add(event)
    return event


def change_status(session: Session, ticket: Ticket, status: TicketStatus, actor: Actor,
                  now: datetime | None = None) -> TicketEvent | None:
    """Set ``ticket.status`` (and ``resolved_at``) with an event; None when it already had it."""
    if ticket.status == status:
        return None
    old = str(ticket.status)
    ticket.status = status
    ticket.resolved_at = (now or datetime.now(UTC)) if status == TicketStatus.RESOLVED else None
    return record(session, ticket, actor, "status", old, str(status))


def _parse(enum: type[Any], value: str, what: str) -> Any:
    try:
        return enum(value.strip().lower())
    except ValueError:
        raise ConfigurationError(f"Unknown {what} {value!r}; use {', '.join(e.value for e in enum)}.") from None


def _assignable(session: Session, ticket: Ticket, email: str) -> User:
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or not user.active or not is_staff(user, ticket.department):
        raise ConfigurationError(
            f"{email} cannot be assigned ticket {ticket.id}: only active agents or admins of department "
            f"{ticket.department.name!r} can ('helpdesk user add {email} --role agent --department NAME').")
    return user


def normalize_tag(tag: str) -> str:
    tag = " ".join(tag.strip().lower().split())
    if not tag or len(tag) > 100:
        raise ConfigurationError(f"A tag needs 1 to 100 characters (got {tag!r}).")
    return tag


def set_ticket(app: Helpdesk, session: Session, *, actor: Actor, ticket_id: int, status: str | None = None,
               assign: str | None = None, unassign: bool = False, priority: str | None = None,
               add_tags: Iterable[str] = (), remove_tags: Iterable[str] = (),
               now: datetime | None = None) -> list[TicketEvent]:
    """Change status, assignee, priority and tags of a ticket (staff only); returns the new events.
    An assignment notifies the assignee (through the outbox) unless they assigned themselves."""
    ticket = get_ticket(session, actor=actor, ticket_id=ticket_id)
    require_staff(actor, ticket.department)
    if assign and unassign:
        raise ConfigurationError("Use either --assign EMAIL or --unassign, not both.")
    events: list[TicketEvent | None] = []
    if status is not None:
        events.append(change_status(session, ticket, _parse(TicketStatus, status, "status"), actor, now))
    if assign or unassign:
        user = _assignable(session, ticket, assign) if assign else None
        if user is not ticket.assignee:
            old = ticket.assignee.email if ticket.assignee else None
            ticket.assignee = user
            events.append(record(session, ticket, actor, "assignee", old, user.email if user else None))
            if user is not None and user is not acting_user(actor):
                notifications.notify_staff(app, session, ticket, "assignment", recipients=[user])
    if priority is not None:
        value = _parse(TicketPriority, priority, "priority")
        if ticket.priority != value:
            events.append(record(session, ticket, actor, "priority", str(ticket.priority), str(value)))
            ticket.priority = value
    for tag in dict.fromkeys(normalize_tag(t) for t in add_tags):
        if tag not in ticket.tags:
            ticket.tag_rows.append(TicketTag(tag=tag))
            events.append(record(session, ticket, actor, "tag_added", None, tag))
    for tag in dict.fromkeys(normalize_tag(t) for t in remove_tags):
        for row in [r for r in ticket.tag_rows if r.tag == tag]:
            ticket.tag_rows.remove(row)
            events.append(record(session, ticket, actor, "tag_removed", tag, None))
    done = [e for e in events if e is not None]
    if done:
        ticket.updated_at = now or datetime.now(UTC)
    session.flush()
    return done


def move_ticket(app: Helpdesk, session: Session, *, actor: Actor, ticket_id: int, department: str) -> Ticket:
    """Move a ticket to ``department``: it gets that department's next number; its old (department,
    number) is kept as an alias so replies with the old reference keep threading to it. The actor
    must be staff of both departments; an assignee who is not staff of the new one is unassigned."""
    ticket = get_ticket(session, actor=actor, ticket_id=ticket_id)
    target = get_department(session, department)
    require_staff(actor, ticket.department, "move its tickets")
    require_staff(actor, target, "receive tickets")
    if target.id == ticket.department_id:
        raise ConfigurationError(f"Ticket {ticket.id} is already in {target.name!r}.")
    old = {"department": ticket.department.name, "number": ticket.number}
    ticket.aliases.append(TicketAlias(department_id=ticket.department_id, number=ticket.number))
    ticket.number = next_ticket_number(app.context(session), target)
    ticket.department = target
    record(session, ticket, actor, "department", old, {"department": target.name, "number": ticket.number})
    if ticket.assignee is not None and not is_staff(ticket.assignee, target):
        record(session, ticket, actor, "assignee", ticket.assignee.email, None)
        ticket.assignee = None
    session.flush()
    return ticket


def store_files(app: Helpdesk, files: Sequence[tuple[str, bytes]]) -> list[Attachment]:
    """Put ``(filename, bytes)`` pairs into the attachment storage; their Attachment rows."""
    out = []
    for name, data in files:
        f = OutgoingAttachment(name, data)
        sha = hashlib.sha256(data).hexdigest()
        out.append(Attachment(filename=f.filename, content_type=f.content_type, size=len(data), sha256=sha,
                              inline=False, storage_key=app.storage.put(data, sha)))
    return out


def _requester_for(app: Helpdesk, session: Session, actor: Actor, dept: Department, email: str) -> User:
    email = email.strip().lower()
    if is_staff(actor, dept):
        if "@" not in email:
            raise ConfigurationError(f"--requester must be an email address (got {email!r}).")
        requester = get_or_create_requester(app.context(session), email, "")
    elif isinstance(actor, User) and actor.role_in(dept.id) is not None and email in ("", actor.email):
        requester = actor
    else:
        raise PermissionDenied(
            f"{actor.email} cannot open tickets in {dept.name!r} for {email or 'themselves'}: requesters open "
            "tickets for themselves in departments they belong to; staff of the department for anyone.")
    if requester.id is not None and not requester.active:
        raise ConfigurationError(f"{requester.email} is deactivated: activate them first "
                                 f"('helpdesk user set {requester.email} --activate').")
    return requester


def create_ticket(app: Helpdesk, session: Session, *, actor: Actor, department: str, requester: str,
                  subject: str, body: str, attachments: Sequence[tuple[str, bytes]] = (),
                  notify: bool = False, now: datetime | None = None) -> tuple[Ticket, OutboxMessage | None]:
    """Open an internal ticket (no mail needed, with or without a mailbox): staff of the department on
    behalf of ``requester``, or a requester for themselves in a department they belong to.

    ``notify`` mails the requester an acknowledgement (with the reference) through the outbox when
    the department has a mailbox; without one nothing is mailed. A requester's own ticket notifies
    the department's staff (department option ``notify_staff``). Returns the ticket and the mail.
    """
    dept = get_department(session, department)
    user = _requester_for(app, session, actor, dept, requester)
    body = (body or "").replace("\r\n", "\n").strip("\n")
    subject = " ".join((subject or "").split())
    if not subject or not body.strip():
        raise HelpdeskError("A ticket needs a --subject and a text in the --body-file.", kind="invalid")
    now = now or datetime.now(UTC)
    author = acting_user(actor)
    ticket = Ticket(department=dept, number=next_ticket_number(app.context(session), dept), subject=subject,
                    status=TicketStatus.OPEN, requester=user, participants=[user.email])
    session.add(ticket)
    session.add(TicketMessage(
        ticket=ticket, department_id=dept.id, direction=Direction.INBOUND, kind="message",
        from_email=user.email, from_name=user.name or "", subject=subject, date=now, body_text=body,
        body_display=body, author_id=author.id if author else None, attachments=store_files(app, attachments),
        to=[], cc=[], in_reply_to=[], references=[], removed_attachments=[], defects=[]))
    record(session, ticket, actor, "created", None, {"department": dept.name, "number": ticket.number})
    session.flush()
    row = notifications.acknowledge_internal(app, session, ticket, now=now) if notify else None
    if not is_staff(actor, dept):
        notifications.notify_staff(app, session, ticket, "new_ticket", exclude=user.email)
    return ticket, row


def auto_close_resolved(session: Session, *, now: datetime | None = None) -> int:
    """Close the ``resolved`` tickets of departments with the option ``auto_close_days`` (N > 0)
    that were resolved at least N days ago; returns how many. For the worker/task scheduler; the
    caller commits. The events name the actor ``system``."""
    from helpdesk_core.services.permissions import SYSTEM

    now = now or datetime.now(UTC)
    closed = 0
    for dept in session.scalars(select(Department)):
        days = int((dept.options or {}).get(AUTO_CLOSE_OPTION) or 0)
        if days <= 0:
            continue
        due = session.scalars(select(Ticket).where(
            Ticket.department_id == dept.id, Ticket.status == TicketStatus.RESOLVED,
            Ticket.resolved_at <= now - timedelta(days=days)))
        for ticket in due:
            change_status(session, ticket, TicketStatus.CLOSED, SYSTEM, now)
            closed += 1
    session.flush()
    return closed


def auto_close_task(app: Helpdesk) -> None:
    """Worker/scheduler task: :func:`auto_close_resolved` in a transaction of its own; logs, never raises."""
    import logging

    log = logging.getLogger("helpdesk.lifecycle")
    try:
        with app.session() as session:
            closed = auto_close_resolved(session)
            session.commit()
    except Exception:  # noqa: BLE001 - a task must not stop the worker
        log.exception("auto-close of resolved tickets failed")
        return
    if closed:
        log.info("auto-close: %s resolved tickets closed", closed)


def queued_for(session: Session, ticket_id: int) -> set[int]:
    """The departments with mail queued for the ticket (to send right after the commit)."""
    return set(session.scalars(select(OutboxMessage.department_id).where(
        OutboxMessage.ticket_id == ticket_id, OutboxMessage.status == OutboxStatus.QUEUED)))


def send_queued(app: Helpdesk, department_ids: Iterable[int]) -> None:
    """After the commit: try to deliver the mail just queued (the worker retries what fails)."""
    for department_id in sorted(department_ids):
        flush_outbox(app, department=department_id)
