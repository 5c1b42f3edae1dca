"""The history of a ticket: one row per change (status, assignment, priority, tags, department)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk_core.models.base import Base, created_at, email_str, intpk

if TYPE_CHECKING:
    from helpdesk_core.models.ticket import Ticket
    from helpdesk_core.models.user import User

#: kinds of ticket events
EVENT_KINDS = ("created", "status", "assignee", "priority", "tag_added", "tag_removed", "department")


class TicketEvent(Base):
    """One change of a ticket, by whom and when. ``old``/``new`` are JSON values (a status, an
    email address, a tag, ``{"department": …, "number": …}`` …; None for "none")."""

    __tablename__ = "ticket_events"
    __table_args__ = (Index("ix_ticket_events_ticket_id_id", "ticket_id", "id"),)

    id: Mapped[intpk]
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    #: the actor's address when it happened (``system`` for the local operator and the worker)
    actor_email: Mapped[email_str]
    kind: Mapped[str] = mapped_column(String(32))
    old: Mapped[Any | None] = mapped_column(JSON)
    new: Mapped[Any | None] = mapped_column(JSON)
    created_at: Mapped[created_at]

    ticket: Mapped[Ticket] = relationship()
    actor: Mapped[User | None] = relationship()


def ticket_event(ticket: Ticket, *, actor: User | None, kind: str, old: Any = None, new: Any = None,
                 actor_email: str = "system") -> TicketEvent:
    """A new event row for ``ticket`` (added to the ticket's session by the relationship cascade
    of the caller: add it with ``session.add``). ``actor`` None means the local operator/worker."""
    return TicketEvent(ticket=ticket, actor=actor, actor_email=actor.email if actor is not None else actor_email,
                       kind=kind, old=old, new=new)
