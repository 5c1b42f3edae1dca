"""Mail to staff about their tickets, and the acknowledgement of an internal ticket.

A staff notification (``new_ticket``, ``requester_reply``, ``assignment``) goes through the outbox
(kind ``notification``) From the department's address to each active agent/admin of the department
who has not opted out (``user set EMAIL --no-notifications``), never to the mail's own sender. It is
marked ``Auto-Submitted: auto-generated`` and carries the ticket reference and a signed Message-ID,
so an agent who answers it from their mail client threads to the ticket; that answer is sent on to
the requester (:mod:`helpdesk_core.defaults.notify`). Nothing is sent for a department without a
mailbox (no outgoing mail). ``new_ticket`` and ``requester_reply`` need the department option
``notify_staff``; an assignment is always notified.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk_core.mail.compose import SMTP_POLICY, ComposedMail, build_message, compose_mail
from helpdesk_core.mail.message import Address
from helpdesk_core.mail.references import format_reference, make_message_id
from helpdesk_core.models import Membership, OutboxMessage, Role, Ticket, TicketMessage, User
from helpdesk_core.models.ticket import stored_message_id
from helpdesk_core.outbound.outbox import queue_mail
from helpdesk_core.outbound.replies import mail_parties
from helpdesk_core.settings import GeneralSettings

#: department option: notify staff of new tickets and requester replies (assignments always)
NOTIFY_OPTION = "notify_staff"
#: outbox kind of staff notifications
KIND = "notification"

_TITLES = {"new_ticket": "New ticket", "requester_reply": "New reply", "assignment": "Assigned to you"}


def staff_to_notify(session: Session, ticket: Ticket) -> list[User]:
    """Active agents/admins of the ticket's department who want notifications."""
    return list(session.scalars(
        select(User).join(Membership, Membership.user_id == User.id)
        .where(Membership.department_id == ticket.department_id, User.active.is_(True),
               User.notifications.is_(True), Membership.role.in_([Role.AGENT, Role.ADMIN]))
        .order_by(User.email)))


def _body(ticket: Ticket, reason: str, message: TicketMessage | None, reference: str) -> str:
    requester = ticket.requester.email if ticket.requester else "(no requester)"
    lines = [f"{_TITLES[reason]} in {ticket.department.name}: {reference} {ticket.subject}",
             f"Requester: {requester}", f"Status: {ticket.status}", ""]
    if message is not None:
        lines += [(message.body_display or message.body_text or "").strip(), ""]
    lines += ["Reply to this mail to answer the requester (your reply is sent from the department's "
              "address), or run 'helpdesk ticket show " + str(ticket.id) + "'.", "",
              "This is an automatic message."]
    return "\n".join(lines)


def notify_staff(app: Any, session: Session, ticket: Ticket, reason: str, *,
                 recipients: Sequence[User] | None = None, exclude: str | None = None,
                 message: TicketMessage | None = None, now: datetime | None = None) -> list[OutboxMessage]:
    """Queue one notification per recipient (default: :func:`staff_to_notify`, when the department
    has ``notify_staff``). ``app`` is anything with ``secrets`` (the application or a hook context).
    Flushes; never commits."""
    dept = ticket.department
    if dept.mailbox is None:
        return []
    if recipients is None:
        if not (dept.options or {}).get(NOTIFY_OPTION):
            return []
        recipients = staff_to_notify(session, ticket)
    skip = (exclude or "").lower()
    fmt = GeneralSettings.load(session).get("mail.ticket_reference_format")
    reference = format_reference(ticket.number, fmt)
    now = now or datetime.now(UTC)
    rows = []
    for user in recipients:
        if not user.active or not user.notifications or user.email.lower() == skip:
            continue
        domain = dept.sender_address.rpartition("@")[2] or "localhost"
        message_id = make_message_id(app.secrets, ticket.id, domain)
        to = [Address(user.email, user.name or "")]
        subject = f"{reference} {_TITLES[reason]}: {ticket.subject}"
        text = _body(ticket, reason, message, reference)
        msg = build_message(mail_from=Address(dept.sender_address, dept.name), to=to, cc=[], subject=subject,
                            text=text, html=f"<pre>{html.escape(text)}</pre>", message_id=message_id, date=now,
                            auto_submitted="auto-generated",
                            extra_headers=[("X-Auto-Response-Suppress", "All")])
        mail = ComposedMail(raw=msg.as_bytes(policy=SMTP_POLICY), message_id=message_id,
                            mail_from=dept.sender_address, to=to, cc=[], subject=subject, text=text, html="",
                            date=now)
        rows.append(queue_mail(session, mail, department=dept, kind=KIND, ticket=ticket, ticket_message=message))
    return rows


def acknowledge_internal(app: Any, session: Session, ticket: Ticket, *,
                         now: datetime | None = None) -> OutboxMessage | None:
    """Mail the requester of an internal ticket its reference (the ``acknowledgement`` templates),
    when the department has a mailbox and the requester is active; else None."""
    dept, requester = ticket.department, ticket.requester
    if dept.mailbox is None or requester is None or not requester.active:
        return None
    settings = GeneralSettings.load(session)
    sender, about = mail_parties(dept, ticket)
    mail = compose_mail(kind="acknowledgement", department=sender, ticket=about, secrets=app.secrets,
                        template_folders=app.hooks.template_folders,
                        reference_format=settings.get("mail.ticket_reference_format"),
                        to=[Address(requester.email, requester.name or "")], now=now)
    return queue_mail(session, mail, department=dept, kind="acknowledgement", ticket=ticket)


def notification_ids(session: Session, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` are Message-IDs of staff notifications we sent."""
    if not ids:
        return set()
    wanted = {stored_message_id(i): i for i in list(ids)[:50]}  # a NUL id must not fail the query
    found = session.scalars(select(OutboxMessage.message_id).where(
        OutboxMessage.kind == KIND, OutboxMessage.message_id.in_(list(wanted))))
    return {wanted[i] for i in found if i in wanted}
