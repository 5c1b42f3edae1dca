"""What an inbound mail looks like once parsed: plain data passed to hooks.

:func:`helpdesk_core.mail.parsing.parse_message` builds a :class:`ParsedMessage` from raw bytes and never
raises: whatever could not be decoded is listed in ``defects`` and the raw original is kept.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Address:
    """A mailbox address; ``email`` is lower-cased, ``name`` is the decoded display name."""

    email: str
    name: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"email": self.email, "name": self.name}


@dataclass
class ParsedAttachment:
    """One attachment (or inline part). ``data`` is the decoded content.

    A large part decoded by :func:`helpdesk_core.mail.parsing.parse_message` straight into the
    attachment storage (``parse_message(raw, storage=...)``, see :mod:`helpdesk_core.mail.largeparts`)
    is *already stored*: ``stored_key`` is its storage key, ``stored_size``/``stored_sha256`` its
    decoded size and digest (returned by :attr:`size`/:attr:`sha256`), and ``data`` is ``b""`` --
    read the content with ``storage.open(stored_key)`` instead of ``data``.
    """

    filename: str
    content_type: str
    data: bytes
    content_id: str | None = None
    inline: bool = False
    #: storage key when the content was streamed into the attachment storage (``data`` is then b"")
    stored_key: str | None = None
    stored_size: int | None = None
    stored_sha256: str | None = None

    @property
    def is_stored(self) -> bool:
        """True when the content is already in the attachment storage (``data`` is empty)."""
        return self.stored_key is not None

    @property
    def size(self) -> int:
        if self.stored_size is not None:
            return self.stored_size
        return len(self.data)

    @property
    def sha256(self) -> str:
        if self.stored_sha256 is not None:
            return self.stored_sha256
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class ParsedMessage:
    """An inbound message, decoded.

    Message-IDs are stored without angle brackets. ``body_text`` is the full text (text/plain
    preferred, else text converted from HTML); ``body_html`` is *already sanitised* (safe to
    render) or ``None``; ``body_display`` is the new part of a reply without quoted history or
    signature (equal to ``body_text`` for a first message).
    """

    raw: bytes
    message_id: str | None = None
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    subject: str = ""
    from_: Address | None = None
    reply_to: list[Address] = field(default_factory=list)
    to: list[Address] = field(default_factory=list)
    cc: list[Address] = field(default_factory=list)
    date: datetime | None = None
    #: all headers, decoded to text, in order; names as in the message
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "text/plain"
    body_text: str = ""
    body_html: str | None = None
    body_display: str = ""
    attachments: list[ParsedAttachment] = field(default_factory=list)
    #: leaf parts not kept, each ``{"filename", "content_type", "size", "reason"}`` (they stay in the
    #: raw original); the importer adds the attachments it refuses to the same list on the ticket
    removed_attachments: list[dict[str, object]] = field(default_factory=list)
    #: human-readable problems met while decoding (empty for a clean message)
    defects: list[str] = field(default_factory=list)
    #: why the From header does not name one verifiable sender (several addresses, or a display
    #: name showing another address than the real one, which ``from_`` holds); ``""`` when it does
    sender_warning: str = ""

    _raw_sha256: str | None = field(default=None, repr=False)
    #: our own DKIM verdict (``mail.verify_dkim``), once computed: the thread rules may run several
    #: times per message and must not repeat the DNS lookups
    own_dkim_verdict: str | None = field(default=None, repr=False, compare=False)
    #: :func:`helpdesk_core.mail.automated.bounce_reason`, once computed (``(reason,)``): the parsing
    #: helper process computes it next to the parse, off the importing process's core
    bounce_verdict: tuple[str | None] | None = field(default=None, repr=False, compare=False)

    @property
    def raw_sha256(self) -> str:
        if self._raw_sha256 is None:
            self._raw_sha256 = hashlib.sha256(self.raw).hexdigest()
        return self._raw_sha256

    @property
    def from_suspicious(self) -> bool:
        """True when the sender must not be trusted for threading (see ``sender_warning``)."""
        return bool(self.sender_warning)

    def header(self, name: str) -> str | None:
        """First header of this name (case-insensitive), decoded, or None."""
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None

    @property
    def ledger_key(self) -> str:
        """Key of the import ledger: the Message-ID, or a hash of the raw message without one."""
        if self.message_id:
            return "mid:" + self.message_id
        return "sha256:" + self.raw_sha256
