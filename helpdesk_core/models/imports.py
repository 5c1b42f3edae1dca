"""The import ledger, attempts, failed imports, the import log and the cycle log."""

from __future__ import annotations

import enum
import hashlib
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk_core.models.base import Base, DepartmentRow, StatusColumn, created_at, intpk

if TYPE_CHECKING:
    from helpdesk_core.models.ticket import TicketMessage


#: longest text kept in a short column of the import log (Message-ID, subject, sender)
SHORT_TEXT = 300
#: longest error or reason kept
LONG_TEXT = 4000


def bounded(text: object, limit: int) -> str:
    """``text`` made safe for any database column: no NUL, no lone surrogate (each becomes
    U+FFFD), at most ``limit`` characters. Everything about a mail that reaches the database
    outside its ticket goes through this first."""
    value = str(text if text is not None else "")
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value if len(value) <= limit else value[:limit - 1] + "\u2026"


def normalized_message_id(message_id: str) -> str:
    """A Message-ID as the ledger compares it: without surrounding spaces and angle brackets."""
    value = message_id.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    return value


def ledger_key(message_id: str | None, content_sha256: str) -> str:
    """The fixed-size ledger key: the sha256 hex digest of the normalised Message-ID (whatever
    it holds: length, NUL, bad UTF-8), or for mail without one its content digest (so a relayed
    second copy, differing only in its trace headers, is still recognised)."""
    if message_id and normalized_message_id(message_id):
        return hashlib.sha256(normalized_message_id(message_id).encode("utf-8", "surrogatepass")).hexdigest()
    return content_sha256


class LedgerEntry(DepartmentRow, Base):
    """One message handled for a department. The unique key makes re-fetches harmless.

    ``key`` is :func:`ledger_key` (Message-ID digest), ``content_sha256`` the digest of what the
    mail says (see :func:`helpdesk_core.inbound.importer.content_digest`; NULL for entries from
    before it existed): only the same key *and* content is a duplicate, so a Message-ID reused by
    a printer for a different mail gets an entry of its own.

    ``outcome``: ``imported`` (on ``ticket_message_id``), ``skipped`` (with ``reason``),
    ``failed`` (kept as a :class:`KeptMail`), ``held`` (rate-limited, awaiting an admin),
    ``kept`` (too large, left in the mailbox; becomes ``imported`` once the limit allows it).
    """

    __tablename__ = "import_ledger"
    __table_args__ = (UniqueConstraint("department_id", "key", "content_sha256"),)

    key: Mapped[str] = mapped_column(String(64))
    content_sha256: Mapped[str | None] = mapped_column(String(64))
    raw_sha256: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    ticket_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("ticket_messages.id", ondelete="SET NULL"))
    created_at: Mapped[created_at]

    ticket_message: Mapped[TicketMessage | None] = relationship()


class ImportAttempt(DepartmentRow, Base):
    """Failed attempts at importing one raw message (by hash); after 3 it becomes a KeptMail."""

    __tablename__ = "import_attempts"
    __table_args__ = (UniqueConstraint("department_id", "raw_sha256"),)

    raw_sha256: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[created_at]


class KeptMailKind(enum.StrEnum):
    """Why a raw message was kept (:class:`KeptMail`); it stays when the status moves on."""

    #: its import failed (``helpdesk failed list``)
    FAILED = "failed"
    #: held by the rate limit (``helpdesk held list``)
    HELD = "held"


class KeptMailStatus(enum.StrEnum):
    """Where a kept raw message (:class:`KeptMail`) stands."""

    #: the import failed (``helpdesk failed list``)
    FAILED = "failed"
    #: held by the rate limit (``helpdesk held list``)
    HELD = "held"
    #: a failed one that a retry imported
    RETRIED = "retried"
    #: a held one that was released (imported)
    RELEASED = "released"
    #: given up on by an admin; the raw copy is kept
    DISCARDED = "discarded"


def _kind_of_new_row(context: Any) -> str:
    """A new row's ``kind`` unless given: ``held`` when it starts as held, else ``failed``."""
    status = context.get_current_parameters().get("status")
    return KeptMailKind.HELD.value if status == KeptMailStatus.HELD else KeptMailKind.FAILED.value


class KeptMail(Base):
    """A raw message kept so nothing is lost: its import failed, or the rate limit held it
    (``kind``, a :class:`KeptMailKind`); ``status`` is a :class:`KeptMailStatus`. The failed and
    held lists, retry, release and discard all work on these rows (``services/failed.py``,
    ``services/held.py``)."""

    __tablename__ = "kept_mail"

    id: Mapped[intpk]
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id", ondelete="CASCADE"), index=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    raw_sha256: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(Text, default="")
    sender: Mapped[str] = mapped_column(String(320), default="")
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: ``failed`` or ``held``, from the start to the end
    kind: Mapped[KeptMailKind] = mapped_column(StatusColumn(KeptMailKind), default=_kind_of_new_row,
                                               server_default=KeptMailKind.FAILED.value)
    #: ``failed`` until a retry imports it (``retried``); ``held`` until released (``released``)
    status: Mapped[KeptMailStatus] = mapped_column(StatusColumn(KeptMailStatus), default=KeptMailStatus.FAILED)
    ticket_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("ticket_messages.id", ondelete="SET NULL"))
    created_at: Mapped[created_at]


class ImportEvent(Base):
    """One line of ``helpdesk log``: what happened to a mail that did not simply become a ticket
    message. ``outcome``: ``skipped``, ``held``, ``failed``, ``retry`` (left in the mailbox for the
    next attempt), ``kept`` (left in the mailbox, e.g. too large), ``refused`` (handed back to the
    mail server, e.g. by ``helpdesk ingest``), ``duplicate``, ``reused`` (a known Message-ID with
    other content, imported as a new message). All text is :func:`bounded`."""

    __tablename__ = "import_events"

    id: Mapped[intpk]
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(64))
    raw_sha256: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(64), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str] = mapped_column(String(SHORT_TEXT), default="")
    subject: Mapped[str] = mapped_column(String(SHORT_TEXT), default="")
    sender: Mapped[str] = mapped_column(String(SHORT_TEXT), default="")
    created_at: Mapped[created_at]


class ImportCycle(Base):
    """One import cycle of one department: when, how many, what went wrong."""

    __tablename__ = "import_cycles"

    id: Mapped[intpk]
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id", ondelete="CASCADE"), index=True)
    worker: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[created_at]
    finished_at: Mapped[datetime | None]
    fetched: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    deleted: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    error_kind: Mapped[str | None] = mapped_column(String(64))
