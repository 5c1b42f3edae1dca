"""The import engine: mailbox → tickets, with nothing lost and nothing duplicated.

One cycle of one department:

1. take the mailbox lease (two workers never import one mailbox at once);
2. open the provider session and fetch in batches;
3. for each message, in a savepoint: ledger check → classify → find ticket → map → ledger entry
   → ``helpdesk_message_imported``; a failure rolls back only that message and counts an attempt;
4. **commit the batch, then delete** the stored messages from the mailbox;
5. record the cycle and the mailbox health.

A crash between 4's commit and its delete is harmless: the next cycle finds the ledger entry and
only deletes. A message that fails three times is kept raw as a :class:`FailedImport`, then deleted.
"""

from __future__ import annotations

import logging
import os
import socket
import traceback
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from helpdesk_core.errors import DatabaseUnavailable
from helpdesk_core.hooktypes import HelpdeskContext
from helpdesk_core.inbound.matching import settle
from helpdesk_core.mail.message import ParsedMessage
from helpdesk_core.models import (
    Department, FailedImport, ImportAttempt, LedgerEntry, Mailbox, TicketMessage,
)
from helpdesk_core.inbound.parsepool import parse_chunks

log = logging.getLogger("helpdesk.importer")

MAX_ATTEMPTS = 3
BATCH_SIZE = 100
LEASE_SECONDS = 300


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class CycleResult:
    """Counts of one cycle; ``as_json()`` is the shape of ``helpdesk import --json``.

    Every fetched message is counted once in ``created``, ``updated``, ``failed`` or ``skipped``:

    * ``failed``: could not be imported this cycle -- either left in the mailbox to be tried
      again next cycle (outcome ``retry``), or, after :data:`MAX_ATTEMPTS`, kept raw as a failed
      import (``helpdesk failed list``) and deleted from the mailbox (outcome ``failed``);
    * ``skipped``: not a new ticket message on purpose -- already imported (``duplicate``),
      skipped by classification, or too large and left in the mailbox (``kept``);
    * ``deleted``: removed from the mailbox after the batch was committed (imported, skipped,
      duplicates and kept-as-failed messages).
    """

    department: str
    fetched: int = 0
    created: int = 0
    updated: int = 0
    failed: int = 0
    skipped: int = 0
    deleted: int = 0
    error: str | None = None
    error_kind: str | None = None
    waiting: int | None = None
    ran: bool = True

    def as_json(self) -> dict[str, object]:
        data = asdict(self)
        data.pop("department")
        return data


@dataclass
class Outcome:
    """What happened to one message: ``created``, ``updated``, ``skipped``, ``duplicate``,
    ``retry`` (left in the mailbox for the next cycle), ``failed`` (kept as a failed import),
    ``kept`` (left in the mailbox on purpose, e.g. too large)."""

    status: str
    ticket_id: int | None = None
    ticket_message_id: int | None = None
    reason: str = ""

    @property
    def delete(self) -> bool:
        return self.status in {"created", "updated", "skipped", "duplicate", "failed"}


# ----------------------------------------------------------------------------------------------
# one message
# ----------------------------------------------------------------------------------------------

def _ledger(ctx: HelpdeskContext, department: Department, message: ParsedMessage, outcome: str,
            reason: str | None = None, ticket_message: TicketMessage | None = None) -> None:
    ctx.session.add(LedgerEntry(department_id=department.id, key=message.ledger_key,
                                raw_sha256=message.raw_sha256, outcome=outcome, reason=reason,
                                ticket_message=ticket_message))


def _store(ctx: HelpdeskContext, department: Department, message: ParsedMessage) -> Outcome:
    """Classify, thread and store one message. Runs inside a savepoint; may raise.

    The classification and the settled thread match are handed to the later hooks as typed
    keyword arguments; the scope, sender and closed-ticket rules are applied here to whatever
    ``helpdesk_find_ticket`` returned, so a plugin that replaces it keeps reopening and linking.
    """
    hooks = ctx.hooks
    classification = hooks.classify_message(message=message, department=department, context=ctx)
    if classification.action == "skip":
        _ledger(ctx, department, message, "skipped", classification.reason or classification.kind)
        return Outcome("skipped", reason=classification.reason or classification.kind)
    match = settle(hooks.find_ticket(message=message, department=department,
                                     classification=classification, context=ctx),
                   message, department, classification, ctx)
    ticket = match.ticket
    if ticket is None and not classification.may_create:
        reason = classification.reason or f"{classification.kind} does not open tickets"
        _ledger(ctx, department, message, "skipped", reason)
        return Outcome("skipped", reason=reason)
    if ticket is None and classification.action == "hold":
        _keep_failed(ctx, department, message.raw, message, classification.reason or "held", 0,
                     status="held")
        return Outcome("skipped", reason=classification.reason)
    created = ticket is None
    tm = hooks.message_to_ticket(message=message, department=department, ticket=ticket,
                                 classification=classification, match=match, context=ctx)
    _ledger(ctx, department, message, "imported", ticket_message=tm)
    ctx.session.flush()  # one flush: ticket, message, attachments, ledger; ids for the hooks
    hooks.message_imported(message=message, ticket_message=tm, created=created, department=department,
                           classification=classification, match=match, context=ctx)
    # the savepoint's release flushes what the notification added
    return Outcome("created" if created else "updated", ticket_id=tm.ticket_id, ticket_message_id=tm.id)


