"""Default thread matching: our Message-IDs in In-Reply-To/References, then a subject reference."""

from __future__ import annotations

from sqlalchemy import select

from helpdesk_core import hookimpl
from helpdesk_core.context import Classification, HelpdeskContext
from helpdesk_core.message import ParsedMessage
from helpdesk_core.models import Department, Ticket, TicketMessage
from helpdesk_core.threads import find_references, verify_message_id


def match_by_message_ids(message: ParsedMessage, department: Department,
                         context: HelpdeskContext) -> Ticket | None:
    ids = list(dict.fromkeys([*reversed(message.in_reply_to), *reversed(message.references)]))[:50]
    if not ids:
        return None
    for mid in ids:  # signed IDs we issued name their ticket directly
        ticket_id = verify_message_id(context.secrets, mid)
        if ticket_id is not None:
            ticket = context.session.get(Ticket, ticket_id)
            if ticket is not None and ticket.department_id == department.id:
                return ticket
    row = context.session.execute(
        select(TicketMessage.ticket_id, TicketMessage.message_id)
        .where(TicketMessage.department_id == department.id, TicketMessage.message_id.in_(ids))
    ).all()
    if not row:
        return None
    rank = {mid: i for i, mid in enumerate(ids)}
    best = min(row, key=lambda r: rank.get(r.message_id, len(ids)))
    return context.session.get(Ticket, best.ticket_id)


def match_by_subject(message: ParsedMessage, department: Department,
                     context: HelpdeskContext) -> Ticket | None:
    fmt = context.settings.get("mail.ticket_reference_format")
    for number in find_references(message.subject, fmt):
        ticket = context.session.scalar(
            select(Ticket).where(Ticket.department_id == department.id, Ticket.number == number))
        if ticket is not None:
            return ticket
    return None


@hookimpl(trylast=True)
def helpdesk_find_ticket(message: ParsedMessage, department: Department,
                         classification: Classification, context: HelpdeskContext) -> Ticket | None:
    return match_by_message_ids(message, department, context) or match_by_subject(
        message, department, context)
