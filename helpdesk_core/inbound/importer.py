"""The import engine: mailbox → tickets, with nothing lost and nothing duplicated.

One cycle of one department:

1. take the mailbox lease (two workers never import one mailbox at once);
2. open the provider session and fetch in batches;
3. for each message, in a savepoint: ledger check → classify → find ticket → map → ledger entry
   → ``helpdesk_message_imported``; a failure rolls back only that message and counts an attempt;
4. **commit the batch, then delete** the stored messages from the mailbox;
5. record the cycle and the mailbox health.

A crash between 4's commit and its delete is harmless: the next cycle finds the ledger entry and
only deletes. A message that fails three times is kept raw as a :class:`KeptMail`, then deleted.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import OperationalError

from helpdesk_core.errors import DatabaseUnavailable
from helpdesk_core.defaults.store import build_ticket_message, store_chunk
from helpdesk_core.hooktypes import Classification, HelpdeskContext, ImportStatus, ThreadMatch
from helpdesk_core.inbound.matching import CHUNK_FACTS, ChunkFacts, settle
from helpdesk_core.mail.message import ParsedMessage
from helpdesk_core.mail.references import find_references
from helpdesk_core.models import (
    Attachment, Department, ImportAttempt, ImportEvent, KeptMail, KeptMailStatus, LedgerEntry,
    OutboxMessage, Ticket, TicketMessage, User,
)
from helpdesk_core.models.imports import LONG_TEXT, SHORT_TEXT, bounded, ledger_key, normalized_message_id
from helpdesk_core.models.ticket import stored_message_id
from helpdesk_core.inbound.parsepool import parse_chunks

log = logging.getLogger("helpdesk.importer")

MAX_ATTEMPTS = 3
BATCH_SIZE = 100


@dataclass
class CycleResult:
    """Counts of one cycle; ``as_json()`` is the shape of ``helpdesk import --json``.

    Every fetched message is counted once in ``created``, ``updated``, ``failed`` or ``skipped``:

    * ``failed``: could not be imported this cycle -- either left in the mailbox to be tried
      again next cycle (outcome ``retry``), or, after :data:`MAX_ATTEMPTS`, kept raw as a failed
      import (``helpdesk failed list``) and deleted from the mailbox (outcome ``failed``);
    * ``skipped``: not a new ticket message on purpose -- already imported (``duplicate``),
      skipped by classification, held, or too large and left in the mailbox (``kept``);
    * ``deleted``: removed from the mailbox after the batch was committed (imported, skipped,
      duplicates and kept-as-failed messages).

    The finer counts split those: ``duplicates``, ``held``, ``kept`` (left in the mailbox on
    purpose), ``retried`` (left for another attempt), ``skipped_by_reason`` (by classification
    kind) and ``total`` (messages on the server when the cycle started).
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
    duplicates: int = 0
    held: int = 0
    kept: int = 0
    retried: int = 0
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    total: int | None = None

    def count(self, outcome: Outcome) -> None:
        """Count one message's outcome: exactly once in created + updated + failed + skipped."""
        status = outcome.status
        if status in (ImportStatus.CREATED, ImportStatus.UPDATED):
            setattr(self, status, getattr(self, status) + 1)
        elif status in (ImportStatus.FAILED, ImportStatus.RETRY):
            self.failed += 1
            self.retried += status == ImportStatus.RETRY
        else:  # skipped (or held), duplicate, kept, refused
            self.skipped += 1
            self.duplicates += status == ImportStatus.DUPLICATE
            self.held += outcome.held
            self.kept += status in (ImportStatus.KEPT, ImportStatus.REFUSED)
            if status == ImportStatus.SKIPPED and not outcome.held:
                kind = outcome.kind or "skipped"
                self.skipped_by_reason[kind] = self.skipped_by_reason.get(kind, 0) + 1

    def as_json(self) -> dict[str, object]:
        data = asdict(self)
        data.pop("department")
        return data


@dataclass
class Outcome:
    """What happened to one message: ``created``, ``updated``, ``skipped`` (or held: ``held``),
    ``duplicate``, ``retry`` (left in the mailbox for the next cycle), ``failed`` (kept as a failed
    import), ``kept`` (left in the mailbox on purpose, e.g. too large), ``refused`` (handed back
    to the mail server: ``helpdesk ingest`` exits 65). ``kind`` is the classification kind of a
    skipped or held mail."""

    status: ImportStatus
    ticket_id: int | None = None
    ticket_message_id: int | None = None
    reason: str = ""
    kind: str = ""
    #: a ``skipped`` mail kept as a held import (``helpdesk held list``)
    held: bool = False

    @property
    def delete(self) -> bool:
        return self.status in {ImportStatus.CREATED, ImportStatus.UPDATED, ImportStatus.SKIPPED,
                               ImportStatus.DUPLICATE, ImportStatus.FAILED}


