"""Staff replies and internal notes on tickets (the CLI and the web UI call :func:`reply_to_ticket`).

A reply is stored as an outbound :class:`~helpdesk_core.models.TicketMessage` (its attachments in the
attachment storage) plus an outbox row, in the caller's transaction; the caller commits and then
flushes the outbox (:func:`helpdesk_core.outbound.outbox.flush_outbox`). An internal note is stored with
direction ``note`` and is never mailed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from helpdesk_core.app import Helpdesk
from helpdesk_core.errors import NotFoundError, PermissionDenied
from helpdesk_core.models import Department, OutboxMessage, OutboxStatus, Ticket, User
from helpdesk_core.outbound.outbox import flush_outbox
from helpdesk_core.outbound.replies import ReplyResult, cc_addresses, store_reply  # noqa: F401 - re-exported
from helpdesk_core.services.permissions import Actor, is_staff
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
