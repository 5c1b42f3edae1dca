"""Ticket references in subjects and the signed Message-IDs we issue.

Reference format: General setting ``mail.ticket_reference_format`` (default ``[Ticket #{number}]``).
Issued Message-IDs look like ``<t123.20261126171500.k3j4h5g6.5xq2m3n4p5r6s7t8@helpdesk.example.org>``:
ticket id, time, random part, then an HMAC of the rest with the instance secret, so a guessed or
forged ID matches nothing.
"""

from __future__ import annotations

import re
import secrets as pysecrets
from datetime import UTC, datetime
from functools import lru_cache

from .crypto import SecretBox

DEFAULT_REFERENCE_FORMAT = "[Ticket #{number}]"


def format_reference(number: int, fmt: str = DEFAULT_REFERENCE_FORMAT) -> str:
    return fmt.format(number=number)


@lru_cache(maxsize=16)
def reference_pattern(fmt: str = DEFAULT_REFERENCE_FORMAT) -> re.Pattern[str]:
    """A tolerant regex for the reference: any bracket kind or none, any case, flexible spaces."""
    head, _, tail = fmt.partition("{number}")
    word = re.sub(r"[\[\]\(\)\{\}<>#:]", " ", head).split()
    label = r"\s*".join(re.escape(w) for w in word) if word else ""
    before = r"[\[\(\{<]?\s*" + (label + r"\s*" if label else "") + r"(?:#|No\.?|Nr\.?)?\s*"
    after = r"\s*[\]\)\}>]?" if tail.strip() else ""
    return re.compile(before + r"(\d{1,12})\b" + after, re.IGNORECASE)


def find_references(subject: str, fmt: str = DEFAULT_REFERENCE_FORMAT) -> list[int]:
    """Ticket numbers referenced in ``subject``, in order of appearance."""
    if not subject:
        return []
    head, _, _ = fmt.partition("{number}")
    if not re.sub(r"[\W_]", "", head):  # a format without a label would match any number
        return []
    return [int(m.group(1)) for m in reference_pattern(fmt).finditer(" ".join(subject.split()))]


def make_message_id(box: SecretBox, ticket_id: int, domain: str) -> str:
    """A new signed Message-ID (without angle brackets) for a mail about ``ticket_id``."""
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    local = f"t{ticket_id}.{stamp}.{pysecrets.token_hex(4)}"
    return f"{local}.{box.sign(local)}@{domain}"


_ISSUED = re.compile(r"^(t(\d+)\.\d{14}\.[0-9a-f]{8})\.([a-z2-7]{16})@", re.IGNORECASE)


def verify_message_id(box: SecretBox, message_id: str) -> int | None:
    """The ticket id of a Message-ID we issued, or None when it is not ours or is forged."""
    m = _ISSUED.match(message_id.strip().strip("<>"))
    if not m or not box.verify(m.group(1), m.group(3)):
        return None
    return int(m.group(2))