@dataclass
class _Mail:
    """One raw message on its way through the importer, with its ledger facts."""

    raw: bytes
    message: ParsedMessage
    key: str
    content: str
    #: the ledger entry of a mail too large before (upgraded when it is imported now)
    kept_entry: LedgerEntry | None = None


# ----------------------------------------------------------------------------------------------
# one message
# ----------------------------------------------------------------------------------------------

#: headers that a relay, a second delivery or a mail server's copy change; not part of the content
_TRACE_HEADERS = frozenset({
    "received", "return-path", "delivered-to", "x-original-to", "envelope-to", "x-envelope-to",
    "x-received", "arc-seal", "arc-message-signature", "arc-authentication-results",
    "authentication-results", "received-spf", "x-spam-status", "x-spam-score", "x-spam-flag",
    "x-spam-level", "x-virus-scanned", "status", "x-status", "x-uid", "x-keywords", "content-length",
    "lines", "x-helpdesk-test",
})


#: the end of the header block, CRLF or LF: a line break, maybe a "\r", a line break
_BLANK_LINE = re.compile(rb"\n\r?\n")
#: bytes of body read per step by :func:`content_digest`
_DIGEST_WINDOW = 64 * 1024


def content_digest(raw: bytes) -> str:
    """sha256 hex of what a mail says: its headers except the trace headers a relay or mail
    server adds (:data:`_TRACE_HEADERS`), and its body, with line endings and trailing spaces
    normalised. The same mail delivered twice has one digest; another mail reusing its
    Message-ID has another.

    Read in place: the header block is copied (small), the body is digested in windows of about
    :data:`_DIGEST_WINDOW` (a 68 MB message once cost ~290 MB here: the CRLF-normalised copy, the
    partitioned body and its ~900k lines). Line for line the same as normalising ``\r\n`` to ``\n``
    first: a body line loses its trailing whitespace, ``\r`` included."""
    blank = _BLANK_LINE.search(raw)  # where "\n\n" is once CRLF is normalised
    if blank is None:
        head, body_start = raw.replace(b"\r\n", b"\n"), len(raw)
    else:
        cut = blank.start()
        if cut and raw[cut - 1] == 13:  # "\r" of the CRLF ending the last header line
            cut -= 1
        head, body_start = raw[:cut].replace(b"\r\n", b"\n"), blank.end()
    digest = hashlib.sha256()
    unfolded = re.sub(rb"\n[ \t]+", b" ", head)
    for line in unfolded.split(b"\n"):
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower().decode("latin-1") in _TRACE_HEADERS:
            continue
        if line.startswith(b"From ") and not colon:
            continue  # mbox separator
        digest.update(b" ".join(line.split()) + b"\n")
    digest.update(b"\n")
    pos, size = body_start, len(raw)
    while True:  # windows ending at a line break: their lines are the lines of the whole body
        end = raw.rfind(b"\n", pos, pos + _DIGEST_WINDOW) if pos + _DIGEST_WINDOW < size else -1
        if end < 0:
            end = raw.find(b"\n", pos + _DIGEST_WINDOW) if pos + _DIGEST_WINDOW < size else -1
        lines = raw[pos:end if end >= 0 else size].split(b"\n")
        digest.update(b"\n".join([line.rstrip() for line in lines]) + b"\n")
        if end < 0:
            return digest.hexdigest()
        pos = end + 1


def _event(ctx: HelpdeskContext, department: Department, mail: _Mail, outcome: str, reason: str = "",
           kind: str = "") -> None:
    """Add a line to ``helpdesk log`` (in the current savepoint or transaction)."""
    message = mail.message
    ctx.session.add(ImportEvent(
        department_id=department.id, key=mail.key, raw_sha256=message.raw_sha256, outcome=outcome,
        kind=bounded(kind, 64), reason=bounded(reason, LONG_TEXT),
        message_id=bounded(message.message_id or "", SHORT_TEXT),
        subject=bounded(message.subject or "", SHORT_TEXT),
        sender=bounded(message.from_.email if message.from_ else "", SHORT_TEXT)))


def _log_alone(ctx: HelpdeskContext, department: Department, mail: _Mail, outcome: str, reason: str,
               kind: str = "") -> None:
    """:func:`_event` in a savepoint of its own: a log line never breaks the batch."""
    try:
        with ctx.session.begin_nested():
            _event(ctx, department, mail, outcome, reason, kind)
    except OperationalError as exc:
        raise DatabaseUnavailable(f"Database error while importing: {exc.orig}") from exc
    except Exception:  # noqa: BLE001 - the log line is lost, the mail's outcome is not
        log.exception("could not log %s of %s", outcome, mail.key)


