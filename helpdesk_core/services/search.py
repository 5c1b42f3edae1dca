"""Finding tickets: filters and full-text search, through the permission model.

:func:`search_tickets` is what ``ticket list`` (and the web app) call, :func:`count_tickets` its
total for paging; :func:`matching_ticket_ids` is the one place that knows the two full-text
backends (SQLite FTS5, PostgreSQL ``tsvector``; see :mod:`helpdesk_core.models.search`). A requester only ever searches their own tickets, and never
the text of internal notes.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Integer, Select, case, column, func, literal_column, or_, select, text
from sqlalchemy.orm import Session, selectinload

from helpdesk_core.errors import ConfigurationError
from helpdesk_core.models import (
    Direction, Ticket, TicketMessage, TicketPriority, TicketStatus, TicketTag, User,
)
from helpdesk_core.models.search import FTS_TABLE, PG_DOCUMENT
from helpdesk_core.services.departments import get_department
from helpdesk_core.services.permissions import Actor, staff_department_ids, visible_tickets
from helpdesk_core.services.tickets import message_counts, ticket_summary

E = TypeVar("E", bound=enum.StrEnum)

#: ``--sort`` values: newest/oldest by creation, by last update, by priority (most urgent first)
SORTS = ("number", "created", "-created", "updated", "-updated", "priority")


def _fts5_query(words: str) -> str:
    """Every whitespace-separated term as an FTS5 phrase (quotes doubled): all must match."""
    return " ".join('"' + term.replace('"', '""') + '"' for term in words.split())


def matching_ticket_ids(session: Session, words: str, *, include_notes: bool = True,
                        notes_of: set[int] | None = None) -> Select[tuple[int]]:
    """A query of the ids of tickets with a message whose subject, text body, sender or Cc
    addresses contain all of ``words`` (whole words, case-insensitive). Internal notes count only
    with ``include_notes``, and then (``notes_of`` given) only in those departments."""
    query = select(TicketMessage.ticket_id)
    if session.get_bind().dialect.name == "sqlite":
        matched = (text(f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :fts_query")
                   .bindparams(fts_query=_fts5_query(words)).columns(column("rowid", Integer)).subquery("fts"))
        query = query.where(TicketMessage.id.in_(select(matched.c.rowid)))
    else:
        query = query.where(literal_column(PG_DOCUMENT).op("@@")(func.plainto_tsquery("simple", words)))
    if not include_notes:
        query = query.where(TicketMessage.direction != Direction.NOTE)
    elif notes_of is not None:
        query = query.where(or_(TicketMessage.direction != Direction.NOTE,
                                TicketMessage.department_id.in_(notes_of or {-1})))
    return query


def _user_by(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def _members(enum_class: type[E], values: str, what: str) -> list[E]:
    """The members named in ``values`` (comma-separated, any case); an unknown one is refused
    with the names to choose from."""
    try:
        return [enum_class(v.strip().lower()) for v in values.split(",") if v.strip()]
    except ValueError:
        raise ConfigurationError(f"Unknown {what} in {values!r}; use "
                                 f"{', '.join(m.value for m in enum_class)}.") from None


def _filtered(session: Session, actor: Actor, *, department: str | None, status: str | None,
              assignee: str | None, requester: str | None, tag: str | None, since: datetime | None,
              query: str | None, priority: str | None, q: Select[Any]) -> Select[Any]:
    """``q`` (a select over Ticket) with the filters of :func:`search_tickets`, limited to what
    ``actor`` may see."""
    if department:
        q = q.where(Ticket.department_id == get_department(session, department).id)
    if status:
        q = q.where(Ticket.status.in_(_members(TicketStatus, status, "status")))
    if priority:
        q = q.where(Ticket.priority.in_(_members(TicketPriority, priority, "priority")))
    if assignee:
        if assignee.lower() == "none":
            q = q.where(Ticket.assignee_id.is_(None))
        else:
            user = actor if assignee.lower() == "me" else _user_by(session, assignee)
            q = q.where(Ticket.assignee_id == (user.id if isinstance(user, User) else -1))
    if requester:
        user = _user_by(session, requester)
        q = q.where(Ticket.requester_id == (user.id if user else -1))
    if tag:
        q = q.where(Ticket.id.in_(select(TicketTag.ticket_id).where(TicketTag.tag == tag.strip().lower())))
    if since is not None:
        q = q.where(Ticket.updated_at >= since)
    if query and query.strip():
        q = q.where(Ticket.id.in_(matching_ticket_ids(session, query.strip(),
                                                      notes_of=staff_department_ids(actor))))
    return visible_tickets(actor, q)


def search_tickets(session: Session, *, actor: Actor, department: str | None = None,
                   status: str | None = None, assignee: str | None = None, requester: str | None = None,
                   tag: str | None = None, since: datetime | None = None, query: str | None = None,
                   priority: str | None = None, sort: str = "number", limit: int | None = None,
                   offset: int = 0) -> list[dict[str, Any]]:
    """Tickets ``actor`` may see, filtered; each as ``ticket list --json`` shows it (the existing
    keys plus ``assignee``, ``priority``, ``tags``). ``assignee``: ``me``, ``none`` or an address;
    ``since``: updated at or after; ``status`` and ``priority``: one value or several separated by
    commas."""
    counts = message_counts(actor)
    q = (select(Ticket, func.coalesce(counts.c.n, 0)).outerjoin(counts, counts.c.ticket_id == Ticket.id)
         .options(selectinload(Ticket.requester), selectinload(Ticket.department),
                  selectinload(Ticket.assignee), selectinload(Ticket.tag_rows)))
    order = {"number": (Ticket.department_id, Ticket.number), "created": (Ticket.created_at, Ticket.id),
             "-created": (Ticket.created_at.desc(), Ticket.id.desc()), "updated": (Ticket.updated_at, Ticket.id),
             "-updated": (Ticket.updated_at.desc(), Ticket.id.desc()),
             "priority": (_priority_rank(), Ticket.updated_at.desc())}
    if sort not in order:
        raise ConfigurationError(f"Unknown sort {sort!r}; use {', '.join(SORTS)}.")
    q = _filtered(session, actor, department=department, status=status, assignee=assignee, requester=requester,
                  tag=tag, since=since, query=query, priority=priority, q=q).order_by(*order[sort])
    if offset:
        q = q.offset(offset)
    if limit is not None:
        q = q.limit(limit)
    return [ticket_summary(t, n) for t, n in session.execute(q).all()]


def count_tickets(session: Session, *, actor: Actor, department: str | None = None, status: str | None = None,
                  assignee: str | None = None, requester: str | None = None, tag: str | None = None,
                  since: datetime | None = None, query: str | None = None, priority: str | None = None) -> int:
    """How many tickets :func:`search_tickets` finds with these filters (for paging: the total)."""
    q = _filtered(session, actor, department=department, status=status, assignee=assignee, requester=requester,
                  tag=tag, since=since, query=query, priority=priority, q=select(Ticket.id))
    return int(session.scalar(select(func.count()).select_from(q.subquery())) or 0)


def _priority_rank() -> Any:
    ranks = (TicketPriority.URGENT, TicketPriority.HIGH, TicketPriority.NORMAL, TicketPriority.LOW)
    return case(*[(Ticket.priority == p, i) for i, p in enumerate(ranks)], else_=2)
