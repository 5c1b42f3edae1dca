"""Held imports (mail beyond ``mail.rate_limit_per_hour``) and the import log.

Held mail is kept raw as a :class:`~helpdesk_core.models.KeptMail` with status ``held`` (and a
ledger entry ``held``); it has already been removed from the mailbox. Releasing imports it again
with the rate limit switched off; the row then becomes ``released``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk_core.app import Helpdesk
from helpdesk_core.inbound.importer import Outcome
from helpdesk_core.models import Department, KeptMail, KeptMailKind, KeptMailStatus, ImportEvent
from helpdesk_core.settings import GeneralSettings
from helpdesk_core.services.failed import discard, filter_rows, kept_row, kept_rows, reimport
from helpdesk_core.services.permissions import Actor, require_manage_settings

#: outcomes the import log shows (every one but a plain import; see ImportEvent)
LOG_OUTCOMES = ("skipped", "held", "failed", "kept", "retry", "refused", "duplicate", "reused")


#: the statuses a held import goes through (``discarded`` is shared with failed ones)
HELD_STATUSES = (KeptMailStatus.HELD, KeptMailStatus.RELEASED, KeptMailStatus.DISCARDED)


def list_held(session: Session, *, actor: Actor, include_released: bool = False, status: str | None = None,
              department: str | None = None, since: date | None = None, until: date | None = None,
              text: str | None = None, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
    """Held mail of the departments where ``actor`` is staff, oldest first: ``status`` ``held``
    (the default) or ``released`` (``include_released``: both); the other filters as
    :func:`~helpdesk_core.services.failed.filter_rows` (text: subject, sender, reason)."""
    held, released = KeptMailStatus.HELD, KeptMailStatus.RELEASED
    statuses = (status,) if status else (held, released) if include_released else (held,)
    rows = kept_rows(session, actor, KeptMailKind.HELD, statuses, what="held mail", department=department,
                     since=since, until=until, text=text, limit=limit, offset=offset)
    return [{"id": f.id, "department": name, "subject": f.subject, "sender": f.sender, "reason": f.error,
             "status": f.status, "size": len(f.raw), "created_at": f.created_at.isoformat()}
            for f, name in rows]


def get_held(session: Session, *, actor: Actor, held_id: int) -> KeptMail:
    """A held message (not yet released or discarded), for the staff of its department only; to
    others it does not exist."""
    return kept_row(session, actor, held_id, shown=lambda row: row.status == KeptMailStatus.HELD,
                    what="held mail", missing=f"No held import {held_id}.", hint="list_held")


def discard_held(session: Session, *, actor: Actor, held_id: int) -> KeptMail:
    """Drop a held message without importing it (Manage Settings of its department): it becomes
    ``discarded``; its raw copy is kept."""
    return discard(session, actor, get_held(session, actor=actor, held_id=held_id), KeptMailStatus.HELD)


def release_held(app: Helpdesk, session: Session, *, actor: Actor, held_id: int) -> Outcome:
    """Import a held message now, bypassing the rate limit. Caller commits."""
    row = get_held(session, actor=actor, held_id=held_id)
    department = session.get(Department, row.department_id)
    require_manage_settings(actor, department)
    base = GeneralSettings.load(session)
    unlimited = GeneralSettings({**base.as_dict(), "mail.rate_limit_per_hour": 0})
    return reimport(app, session, row, department, done_status=KeptMailStatus.RELEASED,
                    settings=unlimited)


def import_log(session: Session, *, actor: Actor, department: str | None = None, limit: int = 50,
               offset: int = 0, outcome: str | None = None, since: date | None = None, until: date | None = None,
               text: str | None = None) -> list[dict[str, Any]]:
    """Recent mail that did not simply become a ticket message (skipped, held, failed, left in
    the mailbox, refused, duplicates, reused Message-IDs), newest first, with the reason; only
    ``outcome`` (one of :data:`LOG_OUTCOMES`) when given, the other filters as
    :func:`~helpdesk_core.services.failed.filter_rows` (text: subject, sender, reason, Message-ID)."""
    query = (select(ImportEvent, Department.name).join(Department, ImportEvent.department_id == Department.id)
             .order_by(ImportEvent.id.desc()))
    if outcome:
        query = query.where(ImportEvent.outcome == outcome)
    query = filter_rows(session, query, actor, what="the import log", department_column=ImportEvent.department_id,
                        created_column=ImportEvent.created_at,
                        text_columns=(ImportEvent.subject, ImportEvent.sender, ImportEvent.reason,
                                      ImportEvent.message_id),
                        department=department, since=since, until=until, text=text, limit=limit, offset=offset)
    return [{"id": e.id, "department": name, "outcome": e.outcome, "reason": e.reason or "",
             "key": e.message_id or e.key, "digest": e.key, "kind": e.kind, "subject": e.subject,
             "sender": e.sender, "created_at": e.created_at.isoformat()}
            for e, name in session.execute(query).all()]