def _ledger(ctx: HelpdeskContext, department: Department, mail: _Mail, outcome: str,
            reason: str | None = None, ticket_message: TicketMessage | None = None) -> None:
    if mail.kept_entry is not None:  # the mail left in the mailbox as too large is handled now
        ctx.session.execute(delete(LedgerEntry).where(LedgerEntry.id == mail.kept_entry.id))
    ctx.session.add(LedgerEntry(department_id=department.id, key=mail.key, content_sha256=mail.content,
                                raw_sha256=mail.message.raw_sha256, outcome=outcome,
                                reason=None if reason is None else bounded(reason, LONG_TEXT),
                                ticket_message=ticket_message))


def _store(ctx: HelpdeskContext, department: Department, mail: _Mail, note: str = "",
           decided: tuple[Classification, ThreadMatch | None] | None = None) -> Outcome:
    """Classify, thread and store one message. Runs inside a savepoint; may raise.

    ``decided``: what ``helpdesk_classify_message`` (and ``helpdesk_find_ticket``, settled) already
    answered for this message in :class:`_Chunk` (they are not asked twice).

    The classification and the settled thread match are handed to the later hooks as typed
    keyword arguments; the scope, sender and closed-ticket rules are applied here to whatever
    ``helpdesk_find_ticket`` returned, so a plugin that replaces it keeps reopening and linking.
    ``note`` (e.g. "Message-ID reused") goes on the ledger entry and into the log.
    """
    hooks = ctx.hooks
    message = mail.message
    classification, match = decided or (hooks.classify_message(message=message, department=department,
                                                               context=ctx), None)
    if classification.action == "skip":
        return _skip(ctx, department, mail, classification.reason or classification.kind, classification.kind)
    if match is None:
        match = settle(hooks.find_ticket(message=message, department=department,
                                         classification=classification, context=ctx),
                       message, department, classification, ctx)
    ticket = match.ticket
    if (ticket is None and match.sender_verified is False and match.mentions
            and ctx.settings.get("mail.unverified_followups") == "hold"):
        reason = f"sender not verified (DKIM/DMARC failed), follow-up to {match.mentions}"
        _keep_failed(ctx, department, mail, reason, 0, status=KeptMailStatus.HELD)
        _event(ctx, department, mail, "held", reason, classification.kind)
        return Outcome(ImportStatus.SKIPPED, reason=reason, kind=classification.kind, held=True)
    if ticket is None and not classification.may_create:
        return _skip(ctx, department, mail, classification.reason or f"{classification.kind} does not open tickets",
                     classification.kind)
    if ticket is None and classification.action == "hold":
        reason = classification.reason or "held"
        _keep_failed(ctx, department, mail, reason, 0, status=KeptMailStatus.HELD)
        _event(ctx, department, mail, "held", reason, classification.kind)
        return Outcome(ImportStatus.SKIPPED, reason=reason, kind=classification.kind, held=True)
    created = ticket is None
    tm = hooks.message_to_ticket(message=message, department=department, ticket=ticket,
                                 classification=classification, match=match, context=ctx)
    _ledger(ctx, department, mail, "imported", reason=note or None, ticket_message=tm)
    if note:
        _event(ctx, department, mail, "reused", note, classification.kind)
    ctx.session.flush()  # one flush: ticket, message, attachments, ledger; ids for the hooks
    hooks.message_imported(message=message, ticket_message=tm, created=created, department=department,
                           classification=classification, match=match, context=ctx)
    # the savepoint's release flushes what the notification added
    return Outcome(ImportStatus.CREATED if created else ImportStatus.UPDATED, ticket_id=tm.ticket_id,
                   ticket_message_id=tm.id, reason=note)


def _skip(ctx: HelpdeskContext, department: Department, mail: _Mail, reason: str, kind: str) -> Outcome:
    _ledger(ctx, department, mail, "skipped", reason)
    _event(ctx, department, mail, "skipped", reason, kind)
    return Outcome(ImportStatus.SKIPPED, reason=reason, kind=kind)


def _keep_failed(ctx: HelpdeskContext, department: Department, mail: _Mail, error: str, attempts: int,
                 status: KeptMailStatus = KeptMailStatus.FAILED, *, minimal: bool = False) -> None:
    """Keep the raw message (``status`` ``failed``, or ``held`` by the rate limit) and ledger it.

    ``minimal`` keeps only what cannot fail to store (the raw bytes, digests, a fixed error):
    the last resort when storing the full record failed."""
    message = mail.message
    sender = "" if minimal or not message.from_ else message.from_.email
    ctx.session.add(KeptMail(department_id=department.id, raw=mail.raw, raw_sha256=message.raw_sha256,
                                 subject="" if minimal else bounded(message.subject, 1000),
                                 sender=bounded(sender, 320), error=bounded(error, LONG_TEXT),
                                 attempts=attempts, status=status))
    _ledger(ctx, department, mail, status, error)


