"""The outbox: rendered outgoing mail waiting for (or done with) delivery.

A row is added in the same transaction as the ticket message it belongs to, so a reply is never
sent for a ticket change that rolled back; :func:`helpdesk_core.outbound.outbox.flush_outbox` delivers it
after the commit. ``status`` (:class:`OutboxStatus`): ``queued`` → ``sending`` → ``sent`` or ``failed`` (or back
to ``queued`` with a later ``next_attempt_at`` after a temporary error).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk_core.models.base import Base, DepartmentRow, StatusColumn, created_at

#: kinds of outgoing mail
KINDS = ("reply", "acknowledgement")


class OutboxStatus(enum.StrEnum):
    """The delivery state of an outgoing mail."""

    #: waiting to be sent (at ``next_attempt_at`` after a temporary error)
    QUEUED = "queued"
    #: claimed by one sender right now
    SENDING = "sending"
    SENT = "sent"
    #: refused for good, or out of attempts (``helpdesk outbox retry`` queues it again)
    FAILED = "failed"


class OutboxMessage(DepartmentRow, Base):
    """One outgoing mail of one department, with its delivery state."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        Index("ix_outbox_messages_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_outbox_messages_to_email_created_at", "to_email", "created_at"),
        # thread matching looks up our issued Message-IDs per department: must stay index-bound
        Index("ix_outbox_messages_department_id_message_id", "department_id", "message_id"),
    )

    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    ticket_message_id: Mapped[int | None] = mapped_column(ForeignKey("ticket_messages.id", ondelete="SET NULL"))
    #: ``reply`` (a staff member's answer) or ``acknowledgement`` (automatic, for a new ticket)
    kind: Mapped[str] = mapped_column(String(32))
    #: envelope sender (the department's address)
    mail_from: Mapped[str] = mapped_column(String(320))
    #: envelope recipients (To + Cc), lower-cased
    recipients: Mapped[list[Any]] = mapped_column(default=list)
    #: the main recipient (To), lower-cased: counted by the acknowledgement rate limit
    to_email: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text, default="")
    #: the complete rendered message (RFC 5322, CRLF)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    #: without angle brackets
    message_id: Mapped[str] = mapped_column(String(998))
    status: Mapped[OutboxStatus] = mapped_column(StatusColumn(OutboxStatus), default=OutboxStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    #: when the row was marked ``sending`` (rows stuck there are re-queued after a while)
    sending_since: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_kind: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[datetime | None]
    #: set when a bounce naming this mail was imported (migration 0003): when, for whom, DSN status
    bounced_at: Mapped[datetime | None]
    bounce_recipient: Mapped[str | None] = mapped_column(String(320))
    bounce_status: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[created_at]
