"""Tickets, their messages and attachments."""

from __future__ import annotations

import enum
import hashlib
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Enum, ForeignKey, Index, Integer, String, Text, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk_core.models.base import Base, DepartmentRow, created_at, department_fk, email_str, intpk, utcnow
from helpdesk_core.models.imports import bounded

if TYPE_CHECKING:
    from helpdesk_core.models.department import Department
    from helpdesk_core.models.user import User


#: the size of ``ticket_messages.message_id``: RFC 5322's line limit, which no real id exceeds
MESSAGE_ID_LENGTH = 998
#: characters of an over-long Message-ID kept before its digest (900 + "…" + 64 hex < 998)
_MESSAGE_ID_KEPT = 900


def stored_message_id(message_id: str | None) -> str | None:
    """A Message-ID (without angle brackets) as ``ticket_messages.message_id`` stores it and as
    thread lookups compare it: a NUL or a lone surrogate becomes U+FFFD, and an id longer than
    :data:`MESSAGE_ID_LENGTH` becomes its first 900 characters, ``…`` and the sha256 hex of the
    whole id. Deterministic, so a reply naming the original id finds the stored one; an ordinary
    id is returned unchanged.

    >>> stored_message_id("abc@example.test")
    'abc@example.test'
    >>> len(stored_message_id("x" * 1500 + "@printer.local"))
    965
    """
    if not message_id:
        return message_id
    if len(message_id) <= MESSAGE_ID_LENGTH:
        return bounded(message_id, MESSAGE_ID_LENGTH)
    digest = hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()
    return bounded(message_id[:_MESSAGE_ID_KEPT], _MESSAGE_ID_KEPT) + "\u2026" + digest


class TicketStatus(enum.StrEnum):
    """``open``: staff's turn; ``pending``: waiting for the requester; ``resolved``: staff think it is
    done (a requester's reply makes it ``open`` again, the department's ``auto_close_days`` closes it);
    ``closed``: done (a reply reopens it or opens a linked ticket, per ``reopen_closed``)."""

    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"


class TicketPriority(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    NOTE = "note"


class Ticket(DepartmentRow, Base):
    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("department_id", "number"),
        Index("ix_tickets_department_id_requester_id", "department_id", "requester_id"),
    )

    #: per-department number shown as ``[Ticket #N]``
    number: Mapped[int] = mapped_column(Integer)
    subject: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[TicketStatus] = mapped_column(
        Enum(TicketStatus, name="ticket_status", native_enum=False, length=20), default=TicketStatus.OPEN)
    requester_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    #: lower-cased addresses seen on the ticket (requester, To/Cc of its messages)
    participants: Mapped[list[Any]] = mapped_column(default=list)
    #: a ticket reference the first mail claimed but was not allowed to use ("mentions #123")
    mentions: Mapped[str | None] = mapped_column(String(100))
    linked_ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    #: False when the receiving server reported the first mail's sender as failing DKIM/DMARC
    #: (``docs/threading.md``, sender authentication)
    sender_verified: Mapped[bool] = mapped_column(default=True, server_default=true())
    priority: Mapped[TicketPriority] = mapped_column(
        Enum(TicketPriority, name="ticket_priority", native_enum=False, length=20), default=TicketPriority.NORMAL)
    #: the staff member working the ticket (an agent or admin of its department); no ON DELETE
    #: (SQLite can add the column only with a column constraint): users are deactivated, not deleted
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    #: when the ticket last became ``resolved`` (auto-close counts from here); None unless resolved
    resolved_at: Mapped[datetime | None]
    created_at: Mapped[created_at]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    department: Mapped[Department] = relationship(back_populates="tickets")
    requester: Mapped[User | None] = relationship(foreign_keys=[requester_id])
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])
    messages: Mapped[list[TicketMessage]] = relationship(
        back_populates="ticket", order_by="TicketMessage.id", cascade="all, delete-orphan")
    tag_rows: Mapped[list[TicketTag]] = relationship(
        order_by="TicketTag.tag", cascade="all, delete-orphan")
    aliases: Mapped[list[TicketAlias]] = relationship(cascade="all, delete-orphan")

    @property
    def tags(self) -> list[str]:
        return [t.tag for t in self.tag_rows]


class TicketTag(Base):
    """A tag on a ticket (lower-case, one row per tag)."""

    __tablename__ = "ticket_tags"
    __table_args__ = (UniqueConstraint("ticket_id", "tag"), Index("ix_ticket_tags_tag", "tag"))

    id: Mapped[intpk]
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(String(100))


class TicketAlias(Base):
    """A (department, number) a ticket had before ``ticket move``: old references still thread to it."""

    __tablename__ = "ticket_aliases"
    __table_args__ = (UniqueConstraint("department_id", "number"),)

    id: Mapped[intpk]
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    department_id: Mapped[department_fk]
    number: Mapped[int] = mapped_column(Integer)


class TicketMessage(Base):
    """One mail (inbound or outbound) or internal note on a ticket."""

    __tablename__ = "ticket_messages"
    __table_args__ = (
        Index("ix_ticket_messages_department_id_message_id", "department_id", "message_id"),
    )

    id: Mapped[intpk]
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    #: denormalised for an index-bound thread lookup scoped to the department
    department_id: Mapped[department_fk]
    direction: Mapped[Direction] = mapped_column(
        Enum(Direction, name="message_direction", native_enum=False, length=20))
    #: ``message`` for ordinary mail; ``auto_reply``, ``bounce`` … for classified inbound mail
    kind: Mapped[str] = mapped_column(String(32), default="message")
    message_id: Mapped[str | None] = mapped_column(String(998))
    in_reply_to: Mapped[list[Any]] = mapped_column(default=list)
    references: Mapped[list[Any]] = mapped_column(default=list)
    from_email: Mapped[email_str | None]
    from_name: Mapped[str] = mapped_column(String(300), default="")
    to: Mapped[list[Any]] = mapped_column(default=list)
    cc: Mapped[list[Any]] = mapped_column(default=list)
    subject: Mapped[str] = mapped_column(Text, default="")
    date: Mapped[datetime | None]
    body_text: Mapped[str] = mapped_column(Text, default="")
    #: sanitised HTML, safe to render
    body_html: Mapped[str | None] = mapped_column(Text)
    #: the new part without quoted history / signature, for display
    body_display: Mapped[str] = mapped_column(Text, default="")
    #: attachments not stored, with why: ``[{"filename", "content_type", "size", "reason"}]``
    removed_attachments: Mapped[list[Any]] = mapped_column(default=list)
    defects: Mapped[list[Any]] = mapped_column(default=list)
    raw_sha256: Mapped[str | None] = mapped_column(String(64))
    raw_storage_key: Mapped[str | None] = mapped_column(String(200))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[created_at]

    ticket: Mapped[Ticket] = relationship(back_populates="messages")
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="message", order_by="Attachment.id", cascade="all, delete-orphan")


class Attachment(Base):
    """Metadata of a stored attachment; the bytes live in the attachment storage."""

    __tablename__ = "attachments"

    id: Mapped[intpk]
    message_id: Mapped[int] = mapped_column(ForeignKey("ticket_messages.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(500))
    content_type: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    content_id: Mapped[str | None] = mapped_column(String(998))
    inline: Mapped[bool] = mapped_column(default=False)
    storage_key: Mapped[str] = mapped_column(String(200))

    message: Mapped[TicketMessage] = relationship(back_populates="attachments")