def import_message(ctx: HelpdeskContext, department: Department, raw: bytes, *,
                   max_attempts: int = MAX_ATTEMPTS, from_mailbox: bool = True) -> Outcome:
    """Import one raw message in the caller's transaction. Never raises for a bad message:
    a failure rolls back to a savepoint and is counted; after ``max_attempts`` the raw message is
    kept as a failed import. Database outages do raise (the caller rolls back and retries later).
    ``from_mailbox=False`` (a mail server's pipe): what a mailbox would keep is ``refused``.
    """
    return import_batch(ctx, department, [raw], max_attempts=max_attempts, from_mailbox=from_mailbox)[0]


def import_batch(ctx: HelpdeskContext, department: Department, raws: list[bytes], *,
                 max_attempts: int = MAX_ATTEMPTS, from_mailbox: bool = True) -> list[Outcome]:
    """Import a batch of raw messages in the caller's transaction, one savepoint each.

    Messages are parsed ahead in a helper process when the batch is large (:mod:`.parsepool`);
    the ledger and the attempt counters are read with one query per parsed chunk, not two per
    message. When the core's own store is in effect (:func:`bulk_eligible`) a parsed chunk is
    written in bulk (:class:`_Chunk`), else message by message. The caller commits once for the
    batch, then acknowledges the mailbox. A message too large for ``mail.max_message_size_mb`` is parsed only for its header (for the log).
    """
    outcomes: list[Outcome] = []
    limit = ctx.settings.max_message_bytes
    offset = 0
    bulk = bulk_eligible(ctx)
    for parsed in parse_chunks([raw if len(raw) <= limit else _header_only(raw) for raw in raws], ctx.storage,
                               max_parts=ctx.settings.max_parts):
        mails = []
        for message, parse_error in parsed:
            raw = raws[offset + len(mails)]
            if len(raw) > limit:  # parsed from its header: the digest is of the whole mail
                message._raw_sha256 = hashlib.sha256(raw).hexdigest()
            content = content_digest(raw)
            mails.append((_Mail(raw, message, ledger_key(message.message_id, content), content), parse_error))
        known, attempts = _prefetch(ctx, department, [m for m, _ in mails])
        if bulk and len(mails) > 1:
            outcomes += _Chunk(ctx, department, known, attempts, max_attempts, from_mailbox).run(mails)
        else:
            for mail, parse_error in mails:
                outcomes.append(_import_one(ctx, department, mail, parse_error, known, attempts, max_attempts,
                                            from_mailbox))
        offset += len(mails)
    return outcomes


def _header_only(raw: bytes) -> bytes:
    end = min((i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0), default=-1)
    return raw[:end] + b"\r\n\r\n" if 0 <= end < 1048576 else raw[:65536] + b"\r\n\r\n"


def _prefetch(ctx: HelpdeskContext, department: Department, mails: list[_Mail],
              ) -> tuple[dict[str, list[LedgerEntry]], set[str]]:
    """Ledger entries (by key) and the hashes with failed attempts of these messages, one query each."""
    session = ctx.session
    known: dict[str, list[LedgerEntry]] = {}
    attempts: set[str] = set()
    for chunk in _chunks(sorted({m.key for m in mails})):
        for entry in session.scalars(select(LedgerEntry).where(
                LedgerEntry.department_id == department.id, LedgerEntry.key.in_(chunk))
                .order_by(LedgerEntry.id)):
            known.setdefault(entry.key, []).append(entry)
    for chunk in _chunks(sorted({m.message.raw_sha256 for m in mails})):
        attempts.update(session.scalars(select(ImportAttempt.raw_sha256).where(
            ImportAttempt.department_id == department.id, ImportAttempt.raw_sha256.in_(chunk))))
    return known, attempts


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _too_large(ctx: HelpdeskContext, raw: bytes) -> str | None:
    if len(raw) <= ctx.settings.max_message_bytes:
        return None
    return (f"message of {len(raw) / 1048576:.1f} MB is larger than mail.max_message_size_mb "
            f"({ctx.settings.get('mail.max_message_size_mb')} MB)")


