"""Raw RFC 5322 bytes → :class:`~helpdesk_core.mail.message.ParsedMessage`, robustly.

:func:`parse_message` never raises. The message is parsed once with :mod:`email` using
``policy.default`` whose header fetches return raw strings (:class:`_RawHeaderPolicy`): the header
objects of ``policy.default`` are slow and raise on many real-world malformations, so header
values are decoded here instead. Every problem met is recorded as a
human-readable string in ``ParsedMessage.defects``.

With ``storage`` (an :class:`~helpdesk_core.storage.AttachmentStorage`), the bodies of big
attachment parts of a big message are first streamed into the storage by
:mod:`helpdesk_core.mail.largeparts` and only a small skeleton of the message is parsed; those
attachments come back already stored (``ParsedAttachment.stored_key``), with the same names, types,
sizes and digests as without ``storage``.

Text decoding everywhere follows the same rule (:func:`decode_bytes`): the declared charset if
Python knows it and it decodes cleanly, else UTF-8, else UTF-8 with replacement characters when
the bytes are mostly valid UTF-8, else windows-1252 (which cannot fail).
"""

from __future__ import annotations

import binascii
import mimetypes
import re
from email.errors import InvalidBase64LengthDefect, InvalidBase64PaddingDefect
from email.message import Message
from email.parser import BytesParser
from email.policy import EmailPolicy
from urllib.parse import unquote_to_bytes

from helpdesk_core.mail.headers import (
    _FOLD_RE, _SPACES_RE, _parse_addresses, _parse_date, _parse_ids, decode_header_value,
)
from helpdesk_core.mail.html import html_to_text, sanitize_html
from helpdesk_core.mail.largeparts import MARKER_HEADER, CutParts, StoredPart, limit_parts, stream_large_parts
from helpdesk_core.mail.message import ParsedAttachment, ParsedMessage
from helpdesk_core.mail.mimeparts import (
    _message_bytes, _unpack_tnef, _without_nul, content_was_lost, decode_bytes, extract_binhex,
    extract_uuencoded, sanitize_filename,
)
from helpdesk_core.mail.quotes import strip_quoted
from helpdesk_core.storage import AttachmentStorage
from helpdesk_core.mail.controls import strip_controls
from helpdesk_core.mail.filetypes import SNIFF_BYTES, safe_content_type
from helpdesk_core.mail.headers import sender_warning

__all__ = ["parse_message", "decode_bytes", "decode_header_value", "sanitize_filename", "extract_uuencoded",
           "content_was_lost"]

_MAX_DEPTH = 40
_CTYPE_RE = re.compile(r"^[a-z0-9!#$&^_.+-]{1,127}/[a-z0-9!#$&^_.+-]{1,127}$")
_PARAM_RE_CACHE: dict[str, re.Pattern[str]] = {}
#: messages larger than this, parsed with a storage, have their larger parts streamed into it
LARGE_PART_THRESHOLD = 4 * 1024 * 1024
#: default of ``mail.max_parts``: leaf parts beyond it are not decoded, only listed as removed
MAX_PARTS = 500


class _RawHeaderPolicy(EmailPolicy):
    """``policy.default`` whose header *fetches* return the unfolded raw string (compat32 style).

    The parser still applies the default policy's rules, but no header objects are built: that
    halves parsing time and removes the exceptions malformed headers raise on access. Header
    values are decoded by this module instead.
    """

    def header_fetch_parse(self, name: str, value: str) -> str:  # type: ignore[override]
        if hasattr(value, "name"):  # a header object set programmatically
            return str(value)
        return _FOLD_RE.sub(" ", value)


_POLICY = _RawHeaderPolicy()
_MARKER_LOWER = MARKER_HEADER.lower()


# --------------------------------------------------------------------------- text decoding


def _raw_header(part: Message, name: str) -> str | None:
    lname = name.lower()
    try:
        for key, value in part.raw_items():
            if key.lower() == lname:
                return str(value)
    except Exception:
        return None
    return None


def _param_from_raw(raw: str | None, param: str) -> str | None:
    """Fallback parameter extraction (``name="value"`` or RFC 2231 ``name*=cs''value``)."""
    if not raw:
        return None
    pattern = _PARAM_RE_CACHE.get(param)
    if pattern is None:
        pattern = re.compile(rf'(?i)[;\s]{param}(\*)?(?:\*\d+\*?)?\s*=\s*(?:"([^"]*)"|([^;\s]*))')
        _PARAM_RE_CACHE[param] = pattern
    m = pattern.search(";" + raw)
    if not m:
        return None
    value = m.group(2) if m.group(2) is not None else m.group(3)
    if m.group(1) and value.count("'") >= 2:
        cs, _lang, enc = value.split("'", 2)
        try:
            return decode_bytes(unquote_to_bytes(enc), cs or None)
        except Exception:
            return value
    return value


