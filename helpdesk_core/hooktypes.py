"""Plain objects passed to hooks: the import context, classifications, outgoing mail."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pluggy
    from sqlalchemy.orm import Session

    from helpdesk_core.crypto import SecretBox
    from helpdesk_core.settings import GeneralSettings
    from helpdesk_core.storage import AttachmentStorage


@dataclass
class HelpdeskContext:
    """What a hook may use while the core handles one message.

    ``session`` belongs to the caller: add and flush, never commit or roll back.
    """

    session: Session
    settings: GeneralSettings
    storage: AttachmentStorage
    secrets: SecretBox
    pm: pluggy.PluginManager
    now: datetime
    #: free-form scratch space shared by hooks for one message (cleared before each message)
    extra: dict[str, Any] = field(default_factory=dict)
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
    """What kind of inbound mail this is.

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


@dataclass
class OutgoingMail:
    """A rendered outgoing mail handed to ``helpdesk_deliver_reply``."""

    id: int
    mail_from: str
    recipients: list[str]
    raw: bytes
    message_id: str
