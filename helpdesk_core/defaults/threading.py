"""Default thread matching: the ``message_id`` and ``subject_reference`` strategies, run by
:func:`helpdesk_core.inbound.matching.find_thread` in the order of ``mail.thread_matchers``."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from helpdesk_core import hookimpl
from helpdesk_core.hooktypes import Classification, HelpdeskContext, Matcher, ThreadMatch
from helpdesk_core.inbound.matching import CHUNK_FACTS, ChunkFacts, belongs_to, find_thread
from helpdesk_core.mail.message import ParsedMessage
from helpdesk_core.models import Department, OutboxMessage, Ticket, TicketAlias, TicketMessage
from helpdesk_core.models.ticket import stored_message_id
from helpdesk_core.mail.references import find_references, verify_message_id


def match_by_message_ids(message: ParsedMessage, department: Department,
                         classification: Classification | None = None,
                         context: HelpdeskContext | None = None) -> ThreadMatch | None:
    """``In-Reply-To``/``References`` (newest first) against our signed Message-IDs, the ids of the
    mail we sent (outbox) and the ids of mail we imported, all within ``department``.

    Only a signed Message-ID we issued is proof on its own (``trusted``): anyone Cc'd once has seen
    the requester's own Message-ID, and a printer's may be guessed, so a match by any other stored
    id counts only from a sender on the ticket (:func:`~helpdesk_core.inbound.matching.settle`).

    For a bounce, the classification's ``returned_message_ids`` (the Message-IDs of our mail that
    the bounce returns) are used instead: a bounce threads only to mail we sent.
    """
    assert context is not None
    details = classification.details if classification is not None else {}
    if classification is not None and classification.kind == "bounce":
        ids = list(details.get("returned_message_ids") or [])[:50]
    else:
        ids = list(dict.fromkeys([*reversed(message.in_reply_to), *reversed(message.references)]))[:50]
    ids = list(dict.fromkeys(stored_message_id(i) for i in ids))  # as ticket_messages stores them
    if not ids:
        return None
    session = context.session
    for mid in ids:  # signed IDs we issued name their ticket directly
        ticket_id = verify_message_id(context.secrets, mid)
        if ticket_id is not None:
            ticket = session.get(Ticket, ticket_id)
            if ticket is not None and belongs_to(ticket, department):
                return ThreadMatch(ticket=ticket, trusted=True)
    rank = {mid: i for i, mid in enumerate(ids)}
    bounce = classification is not None and classification.kind == "bounce"
    facts: ChunkFacts | None = context.cache.get(CHUNK_FACTS)  # the chunk's rows, read in one query
    rows: list[tuple[int | None, str]] | None = (
        facts.thread_rows(department.id, ids, outbox_only=bounce) if facts is not None else None)
    if rows is None:
        rows = [(r.ticket_id, r.message_id) for r in session.execute(
            select(OutboxMessage.ticket_id, OutboxMessage.message_id)
            .where(OutboxMessage.department_id == department.id, OutboxMessage.message_id.in_(ids)))]
        if not bounce:
            rows += [(r.ticket_id, r.message_id) for r in session.execute(
                select(TicketMessage.ticket_id, TicketMessage.message_id)
                .where(TicketMessage.department_id == department.id, TicketMessage.message_id.in_(ids)))]
    rows = [r for r in rows if r[0] is not None]
    if not rows:
        return None
    best = min(rows, key=lambda r: rank.get(r[1], len(ids)))
    ticket = session.get(Ticket, best[0])
    return ThreadMatch(ticket=ticket, trusted=False) if ticket is not None else None


def match_by_subject(message: ParsedMessage, department: Department,
                     classification: Classification | None = None,
                     context: HelpdeskContext | None = None) -> Ticket | None:
    """A ticket reference in the subject (``mail.ticket_reference_format``), within ``department``.
    Untrusted: the core accepts it only from a sender on the ticket."""
    assert context is not None
    fmt = context.settings.get("mail.ticket_reference_format")
    for number in find_references(message.subject, fmt):
        ticket = context.session.scalar(
            select(Ticket).where(Ticket.department_id == department.id, Ticket.number == number))
        if ticket is None:  # the number the ticket had here before 'ticket move'
            ticket = context.session.scalar(select(Ticket).join(TicketAlias, TicketAlias.ticket_id == Ticket.id)
                                            .where(TicketAlias.department_id == department.id,
                                                   TicketAlias.number == number))
        if ticket is not None:
            return ticket
    return None


@hookimpl(trylast=True)
def helpdesk_register_thread_matchers(register: Callable[[str, Matcher], None]) -> None:
    register("message_id", match_by_message_ids)
    register("subject_reference", match_by_subject)


@hookimpl(trylast=True)
def helpdesk_find_ticket(message: ParsedMessage, department: Department,
                         classification: Classification, context: HelpdeskContext) -> ThreadMatch:
    return find_thread(message, department, classification, context)