def _content_type(part: Message, defects: list[str]) -> str:
    try:
        ctype = part.get_content_type().lower()
        if not _CTYPE_RE.match(ctype):  # e.g. raw 8-bit bytes in it (surrogate escapes)
            defects.append("invalid Content-Type header; assumed text/plain")
            return "text/plain"
        return ctype
    except Exception as exc:
        defects.append(f"unreadable Content-Type header ({type(exc).__name__}); assumed text/plain")
        raw = _raw_header(part, "content-type") or ""
        m = re.match(r"\s*([\w.+-]+/[\w.+-]+)", raw)
        return m.group(1).lower() if m else "text/plain"


def _filename(part: Message, defects: list[str]) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        name = _param_from_raw(_raw_header(part, "content-disposition"), "filename") or _param_from_raw(
            _raw_header(part, "content-type"), "name"
        )
    if name is None:
        return None
    return decode_header_value(str(name), defects, "filename")


def _disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:
        raw = _raw_header(part, "content-disposition")
        return raw.split(";", 1)[0].strip().lower() if raw else None


def _charset(part: Message) -> str | None:
    try:
        return part.get_content_charset()
    except Exception:
        return _param_from_raw(_raw_header(part, "content-type"), "charset")


def _redecoded(part: Message, data: object, found: list[object], defects: list[str], label: str) -> object:
    """Report the defects ``get_payload(decode=True)`` met; for base64 it could not decode at all
    (it then returns the raw base64 text), decode what can be decoded instead. Missing padding
    alone loses nothing and is not reported."""
    for defect in found:
        if isinstance(defect, InvalidBase64PaddingDefect):
            continue
        doc = (type(defect).__doc__ or type(defect).__name__).strip().split("\n")[0]
        defects.append(f"{label}: {doc}; content could not be decoded completely")
    if not any(isinstance(d, InvalidBase64LengthDefect) for d in found):
        return data
    raw = part.get_payload()
    text = raw.encode("ascii", "surrogateescape") if isinstance(raw, str) else bytes(raw or b"")
    clean = re.sub(rb"[^A-Za-z0-9+/]", b"", text)
    clean = clean[: len(clean) - len(clean) % 4]
    try:
        return binascii.a2b_base64(clean)
    except binascii.Error:  # pragma: no cover - ``clean`` is a multiple of 4 of the alphabet
        return b""


def _declared_text_charset(msg: Message) -> str | None:
    """The charset the message declares for its (first) text: what raw 8-bit headers most likely use."""
    for index, part in enumerate(msg.walk()):
        if index > 20:
            break
        try:
            if part.get_content_maintype() == "text":
                return part.get_content_charset()
        except Exception:  # noqa: BLE001 - a hint only
            return None
    return None


def _payload_bytes(part: Message, defects: list[str], label: str) -> bytes:
    known = len(part.defects)
    try:
        data = part.get_payload(decode=True)
        if len(part.defects) > known:  # defects found while decoding (broken base64 …)
            data = _redecoded(part, data, part.defects[known:], defects, label)
    except Exception as exc:
        defects.append(f"{label}: content could not be decoded ({type(exc).__name__})")
        raw = part.get_payload()
        return raw.encode("ascii", "surrogateescape") if isinstance(raw, str) else b""
    if data is None:
        return b""
    return data if isinstance(data, bytes) else str(data).encode("utf-8", "replace")


#: the body of a message whose content is encrypted, by the kind of encryption
_ENCRYPTED_NOTE = ("This message is encrypted ({kind}); the help desk cannot read it. "
                   "The encrypted content is attached: {names}.")
_SMIME_ENCRYPTED = ("application/pkcs7-mime", "application/x-pkcs7-mime")


