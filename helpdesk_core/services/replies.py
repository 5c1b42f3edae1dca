"""Staff replies and internal notes on tickets (the CLI and the web UI call :func:`reply_to_ticket`).

A reply is stored as an outbound :class:`~helpdesk_core.models.TicketMessage` (its attachments in the
attachment storage) plus an outbox row, in the caller's transaction; the caller commits and then
flushes the outbox (:func:`helpdesk_core.outbound.outbox.flush_outbox`). An internal note is stored with
direction ``note`` and is never mailed. A requester answers in the portal with
:func:`requester_reply`: stored like their mail would be (an inbound message), never mailed to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from helpdesk_core.app import Helpdesk
from helpdesk_core.errors import ConfigurationError, HelpdeskError, NotFoundError, PermissionDenied
from helpdesk_core.models import (
    Department, Direction, OutboxMessage, OutboxStatus, Ticket, TicketMessage, TicketStatus, User,
)
from helpdesk_core.outbound import notifications
from helpdesk_core.outbound.outbox import flush_outbox
from helpdesk_core.outbound.replies import ReplyResult, cc_addresses, store_reply  # noqa: F401 - re-exported
from helpdesk_core.services.lifecycle import change_status, store_files
from helpdesk_core.services.permissions import Actor, is_participant, is_staff
from helpdesk_core.services.tickets import get_ticket


def _require_staff(actor: Actor, ticket: Ticket) -> None:
    if not is_staff(actor, ticket.department):
        raise PermissionDenied(
            f"{actor.email} is not staff of department {ticket.department.name!r} and cannot reply to its "
            "tickets.", details={"hint": "ask_admin_staff", "department": ticket.department.name})


def reply_to_ticket(app: Helpdesk, session: Session, *, actor: Actor, ticket_id: int, body: str,
                    attachments: Sequence[tuple[str, bytes]] = (), internal: bool = False,
                    cc: bool = True, now: datetime | None = None) -> ReplyResult:
    """Store a staff reply (mailed through the outbox) or an internal note on ticket ``ticket_id``.

    Only staff of the ticket's department, admins and the local operator may do this; a requester
    gets :class:`PermissionDenied`. ``attachments`` are ``(filename, bytes)`` pairs. ``cc=False``
    drops the other participants from ``Cc``. Never commits.
    """
    if isinstance(actor, User) and not actor.global_admin and not actor.department_ids:
        raise PermissionDenied(f"{actor.email} is a requester: requesters answer tickets by mail, "
                               "only the department's staff can reply through the help desk.")
    ticket = get_ticket(session, actor=actor, ticket_id=ticket_id)
    _require_staff(actor, ticket)
    return store_reply(app, session, ticket=ticket, author=actor if isinstance(actor, User) else None,
                       body=body, attachments=attachments, internal=internal, cc=cc, now=now)


def requester_reply(app: Helpdesk, session: Session, *, actor: Actor, ticket_id: int, body: str,
                    attachments: Sequence[tuple[str, bytes]] = (), now: datetime | None = None) -> TicketMessage:
    """The requester (or a participant) answers ticket ``ticket_id`` in the portal: an inbound
    message from them, with ``(filename, bytes)`` attachments, as if they had mailed it. A pending or
    resolved ticket becomes open again, a closed one too unless the department's ``reopen_closed``
    is off (then they are told to open a new ticket). The department's staff are notified (option
    ``notify_staff``) through the outbox. Never commits."""
    ticket = get_ticket(session, actor=actor, ticket_id=ticket_id)
    if not isinstance(actor, User) or not is_participant(actor, ticket):
        raise PermissionDenied(f"{actor.email} is not the requester of ticket {ticket_id} nor on it: staff "
                               "answer with 'helpdesk ticket reply'.")
    body = (body or "").replace("\r\n", "\n").strip("\n")
    if not body.strip():
        raise HelpdeskError("Write your reply first.", kind="invalid")
    now = now or datetime.now(UTC)
    if ticket.status == TicketStatus.CLOSED and not (ticket.department.options or {}).get("reopen_closed", True):
        raise ConfigurationError(f"Ticket {ticket_id} is closed: open a new ticket for a new question.")
    if ticket.status != TicketStatus.OPEN:
        change_status(session, ticket, TicketStatus.OPEN, actor, now)
    message = TicketMessage(
        ticket=ticket, department_id=ticket.department_id, direction=Direction.INBOUND, kind="message",
        from_email=actor.email, from_name=actor.name or "", subject=ticket.subject, date=now, body_text=body,
        body_display=body, author_id=actor.id, attachments=store_files(app, attachments),
        to=[], cc=[], in_reply_to=[], references=[], removed_attachments=[], defects=[])
    session.add(message)
    ticket.updated_at = now
    session.flush()
    notifications.notify_staff(app, session, ticket, "requester_reply", exclude=actor.email, message=message)
    return message


@dataclass
class DeliveryState:
    """Where a queued mail stands after :func:`send_now`: ``sent``, ``failed`` or still ``queued``."""

    status: OutboxStatus
    error: str | None


def send_now(app: Helpdesk, *, actor: Actor, outbox_id: int) -> DeliveryState:
    """Deliver a just-stored reply (``outbox_id``) now, with the rest of its department's due mail,
    after the caller committed it. For the staff of that department (who may reply there)."""
    with app.session() as session:
        row = session.get(OutboxMessage, outbox_id)
        if row is None or not is_staff(actor, session.get(Department, row.department_id)):
            raise NotFoundError(f"No outbox message {outbox_id}.", details={"hint": "list_outbox"})
        department_id = row.department_id
    flush_outbox(app, department=department_id)
    with app.session() as session:
        row = session.get(OutboxMessage, outbox_id)
        assert row is not None
        return DeliveryState(row.status, row.last_error)
