"""Failed imports: list, export the raw mail, retry, discard."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from helpdesk_core.app import Helpdesk
from helpdesk_core.errors import ConflictError, NotFoundError
from helpdesk_core.hooktypes import IMPORTED, ImportStatus
from helpdesk_core.inbound.importer import Outcome, import_message
from helpdesk_core.models import Department, KeptMail, KeptMailKind, KeptMailStatus, ImportAttempt, LedgerEntry
from helpdesk_core.settings import GeneralSettings
from helpdesk_core.services.departments import get_department
from helpdesk_core.services.permissions import (
    Actor, is_staff, require_department_staff, require_manage_settings, require_staff_somewhere,
)

#: the statuses a failed import goes through (a held one: ``held.HELD_STATUSES``)
FAILED_STATUSES = (KeptMailStatus.FAILED, KeptMailStatus.RETRIED, KeptMailStatus.DISCARDED)


def filter_rows(session: Session, query: Select[Any], actor: Actor, *, what: str, department_column: Any,
                created_column: Any, text_columns: tuple[Any, ...], department: str | None = None,
                since: date | None = None, until: date | None = None, text: str | None = None,
                limit: int | None = None, offset: int = 0) -> Select[Any]:
    """The filters the lists of failed, held and logged mail share: only the departments where
    ``actor`` is staff (``department``: only that one, for its staff), created on or after
    ``since`` and on or before ``until`` (UTC days), ``text`` anywhere in ``text_columns``
    (case-insensitive), then ``offset``/``limit``."""
    visible = require_staff_somewhere(actor, what)
    if visible is not None:
        query = query.where(department_column.in_(visible))
    if department:
        dept = get_department(session, department)
        require_department_staff(actor, dept, what)
        query = query.where(department_column == dept.id)
    if since is not None:
        query = query.where(created_column >= datetime.combine(since, time(), UTC))
    if until is not None:
        query = query.where(created_column < datetime.combine(until + timedelta(days=1), time(), UTC))
    if text and text.strip():
        needle = text.strip().lower()
        query = query.where(or_(*(func.lower(c).contains(needle, autoescape=True) for c in text_columns)))
    if offset:
        query = query.offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return query


def list_failed(session: Session, *, actor: Actor, include_retried: bool = False, status: str | None = None,
                department: str | None = None, since: date | None = None, until: date | None = None,
                text: str | None = None, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
    """Failed imports of the departments where ``actor`` is staff (all for a global admin), oldest
    first: ``status`` ``failed`` (the default), ``retried`` or ``discarded`` (``include_retried``:
    all three); the other filters as :func:`filter_rows` (text: subject, sender, error)."""
    statuses = (status,) if status else FAILED_STATUSES if include_retried else (KeptMailStatus.FAILED,)
    rows = kept_rows(session, actor, KeptMailKind.FAILED, statuses, what="failed imports", department=department,
                     since=since, until=until, text=text, limit=limit, offset=offset)
    return [{"id": f.id, "department": name, "subject": f.subject, "sender": f.sender, "error": f.error,
             "attempts": f.attempts, "status": f.status, "size": len(f.raw),
             "created_at": f.created_at.isoformat()} for f, name in rows]


def kept_rows(session: Session, actor: Actor, kind: KeptMailKind, statuses: tuple[str, ...], *, what: str,
              **filters: Any) -> list[Any]:
    """Kept mail of ``kind`` in one of ``statuses`` with its department's name, oldest first,
    filtered as :func:`filter_rows` (text: subject, sender, error/reason)."""
    query = select(KeptMail, Department.name).join(Department).order_by(KeptMail.id)
    query = query.where(KeptMail.kind == kind, KeptMail.status.in_(statuses))
    query = filter_rows(session, query, actor, what=what, department_column=KeptMail.department_id,
                        created_column=KeptMail.created_at,
                        text_columns=(KeptMail.subject, KeptMail.sender, KeptMail.error), **filters)
    return list(session.execute(query).all())


def kept_row(session: Session, actor: Actor, row_id: int, *, shown: Callable[[KeptMail], bool], what: str,
             missing: str, hint: str) -> KeptMail:
    """Kept mail ``row_id`` if ``shown(row)``, for the staff of its department only; to others it
    does not exist (:class:`NotFoundError` ``missing``, ``details["hint"]`` ``hint``; a user who is
    staff nowhere is refused first, as for the list of ``what``)."""
    row = session.get(KeptMail, row_id)
    if row is None or not shown(row) or not is_staff(actor, session.get(Department, row.department_id)):
        require_staff_somewhere(actor, what)
        raise NotFoundError(missing, details={"hint": hint})
    return row


def get_failed(session: Session, *, actor: Actor, failed_id: int) -> KeptMail:
    """A failed import (also once retried or discarded; never a held one), for the staff of its
    department only; to others it does not exist."""
    return kept_row(session, actor, failed_id, shown=lambda row: row.kind == KeptMailKind.FAILED,
                    what="failed imports", missing=f"No failed import {failed_id}.", hint="list_failed")


def retry_failed(app: Helpdesk, session: Session, *, actor: Actor, failed_id: int) -> Outcome:
    """Import a failed message again (e.g. after a fix). On success it is marked ``retried``."""
    row = get_failed(session, actor=actor, failed_id=failed_id)
    department = session.get(Department, row.department_id)
    require_manage_settings(actor, department)
    return reimport(app, session, row, department, done_status=KeptMailStatus.RETRIED)


def discard_failed(session: Session, *, actor: Actor, failed_id: int) -> KeptMail:
    """Give up on a failed message (Manage Settings of its department): it leaves the list of
    failed imports as ``discarded``; its raw copy is kept (``helpdesk failed export`` still has it)."""
    row = get_failed(session, actor=actor, failed_id=failed_id)
    return discard(session, actor, row, KeptMailStatus.FAILED)


def discard(session: Session, actor: Actor, row: KeptMail, status: KeptMailStatus) -> KeptMail:
    """Mark a kept raw message (``failed`` or ``held``) ``discarded``; Manage Settings of its department."""
    require_manage_settings(actor, session.get(Department, row.department_id))
    if row.status != status:
        raise ConflictError(f"Import {row.id} is {row.status}, not {status}: nothing to discard.")
    row.status = KeptMailStatus.DISCARDED
    session.flush()
    return row


def reimport(app: Helpdesk, session: Session, row: KeptMail, department: Department, *,
             done_status: KeptMailStatus, settings: GeneralSettings | None = None) -> Outcome:
    """Import a kept raw message (failed or held) again, once. Caller commits.

    Its ``failed``/``held`` ledger entries and attempt counter are dropped first, so the importer
    does not take it for a duplicate. On success the row gets ``done_status``; when it fails again,
    the row keeps the new error (and no second kept copy is made).
    """
    for stale in session.scalars(select(LedgerEntry).where(
            LedgerEntry.department_id == row.department_id, LedgerEntry.raw_sha256 == row.raw_sha256,
            LedgerEntry.outcome.in_(("failed", "held")))):
        session.delete(stale)
    for stale in session.scalars(select(ImportAttempt).where(
            ImportAttempt.department_id == row.department_id, ImportAttempt.raw_sha256 == row.raw_sha256)):
        session.delete(stale)
    session.flush()
    outcome = import_message(app.context(session, settings), department, row.raw, max_attempts=1)
    if outcome.status in IMPORTED:
        row.status = done_status
        row.ticket_message_id = outcome.ticket_message_id
    elif outcome.status == ImportStatus.FAILED:
        # import_message kept a new failed row; keep only this one, with the new error
        newest = session.scalar(select(KeptMail).where(
            KeptMail.raw_sha256 == row.raw_sha256, KeptMail.id != row.id,
            KeptMail.department_id == row.department_id).order_by(KeptMail.id.desc()))
        if newest is not None:
            row.error, row.attempts = newest.error, row.attempts + 1
            session.delete(newest)
    session.flush()
    return outcome