class _Walker:
    """Walks the MIME tree once, sorting every leaf into exactly one of: body text (``plain``, the
    one HTML body ``html`` and its alternatives), attachments (inline images included) and
    ``removed`` (with a reason).

    The body is the text/plain parts shown inline without a name (concatenated, as mail clients
    show them) and the *first* such text/html part; any other HTML part -- a ``document.html``
    next to an HTML body, named or not -- is an attachment. Everything under ``multipart/encrypted``
    (and an S/MIME enveloped part) is kept as attachments and ``encrypted`` says so. Leaves beyond
    ``max_parts`` are not decoded: they are listed in ``removed`` (the original keeps them).
    """

    def __init__(self, defects: list[str], stored: dict[str, StoredPart] | None = None,
                 max_parts: int = 0) -> None:
        self.defects = defects
        self.stored = stored or {}
        self.max_parts = max_parts
        self.leaves = 0
        self.plain: list[str] = []
        self.html: list[str] = []
        self.attachments: list[ParsedAttachment] = []
        self.removed: list[dict[str, object]] = []
        self.encrypted: str | None = None
        self._encrypted_names: list[str] = []

    def add(self, name: str | None, ctype: str, data: bytes, cid: str | None = None,
            inline: bool = False, stored: StoredPart | None = None, encrypted: bool = False) -> None:
        if ctype == "application/octet-stream" and name:
            ctype = mimetypes.guess_type(name, strict=False)[0] or ctype
        filename = sanitize_filename(name, len(self.attachments) + 1, ctype)
        if encrypted:
            self._encrypted_names.append(filename)
        if stored is None:
            self.attachments.append(ParsedAttachment(filename, safe_content_type(filename, ctype, data[:SNIFF_BYTES]),
                                                     data, cid, inline))
        else:  # the bytes are in the storage: the name and the declared type decide (still never active)
            self.attachments.append(ParsedAttachment(filename, safe_content_type(filename, ctype, b""), b"", cid,
                                                     inline, stored_key=stored.key,
                                                     stored_size=stored.size, stored_sha256=stored.sha256))

    def remove(self, part: Message, ctype: str, reason: str) -> None:
        """List a leaf that is not kept, with why (it stays in the kept original)."""
        scratch: list[str] = []
        try:
            name = _filename(part, scratch)
        except Exception:  # noqa: BLE001 - the name is only informative
            name = None
        payload = part.get_payload() if not part.is_multipart() else ""
        size = len(payload) if isinstance(payload, (str, bytes)) else 0
        self.removed.append({"filename": sanitize_filename(name, len(self.removed) + 1, ctype),
                             "content_type": ctype, "size": size, "reason": reason})

    def _stored_part(self, part: Message) -> StoredPart | None:
        """The stored body of a skeleton part (see :mod:`helpdesk_core.mail.largeparts`), if it is one."""
        if not self.stored:
            return None
        for key, value in part.raw_items():
            if str(key).lower() == _MARKER_LOWER and str(value).strip() in self.stored:
                return self.stored[str(value).strip()]
        return None

    def walk(self, part: Message, depth: int = 0, encrypted: bool = False) -> None:
        ctype = _content_type(part, self.defects)
        if depth > _MAX_DEPTH:
            self.defects.append("MIME structure nested too deeply; inner parts skipped (kept in the original)")
            self.remove(part, ctype, "MIME structure nested too deeply; kept in the original message")
            return
        for defect in getattr(part, "defects", ()) or ():
            doc = (type(defect).__doc__ or type(defect).__name__).strip().split("\n")[0]
            self.defects.append(f"mail structure: {doc}")
        if ctype == "multipart/encrypted":
            self.encrypted = "PGP/MIME" if "pgp" in (_raw_header(part, "content-type") or "").lower() else "encrypted MIME"
            encrypted = True
        if part.is_multipart() and ctype.startswith("multipart/"):
            payload = part.get_payload()
            for sub in payload if isinstance(payload, list) else ():
                if isinstance(sub, Message):
                    self.walk(sub, depth + 1, encrypted)
            return
        self.leaves += 1
        if self.max_parts and self.leaves > self.max_parts:
            self.remove(part, ctype, f"beyond mail.max_parts ({self.max_parts} parts); kept in the original message")
            return
        if ctype == "message/rfc822":
            self._attached_message(part)
            return
        if part.is_multipart():
            self._header_blocks(part, ctype)  # message/delivery-status and the like
            return
        try:
            self._leaf(part, ctype, encrypted)
        except Exception as exc:  # one broken part must not lose the rest of the message
            self.defects.append(f"part {ctype} skipped: {type(exc).__name__}: {exc}"[:200])
            self.remove(part, ctype, f"could not be decoded ({type(exc).__name__}); kept in the original message")

    def _header_blocks(self, part: Message, ctype: str) -> None:
        """Keep a part the parser split into header blocks (delivery status) as one attachment."""
        payload = part.get_payload()
        blocks: list[bytes] = []
        for block in payload if isinstance(payload, list) else ():
            try:
                blocks.append(_message_bytes(block).rstrip(b"\r\n") + b"\n")
            except Exception as exc:
                self.defects.append(f"{ctype} block could not be re-serialised ({type(exc).__name__})")
        self.add(_filename(part, self.defects), ctype, b"\n".join(blocks))

    def _attached_message(self, part: Message) -> None:
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        name = _filename(part, self.defects)
        if inner is None or not isinstance(inner, Message):
            self.add(name or "forwarded-message.eml", "message/rfc822",
                     _payload_bytes(part, self.defects, "attached message"))
            return
        try:
            data = _message_bytes(inner)
        except Exception as exc:
            self.defects.append(f"attached message could not be re-serialised ({type(exc).__name__})")
            data = str(inner.get_payload()).encode("utf-8", "surrogateescape")
        if not name:
            subject = decode_header_value(_raw_header(inner, "subject") or "", self.defects, "Subject")
            name = (subject[:120] + ".eml") if subject.strip() else "forwarded-message.eml"
        self.add(name, "message/rfc822", data)

    def _leaf(self, part: Message, ctype: str, encrypted: bool) -> None:
        disposition = _disposition(part)
        name = _filename(part, self.defects)
        label = f"part {ctype}"
        cid = _parse_ids(_raw_header(part, "content-id"))
        content_id = cid[0] if cid else None
        inline = bool(content_id) and disposition != "attachment"
        stored = self._stored_part(part)
        if stored is not None:  # body already streamed into the storage: an attachment, as below
            self.add(name, ctype, b"", content_id, inline, stored, encrypted)
            return
        if ctype.startswith("multipart/"):
            self.defects.append(f"{ctype} part without usable boundary; read as text")
            ctype = "text/plain"
        if _is_body_text(ctype, disposition, name) and not encrypted and not (ctype == "text/html" and self.html):
            data = _payload_bytes(part, self.defects, label)
            text = decode_bytes(data, _charset(part), self.defects, label)
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            if ctype == "text/html":
                self.html.append(text)
                return
            text, files = extract_uuencoded(text, self.defects)
            text, binhexed = extract_binhex(text, self.defects)
            for fname, fdata in files + binhexed:
                self.add(fname, "application/octet-stream", fdata)
            self.plain.append(text)
            return
        data = _payload_bytes(part, self.defects, label)
        if ctype == "application/mac-binhex40" or (name or "").lower().endswith(".hqx"):
            _rest, files = extract_binhex(decode_bytes(data).replace("\r\n", "\n"), self.defects)
            if files:
                for fname, fdata in files:
                    self.add(fname, "application/octet-stream", fdata)
                return
        if ctype == "application/ms-tnef" or (name or "").lower() == "winmail.dat":
            files = _unpack_tnef(data, self.defects)
            if files is not None:
                for fname, fdata in files:
                    self.add(fname, "application/octet-stream", fdata)
                return
        if ctype in _SMIME_ENCRYPTED and "signed-data" not in (_raw_header(part, "content-type") or "").lower():
            self.encrypted, encrypted = "S/MIME", True
        self.add(name, ctype, data, content_id, inline, encrypted=encrypted)

    def encrypted_note(self) -> str:
        """What the body says about encrypted content ("" when there is none)."""
        if self.encrypted is None:
            return ""
        return _ENCRYPTED_NOTE.format(kind=self.encrypted, names=", ".join(self._encrypted_names) or "-")


