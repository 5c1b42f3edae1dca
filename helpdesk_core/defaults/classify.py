"""Default classification: loop and noise protection, then the per-sender rate limit.

In order (the first that applies wins):

1. our own mail -- the ``X-Helpdesk-Loop`` header, or a sender that is one of the help desk's own
   addresses (any department's sender address or mailbox login): ``skip``, never a ticket;
2. bounces (:func:`helpdesk_core.mail.automated.bounce_reason`): a ``note`` on the ticket of the returned
   mail we sent, never a new ticket, reopen or acknowledgement; the outbox row is marked bounced;
3. auto-replies and bulk mail (:func:`helpdesk_core.mail.automated.auto_reply_reason`): a ``note`` when they
   thread, else skipped with the reason; never a reopen or acknowledgement;
4. more than ``mail.rate_limit_per_hour`` new tickets from this sender in this department in the
   last hour: ``hold`` (kept for ``helpdesk held release``);
5. ordinary mail.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import func, select, update

from helpdesk_core import hookimpl
from helpdesk_core.mail.compose import LOOP_HEADER
from helpdesk_core.hooktypes import Classification, HelpdeskContext
from helpdesk_core.mail.automated import auto_reply_reason, bounce_info, bounce_reason
from helpdesk_core.mail.message import ParsedMessage
from helpdesk_core.inbound.matching import CHUNK_FACTS, ChunkFacts
from helpdesk_core.outbound.addresses import own_addresses
from helpdesk_core.models import Department, OutboxMessage, Ticket, TicketMessage, User

log = logging.getLogger("helpdesk.classify")


def _new_tickets_last_hour(context: HelpdeskContext, department: Department, sender: str) -> int:
    facts: ChunkFacts | None = context.cache.get(CHUNK_FACTS)  # counted for the chunk in one query
    known = facts.new_tickets_of(department.id, sender) if facts is not None else None
    if known is not None:
        return known
    since = context.now - timedelta(hours=1)
    return context.session.scalar(
        select(func.count(Ticket.id)).join(User, Ticket.requester_id == User.id)
        .where(Ticket.department_id == department.id, User.email == sender, Ticket.created_at >= since)) or 0


def classify(message: ParsedMessage, department: Department, context: HelpdeskContext) -> Classification:
    """The default classification of ``message`` (see the module docstring)."""
    sender = message.from_.email.lower() if message.from_ else ""
    loop = message.header(LOOP_HEADER)
    if loop is not None:
        return Classification(kind="own", action="skip", may_create=False, may_reopen=False,
                              may_acknowledge=False,
                              reason=f"our own mail ({LOOP_HEADER}: {loop[:80]}); dropped to prevent a loop")
    if sender and sender in context.cached("own_addresses", lambda: own_addresses(context.session)):
        return Classification(kind="own", action="skip", may_create=False, may_reopen=False,
                              may_acknowledge=False,
                              reason=f"sent from our own address {sender}; dropped to prevent a loop")
    reason = bounce_reason(message)
    if reason is not None:
        info = bounce_info(message, reason)
        return Classification(
            kind="bounce", action="note", may_create=False, may_reopen=False, may_acknowledge=False,
            reason=f"bounce: {reason}; it names none of our messages, so it opens no ticket",
            details={"recipient": info.recipient, "status": info.status,
                     "returned_message_ids": info.returned_message_ids})
    auto = auto_reply_reason(message)
    if auto is not None:
        kind, why = auto
        return Classification(kind=kind, action="note", may_create=False, may_reopen=False,
                              may_acknowledge=False, reason=f"{why}; it continues no ticket, so it opens none")
    limit = int(context.settings.get("mail.rate_limit_per_hour", 20) or 0)
    if limit and sender and _new_tickets_last_hour(context, department, sender) >= limit:
        return Classification(
            kind="normal", action="hold",
            reason=(f"{sender} opened {limit} tickets in {department.name} within the last hour "
                    f"(mail.rate_limit_per_hour); held: release it with 'helpdesk held release ID'"))
    return Classification(kind="normal")


@hookimpl(trylast=True)
def helpdesk_classify_message(message: ParsedMessage, department: Department,
                              context: HelpdeskContext) -> Classification:
    return classify(message, department, context)


@hookimpl(trylast=True)
def helpdesk_message_imported(ticket_message: TicketMessage, department: Department,
                              classification: Classification, context: HelpdeskContext) -> None:
    """A bounce stored on a ticket: summarise it on the note and mark our returned mail bounced."""
    if classification.kind != "bounce":
        return
    details = classification.details
    recipient, status = details.get("recipient") or "", details.get("status") or ""
    summary = f"Delivery failed: {recipient or 'unknown recipient'} ({status or 'no status'})"
    ticket_message.body_display = f"{summary}\n\n{ticket_message.body_display or ''}".rstrip()
    ids = list(details.get("returned_message_ids") or [])
    if not ids:
        return
    context.session.execute(
        update(OutboxMessage).where(OutboxMessage.department_id == department.id,
                                    OutboxMessage.message_id.in_(ids))
        .values(bounced_at=context.now, bounce_recipient=recipient[:320] or None,
                bounce_status=status[:64] or None)
        .execution_options(synchronize_session=False))
    log.info("%s: bounce for %s (%s) on ticket #%s", department.name, recipient, status,
             ticket_message.ticket.number)
