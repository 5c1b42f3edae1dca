"""Default mapping of an inbound message to a new ticket or a message on an existing one."""

from __future__ import annotations

from pathlib import PurePosixPath

from collections.abc import Callable
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from helpdesk_core import hookimpl
from helpdesk_core.hooktypes import Classification, HelpdeskContext, ThreadMatch
from helpdesk_core.mail.message import ParsedAttachment, ParsedMessage
from helpdesk_core.mail.mimeparts import content_was_lost
from helpdesk_core.models.events import ticket_event
from helpdesk_core.models.ticket import stored_message_id
from helpdesk_core.models import (
    Attachment, Department, Direction, LedgerEntry, Role, Ticket, TicketMessage, TicketStatus, User,
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


def build_ticket_message(message: ParsedMessage, department: Department, ticket: Ticket | None,
                         classification: Classification, match: ThreadMatch, context: HelpdeskContext, *,
                         find_user: Callable[[str], User | None] | None = None,
                         number: Callable[[], int | None] | None = None) -> tuple[TicketMessage, Ticket]:
    """The default store's objects for one message, not yet added to the session: the ticket
    message with its attachments, and its ticket (for a new ticket a new one, maybe with a new
    requester). The message is not linked to the ticket yet (``tm.ticket = ticket`` adds it to
    the ticket's messages).

    ``find_user`` (email → user) and ``number`` (the next ticket number) default to a query and
    :func:`next_ticket_number`; :func:`store_chunk` passes its own (numbers given at write time)."""
    session = context.session
    sender = message.from_
    find_user = find_user or (lambda email: session.scalar(select(User).where(User.email == email)))
    if ticket is None:
        requester = None
        if sender:
            requester = find_user(sender.email)
            if requester is None:
                requester = User(email=sender.email, name=sender.name, role=Role.REQUESTER)
            elif sender.name and not requester.name:
                requester.name = sender.name
        ticket = Ticket(department_id=department.id,
                        number=number() if number else next_ticket_number(context, department),
                        subject=message.subject or "(no subject)", status=TicketStatus.OPEN,
                        requester=requester, participants=participants_of(message, department),
                        mentions=match.mentions,  # a reference the sender may not use
                        sender_verified=match.sender_verified is not False,
                        linked_ticket_id=match.linked_ticket_id)  # closed, not reopened
    else:
        known = set(ticket.participants or [])
        new = [p for p in participants_of(message, department) if p not in known]
        if new:
            ticket.participants = [*ticket.participants, *new]
        author = find_user(sender.email) if sender else None
        staff = author is not None and ticket.department_id in author.department_ids
        # staff answering by mail does not make a pending/resolved ticket the staff's turn again
        reopen = (ticket.status in (TicketStatus.PENDING, TicketStatus.RESOLVED) and not staff) or (
            ticket.status == TicketStatus.CLOSED and department.options.get("reopen_closed", True))
        if reopen and classification.may_reopen:
            session.add(ticket_event(ticket, actor=author, kind="status", old=str(ticket.status),
                                     new=str(TicketStatus.OPEN), actor_email=sender.email if sender else "system"))
            ticket.status, ticket.resolved_at = TicketStatus.OPEN, None
    tm = TicketMessage(
        department_id=department.id,
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
    return tm, ticket


@hookimpl(trylast=True)
def helpdesk_message_to_ticket(message: ParsedMessage, department: Department, ticket: Ticket | None,
                               classification: Classification, match: ThreadMatch,
                               context: HelpdeskContext) -> TicketMessage:
    tm, ticket = build_ticket_message(message, department, ticket, classification, match, context)
    tm.ticket = ticket
    context.session.add(tm)  # with its ticket, requester and attachments (save-update cascade)
    return tm


# ----------------------------------------------------------------------------------------------
# a chunk at once
# ----------------------------------------------------------------------------------------------

def store_chunk(context: HelpdeskContext, department: Department, built: list[tuple[TicketMessage, Ticket]],
                ledger: list[dict[str, Any]]) -> list[Any]:
    """Write what :func:`build_ticket_message` built for a chunk of messages with one Core
    ``insert()`` executemany per table (``insertmanyvalues`` with ``RETURNING`` on SQLite and
    PostgreSQL): new requesters, new tickets (numbered by one ``UPDATE ... RETURNING``), ticket
    messages, attachments, then the ``ledger`` rows (``ticket_message`` names the message). The
    objects then join the session as if loaded (ids and defaults set), so the hooks that follow see
    ordinary persistent objects; they are returned (a caller rolling its savepoint back expunges
    them: the rollback does not). Runs in the caller's savepoint; may raise (the caller redoes the
    chunk message by message)."""
    session = context.session
    messages = [tm for tm, _ in built]
    for tm, ticket in built:  # no backref event: the ticket's loaded messages are expired below
        tm.__dict__["ticket"] = ticket
    tickets = [ticket for _, ticket in built if sa_inspect(ticket).transient]
    users = list({id(t.requester): t.requester for t in tickets
                  if t.requester is not None and sa_inspect(t.requester).transient}.values())
    _insert(session, users)
    if tickets:
        table = Department.__table__
        last = session.connection().execute(
            update(table).where(table.c.id == department.id)
            .values(last_ticket_number=table.c.last_ticket_number + len(tickets))
            .returning(table.c.last_ticket_number)).scalar_one()
        set_committed_value(department, "last_ticket_number", last)
        for i, ticket in enumerate(tickets):
            ticket.__dict__["number"] = last - len(tickets) + 1 + i
            ticket.__dict__["requester_id"] = ticket.requester.id if ticket.requester is not None else None
    _insert(session, tickets)
    for tm in messages:
        tm.__dict__["ticket_id"] = tm.ticket.id
    _insert(session, messages)
    attachments = [att for tm in messages for att in tm.attachments]
    for tm in messages:
        for att in tm.attachments:
            att.__dict__["message_id"] = tm.id
    _insert(session, attachments)
    if ledger:
        rows = [{k: v for k, v in row.items() if k != "ticket_message"}
                | {"ticket_message_id": row["ticket_message"].id} for row in ledger]
        session.connection().execute(insert(LedgerEntry.__table__), rows)
    for obj in (*users, *tickets, *messages, *attachments):  # loaded, as a query would have
        make_transient_to_detached(obj)
    for obj in (*users, *tickets, *messages, *attachments):
        session.add(obj)
    for _, ticket in built:
        if ticket not in tickets and "messages" in ticket.__dict__:
            session.expire(ticket, ["messages"])
    return [*users, *tickets, *messages, *attachments]


def _insert(session: Session, objects: list[Any]) -> None:
    """INSERT these transient objects of one class, executemany with RETURNING of every column,
    and put the returned values (ids, defaults) into them. Objects are grouped by the columns they
    set, so each statement's rows name the same columns."""
    if not objects:
        return
    mapper = sa_inspect(type(objects[0]))
    table = mapper.local_table
    columns = [(prop.key, prop.columns[0]) for prop in mapper.column_attrs if prop.columns[0].table is table]
    groups: dict[tuple[str, ...], list[Any]] = {}
    for obj in objects:
        values = obj.__dict__
        keys = tuple(key for key, col in columns if key in values and not (col.primary_key and values[key] is None))
        groups.setdefault(keys, []).append(obj)
    by_key = dict(columns)
    for keys, group in groups.items():
        stmt = insert(table).returning(*[col for _, col in columns], sort_by_parameter_order=True)
        params = [{by_key[key].key: obj.__dict__[key] for key in keys} for obj in group]
        for obj, row in zip(group, session.connection().execute(stmt, params).all(), strict=True):
            for (key, _), value in zip(columns, row, strict=True):
                obj.__dict__[key] = value