def _is_body_text(ctype: str, disposition: str | None, name: str | None) -> bool:
    """Whether a leaf is body text: text/plain or text/html shown inline, without a file name."""
    return ctype in ("text/plain", "text/html") and disposition != "attachment" and not name


# --------------------------------------------------------------------------- entry point


def _salvage(raw: bytes, exc: BaseException) -> ParsedMessage:
    """Last resort when the parser itself failed: pick subject/sender with regexes."""
    msg = ParsedMessage(raw=raw, defects=[f"message could not be parsed ({type(exc).__name__}: {exc})"[:300]])
    head, _sep, body = raw.partition(b"\n\n") if b"\r\n\r\n" not in raw[:65536] else raw.partition(b"\r\n\r\n")
    text = decode_bytes(head)
    for key in ("subject", "from"):
        m = re.search(rf"(?im)^{key}:[ \t]*([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)", text)
        if m and key == "subject":
            msg.subject = strip_controls(_SPACES_RE.sub(" ", decode_header_value(m.group(1))))
        elif m:
            found = _parse_addresses(m.group(1), [], "From")
            msg.from_ = found[0] if found else None
    msg.body_text = decode_bytes(body).strip()
    msg.body_display = msg.body_text
    return msg


_HEADER_LINE_RE = re.compile(rb"^(?:[\x21-\x39\x3b-\x7e]+[ \t]*:|[ \t]|From )")
_NAMED_HEADER_RE = re.compile(rb"^[A-Za-z][A-Za-z0-9-]{0,75}[ \t]*:")
_MAX_HEADER_SCAN = 256 * 1024


