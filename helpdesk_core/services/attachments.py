"""Stored attachments of a ticket, for whoever may see the ticket (CLI download, web app)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from helpdesk_core.app import Helpdesk
from helpdesk_core.errors import NotFoundError
from helpdesk_core.models import Attachment, Direction
from helpdesk_core.services.permissions import Actor, sees_internal
from helpdesk_core.services.tickets import get_ticket


@dataclass
class AttachmentFile:
    """An attachment's metadata and its stored bytes."""

    attachment: Attachment
    data: bytes


def ticket_attachments(session: Session, *, actor: Actor, ticket_id: int) -> list[Attachment]:
    """The ticket's attachments in message order (what ``ticket show`` lists; index 1 is the first).
    A requester does not see the attachments of internal notes."""
    ticket = get_ticket(session, actor=actor, ticket_id=ticket_id)
    notes = sees_internal(actor, ticket)
    return [a for m in ticket.messages if notes or m.direction != Direction.NOTE
            for a in m.attachments]


def get_attachment(app: Helpdesk, session: Session, *, actor: Actor, ticket_id: int,
                   name_or_index: str) -> AttachmentFile:
    """One attachment of a ticket by file name (the last one of that name) or 1-based index."""
    files = ticket_attachments(session, actor=actor, ticket_id=ticket_id)
    chosen: Attachment | None = None
    if name_or_index.isdigit() and 1 <= int(name_or_index) <= len(files):
        chosen = files[int(name_or_index) - 1]
    else:
        named = [a for a in files if a.filename == name_or_index]
        chosen = named[-1] if named else None
    if chosen is None:
        listing = ", ".join(f"{i}: {a.filename}" for i, a in enumerate(files, 1)) or "none"
        raise NotFoundError(f"Ticket {ticket_id} has no attachment {name_or_index!r} (attachments: {listing}).")
    if not app.storage.exists(chosen.storage_key):
        raise NotFoundError(f"The bytes of {chosen.filename!r} are missing from the attachment storage "
                            f"(key {chosen.storage_key}): restore the attachments folder from a backup.")
    return AttachmentFile(chosen, app.storage.get(chosen.storage_key))
