"""The outbox: queue rendered mail with the ticket change, deliver it after the commit.

Life of a row (:class:`~helpdesk_core.models.OutboxMessage`):

1. :func:`queue_mail` adds it as ``queued`` in the caller's transaction (together with the ticket
   message), so nothing is sent for a change that rolls back.
2. :func:`flush_outbox` claims due rows one department at a time, marks them ``sending`` and
   **commits before sending**, then hands them to :func:`helpdesk_core.outbound.delivery.deliver` in one call
   per department (the plugin reuses one SMTP connection for all of them).
3. The result is committed: ``sent`` (``sent_at``), ``failed`` for a permanent refusal (5xx, with the
   server's reply in ``last_error``), or ``queued`` again with exponential backoff after a
   temporary problem (1, 2, 4 … minutes, at most 1 hour between attempts). After
   :data:`GIVE_UP_AFTER` (2 days) or :data:`MAX_ATTEMPTS` attempts a row is ``failed``.

Remaining window — a possible duplicate: when the process dies after the server accepted a mail
but before ``sent`` was committed, the row stays ``sending``. Rows ``sending`` for longer than
:data:`STUCK_AFTER` (10 minutes) are put back to ``queued`` and sent again, so the recipient may get
that mail twice. The window is the few milliseconds between the server's ``250`` and our commit;
we accept it because the alternative (never retrying a row whose outcome is unknown) loses mail.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from helpdesk_core.app import Helpdesk
from helpdesk_core.mail.compose import ComposedMail
from helpdesk_core.hooktypes import OutgoingMail
from helpdesk_core.outbound.delivery import deliver
from helpdesk_core.errors import ConflictError, DeliveryError, NotFoundError
from helpdesk_core.models import Department, OutboxMessage, OutboxStatus, Ticket, TicketMessage

log = logging.getLogger("helpdesk.outbox")

#: first retry delay; doubles each attempt
BASE_DELAY = timedelta(minutes=1)
#: longest delay between two attempts
MAX_DELAY = timedelta(hours=1)
#: a temporarily failing row is given up (``failed``) this long after it was queued …
GIVE_UP_AFTER = timedelta(days=2)
#: … or after this many attempts
MAX_ATTEMPTS = 60
#: rows ``sending`` for longer than this are considered abandoned (process died) and re-queued
STUCK_AFTER = timedelta(minutes=10)
#: rows delivered per department per flush
BATCH_SIZE = 50
#: kinds whose body carries a secret (a single-use link, :mod:`helpdesk_core.outbound.account_mail`):
#: once sent, the row keeps only the headers
SECRET_BODY_KINDS = frozenset({"password_reset", "sign_in_link", "invite"})


@dataclass
class FlushCounts:
    """What one :func:`flush_outbox` did."""

    sent: int = 0
    retry: int = 0
    failed: int = 0
    requeued: int = 0

    def as_json(self) -> dict[str, int]:
        return {"sent": self.sent, "retry": self.retry, "failed": self.failed, "requeued": self.requeued}


def queue_mail(session: Session, mail: ComposedMail, *, department: Department, kind: str,
               ticket: Ticket | None = None, ticket_message: TicketMessage | None = None) -> OutboxMessage:
    """Add ``mail`` to the outbox in the caller's transaction (flushes; never commits)."""
    row = OutboxMessage(
        department_id=department.id, ticket_id=ticket.id if ticket is not None else None,
        ticket_message_id=ticket_message.id if ticket_message is not None else None, kind=kind,
        mail_from=mail.mail_from, recipients=mail.recipients,
        to_email=mail.to[0].email.lower() if mail.to else None, subject=mail.subject[:2000],
        raw=mail.raw, message_id=mail.message_id, status=OutboxStatus.QUEUED, attempts=0,
        next_attempt_at=mail.date)
    session.add(row)
    session.flush()
    return row


def backoff(attempts: int) -> timedelta:
    """Delay before the next attempt after ``attempts`` failed ones: 1, 2, 4 … min, at most 1 h."""
    return min(BASE_DELAY * (2 ** min(max(attempts - 1, 0), 16)), MAX_DELAY)  # no overflow