def _repair_header_block(raw: bytes, defects: list[str]) -> bytes:
    """Drop stray lines (no colon, ``>From …``) from the header block, as mail clients do.

    The parser ends the header block at the first line that is not a header, so every header after
    a stray line -- Subject, From -- would become body text. A line is stray when a header line
    follows it before the blank line; otherwise it is where the body starts (a missing blank line)
    and is left alone. Returns ``raw`` itself when nothing is stray.
    """
    end = raw.find(b"\n\n", 0, _MAX_HEADER_SCAN)
    end_crlf = raw.find(b"\r\n\r\n", 0, _MAX_HEADER_SCAN)
    ends = [e for e in (end + 1 if end != -1 else -1, end_crlf + 2 if end_crlf != -1 else -1) if e != -1]
    head_end = min(ends) if ends else min(len(raw), _MAX_HEADER_SCAN)
    lines = raw[:head_end].splitlines(keepends=True)
    stray = [i for i, line in enumerate(lines) if i and line.strip() and not _HEADER_LINE_RE.match(line)]
    if not stray:
        return raw
    last_header = max((i for i, line in enumerate(lines) if _NAMED_HEADER_RE.match(line)), default=-1)
    dropped = [i for i in stray if i < last_header]
    if not dropped:
        return raw
    for i in dropped:
        shown = lines[i].strip().decode("ascii", "replace")[:60]
        defects.append(f"header block: stray line {shown!r} ignored; the headers after it were kept")
    drop = set(dropped)
    return b"".join(line for i, line in enumerate(lines) if i not in drop) + raw[head_end:]


def _becomes_attachment(part: Message) -> bool:
    """Whether :class:`_Walker` turns this leaf part into a plain attachment (not body text, not
    an attached message, not an unpacked ``winmail.dat``): the parts worth streaming."""
    scratch: list[str] = []
    ctype = _content_type(part, scratch)
    if ctype == "message/rfc822" or ctype.startswith("multipart/"):
        return False
    name = _filename(part, scratch)
    if _is_body_text(ctype, _disposition(part), name):
        return False
    return not (ctype == "application/ms-tnef" or (name or "").lower() == "winmail.dat")


def parse_message(raw: bytes, *, storage: AttachmentStorage | None = None,
                  large_part_threshold: int = LARGE_PART_THRESHOLD, max_parts: int = MAX_PARTS) -> ParsedMessage:
    """Parse raw RFC 5322 bytes into a :class:`ParsedMessage`; never raises.

    See the module docstring and :class:`ParsedMessage` for the meaning of each field. Problems
    (malformed headers, unknown charsets, broken MIME structure, …) are listed in ``defects``;
    whatever could be decoded is still returned.

    With ``storage``, a message larger than ``large_part_threshold`` bytes has the attachment
    bodies larger than that decoded in chunks straight into ``storage``
    (:func:`helpdesk_core.mail.largeparts.stream_large_parts`); they are returned already stored
    (``ParsedAttachment.stored_key`` set, ``data`` empty). Everything else is as without
    ``storage``; ``ParsedMessage.raw`` is ``raw`` itself. Should the large-part path fail, the
    message is parsed the normal way (stored blobs then stay unreferenced, which is harmless).

    ``max_parts`` (``mail.max_parts``; 0: no limit) bounds the leaf parts decoded: the parts
    beyond it are cut before parsing (:func:`helpdesk_core.mail.largeparts.limit_parts`), so their
    number costs no memory, and listed in ``removed_attachments``; the original keeps them.
    """
    if not isinstance(raw, bytes):
        try:
            raw = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else bytes(raw)
        except Exception:
            raw = b""
    original, cut = raw, None
    if max_parts and raw.count(b"\n--") > max_parts:
        try:
            cut = limit_parts(raw, max_parts, _POLICY)
        except Exception:  # noqa: BLE001 - the walker below still applies the limit
            cut = None
        if cut is not None:
            raw = cut.skeleton
    if storage is not None and len(raw) > large_part_threshold:
        try:
            large = stream_large_parts(raw, storage, large_part_threshold, _becomes_attachment, _POLICY)
            if large is not None:
                result = _parse(large.skeleton, large.stored, max_parts)
                return _without_nul(_restored(result, original, cut))
        except Exception:  # noqa: BLE001 - the normal path below decodes everything itself
            pass
    try:
        return _without_nul(_restored(_parse(raw, None, max_parts), original, cut))
    except Exception as exc:  # noqa: BLE001 - the contract is to never raise
        try:
            return _without_nul(_salvage(raw, exc))
        except Exception:  # pragma: no cover - defensive
            return ParsedMessage(raw=raw, defects=["message could not be parsed"])


