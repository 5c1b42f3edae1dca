"""The typed objects hooks receive and return: the import context, classifications, thread
matches, matchers and outgoing mail.

What one hook needs from another travels as one of these, never through a shared dict: the
importer passes the :class:`Classification` and the settled :class:`ThreadMatch` to
``helpdesk_message_to_ticket`` and ``helpdesk_message_imported`` as keyword arguments.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from helpdesk_core.crypto import SecretBox
    from helpdesk_core.mail.message import ParsedMessage
    from helpdesk_core.models import Department, Ticket
    from helpdesk_core.plugins import Hooks
    from helpdesk_core.settings import GeneralSettings
    from helpdesk_core.storage import AttachmentStorage


class ImportStatus(enum.StrEnum):
    """What happened to one inbound message (the ``status`` of the importer's outcome)."""

    #: it opened a new ticket
    CREATED = "created"
    #: it was added to an existing ticket
    UPDATED = "updated"
    #: not stored, by its classification (or held by the rate limit)
    SKIPPED = "skipped"
    #: already imported (the ledger knew it)
    DUPLICATE = "duplicate"
    #: left in the mailbox for the next cycle (a temporary problem)
    RETRY = "retry"
    #: kept raw as a failed import
    FAILED = "failed"
    #: left in the mailbox on purpose (e.g. too large)
    KEPT = "kept"
    #: handed back to the mail server (``helpdesk ingest`` exits 65)
    REFUSED = "refused"


#: the outcomes after which the mail is on a ticket (new, added, or there already)
IMPORTED = frozenset({ImportStatus.CREATED, ImportStatus.UPDATED, ImportStatus.DUPLICATE})


@dataclass
class HelpdeskContext:
    """What a hook may use while the core handles a batch of messages.

    ``session`` belongs to the caller: add and flush, never commit or roll back. ``hooks`` is the
    application's hook facade (:class:`helpdesk_core.plugins.Hooks`), e.g. for
    ``context.hooks.template_folders``.
    """

    session: Session
    settings: GeneralSettings
    storage: AttachmentStorage
    secrets: SecretBox
    hooks: Hooks
    now: datetime
    #: values computed once per batch of messages (same transaction), e.g. our own addresses
    cache: dict[str, Any] = field(default_factory=dict)

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per batch: for facts that cannot change within the transaction."""
        try:
            return self.cache[key]
        except KeyError:
            value = self.cache[key] = compute()
            return value


@dataclass(frozen=True)
class Classification:
    """What kind of inbound mail this is (returned by ``helpdesk_classify_message``).

    ``kind``: ``normal``, ``auto_reply``, ``bounce``, ``own`` (from us / our loop header),
    or a plugin's own kind. ``action``: ``import`` (store it), ``note`` (store only when it
    threads, as a note), ``skip`` (record in the ledger with ``reason``, delete from mailbox),
    ``hold`` (keep as a held import for an admin).
    """

    kind: str = "normal"
    action: str = "import"
    reason: str = ""
    #: may this mail open a new ticket / reopen a closed one / get an acknowledgement
    may_create: bool = True
    may_reopen: bool = True
    may_acknowledge: bool = True
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ThreadMatch:
    """Which existing ticket an inbound message continues (returned by ``helpdesk_find_ticket``).

    Whoever found it, the core settles every match by the same rules before storing
    (:func:`helpdesk_core.inbound.matching.settle`, see ``docs/threading.md``): a ticket of another
    department is dropped; a match that is not ``trusted`` counts only when the sender is on the
    ticket, else it is dropped and the reference kept in ``mentions``; a closed ticket of a
    department with ``reopen_closed`` false becomes a new ticket linked to it (``linked_ticket_id``).
    ``helpdesk_message_to_ticket`` and ``helpdesk_message_imported`` receive the settled match.

    ``ThreadMatch()`` (no ticket) means "open a new ticket".
    """

    #: the ticket the message continues, or None for a new ticket
    ticket: Ticket | None = None
    #: the strategy or plugin that found it (``message_id``, ``subject_reference``, ...)
    matched_by: str = ""
    #: the sender need not be on the ticket: the evidence is unguessable (our signed Message-ID),
    #: or the sender has been checked already
    trusted: bool = False
    #: a ticket reference the sender named but may not use (e.g. ``"#12"``); kept on a new ticket
    mentions: str | None = None
    #: the closed ticket a new ticket follows (department option ``reopen_closed`` false)
    linked_ticket_id: int | None = None
    #: the receiving server's DKIM/DMARC verdict on the sender: True pass, False fail, None unknown
    #: (:mod:`helpdesk_core.mail.authentication`); a failed sender never joins an existing ticket
    sender_verified: bool | None = None


class Matcher(Protocol):
    """A thread-matching strategy, registered with ``helpdesk_register_thread_matchers``.

    Called with keyword arguments; returns a ticket of ``department`` or None. The default
    ``helpdesk_find_ticket`` runs the matchers named by ``mail.thread_matchers`` in order. Mark a
    matcher whose match is always proof on its own with
    :func:`helpdesk_core.inbound.matching.trusted_matcher`; a matcher whose evidence is sometimes
    proof and sometimes not (``message_id``: our signed Message-IDs versus any stored one) returns a
    :class:`ThreadMatch` with ``trusted`` set per match instead of a bare ticket.
    """

    def __call__(self, *, message: ParsedMessage, department: Department,
                 classification: Classification, context: HelpdeskContext) -> Ticket | ThreadMatch | None: ...


@dataclass
class OutgoingMail:
    """A rendered outgoing mail handed to ``helpdesk_deliver_reply``."""

    id: int
    mail_from: str
    recipients: list[str]
    raw: bytes
    message_id: str
