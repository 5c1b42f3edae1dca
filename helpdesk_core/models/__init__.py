"""SQLAlchemy 2 typed models. Import models from here."""

from .base import Base, utcnow
from .department import Department, Mailbox
from .imports import FailedImport, ImportAttempt, ImportCycle, LedgerEntry
from .outbox import OutboxMessage
from .settings import Setting
from .ticket import Attachment, Direction, Ticket, TicketMessage, TicketStatus
from .user import Membership, Role, User

__all__ = [
    "Base", "utcnow", "Department", "Mailbox", "FailedImport", "ImportAttempt", "ImportCycle",
    "LedgerEntry", "OutboxMessage", "Setting", "Attachment", "Direction", "Ticket", "TicketMessage", "TicketStatus",
    "Membership", "Role", "User",
]