def _restored(result: ParsedMessage, original: bytes, cut: CutParts | None) -> ParsedMessage:
    """``result`` of a skeleton with the original bytes, and the parts cut from it listed as removed."""
    result.raw, result._raw_sha256 = original, None
    if cut is not None:
        for entry in cut.removed:
            ctype = str(entry["content_type"])
            entry["filename"] = sanitize_filename(str(entry["filename"]), len(result.removed_attachments) + 1, ctype)
            result.removed_attachments.append(entry)
        result.defects.append(f"{cut.count} MIME parts beyond the limit of {cut.limit} (mail.max_parts) "
                              "skipped; they stay in the original message")
    return result


def _parse(raw: bytes, stored: dict[str, StoredPart] | None = None, max_parts: int = MAX_PARTS) -> ParsedMessage:
    defects: list[str] = []
    msg = BytesParser(policy=_POLICY).parsebytes(_repair_header_block(raw, defects))
    result = ParsedMessage(raw=raw, defects=defects)

    first: dict[str, str] = {}
    hint = _declared_text_charset(msg)
    for name, value in msg.raw_items():
        name = str(name)
        if stored and name.lower() == _MARKER_LOWER and str(value).strip() in stored:
            continue  # added by helpdesk_core.mail.largeparts to a single-part message
        decoded = decode_header_value(str(value), defects, name, charset=hint)
        result.headers.append((name, decoded))
        first.setdefault(name.lower(), str(value))

    result.subject = _SPACES_RE.sub(" ", decode_header_value(first.get("subject", ""), charset=hint)).strip()
    senders = _parse_addresses(first.get("from"), defects, "From")
    for fallback in ("sender", "return-path"):
        if not senders and first.get(fallback):
            senders = _parse_addresses(first.get(fallback), defects, fallback.title())
            if senders:
                defects.append(f"no usable From address; sender taken from {fallback.title()}")
    result.from_ = senders[0] if senders else None
    result.sender_warning = sender_warning(senders)
    result.subject = strip_controls(result.subject)  # no CR/LF or escape sequence is stored or shown
    result.reply_to = _parse_addresses(first.get("reply-to"), defects, "Reply-To")
    result.to = _parse_addresses(first.get("to"), defects, "To")
    result.cc = _parse_addresses(first.get("cc"), defects, "Cc")
    ids = _parse_ids(first.get("message-id"))
    result.message_id = ids[0] if ids else None
    result.in_reply_to = _parse_ids(first.get("in-reply-to"))
    result.references = _parse_ids(first.get("references"))
    result.date = _parse_date(first.get("date"), defects)
    result.content_type = _content_type(msg, defects)

    walker = _Walker(defects, stored, max_parts)
    walker.walk(msg)
    result.attachments = walker.attachments
    result.removed_attachments = walker.removed
    plain = [t for t in walker.plain if t.strip()]
    html = "\n".join(walker.html)
    if html.strip():
        result.body_html = sanitize_html(html)
    if plain:
        result.body_text = "\n\n".join(t.strip("\n") for t in plain).strip()
    elif html.strip():
        result.body_text = html_to_text(html)
    note = walker.encrypted_note()
    if note:
        result.body_text = f"{result.body_text}\n\n{note}".strip()
    result.body_display = strip_quoted(result.body_text) if result.body_text else ""
    # keep the order of first occurrence, drop repeated identical defects
    result.defects = list(dict.fromkeys(defects))
    return result