def _keep_failed(ctx: HelpdeskContext, department: Department, raw: bytes, message: ParsedMessage,
                 error: str, attempts: int, status: str = "failed") -> None:
    """Keep the raw message (``status`` ``failed``, or ``held`` by the rate limit) and ledger it."""
    sender = message.from_.email if message.from_ else ""
    ctx.session.add(FailedImport(department_id=department.id, raw=raw, raw_sha256=message.raw_sha256,
                                 subject=message.subject[:1000], sender=sender[:320], error=error,
                                 attempts=attempts, status=status))
    _ledger(ctx, department, message, status, error[:2000])


def import_message(ctx: HelpdeskContext, department: Department, raw: bytes, *,
                   max_attempts: int = MAX_ATTEMPTS) -> Outcome:
    """Import one raw message in the caller's transaction. Never raises for a bad message:
    a failure rolls back to a savepoint and is counted; after ``max_attempts`` the raw message is
    kept as a failed import. Database outages do raise (the caller rolls back and retries later).
    """
    return import_batch(ctx, department, [raw], max_attempts=max_attempts)[0]


def import_batch(ctx: HelpdeskContext, department: Department, raws: list[bytes], *,
                 max_attempts: int = MAX_ATTEMPTS) -> list[Outcome]:
    """Import a batch of raw messages in the caller's transaction, one savepoint each.

    Messages are parsed ahead in a helper process when the batch is large (:mod:`.parsepool`);
    the ledger and the attempt counters are read with one query per parsed chunk, not two per
    message. The caller commits once for the batch, then acknowledges the mailbox.
    """
    outcomes: list[Outcome] = []
    offset = 0
    for parsed in parse_chunks(raws, ctx.storage):
        known, attempts = _prefetch(ctx, department, [m for m, _ in parsed])
        for message, parse_error in parsed:
            outcomes.append(_import_one(ctx, department, raws[offset], message, parse_error, known,
                                        attempts, max_attempts))
            offset += 1
    return outcomes


