"""Failed imports: list, export the raw mail, retry, discard."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk_core.app import Helpdesk
from helpdesk_core.errors import ConflictError, NotFoundError
from helpdesk_core.hooktypes import IMPORTED, ImportStatus
from helpdesk_core.inbound.importer import Outcome, import_message
from helpdesk_core.models import Department, FailedImport, FailedImportStatus, ImportAttempt, LedgerEntry
from helpdesk_core.settings import GeneralSettings
from helpdesk_core.services.permissions import Actor, is_staff, require_manage_settings, require_staff_somewhere


def list_failed(session: Session, *, actor: Actor, include_retried: bool = False) -> list[dict[str, Any]]:
    """Failed imports of the departments where ``actor`` is staff (all for a global admin)."""
    visible = require_staff_somewhere(actor, "failed imports")
    query = select(FailedImport, Department.name).join(Department).order_by(FailedImport.id)
    if visible is not None:
        query = query.where(FailedImport.department_id.in_(visible))
    if not include_retried:
        query = query.where(FailedImport.status == FailedImportStatus.FAILED)
    return [{"id": f.id, "department": name, "subject": f.subject, "sender": f.sender, "error": f.error,
             "attempts": f.attempts, "status": f.status, "size": len(f.raw),
             "created_at": f.created_at.isoformat()} for f, name in session.execute(query).all()]


def get_failed(session: Session, *, actor: Actor, failed_id: int) -> FailedImport:
    row = session.get(FailedImport, failed_id)
    if row is None or not is_staff(actor, session.get(Department, row.department_id)):
        # staff of its department only; to others it does not exist
        require_staff_somewhere(actor, "failed imports")
        raise NotFoundError(f"No failed import {failed_id}.", details={"hint": "list_failed"})
    return row


def retry_failed(app: Helpdesk, session: Session, *, actor: Actor, failed_id: int) -> Outcome:
    """Import a failed message again (e.g. after a fix). On success it is marked ``retried``."""
    row = get_failed(session, actor=actor, failed_id=failed_id)
    department = session.get(Department, row.department_id)
    require_manage_settings(actor, department)
    return reimport(app, session, row, department, done_status=FailedImportStatus.RETRIED)


def discard_failed(session: Session, *, actor: Actor, failed_id: int) -> FailedImport:
    """Give up on a failed message (Manage Settings of its department): it leaves the list of
    failed imports as ``discarded``; its raw copy is kept (``helpdesk failed export`` still has it)."""
    row = get_failed(session, actor=actor, failed_id=failed_id)
    return discard(session, actor, row, FailedImportStatus.FAILED)


def discard(session: Session, actor: Actor, row: FailedImport, status: FailedImportStatus) -> FailedImport:
    """Mark a kept raw message (``failed`` or ``held``) ``discarded``; Manage Settings of its department."""
    require_manage_settings(actor, session.get(Department, row.department_id))
    if row.status != status:
        raise ConflictError(f"Import {row.id} is {row.status}, not {status}: nothing to discard.")
    row.status = FailedImportStatus.DISCARDED
    session.flush()
    return row


def reimport(app: Helpdesk, session: Session, row: FailedImport, department: Department, *,
             done_status: FailedImportStatus, settings: GeneralSettings | None = None) -> Outcome:
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
        newest = session.scalar(select(FailedImport).where(
            FailedImport.raw_sha256 == row.raw_sha256, FailedImport.id != row.id,
            FailedImport.department_id == row.department_id).order_by(FailedImport.id.desc()))
        if newest is not None:
            row.error, row.attempts = newest.error, row.attempts + 1
            session.delete(newest)
    session.flush()
    return outcome
