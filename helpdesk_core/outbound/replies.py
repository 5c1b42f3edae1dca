"""Storing a staff reply or internal note on a ticket: the outbound message with its attachments,
the rendered mail and its outbox row, in the caller's transaction (no permission checks: the
caller decides who may reply -- :func:`helpdesk_core.services.replies.reply_to_ticket` for people,
the staff-mail default for an agent answering a notification by mail)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from helpdesk_core.errors import ConfigurationError, HelpdeskError
from helpdesk_core.mail.compose import Attachment as OutgoingAttachment
from helpdesk_core.mail.compose import MailDepartment, MailTicket, compose_mail, reply_subject
from helpdesk_core.mail.message import Address
from helpdesk_core.models import Attachment, Department, Direction, OutboxMessage, Ticket, TicketMessage, User
from helpdesk_core.outbound.addresses import own_addresses
from helpdesk_core.outbound.outbox import queue_mail
from helpdesk_core.settings import GeneralSettings


@dataclass
class ReplyResult:
    """The stored message and, unless it is an internal note or was not mailed, its outbox row.

    ``not_mailed`` says why a reply (not a note) was stored without being queued: its department
    has no mailbox and no plugin delivers its mail (the requester reads it in the help desk)."""

    ticket_message: TicketMessage
    outbox: OutboxMessage | None
    not_mailed: str | None = None


def mail_parties(department: Department, ticket: Ticket) -> tuple[MailDepartment, MailTicket]:
    """The department and the ticket as composing a mail sees them (plain values, no ORM rows:
    :mod:`helpdesk_core.mail` has no database)."""
    requester = ticket.requester
    templates_dir = (department.options or {}).get("templates_dir")
    return (MailDepartment(name=department.name, sender_address=department.sender_address,
                           templates_dir=str(templates_dir) if templates_dir else None),
            MailTicket(id=ticket.id, number=ticket.number, subject=ticket.subject or "",
                       status=str(ticket.status or ""), priority=str(ticket.priority or ""),
                       requester_name=(requester.name if requester else "") or "",
                       requester_email=requester.email if requester else ""))


def _last_thread_message(ticket: Ticket) -> TicketMessage | None:
    """The message a reply answers: the last inbound one with a Message-ID, else the last with one."""
    with_id = [m for m in ticket.messages if m.message_id and m.direction != Direction.NOTE]
    inbound = [m for m in with_id if m.direction == Direction.INBOUND]
    return (inbound or with_id or [None])[-1]


def cc_addresses(ticket: Ticket, ours: set[str]) -> list[Address]:
    """The ticket's participants to copy on a reply: not the requester, not our own addresses."""
    requester = ticket.requester.email.lower() if ticket.requester else None
    names: dict[str, str] = {}
    for m in ticket.messages:
        for a in [*(m.to or []), *(m.cc or []), {"email": m.from_email or "", "name": m.from_name}]:
            if a.get("email") and a.get("name"):
                names.setdefault(a["email"].lower(), a["name"])
    out: list[Address] = []
    for email in dict.fromkeys(p.lower() for p in (ticket.participants or []) if p):
        if email != requester and email not in ours and "@" in email:
            out.append(Address(email, names.get(email, "")))
    return out


