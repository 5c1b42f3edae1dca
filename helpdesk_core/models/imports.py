"""The import ledger, attempts, failed imports and the cycle log."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk_core.models.base import Base, created_at, intpk

if TYPE_CHECKING:
    from helpdesk_core.models.ticket import TicketMessage


class LedgerEntry(Base):
    """One message handled for a department. The unique key makes re-fetches harmless.

    ``outcome``: ``imported`` (on ``ticket_message_id``), ``skipped`` (with ``reason``),
    ``failed`` (kept as a :class:`FailedImport`), ``held`` (rate-limited, awaiting an admin).
    """

    __tablename__ = "import_ledger"
    __table_args__ = (UniqueConstraint("department_id", "key"),)

    id: Mapped[intpk]
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(1000))
    raw_sha256: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    ticket_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("ticket_messages.id", ondelete="SET NULL"))
    created_at: Mapped[created_at]

    ticket_message: Mapped[TicketMessage | None] = relationship()


class ImportAttempt(Base):
    """Failed attempts at importing one raw message (by hash); after 3 it becomes a FailedImport."""

    __tablename__ = "import_attempts"
    __table_args__ = (UniqueConstraint("department_id", "raw_sha256"),)

    id: Mapped[intpk]
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id", ondelete="CASCADE"))
    raw_sha256: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[created_at]


class FailedImport(Base):
    """A message that could not be imported, kept raw so nothing is lost."""

    __tablename__ = "failed_imports"

    id: Mapped[intpk]
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id", ondelete="CASCADE"), index=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    raw_sha256: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(Text, default="")
    sender: Mapped[str] = mapped_column(String(320), default="")
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: ``failed`` until a retry imports it (``retried``)
    status: Mapped[str] = mapped_column(String(20), default="failed")
    ticket_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("ticket_messages.id", ondelete="SET NULL"))
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
