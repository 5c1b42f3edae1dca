"""Ticket references in subjects and the signed Message-IDs we issue.

Reference format: General setting ``mail.ticket_reference_format`` (default ``[Ticket #{number}]``).
Issued Message-IDs look like ``<t123.20261126171500.0a1b2c3d.5xq2m3n4p5r6s7t8@helpdesk.example.org>``:
ticket id, time, random part, then an HMAC (instance secret) of the rest including the domain, so a
guessed, forged or altered ID matches nothing. Matching rules: ``docs/threading.md``.
"""

from __future__ import annotations

import hmac
import re
import secrets as pysecrets
import unicodedata
from datetime import UTC, datetime
from functools import lru_cache

from helpdesk_core.crypto import SecretBox

DEFAULT_REFERENCE_FORMAT = "[Ticket #{number}]"


def format_reference(number: int, fmt: str = DEFAULT_REFERENCE_FORMAT) -> str:
    return fmt.format(number=number)


#: opening and closing brackets a client may put around (or change in) a reference
_OPEN = r"[\[\(\{<\u3010\u3014\u300c\u3008\u300a]"
_CLOSE = r"[\]\)\}>\u3011\u3015\u300d\u3009\u300b]"
#: what may stand between the label and the number inside brackets (after NFKC: ＃→#, №→No)
_MARK = r"(?:#|No\.?|Nr\.?|N°|n°)?"


@lru_cache(maxsize=16)
def reference_pattern(fmt: str = DEFAULT_REFERENCE_FORMAT) -> re.Pattern[str]:
    """The regex of a ticket reference in format ``fmt``; group 1 is the number.

    When the format has brackets (the default ``[Ticket #{number}]``), a reference is: an opening
    bracket of any kind, the label words (case-insensitive, any spacing), optionally ``#``/``No.``/
    ``Nr.``, the number, a closing bracket of any kind. Without brackets the label and the mark
    must appear as in the format. See ``docs/threading.md``.
    """
    head, _, tail = fmt.partition("{number}")
    words = re.findall(r"[^\W_]+", head)
    label = r"\s*".join(re.escape(w) for w in words)
    if re.search(_OPEN, head) or re.search(_CLOSE, tail):
        body = _OPEN + r"\s*" + label + r"\s*" + _MARK + r"\s*(\d{1,12})\s*" + _CLOSE
    else:
        mark = r"\s*#" if "#" in head else ""
        body = r"(?<![^\W_])" + label + mark + r"\s*(\d{1,12})(?!\d)"
    return re.compile(body, re.IGNORECASE)


def find_references(subject: str, fmt: str = DEFAULT_REFERENCE_FORMAT) -> list[int]:
    """Ticket numbers referenced in ``subject``, in order of appearance (no duplicates).

    The subject is NFKC-normalised (full-width brackets, ``＃``, ``№``) and its whitespace
    collapsed first. A format without a label word matches nothing (any number would match).
    """
    if not subject:
        return []
    if not re.search(r"[^\W_]", fmt.partition("{number}")[0]):
        return []
    text = " ".join(unicodedata.normalize("NFKC", subject).split())
    found = [int(m.group(1)) for m in reference_pattern(fmt).finditer(text)]
    return list(dict.fromkeys(found))


def make_message_id(box: SecretBox, ticket_id: int, domain: str) -> str:
    """A new signed Message-ID (without angle brackets) for a mail about ``ticket_id``.

    The HMAC covers everything but itself (ticket id, time, random part and the domain), so
    changing any byte of the ID, even the case of a letter, makes it match nothing.
    """
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    local = f"t{ticket_id}.{stamp}.{pysecrets.token_hex(4)}"
    return f"{local}.{box.sign(f'{local}@{domain}')}@{domain}"


_ISSUED = re.compile(r"^(t([1-9]\d{0,17})\.\d{14}\.[0-9a-f]{8})\.([a-z2-7]{16})@([^\s<>@]+)$")


def verify_message_id(box: SecretBox, message_id: str) -> int | None:
    """The ticket id of a Message-ID we issued, or None when it is not ours, forged or altered."""
    m = _ISSUED.match(message_id.strip().strip("<>"))
    if not m or not hmac.compare_digest(box.sign(f"{m.group(1)}@{m.group(4)}"), m.group(3)):
        return None
    return int(m.group(2))