def store_reply(app: Any, session: Session, *, ticket: Ticket, author: User | None, body: str,
                attachments: Sequence[tuple[str, bytes]] = (), internal: bool = False, cc: bool = True,
                now: datetime | None = None) -> ReplyResult:
    """Store a reply by ``author`` (None: the local operator) on ``ticket``: an internal note, or an
    outbound message plus its outbox row. ``app`` gives ``storage``, ``secrets`` and ``hooks`` (the
    application or a hook context). Never commits."""
    body = (body or "").replace("\r\n", "\n").strip("\n")
    if not body.strip():
        raise HelpdeskError("The reply is empty: write its text.", kind="invalid", details={"field": "body"})
    now = now or datetime.now(UTC)
    department = ticket.department
    files = [OutgoingAttachment(name, data) for name, data in attachments]
    stored = []
    for f in files:
        sha = hashlib.sha256(f.data).hexdigest()
        stored.append(Attachment(filename=f.filename, content_type=f.content_type, size=len(f.data), sha256=sha,
                                 inline=False, storage_key=app.storage.put(f.data, sha)))
    if internal:
        tm = TicketMessage(ticket=ticket, department_id=department.id, direction=Direction.NOTE, kind="note",
                           from_email=author.email if author else None,
                           from_name=(author.name if author else "") or "", subject=ticket.subject,
                           date=now, body_text=body, body_display=body, author_id=author.id if author else None,
                           attachments=stored, to=[], cc=[], in_reply_to=[], references=[],
                           removed_attachments=[], defects=[])
        session.add(tm)
        ticket.updated_at = now
        session.flush()
        return ReplyResult(tm, None)

    if ticket.requester is not None and not ticket.requester.active:
        raise ConfigurationError(f"{ticket.requester.email} is deactivated and gets no mail.",
                                 details={"hint": "deactivated_requester", "email": ticket.requester.email})
    # no mailbox and no plugin implementing the helpdesk_deliver_reply override: nothing can send it
    if department.mailbox is None and not app.hooks.implemented("helpdesk_deliver_reply"):
        return _store_unmailed(session, ticket=ticket, author=author, body=body, stored=stored, now=now)
    if ticket.requester is None:
        raise ConfigurationError(f"Ticket {ticket.id} has no requester to mail the reply to.",
                                 details={"hint": "internal_note"})
    settings = GeneralSettings.load(session)
    to = [Address(ticket.requester.email.lower(), ticket.requester.name or "")]
    copies = cc_addresses(ticket, own_addresses(session)) if cc else []
    last = _last_thread_message(ticket)
    sender, about = mail_parties(department, ticket)
    composed = compose_mail(
        kind="reply", department=sender, ticket=about, secrets=app.secrets,
        template_folders=app.hooks.template_folders,
        reference_format=settings.get("mail.ticket_reference_format"), to=to, cc=copies, body=body,
        author_name=(author.name or author.email) if author else "",
        in_reply_to=last.message_id if last else None,
        references=list(last.references or []) if last else [], attachments=files, now=now)
    raw_sha = hashlib.sha256(composed.raw).hexdigest()
    tm = TicketMessage(
        ticket=ticket, department_id=department.id, direction=Direction.OUTBOUND, kind="message",
        message_id=composed.message_id, in_reply_to=composed.in_reply_to, references=composed.references,
        from_email=department.sender_address, from_name=department.name,
        to=[a.as_dict() for a in to], cc=[a.as_dict() for a in copies], subject=composed.subject, date=now,
        body_text=body, body_display=body, raw_sha256=raw_sha,
        raw_storage_key=app.storage.put(composed.raw, raw_sha), author_id=author.id if author else None,
        attachments=stored, removed_attachments=[], defects=[])
    session.add(tm)
    ticket.updated_at = now
    session.flush()
    row = queue_mail(session, composed, department=department, kind="reply", ticket=ticket, ticket_message=tm)
    return ReplyResult(tm, row)


def _store_unmailed(session: Session, *, ticket: Ticket, author: User | None, body: str,
                    stored: list[Attachment], now: datetime) -> ReplyResult:
    """A reply in a department nothing can send mail for: stored on the ticket as an outbound
    message (the requester reads it in the help desk: an internal workflow), never queued --
    an outbox row would only fail with ``no_delivery`` for ever."""
    department, requester = ticket.department, ticket.requester
    fmt = GeneralSettings.load(session).get("mail.ticket_reference_format")
    to = [Address(requester.email.lower(), requester.name or "")] if requester is not None else []
    tm = TicketMessage(
        ticket=ticket, department_id=department.id, direction=Direction.OUTBOUND, kind="message",
        from_email=department.sender_address, from_name=department.name, to=[a.as_dict() for a in to], cc=[],
        subject=reply_subject(ticket.subject, ticket.number, fmt), date=now, body_text=body, body_display=body,
        author_id=author.id if author else None, attachments=stored, in_reply_to=[], references=[],
        removed_attachments=[], defects=[])
    session.add(tm)
    ticket.updated_at = now
    session.flush()
    return ReplyResult(tm, None, not_mailed=f"department {department.name!r} has no mailbox, so nothing can "
                                              "send its mail")