def requeue_stuck(session: Session, now: datetime | None = None) -> int:
    """Put rows ``sending`` for longer than :data:`STUCK_AFTER` back to ``queued``. Commits."""
    now = now or datetime.now(UTC)
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.SENDING, OutboxMessage.sending_since < now - STUCK_AFTER)
        .values(status=OutboxStatus.QUEUED, sending_since=None, next_attempt_at=now,
                last_error="The sending process stopped before the result was known; sending again "
                           "(the recipient may get this mail twice).", last_error_kind="interrupted")
        .execution_options(synchronize_session=False))
    session.commit()
    return result.rowcount or 0


def _due(now: datetime, ignore_backoff: bool) -> Any:
    if ignore_backoff:
        return OutboxMessage.status == OutboxStatus.QUEUED
    return (OutboxMessage.status == OutboxStatus.QUEUED) & (
        OutboxMessage.next_attempt_at.is_(None) | (OutboxMessage.next_attempt_at <= now))


def _claim(session: Session, department_id: int, now: datetime, ignore_backoff: bool) -> list[OutboxMessage]:
    """Mark this department's due rows ``sending`` (row by row, so two flushers never share one)."""
    ids = session.scalars(
        select(OutboxMessage.id)
        .where(OutboxMessage.department_id == department_id, _due(now, ignore_backoff))
        .order_by(OutboxMessage.id).limit(BATCH_SIZE)).all()
    claimed: list[int] = []
    for row_id in ids:
        result = session.execute(
            update(OutboxMessage).where(OutboxMessage.id == row_id, OutboxMessage.status == OutboxStatus.QUEUED)
            .values(status=OutboxStatus.SENDING, sending_since=now).execution_options(synchronize_session=False))
        if result.rowcount == 1:
            claimed.append(row_id)
    session.commit()  # the claim is durable before anything is sent
    if not claimed:
        return []
    return list(session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(claimed))
                                .order_by(OutboxMessage.id).execution_options(populate_existing=True)))


def _record(row: OutboxMessage, error: DeliveryError | None, now: datetime, counts: FlushCounts) -> None:
    row.attempts += 1
    row.sending_since = None
    if error is None:
        row.status, row.sent_at, row.last_error, row.last_error_kind = OutboxStatus.SENT, now, None, None
        row.next_attempt_at = None
        if row.kind in SECRET_BODY_KINDS:
            head = row.raw.split(b"\r\n\r\n", 1)[0]
            row.raw = head + b"\r\n\r\n(body removed once sent: it held a single-use link)\r\n"
        counts.sent += 1
        return
    row.last_error, row.last_error_kind = error.message[:4000], error.kind
    created = row.created_at or now
    if error.permanent:
        row.status, row.next_attempt_at = OutboxStatus.FAILED, None
        counts.failed += 1
    elif error.kind == "needs_reauthorization":
        # waits for the admin to reconnect the mailbox, however long that takes; saving the
        # mailbox again makes it due at once (services.departments.set_mailbox)
        row.status, row.next_attempt_at = OutboxStatus.QUEUED, now + backoff(row.attempts)
        counts.retry += 1
    elif now - created >= GIVE_UP_AFTER or row.attempts >= MAX_ATTEMPTS:
        row.status, row.next_attempt_at = OutboxStatus.FAILED, None
        row.last_error = (f"Gave up after {row.attempts} attempts over {_age(now - created)}; "
                          f"last error: {error.message}")[:4000]
        counts.failed += 1
    else:
        row.status, row.next_attempt_at = OutboxStatus.QUEUED, now + backoff(row.attempts)
        counts.retry += 1


def _age(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f} hours" if hours < 48 else f"{hours / 24:.1f} days"


def flush_outbox(app: Helpdesk, *, department: str | int | None = None, now: datetime | None = None,
                 ignore_backoff: bool = False) -> FlushCounts:
    """Deliver the due outbox rows (of one department, by name or id, or of all). Never raises for
    delivery problems: they are recorded on the rows. Uses and commits its own sessions.

    ``ignore_backoff`` also sends queued rows whose next retry is not due yet (e.g. right after an
    admin fixed the mail server).
    """
    now = now or datetime.now(UTC)
    counts = FlushCounts()
    with app.session() as session:
        counts.requeued = requeue_stuck(session, now)
        query = select(OutboxMessage.department_id).distinct().where(_due(now, ignore_backoff))
        if department is not None:
            dept = (session.get(Department, department) if isinstance(department, int)
                    else session.scalar(select(Department).where(Department.name == department)))
            if dept is None:
                raise NotFoundError(f"No department {department!r}: see 'helpdesk department list'.")
            query = query.where(OutboxMessage.department_id == dept.id)
        department_ids = sorted(session.scalars(query).all())
    for dept_id in department_ids:
        _flush_department(app, dept_id, now, counts, ignore_backoff)
    return counts


