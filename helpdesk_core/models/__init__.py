"""SQLAlchemy 2 typed models. Import models from here."""

from helpdesk_core.models.base import Base, utcnow
from helpdesk_core.models.department import Department, Mailbox
from helpdesk_core.models.events import TicketEvent
from helpdesk_core.models.imports import (
    KeptMail, KeptMailKind, KeptMailStatus, ImportAttempt, ImportCycle, ImportEvent, LedgerEntry,
)
from helpdesk_core.models.outbox import OutboxMessage, OutboxStatus
from helpdesk_core.models.reply_template import ReplyTemplate
from helpdesk_core.models.settings import Setting
from helpdesk_core.models.ticket import (
    Attachment, Direction, Ticket, TicketAlias, TicketMessage, TicketPriority, TicketStatus, TicketTag,
)
from helpdesk_core.models.user import Membership, Role, User
from helpdesk_core.models.token import TokenPurpose, UserToken

__all__ = [
    "Base", "utcnow", "Department", "Mailbox", "KeptMail", "KeptMailKind", "KeptMailStatus", "ImportAttempt",
    "ImportCycle", "ImportEvent", "LedgerEntry", "OutboxMessage", "OutboxStatus", "Setting", "Attachment",
    "Direction", "Ticket",
    "TicketMessage", "TicketStatus",
    "Membership", "Role", "User",
    "TicketAlias", "TicketEvent", "TicketPriority", "TicketTag", "ReplyTemplate", "TokenPurpose", "UserToken",
]
