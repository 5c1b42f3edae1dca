"""Outgoing mail for people who manage the help desk: list it, send what is due, queue a failed mail
again; and which tickets have a reply in trouble (the banner of the desk and the ticket page).

Listing and retrying need the Manage Settings permission for the mail's department (a global
admin sees every department's mail); a flush of everything is for global admins.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from helpdesk_core.app import Helpdesk
from helpdesk_core.errors import NotFoundError
from helpdesk_core.models import Department, OutboxMessage, Ticket
from helpdesk_core.models.outbox import OutboxStatus  # noqa: F401 - re-exported: the statuses an interface shows
from helpdesk_core.outbound import outbox as queue
from helpdesk_core.services.departments import get_department
from helpdesk_core.services.permissions import (
    Actor, admin_department_ids, can_manage_settings, require_manage_settings, staff_department_ids,
)

#: a reply still not sent after this long is shown as a problem on its ticket
WAITING_TOO_LONG = timedelta(hours=1)


def list_outbox(session: Session, *, actor: Actor, status: str | None = None, department: str | None = None,
                limit: int = 100) -> list[dict[str, Any]]:
    """Most recent outbox rows first (the shape of ``outbox_json``), optionally of one status /
    department: of every department for a global admin, else of those where ``actor`` has Manage
    Settings."""
    managed = admin_department_ids(actor)
    if managed is not None and not managed:
        require_manage_settings(actor)  # raises: Manage Settings nowhere
    return queue.list_outbox(session, status=status, department=department, limit=limit,
                             department_ids=managed)


def flush(app: Helpdesk, *, actor: Actor, department: str | int | None = None,
          retry_now: bool = False) -> queue.FlushCounts:
    """Send the mail that is due now (``retry_now``: also mail waiting for its next retry): of one
    department (name or id; Manage Settings for it), or of all (a global admin)."""
    if department is None:
        require_manage_settings(actor)
    else:
        with app.session() as session:
            dept = (session.get(Department, department) if isinstance(department, int)
                    else get_department(session, department))
            if dept is None:
                raise NotFoundError(f"No department {department!r}.", details={"hint": "add_department"})
            require_manage_settings(actor, dept)
    return queue.flush_outbox(app, department=department, ignore_backoff=retry_now)


def retry(session: Session, *, actor: Actor, outbox_id: int) -> OutboxMessage:
    """Queue a failed (or waiting) mail again for the next flush. Caller commits. A mail of a
    department where ``actor`` lacks Manage Settings is reported as not existing."""
    row = session.get(OutboxMessage, outbox_id)
    dept = session.get(Department, row.department_id) if row is not None else None
    if dept is None or not can_manage_settings(actor, dept):
        if admin_department_ids(actor) == set():
            require_manage_settings(actor)  # raises: Manage Settings nowhere
        raise NotFoundError(f"No outbox message {outbox_id}.", details={"hint": "list_outbox"})
    return queue.retry_outbox(session, outbox_id)


def reply_problems(session: Session, *, actor: Actor, ticket_ids: Sequence[int] | None = None,
                   now: datetime | None = None) -> dict[int, dict[str, Any]]:
    """Tickets (among ``ticket_ids``, else all) with a reply that failed or has waited more than
    :data:`WAITING_TOO_LONG`: ``{ticket_id: {"problem": "failed"|"waiting", "number",
    "outbox_id", "since", "last_error"}}``, the latest such reply per ticket. Only for the staff of the
    ticket's department (they can act on it); for anyone else the answer is empty."""
    visible = staff_department_ids(actor)
    if visible is not None and not visible:
        return {}
    if ticket_ids is not None and not ticket_ids:
        return {}
    now = now or datetime.now(UTC)
    query = (select(OutboxMessage, Ticket.number).join(Ticket, Ticket.id == OutboxMessage.ticket_id)
             .where(OutboxMessage.kind == "reply",
                    or_(OutboxMessage.status == "failed",
                        OutboxMessage.status.in_(("queued", "sending"))
                        & (OutboxMessage.created_at < now - WAITING_TOO_LONG)))
             .order_by(OutboxMessage.id))
    if visible is not None:
        query = query.where(Ticket.department_id.in_(visible))
    if ticket_ids is not None:
        query = query.where(OutboxMessage.ticket_id.in_(list(ticket_ids)[:1000]))
    problems: dict[int, dict[str, Any]] = {}
    for row, number in session.execute(query).all():
        assert row.ticket_id is not None
        problems[row.ticket_id] = {"problem": "failed" if row.status == "failed" else "waiting", "number": number,
                                   "outbox_id": row.id, "since": row.created_at, "last_error": row.last_error}
    return problems
