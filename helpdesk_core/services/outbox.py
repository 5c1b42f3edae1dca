"""Outgoing mail for people who manage the help desk: list it, send what is due, queue a failed mail
again. Every function needs the Manage Settings permission (the outbox shows every department's mail)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from helpdesk_core.app import Helpdesk
from helpdesk_core.errors import NotFoundError
from helpdesk_core.models import OutboxMessage
from helpdesk_core.models.outbox import OutboxStatus  # noqa: F401 - re-exported: the statuses an interface shows
from helpdesk_core.outbound import outbox as queue
from helpdesk_core.services.permissions import Actor, require_manage_settings


def list_outbox(session: Session, *, actor: Actor, status: str | None = None, department: str | None = None,
                limit: int = 100) -> list[dict[str, Any]]:
    """Most recent outbox rows first (the shape of ``outbox_json``), optionally of one status / department."""
    require_manage_settings(actor)
    return queue.list_outbox(session, status=status, department=department, limit=limit)


def flush(app: Helpdesk, *, actor: Actor, department: str | None = None,
          retry_now: bool = False) -> queue.FlushCounts:
    """Send the mail that is due now (``retry_now``: also mail waiting for its next retry)."""
    require_manage_settings(actor)
    return queue.flush_outbox(app, department=department, ignore_backoff=retry_now)


def retry(session: Session, *, actor: Actor, outbox_id: int) -> OutboxMessage:
    """Queue a failed (or waiting) mail again for the next flush. Caller commits."""
    require_manage_settings(actor)
    if session.get(OutboxMessage, outbox_id) is None:
        raise NotFoundError(f"No outbox message {outbox_id}.", details={"hint": "list_outbox"})
    return queue.retry_outbox(session, outbox_id)