def _import_one(ctx: HelpdeskContext, department: Department, mail: _Mail, parse_error: Exception | None,
                known: dict[str, list[LedgerEntry]], attempts: set[str], max_attempts: int,
                from_mailbox: bool, decided: tuple[Classification, ThreadMatch | None] | None = None) -> Outcome:
    """The outcome of one mail; every outcome but a plain import is also a line of ``helpdesk log``.

    Order: duplicate (same key and content) → empty → too large (checked before any "kept"
    entry, so raising the limit imports it) → store in a savepoint → on failure, record the
    attempt in a savepoint of its own (:func:`_failed`)."""
    entries = known.setdefault(mail.key, [])
    matching = [e for e in entries if e.content_sha256 in (None, mail.content)]
    same = next((e for e in matching if e.outcome != "kept"), matching[0] if matching else None)
    if same is not None and same.outcome != "kept":
        reason = f"already {same.outcome}"
        _log_alone(ctx, department, mail, "duplicate", reason)
        return Outcome(ImportStatus.DUPLICATE, ticket_message_id=same.ticket_message_id, reason=same.outcome)
    if not mail.raw or mail.raw.isspace():  # as `not raw.strip()`, without a copy of a big message
        if not from_mailbox:
            _log_alone(ctx, department, mail, "refused", "empty message")
            return Outcome(ImportStatus.REFUSED, reason="empty message")
        return (_alone(ctx, department, mail, lambda: _skip(ctx, department, mail, "empty message", "empty"))
                or Outcome(ImportStatus.SKIPPED, reason="empty message", kind="empty"))
    too_large = _too_large(ctx, mail.raw)
    if too_large and not from_mailbox:
        _log_alone(ctx, department, mail, "refused", too_large)
        return Outcome(ImportStatus.REFUSED, reason=too_large)
    if too_large:
        reason = too_large + "; left in the mailbox"
        if same is None:  # reported once, in the log and in `department status`
            _alone(ctx, department, mail, lambda: _keep_in_mailbox(ctx, department, mail, reason))
            known.setdefault(mail.key, []).append(LedgerEntry(key=mail.key, content_sha256=mail.content,
                                                              outcome="kept"))
        return Outcome(ImportStatus.KEPT, reason=reason)
    mail.kept_entry = same
    note = ""
    if same is None and entries:
        note = (f"Message-ID reused: {bounded(normalized_message_id(mail.message.message_id or ''), 200)} "
                f"was seen before with other content; imported as a new message")
    try:
        if parse_error is not None:
            raise parse_error
        with ctx.session.begin_nested():
            outcome = _store(ctx, department, mail, note, decided)
    except OperationalError as exc:
        raise DatabaseUnavailable(f"Database error while importing: {exc.orig}") from exc
    except Exception as exc:  # noqa: BLE001 - a bad message must never block the others
        _drop_unreferenced(ctx, mail.message)
        outcome = _failed(ctx, department, mail, f"{type(exc).__name__}: {exc}", max_attempts)
        if outcome.status == ImportStatus.FAILED:
            known.setdefault(mail.key, []).append(LedgerEntry(key=mail.key, content_sha256=mail.content,
                                                              outcome="failed"))
        else:
            attempts.add(mail.message.raw_sha256)
        return outcome
    _drop_unreferenced(ctx, mail.message)
    if same is not None:  # the "kept" entry was replaced
        entries.remove(same)
    if mail.message.raw_sha256 in attempts:
        ctx.session.execute(delete(ImportAttempt).where(ImportAttempt.department_id == department.id,
                                                        ImportAttempt.raw_sha256 == mail.message.raw_sha256))
        attempts.discard(mail.message.raw_sha256)
    known.setdefault(mail.key, []).append(LedgerEntry(
        key=mail.key, content_sha256=mail.content, ticket_message_id=outcome.ticket_message_id,
        outcome="held" if outcome.held else {"created": "imported", "updated": "imported"}.get(
            outcome.status, outcome.status)))
    return outcome


def _drop_unreferenced(ctx: HelpdeskContext, message: ParsedMessage) -> None:
    """Remove the blobs streamed into the storage while parsing (large attachments) that no
    row of this transaction or before references: refused attachments, or a message that
    failed. (Content-addressed blobs: one still referenced elsewhere is kept.)"""
    keys = {att.stored_key for att in message.attachments if att.stored_key}
    if not keys:
        return
    used = set(ctx.session.scalars(select(Attachment.storage_key).where(Attachment.storage_key.in_(keys))))
    used |= set(ctx.session.scalars(select(TicketMessage.raw_storage_key)
                                    .where(TicketMessage.raw_storage_key.in_(keys))))
    for key in keys - used:
        try:
            ctx.storage.path(key).unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not remove the unused blob %s: %s", key, exc)


def _alone(ctx: HelpdeskContext, department: Department, mail: _Mail, write: Callable[[], Outcome | None],
           ) -> Outcome | None:
    """Run ``write`` in a savepoint of its own; a failure (not an outage) is logged and rolled back."""
    try:
        with ctx.session.begin_nested():
            return write()
    except OperationalError as exc:
        raise DatabaseUnavailable(f"Database error while importing: {exc.orig}") from exc
    except Exception:  # noqa: BLE001
        log.exception("could not record what happened to %s", mail.key)
        return None


