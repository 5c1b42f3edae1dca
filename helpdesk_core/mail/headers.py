"""Header values: RFC 2047 encoded words, addresses, Message-ID lists and dates, decoded without
raising. Text decoding follows :func:`helpdesk_core.mail.mimeparts.decode_bytes`."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime, timezone
from email.utils import getaddresses, parsedate_to_datetime

from helpdesk_core.mail.controls import strip_controls
from helpdesk_core.mail.message import Address
from helpdesk_core.mail.mimeparts import decode_bytes

_ENCODED_WORD_RE = re.compile(r"=\?([^?\s]{1,75})\?([QqBb])\?([^?]*?)\?=")
_FOLD_RE = re.compile(r"[ \t]*\r?\n[ \t]*")
_SPACES_RE = re.compile(r"[ \t]{2,}")
_EMAIL_RE = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){0,10}")
_VALID_EMAIL_RE = re.compile(r'^(?:"[^"\r\n]{1,64}"|[^@\s<>(),;:"\[\]]{1,64})@[^@\s<>(),;:"\[\]]{1,255}$')
_BRACKET_ID_RE = re.compile(r"<\s*([^<>\s]{1,998})\s*>")
_ENCODED_RUN_RE = re.compile(rf"{_ENCODED_WORD_RE.pattern}(?:[ \t]+{_ENCODED_WORD_RE.pattern})*")
#: an address list entry ending in an address in angle brackets (optionally a comment after it)
_BRACKETED_RE = re.compile(r"^(.*?)\s*<([^<>]*)>\s*(?:\([^()]*\)\s*)?$", re.DOTALL)
_QUOTED_PAIR_RE = re.compile(r'\\(.)|"')


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


def _protect_encoded_words(text: str) -> tuple[str, dict[str, str]]:
    """``text`` with each run of encoded words replaced by a placeholder atom, and the runs by
    placeholder: what a word decodes to (``:``, ``,``, ``<``, an address) or holds raw in a broken
    word can then never change the structure of the address list."""
    if "=?" not in text:
        return text, {}
    prefix = "hdew"
    while prefix in text:
        prefix += "x"
    runs: dict[str, str] = {}

    def hide(m: re.Match[str]) -> str:
        key = f"{prefix}{len(runs)}z"
        runs[key] = m.group(0)
        return key

    return _ENCODED_RUN_RE.sub(hide, text), runs


def _restore(text: str, runs: dict[str, str]) -> str:
    for key, run in runs.items():
        if key in text:
            text = text.replace(key, run)
    return text


def _split_entries(text: str) -> list[str]:
    """Split an address list at commas outside quotes, comments and angle brackets; group syntax
    (``name: a, b;``) yields its members without the group name."""
    entries: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    angle = comment = 0
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\" and (quoted or comment):
            escaped = True
        elif quoted:
            quoted = ch != '"'
        elif ch == '"' and not comment:
            quoted = True
        elif ch == "(":
            comment += 1
        elif ch == ")" and comment:
            comment -= 1
        elif comment:
            pass
        elif ch == "<":
            angle += 1
        elif ch == ">" and angle:
            angle -= 1
        elif not angle and ch in ",;":
            entries.append("".join(current))
            current = []
            continue
        elif not angle and ch == ":":
            current = []  # a group name
            continue
        current.append(ch)
    entries.append("".join(current))
    return [e.strip() for e in entries if e.strip()]


def _entry_pairs(entry: str) -> list[tuple[str, str]]:
    """(display name, address) of one list entry. With an address in angle brackets, everything
    before the last ``<…>`` is the display name, whatever it contains (``alice@x <mallory@y>`` is
    mallory, named "alice@x"); otherwise :func:`email.utils.getaddresses` reads it."""
    m = _BRACKETED_RE.match(entry)
    if m:
        name = _QUOTED_PAIR_RE.sub(lambda q: q.group(1) or "", m.group(1))
        return [(name, m.group(2))]
    try:
        return getaddresses([entry])
    except Exception:
        return []


def _parse_addresses(raw: str | None, defects: list[str], name: str) -> list[Address]:
    """Parse an address list; garbage yields the addresses a regex can still find.

    Encoded words are decoded only inside display names, after the list is split, and names lose
    CR, LF and other control characters (:func:`~helpdesk_core.mail.controls.strip_controls`).
    """
    if not raw:
        return []
    text, runs = _protect_encoded_words(_FOLD_RE.sub(" ", _raw_to_text(raw)))
    result: list[Address] = []
    seen: set[str] = set()
    pairs = [pair for entry in _split_entries(text) for pair in _entry_pairs(entry)]
    for display, addr in pairs:
        addr = _restore(addr, runs).strip().strip("<>").lower()
        if not _VALID_EMAIL_RE.match(addr) or addr in seen:
            continue
        seen.add(addr)
        decoded = decode_header_value(_restore(display, runs), defects, name).strip("\"' ")
        result.append(Address(email=addr, name=strip_controls(decoded).strip("\"' ")))
    if not result:
        text = _restore(text, runs)
        for addr in _EMAIL_RE.findall(text):
            addr = addr.lower()
            if addr not in seen:
                seen.add(addr)
                result.append(Address(email=addr))
        if result:
            defects.append(f"{name} header is malformed; addresses recovered by pattern matching")
    return result


def sender_warning(senders: list[Address]) -> str:
    """Why the From addresses ``senders`` (as parsed) do not name one verifiable sender, or ``""``.

    A From with more than one address, and a display name that shows an address other than the
    real one (``alice@school.test <mallory@evil.test>``), are what a spoofer writes: threading must
    not trust such a sender (:attr:`~helpdesk_core.mail.message.ParsedMessage.from_suspicious`).
    """
    if len(senders) > 1:
        return "From has more than one address (" + ", ".join(a.email for a in senders) + "); the first is used"
    if senders:
        shown = [a.lower() for a in _EMAIL_RE.findall(senders[0].name)]
        other = [a for a in shown if a != senders[0].email]
        if other:
            return f"the display name shows {other[0]} but the mail comes from {senders[0].email}"
    return ""


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
