"""Header values: RFC 2047 encoded words, addresses, Message-ID lists and dates, decoded without
raising. Text decoding follows :func:`helpdesk_core.mail.mimeparts.decode_bytes`."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime, timezone
from email.utils import getaddresses, parsedate_to_datetime

from helpdesk_core.mail.message import Address
from helpdesk_core.mail.mimeparts import decode_bytes

_ENCODED_WORD_RE = re.compile(r"=\?([^?\s]{1,75})\?([QqBb])\?([^?]*?)\?=")
_FOLD_RE = re.compile(r"[ \t]*\r?\n[ \t]*")
_SPACES_RE = re.compile(r"[ \t]{2,}")
_EMAIL_RE = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){0,10}")
_VALID_EMAIL_RE = re.compile(r'^(?:"[^"\r\n]{1,64}"|[^@\s<>(),;:"\[\]]{1,64})@[^@\s<>(),;:"\[\]]{1,255}$')
_BRACKET_ID_RE = re.compile(r"<\s*([^<>\s]{1,998})\s*>")


def _raw_to_text(value: str, charset: str | None = None) -> str:
    """Header value from the parser (8-bit bytes as surrogate escapes) → proper text.

    Raw 8-bit bytes are decoded by ``charset`` (the charset the message declares for its text, as
    mail clients do), else UTF-8, else a detected multi-byte charset, else windows-1252: never ``?``.
    """
    try:
        data = value.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if data.isascii():
        return value
    return decode_bytes(data, charset, detect=True)


def _decode_word(charset: str, enc: str, text: str) -> bytes:
    """The bytes of one encoded word; ``text`` may carry raw 8-bit bytes as surrogate escapes,
    which are kept as the bytes they are (to be decoded by the word's charset)."""
    if enc in "bB":
        text = re.sub(r"[^A-Za-z0-9+/]", "", text)
        if len(text) % 4 == 1:
            text = text[:-1]
        return base64.b64decode(text + "=" * (-len(text) % 4))
    return binascii.a2b_qp(text.encode("ascii", "surrogateescape"), header=True)


def decode_header_value(value: str, defects: list[str] | None = None, name: str = "header",
                        charset: str | None = None) -> str:
    """Decode a raw header value: unfold, RFC 2047 encoded words, raw 8-bit → text; never raises.

    Folding whitespace is collapsed to one space; whitespace between adjacent encoded words is
    dropped; adjacent words of the same charset are joined before decoding (split multibyte
    characters). Raw 8-bit bytes inside an encoded word are decoded with the word's charset; raw
    8-bit text outside words as :func:`_raw_to_text` says (``charset``: the message's declared
    charset). Undecodable words are kept as they were and reported in ``defects``.
    """
    if not value:
        return ""
    raw = _FOLD_RE.sub(" ", str(value))
    try:
        raw.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:  # real (non-surrogate) characters: already text
        raw = _raw_to_text(raw)
    if "=?" not in raw:
        return _raw_to_text(raw, charset).strip()
    out: list[str] = []
    pending: list[tuple[bytes, str]] = []  # adjacent encoded words not yet decoded

    def flush() -> None:
        merged: list[tuple[bytes, str]] = []
        for data, cs in pending:
            if merged and merged[-1][1] == cs:
                merged[-1] = (merged[-1][0] + data, cs)
            else:
                merged.append((data, cs))
        for data, cs in merged:
            out.append(decode_bytes(data, cs, defects, f"{name} header", detect=True))
        pending.clear()

    pos = 0
    for m in _ENCODED_WORD_RE.finditer(raw):
        between = raw[pos : m.start()]
        if between and not (pending and not between.strip()):
            flush()
            out.append(_raw_to_text(between, charset))
        try:
            pending.append((_decode_word(m.group(1), m.group(2), m.group(3)), m.group(1)))
        except (binascii.Error, ValueError, UnicodeEncodeError):
            flush()
            out.append(_raw_to_text(m.group(0), charset))
            if defects is not None:
                defects.append(f"{name} header: undecodable encoded word {m.group(0)[:60]!r}")
        pos = m.end()
    flush()
    out.append(_raw_to_text(raw[pos:], charset))
    return "".join(out).strip()


# --------------------------------------------------------------------------- header helpers


def _parse_addresses(raw: str | None, defects: list[str], name: str) -> list[Address]:
    """Parse an address list; garbage yields the addresses a regex can still find."""
    if not raw:
        return []
    text = _FOLD_RE.sub(" ", _raw_to_text(raw))
    result: list[Address] = []
    seen: set[str] = set()
    try:
        pairs = getaddresses([text])
    except Exception:
        pairs = []
    for display, addr in pairs:
        addr = addr.strip().strip("<>").lower()
        if not _VALID_EMAIL_RE.match(addr) or addr in seen:
            continue
        seen.add(addr)
        result.append(Address(email=addr, name=decode_header_value(display, defects, name).strip('"\' ')))
    if not result:
        for addr in _EMAIL_RE.findall(text):
            addr = addr.lower()
            if addr not in seen:
                seen.add(addr)
                result.append(Address(email=addr))
        if result:
            defects.append(f"{name} header is malformed; addresses recovered by pattern matching")
    return result


def _parse_ids(raw: str | None) -> list[str]:
    """Message-IDs from a header value, without angle brackets; tolerates missing brackets."""
    if not raw:
        return []
    text = _FOLD_RE.sub(" ", _raw_to_text(raw))
    ids = [m.strip() for m in _BRACKET_ID_RE.findall(text)]
    if not ids:
        tokens = [t.strip("<>,;\"'()") for t in text.split()]
        ids = [t for t in tokens if "@" in t] or [t for t in tokens[:1] if t]
    seen: set[str] = set()
    return [i for i in ids if i and not (i in seen or seen.add(i))]  # type: ignore[func-returns-value]


def _parse_date(raw: str | None, defects: list[str]) -> datetime | None:
    if not raw:
        return None
    text = _FOLD_RE.sub(" ", _raw_to_text(raw)).strip()
    try:
        value = parsedate_to_datetime(text)
    except Exception:
        value = None
    if value is None:
        defects.append(f"Date header could not be parsed: {text[:60]!r}")
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value


# --------------------------------------------------------------------------- MIME walk
