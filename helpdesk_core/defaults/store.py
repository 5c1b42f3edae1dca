"""Default mapping of an inbound message to a new ticket or a message on an existing one."""

from __future__ import annotations

from pathlib import PurePosixPath

from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from helpdesk_core import hookimpl
from helpdesk_core.hooktypes import Classification, HelpdeskContext, ThreadMatch
from helpdesk_core.mail.message import ParsedAttachment, ParsedMessage
from helpdesk_core.mail.mimeparts import content_was_lost
from helpdesk_core.models.events import ticket_event
from helpdesk_core.models.ticket import stored_message_id
from helpdesk_core.models import (
    Attachment, Department, Direction, Role, Ticket, TicketMessage, TicketStatus, User,
)


def next_ticket_number(context: HelpdeskContext, department: Department) -> int:
    """Atomically hand out the department's next ticket number (row-locked until commit)."""
    table = Department.__table__
    number = context.session.connection().execute(  # Core: no ORM bulk-update bookkeeping
        update(table).where(table.c.id == department.id)
        .values(last_ticket_number=table.c.last_ticket_number + 1)
        .returning(table.c.last_ticket_number)
    ).scalar_one()
    set_committed_value(department, "last_ticket_number", number)
    return number


def get_or_create_requester(context: HelpdeskContext, email: str, name: str) -> User:
    session = context.session
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(email=email, name=name, role=Role.REQUESTER)
        session.add(user)  # inserted at the next flush, before the ticket that refers to it
    elif name and not user.name:
        user.name = name
    return user


def attachment_verdict(att: ParsedAttachment, context: HelpdeskContext) -> str | None:
    """Why an attachment is not kept (None when it is kept)."""
    ext = PurePosixPath(att.filename.lower()).suffix.lstrip(".")
    if ext not in context.settings.allowed_extensions:
        return f"type .{ext or '(none)'} not allowed (allowed: attachments.allowed_extensions)"
    if att.size > context.settings.max_attachment_bytes:
        limit = context.settings.get("attachments.max_size_mb")
        return f"larger than attachments.max_size_mb ({att.size / 1048576:.1f} MB > {limit} MB)"
    return None


def store_attachments(message: ParsedMessage, tm: TicketMessage, context: HelpdeskContext) -> None:
    """Store the kept attachments and list the refused ones in ``removed_attachments``.

    A large attachment streamed into the storage while parsing (``att.stored_key`` set, see
    :func:`helpdesk_core.mail.parsing.parse_message`) is not written again. When such an attachment is
    refused, its blob is left in the storage unreferenced: deleting it would need a check that no
    other row references the same content-addressed key, and an unreferenced blob is harmless.
    """
    for att in message.attachments:
        reason = attachment_verdict(att, context)
        if reason is not None:
            tm.removed_attachments.append({"filename": att.filename, "content_type": att.content_type,
                                           "size": att.size, "reason": reason})
            continue
        sha = att.sha256
        key = att.stored_key if att.stored_key is not None else context.storage.put(att.data, sha)
        tm.attachments.append(Attachment(filename=att.filename, content_type=att.content_type,
                                         size=att.size, sha256=sha, content_id=att.content_id,
                                         inline=att.inline, storage_key=key))


def keep_original_if_damaged(message: ParsedMessage, tm: TicketMessage, context: HelpdeskContext) -> None:
    """Attach the raw message as ``original.eml`` when decoding lost content
    (:func:`helpdesk_core.mail.mimeparts.content_was_lost`), whatever ``attachments.allowed_extensions`` says."""
    if not content_was_lost(message.defects):
        return
    key = context.storage.put(message.raw, message.raw_sha256)
    tm.attachments.append(Attachment(filename="original.eml", content_type="message/rfc822",
                                     size=len(message.raw), sha256=message.raw_sha256,
                                     content_id=None, inline=False, storage_key=key))


def participants_of(message: ParsedMessage, department: Department) -> list[str]:
    ours = {department.sender_address.lower()}
    emails = [a.email for a in ([message.from_] if message.from_ else []) + message.to + message.cc]
    return [e for e in dict.fromkeys(emails) if e and e not in ours]


@hookimpl(trylast=True)
def helpdesk_message_to_ticket(message: ParsedMessage, department: Department, ticket: Ticket | None,
                               classification: Classification, match: ThreadMatch,
                               context: HelpdeskContext) -> TicketMessage:
    session = context.session
    sender = message.from_
    if ticket is None:
        requester = get_or_create_requester(context, sender.email, sender.name) if sender else None
        ticket = Ticket(department_id=department.id, number=next_ticket_number(context, department),
                        subject=message.subject or "(no subject)", status=TicketStatus.OPEN,
                        requester=requester, participants=participants_of(message, department),
                        mentions=match.mentions,  # a reference the sender may not use
                        sender_verified=match.sender_verified is not False,
                        linked_ticket_id=match.linked_ticket_id)  # closed, not reopened
        session.add(ticket)
    else:
        known = set(ticket.participants or [])
        new = [p for p in participants_of(message, department) if p not in known]
        if new:
            ticket.participants = [*ticket.participants, *new]
        author = session.scalar(select(User).where(User.email == sender.email)) if sender else None
        staff = author is not None and ticket.department_id in author.department_ids
        # staff answering by mail does not make a pending/resolved ticket the staff's turn again
        reopen = (ticket.status in (TicketStatus.PENDING, TicketStatus.RESOLVED) and not staff) or (
            ticket.status == TicketStatus.CLOSED and department.options.get("reopen_closed", True))
        if reopen and classification.may_reopen:
            session.add(ticket_event(ticket, actor=author, kind="status", old=str(ticket.status),
                                     new=str(TicketStatus.OPEN), actor_email=sender.email if sender else "system"))
            ticket.status, ticket.resolved_at = TicketStatus.OPEN, None
    tm = TicketMessage(
        ticket=ticket, department_id=department.id,
        direction=Direction.NOTE if classification.action == "note" else Direction.INBOUND,
        kind="message" if classification.kind == "normal" else classification.kind,
        # bounded and cleaned the way thread lookups compare ids (a 1,000+ character or NUL id)
        message_id=stored_message_id(message.message_id),
        in_reply_to=[stored_message_id(i) for i in message.in_reply_to],
        references=[stored_message_id(i) for i in message.references[-50:]],
        from_email=sender.email if sender else None, from_name=sender.name if sender else "",
        to=[a.as_dict() for a in message.to], cc=[a.as_dict() for a in message.cc],
        subject=message.subject, date=message.date, body_text=message.body_text,
        body_html=message.body_html, body_display=message.body_display or message.body_text,
        defects=list(message.defects), raw_sha256=message.raw_sha256,
        raw_storage_key=context.storage.put(message.raw, message.raw_sha256),
        removed_attachments=list(message.removed_attachments), attachments=[],
    )
    store_attachments(message, tm, context)
    keep_original_if_damaged(message, tm, context)
    session.add(tm)
    return tm
