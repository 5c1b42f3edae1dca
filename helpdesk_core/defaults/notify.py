"""Default staff notifications for imported mail, and staff replies by mail.

* A new ticket or a reply by anyone but staff notifies the department's staff
  (:func:`helpdesk_core.outbound.notifications.notify_staff`; department option ``notify_staff``),
  never for mail that is not ordinary (auto-replies, bounces, our own) or looks automatic, never to
  the mail's own sender, never for old mail of a backlog
  (:func:`helpdesk_core.defaults.acknowledge.backlog_reason`: staff find those tickets on the desk).
* An agent's answer to a notification (it names a notification's Message-ID in ``In-Reply-To``/
  ``References``, so it threaded by our signed id) is a staff reply: their mail is kept on the
  ticket as a note (``kind`` ``staff_mail``) and its new text is sent to the requester From the
  department, exactly like ``helpdesk ticket reply`` (a staff message on the ticket + outbox).
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from helpdesk_core import hookimpl
from helpdesk_core.defaults.acknowledge import automatic_reason, backlog_reason
from helpdesk_core.errors import HelpdeskError
from helpdesk_core.hooktypes import Classification, HelpdeskContext
from helpdesk_core.mail.message import ParsedMessage
from helpdesk_core.models import Department, Direction, Membership, Role, TicketMessage, User
from helpdesk_core.outbound.notifications import notification_ids, notify_staff
from helpdesk_core.outbound.replies import store_reply

log = logging.getLogger("helpdesk.notify")


def staff_sender(context: HelpdeskContext, email: str, department_id: int) -> User | None:
    """The active agent/admin of the department with this address, if any."""
    return context.session.scalar(
        select(User).join(Membership, Membership.user_id == User.id)
        .where(User.email == email, User.active.is_(True), Membership.role.in_([Role.AGENT, Role.ADMIN]),
               Membership.department_id == department_id))


def send_staff_mail_on(context: HelpdeskContext, message: ParsedMessage, tm: TicketMessage, staff: User) -> None:
    """Turn a staff member's mail into a staff reply to the requester (see the module docs)."""
    ticket = tm.ticket
    tm.direction, tm.kind, tm.author_id = Direction.NOTE, "staff_mail", staff.id
    ticket.participants = [p for p in ticket.participants or [] if p != staff.email]  # not Cc'd to themselves
    try:
        with context.session.begin_nested():  # the same reply 'helpdesk ticket reply' stores
            store_reply(context, context.session, ticket=ticket, author=staff,
                        body=message.body_display or message.body_text, now=context.now)
    except HelpdeskError as exc:  # kept as a note; the agent can still answer with 'ticket reply'
        log.warning("%s ticket #%s: the mail of %s was not sent on: %s", ticket.department.name,
                    ticket.number, staff.email, exc.message)


@hookimpl(trylast=True)
def helpdesk_message_imported(message: ParsedMessage, ticket_message: TicketMessage, created: bool,
                              department: Department, classification: Classification,
                              context: HelpdeskContext) -> None:
    """Notify staff of a human's new ticket or reply; pass a staff answer to a notification on."""
    if classification.kind != "normal":
        return
    if ticket_message.direction != Direction.INBOUND or automatic_reason(message) or message.from_ is None:
        return
    sender = message.from_.email.lower()
    ticket = ticket_message.ticket
    staff = None if created else staff_sender(context, sender, ticket.department_id)
    if staff is not None:
        if notification_ids(context.session, [*message.in_reply_to, *message.references]):
            send_staff_mail_on(context, message, ticket_message, staff)
        return
    backlog = backlog_reason(message, department, context)
    if backlog:  # a first import must not mail staff a term's worth of old mail either
        log.info("%s ticket #%s: no staff notification (%s)", department.name, ticket.number, backlog)
        return
    notify_staff(context, context.session, ticket, "new_ticket" if created else "requester_reply",
                 exclude=sender, message=ticket_message, now=context.now)