def _keep_in_mailbox(ctx: HelpdeskContext, department: Department, mail: _Mail, reason: str) -> None:
    _ledger(ctx, department, mail, "kept", reason)
    _event(ctx, department, mail, "kept", reason)


def _failed(ctx: HelpdeskContext, department: Department, mail: _Mail, error: str,
            max_attempts: int) -> Outcome:
    """Record a failed attempt, each write in a savepoint of its own, and never raise for it.

    Counts the attempt; at ``max_attempts`` keeps the raw mail as a failed import. When storing
    the full record fails, a minimal one (raw bytes and a fixed error) is tried; when even that
    fails the mail stays in the mailbox (``retry``) and the reason is logged."""
    error = bounded(error, LONG_TEXT)
    log.warning("import of %s failed: %s", mail.key, error)
    log.debug("traceback: %s", traceback.format_exc())
    raw_sha256 = mail.message.raw_sha256

    def count() -> Outcome:
        session = ctx.session
        attempt = session.scalar(select(ImportAttempt).where(ImportAttempt.department_id == department.id,
                                                             ImportAttempt.raw_sha256 == raw_sha256))
        if attempt is None:
            attempt = ImportAttempt(department_id=department.id, raw_sha256=raw_sha256, attempts=0)
            session.add(attempt)
        attempt.attempts += 1
        attempt.last_error = error
        attempt.updated_at = datetime.now(UTC)
        if attempt.attempts < max_attempts:
            _event(ctx, department, mail, "retry", f"attempt {attempt.attempts} of {max_attempts}: {error}")
            return Outcome(ImportStatus.RETRY, reason=error)
        _keep_failed(ctx, department, mail, error, attempt.attempts)
        _event(ctx, department, mail, "failed", error)
        if attempt in session.new:  # the count now lives on the KeptMail
            session.expunge(attempt)
        else:
            session.delete(attempt)
        return Outcome(ImportStatus.FAILED, reason=error)

    def keep_minimal() -> Outcome:
        reason = f"could not be imported nor recorded in full: {error[:200]}"
        _keep_failed(ctx, department, mail, reason, max_attempts, minimal=True)
        _event(ctx, department, mail, "failed", reason)
        return Outcome(ImportStatus.FAILED, reason=error)

    outcome = _alone(ctx, department, mail, count) or _alone(ctx, department, mail, keep_minimal)
    if outcome is None:
        _log_alone(ctx, department, mail, "retry", f"could not record the failure: {error}")
        return Outcome(ImportStatus.RETRY, reason=error)
    return outcome


# ----------------------------------------------------------------------------------------------
# a chunk in bulk
# ----------------------------------------------------------------------------------------------

#: the hooks whose core defaults the bulk path stands in for or relies on (they read the database,
#: so they must be the ones that the chunk's cut rules were written for)
BULK_HOOKS = ("helpdesk_classify_message", "helpdesk_find_ticket", "helpdesk_message_to_ticket")


def bulk_eligible(ctx: HelpdeskContext) -> bool:
    """Whether chunks may be written in bulk: only when classification, thread finding and the
    store are the core's defaults (no plugin implements those hooks or registers a thread
    matcher). ``HELPDESK_BULK=0`` turns it off."""
    if os.environ.get("HELPDESK_BULK", "").strip() == "0":
        return False
    matchers = ctx.hooks.thread_matchers.plugin_of.values()
    return ctx.hooks.only_defaults(*BULK_HOOKS) and all(p in ctx.hooks.default_plugins for p in matchers)


@dataclass
class _Staged:
    mail: _Mail
    classification: Classification
    match: ThreadMatch
    built: tuple[TicketMessage, Ticket]
    created: bool