def _prefetch(ctx: HelpdeskContext, department: Department, messages: list[ParsedMessage],
              ) -> tuple[dict[str, LedgerEntry], dict[str, ImportAttempt]]:
    """Ledger entries and attempt counters of these messages, in one query each."""
    session = ctx.session
    keys = sorted({m.ledger_key for m in messages})
    hashes = sorted({m.raw_sha256 for m in messages})
    known: dict[str, LedgerEntry] = {}
    attempts: dict[str, ImportAttempt] = {}
    for chunk in _chunks(keys):
        known.update((e.key, e) for e in session.scalars(select(LedgerEntry).where(
            LedgerEntry.department_id == department.id, LedgerEntry.key.in_(chunk))))
    for chunk in _chunks(hashes):
        attempts.update((a.raw_sha256, a) for a in session.scalars(select(ImportAttempt).where(
            ImportAttempt.department_id == department.id, ImportAttempt.raw_sha256.in_(chunk))))
    return known, attempts


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _import_one(ctx: HelpdeskContext, department: Department, raw: bytes, message: ParsedMessage,
                parse_error: Exception | None, known: dict[str, LedgerEntry],
                attempts: dict[str, ImportAttempt], max_attempts: int) -> Outcome:
    session = ctx.session
    existing = known.get(message.ledger_key)
    if existing is not None and existing.outcome == "kept":   # too large: stays in the mailbox
        return Outcome("kept", reason=existing.reason or "left in the mailbox")
    if existing is not None:
        return Outcome("duplicate", ticket_message_id=existing.ticket_message_id, reason=existing.outcome)
    if len(raw) > ctx.settings.max_message_bytes:
        reason = (f"message of {len(raw) / 1048576:.1f} MB is larger than mail.max_message_size_mb "
                  f"({ctx.settings.get('mail.max_message_size_mb')} MB); left in the mailbox")
        _ledger(ctx, department, message, "kept", reason)
        known[message.ledger_key] = LedgerEntry(key=message.ledger_key, outcome="kept")
        return Outcome("kept", reason=reason)
    attempt = attempts.get(message.raw_sha256)
    try:
        if parse_error is not None:
            raise parse_error
        with session.begin_nested():
            outcome = _store(ctx, department, message)
    except OperationalError as exc:
        raise DatabaseUnavailable(f"Database error while importing: {exc.orig}") from exc
    except Exception as exc:  # noqa: BLE001 - a bad message must never block the others
        error = f"{type(exc).__name__}: {exc}"
        log.warning("import of %s failed: %s", message.ledger_key, error)
        log.debug("traceback: %s", traceback.format_exc())
        if attempt is None:
            attempt = ImportAttempt(department_id=department.id, raw_sha256=message.raw_sha256, attempts=0)
            session.add(attempt)
            attempts[message.raw_sha256] = attempt
        attempt.attempts += 1
        attempt.last_error = error[:4000]
        attempt.updated_at = datetime.now(UTC)
        if attempt.attempts >= max_attempts:
            _keep_failed(ctx, department, raw, message, error, attempt.attempts)
            known[message.ledger_key] = LedgerEntry(key=message.ledger_key, outcome="failed")
            # the count now lives on the FailedImport; drop the attempt row
            if attempt in session.new:
                session.expunge(attempt)
            else:
                session.delete(attempt)
            del attempts[message.raw_sha256]
            return Outcome("failed", reason=error)
        return Outcome("retry", reason=error)
    if attempt is not None:
        session.delete(attempt)
        del attempts[message.raw_sha256]
    known[message.ledger_key] = LedgerEntry(key=message.ledger_key, outcome="imported",
                                            ticket_message_id=outcome.ticket_message_id)
    return outcome


# ----------------------------------------------------------------------------------------------
# leases and health
# ----------------------------------------------------------------------------------------------

def _owner_is_dead(owner: str | None) -> bool:
    """True only when ``owner`` ("hostname:pid") names a process of THIS host that no longer runs.

    Anything else (another host, not our format, our own pid, a live or unknowable pid) is treated
    as alive, so the lease is then only taken over once it expires. Caveat: this assumes that one
    hostname means one PID namespace; containers sharing a hostname but not their PIDs must not
    share a database without distinct hostnames.
    """
    if not owner:
        return False
    host, sep, pid_text = owner.rpartition(":")
    if not sep or host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: it exists (another user's process)
        return False
    return False


def acquire_lease(session: Session, mailbox_id: int, owner: str, seconds: int = LEASE_SECONDS) -> bool:
    """Take (or renew) the mailbox lease; False when another worker holds a live one. Commits.

    A lease is free when it has none, is ours, has expired, or is held by a process of this host
    that has died (e.g. ``kill -9`` of ``helpdesk import``): that one is taken over at once instead
    of after ``LEASE_SECONDS``. The take-over is a compare-and-set on the dead owner, so two
    processes racing for it cannot both win.
    """
    now = datetime.now(UTC)
    expires = now + timedelta(seconds=seconds)
    result = session.execute(
        update(Mailbox).where(
            Mailbox.id == mailbox_id,
            or_(Mailbox.lease_owner.is_(None), Mailbox.lease_owner == owner,
                Mailbox.lease_expires_at < now))
        .values(lease_owner=owner, lease_expires_at=expires)
        .execution_options(synchronize_session=False))
    session.commit()
    if result.rowcount == 1:
        return True
    holder = session.scalar(select(Mailbox.lease_owner).where(Mailbox.id == mailbox_id))
    session.commit()
    if not _owner_is_dead(holder):
        return False
    log.warning("mailbox %s: taking over the lease of %s, which is no longer running", mailbox_id, holder)
    result = session.execute(
        update(Mailbox).where(Mailbox.id == mailbox_id, Mailbox.lease_owner == holder)
        .values(lease_owner=owner, lease_expires_at=expires)
        .execution_options(synchronize_session=False))
    session.commit()
    return result.rowcount == 1


def release_lease(session: Session, mailbox_id: int, owner: str) -> None:
    session.execute(update(Mailbox).where(Mailbox.id == mailbox_id, Mailbox.lease_owner == owner)
                    .values(lease_owner=None, lease_expires_at=None)
                    .execution_options(synchronize_session=False))
    session.commit()