def _flush_department(app: Helpdesk, department_id: int, now: datetime, counts: FlushCounts,
                      ignore_backoff: bool) -> None:
    with app.session() as session:
        rows = _claim(session, department_id, now, ignore_backoff)
        if not rows:
            return
        dept = session.get(Department, department_id)
        assert dept is not None
        mails = [OutgoingMail(id=r.id, mail_from=r.mail_from, recipients=list(r.recipients), raw=r.raw,
                              message_id=r.message_id) for r in rows]
        try:
            results: Sequence[DeliveryError | None] = deliver(app, dept, mails)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not leave rows 'sending'
            log.exception("delivery of %d mails of %s crashed", len(mails), dept.name)
            error = exc if isinstance(exc, DeliveryError) else DeliveryError(
                f"The delivery plugin crashed ({type(exc).__name__}: {exc}); will retry.", kind="crash")
            results = [error] * len(mails)
        done = max(now, datetime.now(UTC))  # ``now`` may be in the future (tests, catching up)
        for row, error in zip(rows, results, strict=True):
            _record(row, error, done, counts)
            if error is not None:
                log.warning("outbox %s (%s) to %s: %s", row.id, dept.name, ", ".join(row.recipients),
                            error.message)
        session.commit()


# ---- queries for the CLI and the web UI --------------------------------------------------------

def outbox_json(row: OutboxMessage, department: str) -> dict[str, Any]:
    """The shape of one row in ``helpdesk outbox list --json``."""
    iso = lambda v: v.isoformat() if v is not None else None  # noqa: E731
    return {
        "id": row.id, "department": department, "ticket_id": row.ticket_id, "kind": row.kind,
        "status": row.status, "mail_from": row.mail_from, "recipients": list(row.recipients),
        "subject": row.subject, "message_id": row.message_id, "attempts": row.attempts,
        "next_attempt_at": iso(row.next_attempt_at), "last_error": row.last_error,
        "last_error_kind": row.last_error_kind, "sent_at": iso(row.sent_at), "created_at": iso(row.created_at),
    }


def list_outbox(session: Session, *, status: str | None = None, department: str | None = None,
                limit: int = 100, department_ids: set[int] | None = None) -> list[dict[str, Any]]:
    """Most recent outbox rows first, optionally of one status / department (by name, or among
    ``department_ids``)."""
    query = (select(OutboxMessage, Department.name).join(Department, Department.id == OutboxMessage.department_id)
             .order_by(OutboxMessage.id.desc()).limit(limit))
    if department_ids is not None:
        query = query.where(OutboxMessage.department_id.in_(department_ids))
    if status:
        query = query.where(OutboxMessage.status == status)
    if department:
        query = query.where(Department.name == department)
    return [outbox_json(row, name) for row, name in session.execute(query).all()]


def retry_outbox(session: Session, outbox_id: int, now: datetime | None = None) -> OutboxMessage:
    """Queue a ``failed`` (or waiting) row again for the next flush, attempts reset. Caller commits."""
    row = session.get(OutboxMessage, outbox_id)
    if row is None:
        raise NotFoundError(f"No outbox message {outbox_id}: see 'helpdesk outbox list'.")
    if row.status == OutboxStatus.SENT:
        raise ConflictError(f"Outbox message {outbox_id} was already sent at {row.sent_at}; nothing to retry.")
    row.status, row.attempts, row.next_attempt_at = OutboxStatus.QUEUED, 0, now or datetime.now(UTC)
    row.created_at = now or datetime.now(UTC)  # restart the give-up clock
    session.flush()
    return row


def flush_task(app: Helpdesk) -> None:
    """Worker task: flush the outbox, logging (never raising) what went wrong."""
    try:
        counts = flush_outbox(app)
    except Exception:  # noqa: BLE001
        log.exception("outbox flush failed")
        return
    if counts.sent or counts.failed or counts.retry:
        log.info("outbox: %s", counts.as_json())
