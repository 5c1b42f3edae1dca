"""Default acknowledgement of new tickets (department option ``acknowledge``, off by default).

When a human's mail opens a new ticket, a templated mail (``acknowledgement/*`` templates) with the
ticket reference and ``Auto-Submitted: auto-replied`` is queued in the outbox, in the import's
transaction; the outbox delivers it after the commit. Never acknowledged:

* mail the classification says may not be acknowledged (``may_acknowledge`` false) or that is not
  ordinary (``kind`` other than ``normal``: bounces, auto-replies, our own mail …);
* automatic mail, checked here too in case no classifier caught it: ``Auto-Submitted`` other than
  ``no``, ``Precedence: bulk/junk/list/auto_reply``, ``List-Id``/``List-Unsubscribe``,
  ``X-Auto-Response-Suppress``, ``X-Autoreply``/``X-Autorespond``, our loop header,
  ``multipart/report`` (delivery reports), a null or MAILER-DAEMON/postmaster/no-reply sender;
* mail from one of the help desk's own addresses;
* a sender who already got ``mail.acknowledgements_per_hour`` acknowledgements (default 3) in the
  last hour, from any department (counted in the outbox);
* a backlog (:func:`backlog_reason`): mail dated before its mailbox was configured
  (``mailboxes.configured_at``), or older than ``mail.acknowledge_max_age_days`` (default 7), so
  that a first import of a full mailbox does not answer a term's worth of old mail. Its time is
  its Date, or its arrival (the newest ``Received:`` header) when the Date is missing or
  implausible (:func:`mail_time`); a mail whose time cannot be told counts as arriving now.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from sqlalchemy import func, select

from helpdesk_core import hookimpl
from helpdesk_core.mail.compose import LOOP_HEADER, compose_mail
from helpdesk_core.hooktypes import Classification, HelpdeskContext
from helpdesk_core.errors import HelpdeskError
from helpdesk_core.mail.message import Address, ParsedMessage
from helpdesk_core.models import Department, Direction, Mailbox, OutboxMessage, TicketMessage
from helpdesk_core.outbound.addresses import own_addresses
from helpdesk_core.outbound.outbox import queue_mail
from helpdesk_core.outbound.replies import mail_parties

log = logging.getLogger("helpdesk.acknowledge")

_AUTOMATIC_LOCALPARTS = ("mailer-daemon", "postmaster", "noreply", "no-reply", "no_reply", "donotreply",
                         "do-not-reply", "do_not_reply", "bounce", "bounces", "listserv", "majordomo")


def automatic_reason(message: ParsedMessage) -> str | None:
    """Why ``message`` looks automatic (not written by a human), or None."""
    auto = (message.header("Auto-Submitted") or "").strip().lower()
    if auto and not auto.startswith("no"):
        return f"Auto-Submitted: {auto}"
    precedence = (message.header("Precedence") or "").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {precedence}"
    for name in ("List-Id", "List-Unsubscribe", "X-Auto-Response-Suppress", "X-Autoreply",
                 "X-Autorespond", "X-Autoresponder", LOOP_HEADER):
        if message.header(name) is not None:
            return f"has a {name} header"
    if message.content_type.lower().startswith("multipart/report"):
        return "delivery report (multipart/report)"
    return_path = message.header("Return-Path")
    if return_path is not None and return_path.strip() in ("<>", ""):
        return "null sender (Return-Path: <>)"
    sender = message.from_.email if message.from_ else ""
    local = sender.partition("@")[0].lower()
    if not sender or local in _AUTOMATIC_LOCALPARTS or local.startswith(("mailer-daemon", "noreply")):
        return f"automatic sender {sender or '(none)'}"
    return None


#: a Date this far after the mail's arrival (or now) is not believed (a wrong clock, or a lie)
DATE_FUTURE_SLACK = timedelta(days=1)
#: a Date this far before the mail's arrival is not believed either (a clock reset to 1970)
DATE_PAST_SLACK = timedelta(days=365)
#: clock difference forgiven between a sender and the help desk when comparing with configured_at
CLOCK_SKEW = timedelta(minutes=10)


def arrival(message: ParsedMessage) -> datetime | None:
    """When a mail server received ``message``: the date of its newest ``Received:`` header that
    has one (the topmost, written by the receiving server), or None."""
    for name, value in message.headers:
        if name.lower() != "received":
            continue
        _, semicolon, when = value.rpartition(";")
        if not semicolon:
            continue
        try:
            parsed = parsedate_to_datetime(" ".join(when.split()))
        except (TypeError, ValueError, IndexError):
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def mail_time(message: ParsedMessage, now: datetime) -> datetime | None:
    """The time ``message`` was written, as far as it can be told: its Date, unless that is
    missing or implausible -- more than :data:`DATE_FUTURE_SLACK` after its arrival (or ``now``),
    or more than :data:`DATE_PAST_SLACK` before its arrival -- then its :func:`arrival`."""
    arrived = arrival(message)
    date = message.date
    if date is not None and date <= (arrived or now) + DATE_FUTURE_SLACK and (
            arrived is None or date >= arrived - DATE_PAST_SLACK):
        return date
    return arrived


def backlog_reason(message: ParsedMessage, department: Department, context: HelpdeskContext) -> str | None:
    """Why ``message`` is old mail of a backlog, or None: its :func:`mail_time` is before its
    mailbox was configured (less :data:`CLOCK_SKEW`), or more than ``mail.acknowledge_max_age_days``
    days ago. Such mail still becomes a ticket (and a reply still reopens one: it is unanswered
    mail all the same); it gets no acknowledgement and notifies no staff."""
    when = mail_time(message, context.now)
    if when is None:
        return None
    configured = context.cached(f"configured_at:{department.id}", lambda: context.session.scalar(
        select(Mailbox.configured_at).where(Mailbox.department_id == department.id)))
    if configured is not None and when < configured - CLOCK_SKEW:
        return (f"dated {when.astimezone(UTC):%Y-%m-%d %H:%M} UTC, before the mailbox was configured "
                f"({configured.astimezone(UTC):%Y-%m-%d %H:%M} UTC)")
    days = int(context.settings.get("mail.acknowledge_max_age_days", 7) or 0)
    if days and when < context.now - timedelta(days=days):
        return f"dated {when.astimezone(UTC):%Y-%m-%d}, older than {days} days (mail.acknowledge_max_age_days)"
    return None


def _sent_last_hour(context: HelpdeskContext, email: str) -> int:
    since = context.now - timedelta(hours=1)
    return context.session.scalar(select(func.count(OutboxMessage.id)).where(
        OutboxMessage.kind == "acknowledgement", OutboxMessage.to_email == email,
        OutboxMessage.created_at >= since)) or 0


def skip_reason(message: ParsedMessage, ticket_message: TicketMessage, classification: Classification,
                context: HelpdeskContext) -> str | None:
    """Why no acknowledgement is sent for this new ticket, or None to send one."""
    if not classification.may_acknowledge:
        return f"classification {classification.kind} may not be acknowledged"
    if classification.kind != "normal":
        return f"classified as {classification.kind}"
    if ticket_message.direction != Direction.INBOUND:
        return "stored as a note"
    requester = ticket_message.ticket.requester
    if requester is not None and requester.active is False:
        return f"{requester.email} is deactivated"
    reason = automatic_reason(message)
    if reason:
        return reason
    sender = message.from_.email.lower() if message.from_ else ""
    if sender in context.cached("own_addresses", lambda: own_addresses(context.session)):
        return f"{sender} is one of our own addresses"
    backlog = backlog_reason(message, ticket_message.ticket.department, context)
    if backlog:
        return backlog
    limit = int(context.settings.get("mail.acknowledgements_per_hour", 3))
    if _sent_last_hour(context, sender) >= limit:
        return f"{sender} already got {limit} acknowledgements in the last hour (mail.acknowledgements_per_hour)"
    return None


@hookimpl(trylast=True)
def helpdesk_message_imported(message: ParsedMessage, ticket_message: TicketMessage, created: bool,
                              department: Department, classification: Classification,
                              context: HelpdeskContext) -> None:
    """Queue an acknowledgement for a new ticket opened by a human, if the department wants one."""
    if not created or not (department.options or {}).get("acknowledge"):
        return
    reason = skip_reason(message, ticket_message, classification, context)
    ticket = ticket_message.ticket
    if reason:
        log.info("%s ticket #%s: no acknowledgement (%s)", department.name, ticket.number, reason)
        return
    assert message.from_ is not None
    try:
        sender, about = mail_parties(department, ticket)
        mail = compose_mail(
            kind="acknowledgement", department=sender, ticket=about, secrets=context.secrets,
            template_folders=context.hooks.template_folders,
            reference_format=context.settings.get("mail.ticket_reference_format"),
            to=[Address(message.from_.email.lower(), message.from_.name)],
            in_reply_to=message.message_id, references=list(message.references), now=context.now)
    except HelpdeskError as exc:  # a broken template must not block the import of the ticket
        log.error("%s ticket #%s: acknowledgement not sent: %s", department.name, ticket.number, exc.message)
        return
    queue_mail(context.session, mail, department=department, kind="acknowledgement", ticket=ticket,
               ticket_message=ticket_message)