class _Chunk:
    """One parsed chunk written in bulk: runs of messages in one savepoint each.

    Each message is classified, threaded and built as the per-message path would
    (:func:`~helpdesk_core.defaults.store.build_ticket_message`); the run's rows are written together
    (:func:`~helpdesk_core.defaults.store.store_chunk`), then ``helpdesk_message_imported`` is called
    for each message, in order. A message that may depend on a row of the run not yet written ends
    the run first: the same sender (rate limit, requester, acknowledgement count), a Message-ID of
    the run among its own or referenced ids, a ticket reference in its subject
    (``mail.ticket_reference_format``) that could name a ticket of the run, the same ledger key.
    Whatever is not a plain new message (duplicate, empty, too large, retried, a parse failure,
    skipped, held) goes through :func:`_import_one`, with the hooks' answers when they were asked.
    Any failure in a run rolls its savepoint back and redoes the run message by message, so one bad
    message still costs only itself.
    """

    def __init__(self, ctx: HelpdeskContext, department: Department, known: dict[str, list[LedgerEntry]],
                 attempts: set[str], max_attempts: int, from_mailbox: bool) -> None:
        self.ctx, self.department, self.known, self.attempts = ctx, department, known, attempts
        self.max_attempts, self.from_mailbox = max_attempts, from_mailbox
        self.users: dict[str, User | None] = {}
        self._reset()

    def _reset(self) -> None:
        self.savepoint = None
        self.staged: list[_Staged] = []
        self.keys: set[str] = set()
        self.senders: set[str] = set()
        self.ids: set[str] = set()
        self.last_number = 0
        self.grafted: list[object] = []

    def run(self, mails: list[tuple[_Mail, Exception | None]]) -> list[Outcome]:
        senders = sorted({m.message.from_.email for m, _ in mails if m.message.from_})
        for chunk in _chunks(senders):
            for user in self.ctx.session.scalars(select(User).where(User.email.in_(chunk))):
                self.users[user.email] = user
        self.users.update((email, self.users.get(email)) for email in senders)
        self.ctx.cache[CHUNK_FACTS] = self._facts([m for m, _ in mails])
        outcomes: list[Outcome] = []
        for mail, parse_error in mails:
            if mail.key in self.keys:
                outcomes += self.finish()
            if not self._plain(mail, parse_error) or self._depends(mail):
                outcomes += self.finish()
            if not self._plain(mail, parse_error):
                outcomes.append(self._one(mail, parse_error))
                continue
            try:
                decided = self._stage(mail)
            except OperationalError as exc:
                raise DatabaseUnavailable(f"Database error while importing: {exc.orig}") from exc
            except Exception:  # noqa: BLE001 - this message and the run so far go one by one
                outcomes += self._fall_back()
                outcomes.append(self._one(mail, None))
                continue
            if decided is not None:
                outcomes += self.finish()
                outcomes.append(self._one(mail, None, decided))
        outcomes += self.finish()
        self.ctx.cache.pop(CHUNK_FACTS, None)
        return outcomes

    def _facts(self, mails: list[_Mail]) -> ChunkFacts:
        """The thread rows and rate-limit counts of the chunk, one query each (:class:`ChunkFacts`)."""
        session, dept_id = self.ctx.session, self.department.id
        ids = sorted({stored_message_id(i) for m in mails
                      for i in [*reversed(m.message.in_reply_to), *reversed(m.message.references)][:50]})
        inbound: dict[str, list[int]] = {}
        outbox: dict[str, list[int]] = {}
        for chunk in _chunks(ids):
            for ticket_id, mid in session.execute(select(TicketMessage.ticket_id, TicketMessage.message_id).where(
                    TicketMessage.department_id == dept_id, TicketMessage.message_id.in_(chunk))):
                inbound.setdefault(mid, []).append(ticket_id)
            for ticket_id, mid in session.execute(select(OutboxMessage.ticket_id, OutboxMessage.message_id).where(
                    OutboxMessage.department_id == dept_id, OutboxMessage.message_id.in_(chunk))):
                if ticket_id is not None:
                    outbox.setdefault(mid, []).append(ticket_id)
        senders = sorted({m.message.from_.email.lower() for m in mails if m.message.from_})
        since = self.ctx.now - timedelta(hours=1)
        new_tickets: dict[str, int] = {}
        for chunk in _chunks(senders):
            for email, count in session.execute(
                    select(User.email, func.count(Ticket.id)).join(User, Ticket.requester_id == User.id)
                    .where(Ticket.department_id == dept_id, User.email.in_(chunk), Ticket.created_at >= since)
                    .group_by(User.email)):
                new_tickets[email] = count
        return ChunkFacts(dept_id, set(ids), inbound, outbox, set(senders), new_tickets)

    def _one(self, mail: _Mail, parse_error: Exception | None,
             decided: tuple[Classification, ThreadMatch | None] | None = None) -> Outcome:
        self.ctx.cache.pop(CHUNK_FACTS, None)  # its writes are not tracked: the hooks query again
        return _import_one(self.ctx, self.department, mail, parse_error, self.known, self.attempts,
                           self.max_attempts, self.from_mailbox, decided)

    def _plain(self, mail: _Mail, parse_error: Exception | None) -> bool:
        """A mail the per-message path would hand straight to :func:`_store` without a note."""
        raw = mail.raw
        return (parse_error is None and not self.known.get(mail.key) and bool(raw) and not raw.isspace()
                and len(raw) <= self.ctx.settings.max_message_bytes
                and mail.message.raw_sha256 not in self.attempts)

    def _depends(self, mail: _Mail) -> bool:
        if not self.staged:
            return False
        message = mail.message
        sender = message.from_.email.lower() if message.from_ else ""
        ids = {stored_message_id(i) for i in (message.message_id, *message.in_reply_to, *message.references) if i}
        fmt = self.ctx.settings.get("mail.ticket_reference_format")
        return (sender in self.senders or not ids.isdisjoint(self.ids)
                or any(n > self.last_number for n in find_references(message.subject or "", fmt)))

    def _stage(self, mail: _Mail) -> tuple[Classification, ThreadMatch | None] | None:
        """Classify and thread ``mail`` and build its rows in the run; or return the hooks'
        answers when it is not stored as a plain message (the caller imports it on its own)."""
        ctx, department, message, hooks = self.ctx, self.department, mail.message, self.ctx.hooks
        if self.savepoint is None:
            self.savepoint = ctx.session.begin_nested()
            self.last_number = department.last_ticket_number or 0
        classification = hooks.classify_message(message=message, department=department, context=ctx)
        if classification.action == "skip":
            return classification, None
        match = settle(hooks.find_ticket(message=message, department=department,
                                         classification=classification, context=ctx),
                       message, department, classification, ctx)
        if match.ticket is None and (
                (match.sender_verified is False and match.mentions
                 and ctx.settings.get("mail.unverified_followups") == "hold")
                or not classification.may_create or classification.action == "hold"):
            return classification, match
        built = build_ticket_message(message, department, match.ticket, classification, match, ctx,
                                     find_user=self._user, number=lambda: None)
        self.staged.append(_Staged(mail, classification, match, built, match.ticket is None))
        self.keys.add(mail.key)
        if message.from_:
            self.senders.add(message.from_.email.lower())
        if message.message_id:
            self.ids.add(stored_message_id(message.message_id))
        return None

    def _user(self, email: str) -> User | None:
        if email not in self.users:
            self.users[email] = self.ctx.session.scalar(select(User).where(User.email == email))
        return self.users[email]

    def finish(self) -> list[Outcome]:
        """Write the run, notify, release its savepoint; on a failure redo it message by message."""
        if self.savepoint is None:
            return []
        ctx, department, staged = self.ctx, self.department, self.staged
        if not staged:
            self.savepoint.commit()
            self._reset()
            return []
        try:
            self.grafted = store_chunk(ctx, department, [s.built for s in staged], [
                {"department_id": department.id, "key": s.mail.key, "content_sha256": s.mail.content,
                 "raw_sha256": s.mail.message.raw_sha256, "outcome": "imported", "reason": None,
                 "ticket_message": s.built[0]} for s in staged])
            for s in staged:
                ctx.hooks.message_imported(message=s.mail.message, ticket_message=s.built[0], created=s.created,
                                           department=department, classification=s.classification,
                                           match=s.match, context=ctx)
            ctx.session.flush()
            self.savepoint.commit()
        except OperationalError as exc:
            raise DatabaseUnavailable(f"Database error while importing: {exc.orig}") from exc
        except Exception:  # noqa: BLE001 - redo the run one by one: a bad message costs only itself
            log.info("bulk write of %d messages failed; importing them one by one", len(staged), exc_info=True)
            return self._fall_back()
        outcomes = []
        for s in staged:
            tm = s.built[0]
            _drop_unreferenced(ctx, s.mail.message)
            self.known.setdefault(s.mail.key, []).append(LedgerEntry(
                key=s.mail.key, content_sha256=s.mail.content, ticket_message_id=tm.id, outcome="imported"))
            if tm.ticket.requester is not None:
                self.users[tm.ticket.requester.email] = tm.ticket.requester
            facts: ChunkFacts | None = ctx.cache.get(CHUNK_FACTS)
            if facts is not None:
                if tm.message_id in facts.ids:
                    facts.inbound.setdefault(tm.message_id, []).append(tm.ticket_id)
                requester = tm.ticket.requester
                if s.created and requester is not None and requester.email in facts.senders:
                    facts.new_tickets[requester.email] = facts.new_tickets.get(requester.email, 0) + 1
            outcomes.append(Outcome(ImportStatus.CREATED if s.created else ImportStatus.UPDATED, ticket_id=tm.ticket_id,
                                    ticket_message_id=tm.id))
        self._reset()
        return outcomes

    def _fall_back(self) -> list[Outcome]:
        """Roll the run back and import its messages one by one."""
        staged, session = self.staged, self.ctx.session
        self.ctx.cache.pop(CHUNK_FACTS, None)
        if self.savepoint is not None:
            self.savepoint.rollback()
        for obj in self.grafted:  # rows rolled back; their objects would shadow the ones redone
            if obj in session:
                session.expunge(obj)
        self._reset()
        self.users.clear()  # the rollback expired them; looked up again when needed
        return [self._one(s.mail, None) for s in staged]
