"""Departments and their (at most one) mailbox."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk_core.models.base import Base, created_at, email_str, intpk

if TYPE_CHECKING:
    from helpdesk_core.models.ticket import Ticket


class Department(Base):
    """A help-desk department. Works without a mailbox (internal tickets only)."""

    __tablename__ = "departments"

    id: Mapped[intpk]
    name: Mapped[str] = mapped_column(String(200), unique=True)
    sender_address: Mapped[email_str]
    interval_minutes: Mapped[int] = mapped_column(Integer, default=5)
    #: last ticket number handed out in this department
    last_ticket_number: Mapped[int] = mapped_column(Integer, default=0)
    #: department-level options (e.g. ``reopen_closed``, ``acknowledge``, ``push`` = IMAP IDLE
    #: on/off, default on; ``queue`` = the Celery queue of its imports, docs/scaling.md)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[created_at]

    mailbox: Mapped[Mailbox | None] = relationship(back_populates="department", uselist=False,
                                                   cascade="all, delete-orphan")
    tickets: Mapped[list[Ticket]] = relationship(back_populates="department")


class Mailbox(Base):
    """The mail configuration of a department: provider, settings, encrypted secrets, health."""

    __tablename__ = "mailboxes"

    id: Mapped[intpk]
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id", ondelete="CASCADE"), unique=True)
    provider: Mapped[str] = mapped_column(String(64))
    #: names the mailbox itself (host + login + folder); one department per mailbox
    identity: Mapped[str] = mapped_column(String(1000), unique=True)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: Fernet token of a JSON object of the secret fields
    secrets_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: provider state kept between cycles (e.g. IMAP UIDVALIDITY)
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # health, for `department status`
    last_success_at: Mapped[datetime | None]
    failing_since: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_kind: Mapped[str | None] = mapped_column(String(64))
    needs_reauthorization: Mapped[bool] = mapped_column(default=False)
    waiting: Mapped[int | None]
    next_run_at: Mapped[datetime | None]
    # lease: only one worker imports a mailbox at a time
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None]
    #: fencing token: grows each time the lease changes hands (``inbound.leases``)
    lease_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: IMAP IDLE watcher of ``helpdesk watch`` holding this mailbox (a lease of its own)
    watch_owner: Mapped[str | None] = mapped_column(String(200))
    watch_expires_at: Mapped[datetime | None]
    #: failed cycles in a row; the next run backs off exponentially (``inbound.cycle.backoff``)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[created_at]
    #: when this mailbox was first configured (set again when another mailbox is configured in its
    #: place): mail dated before it is a backlog and gets no acknowledgement (defaults/acknowledge.py)
    configured_at: Mapped[created_at]

    department: Mapped[Department] = relationship(back_populates="mailbox")
