"""MIME helpers of :mod:`helpdesk_core.mail.parsing`: text decoding with fallbacks, safe file names,
uuencoded blocks, ``winmail.dat`` (TNEF), attached messages as ``.eml``, and the damage threshold
that decides when the raw original is attached to the ticket (:func:`content_was_lost`), and the
removal of NUL characters from a parsed message (``_without_nul``).
"""

from __future__ import annotations

import binascii
import codecs
import mimetypes
import re
from email import policy
from email.generator import BytesGenerator
from email.message import Message
from io import BytesIO

from helpdesk_core.mail.message import Address, ParsedMessage

__all__ = ["decode_bytes", "sanitize_filename", "extract_uuencoded", "content_was_lost", "LOSSY_DEFECTS",
           "safe_content_type"]

_NON_UTF8_CHARS_RE = re.compile("[^\x00-\x7f\ufffd]")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_FILENAME_RE = re.compile(r'[<>:"|?*]')
_UU_BEGIN_RE = re.compile(r"^begin(?:-base64)? ([0-7]{3,4}) (\S[^\r\n]*)$")
#: default-name extensions that mimetypes gets wrong or does not know (the rest: mimetypes)
_EXTENSIONS: dict[str, str] = {
    "text/plain": ".txt", "text/html": ".html", "text/rfc822-headers": ".txt", "image/jpeg": ".jpg",
    "message/rfc822": ".eml", "message/delivery-status": ".txt", "application/pgp-signature": ".asc",
    "application/ms-tnef": ".dat", "application/octet-stream": ".bin",
}  # fmt: skip


# --------------------------------------------------------------------------- text decoding


def _text_codec(charset: str | None) -> str | None:
    """Python codec name for a MIME charset, or None when unknown or not a text encoding."""
    if not charset:
        return None
    name = charset.strip().strip("\"'").split("*", 1)[0].lower()
    if not name or len(name) > 40:
        return None
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    return info.name if getattr(info, "_is_text_encoding", True) else None


def decode_bytes(data: bytes, charset: str | None = None, defects: list[str] | None = None,
                 what: str = "text") -> str:
    """Decode ``data`` with ``charset``, falling back to UTF-8 then windows-1252; never raises.

    When a declared charset is unknown or does not fit the bytes, a defect naming ``what`` is
    appended to ``defects``.
    """
    codec = _text_codec(charset)
    if charset and codec is None and defects is not None:
        defects.append(f"{what}: unknown charset {charset.strip()[:40]!r}, decoded with a fallback")
    if codec is not None:
        try:
            return data.decode(codec)
        except Exception:
            if defects is not None:
                defects.append(f"{what}: bytes do not match the declared charset {charset!r}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    decoded = data.decode("utf-8", "replace")
    bad = decoded.count("\ufffd")
    if len(_NON_UTF8_CHARS_RE.findall(decoded)) >= 4 * bad:
        return decoded  # mostly UTF-8 with a few broken sequences
    return data.decode("windows-1252", "replace")


def sanitize_filename(name: str | None, index: int, content_type: str) -> str:
    """A safe file name: no directories, control or reserved characters; default
    ``attachment-<index><ext>`` (extension from ``content_type``)."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_FILENAME_RE.sub("_", _CONTROL_RE.sub("", name)).strip().strip(".").strip()
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 200 - len(ext) - 1] + dot + ext) if dot and len(ext) <= 10 else name[:200]
    if not name:
        ext = _EXTENSIONS.get(content_type) or mimetypes.guess_extension(content_type, strict=False)
        if not ext:
            ext = ".txt" if content_type.startswith("text/") else ".bin"
        name = f"attachment-{index}{ext}"
    return name


# --------------------------------------------------------------------------- stored content types

#: how many leading bytes :func:`safe_content_type` looks at
SNIFF_BYTES = 512
#: types a browser renders as a document or runs as script when a file is served inline
_ACTIVE_TYPES: frozenset[str] = frozenset({
    "text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml", "text/xsl",
    "application/xslt+xml", "text/javascript", "application/javascript", "application/x-javascript",
    "application/ecmascript", "text/ecmascript", "text/jscript", "text/vbscript", "text/vbs",
    "application/x-shockwave-flash", "text/x-component", "multipart/x-mixed-replace", "application/hta",
    "text/x-scriptlet", "application/x-msdownload", "text/cache-manifest", "application/wasm",
})  # fmt: skip
#: leading bytes that name a file's format for certain
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"), (b"%PDF-", "application/pdf"), (b"PK\x03\x04", "application/zip"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"), (b"\x1f\x8b", "application/gzip"),
    (b"II*\x00", "image/tiff"), (b"MM\x00*", "image/tiff"), (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"Rar!\x1a\x07", "application/vnd.rar"),
)  # fmt: skip
#: signatures of containers that many formats share (docx is a zip): the name's type is kept
_CONTAINERS: frozenset[str] = frozenset({"application/zip", "application/x-ole-storage"})
_MARKUP_RE = re.compile(rb"^\s*<|<(?:html|svg|script|iframe|object|embed|body|head|meta|xsl|x:|\?xml|!doctype)",
                        re.IGNORECASE)


def _is_active(ctype: str) -> bool:
    return ctype in _ACTIVE_TYPES or ctype.endswith(("+xml", "/xml")) or "script" in ctype


def _sniff(head: bytes) -> str | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return next((ctype for magic, ctype in _SIGNATURES if head.startswith(magic)), None)


def safe_content_type(filename: str | None, declared: str | None, head: bytes) -> str:
    """The content type to store for an attachment named ``filename``, declared ``declared``,
    whose content starts with ``head`` (its first :data:`SNIFF_BYTES` bytes).

    A known signature in the bytes decides (``image.png`` with PNG bytes is ``image/png`` whatever
    was declared); for a zip or OLE container, the type of the name (``.docx``) is kept. Otherwise
    the declared type is kept (the name's type when ``application/octet-stream`` was declared;
    ``message/*`` always) -- unless a browser would render it as a document or run it (HTML,
    XHTML, SVG, XML, script types), or the bytes are markup: such a file is stored as
    ``text/plain`` (no NUL bytes) or ``application/octet-stream``. Never returns an active type;
    never raises.
    """
    declared = (declared or "").strip().lower() or "application/octet-stream"
    guessed = (mimetypes.guess_type(filename or "", strict=False)[0] or "").lower()
    claimed = guessed if declared == "application/octet-stream" and guessed else declared
    head = head[:SNIFF_BYTES]
    sniffed = _sniff(head)
    if sniffed in _CONTAINERS:
        kept = next((c for c in (guessed, claimed) if c and not _is_active(c) and not c.startswith("text/")), "")
        return kept or sniffed
    if sniffed:
        return sniffed
    if claimed.startswith("message/") and not _is_active(claimed):  # a forwarded mail or a delivery report: its body may be HTML
        return claimed
    if _is_active(claimed) or (guessed and _is_active(guessed)) or _MARKUP_RE.search(head):
        return "text/plain" if b"\x00" not in head else "application/octet-stream"
    return claimed


# --------------------------------------------------------------------------- special contents


def _uudecode_line(line: str) -> bytes:
    try:
        return binascii.a2b_uu(line)
    except ValueError:  # lines padded or truncated by some encoders
        nbytes = (((ord(line[0]) - 32) & 63) * 4 + 5) // 3
        return binascii.a2b_uu(line[:nbytes])


def extract_uuencoded(text: str, defects: list[str]) -> tuple[str, list[tuple[str, bytes]]]:
    """Remove ``begin 644 name`` … ``end`` blocks from ``text``; return (text, [(name, data)])."""
    if "begin " not in text:
        return text, []
    lines = text.split("\n")
    kept: list[str] = []
    files: list[tuple[str, bytes]] = []
    i = 0
    while i < len(lines):
        m = _UU_BEGIN_RE.match(lines[i].rstrip("\r"))
        if not m or m.group(0).startswith("begin-base64"):
            kept.append(lines[i])
            i += 1
            continue
        chunks: list[bytes] = []
        i += 1
        ended = False
        while i < len(lines):
            line = lines[i].rstrip("\r")
            i += 1
            if line.strip() == "end":
                ended = True
                break
            if line and line not in ("`", " "):
                try:
                    chunks.append(_uudecode_line(line))
                except (ValueError, IndexError):
                    defects.append(f"uuencoded {m.group(2)!r}: a corrupt line was skipped")
        if not ended:
            defects.append(f"uuencoded {m.group(2)!r}: missing 'end' line")
        files.append((m.group(2).strip(), b"".join(chunks)))
        if kept and not kept[-1].strip() and i < len(lines) and not lines[i].strip():
            i += 1  # do not leave a double blank line where the block was
    return "\n".join(kept), files


def _unpack_tnef(data: bytes, defects: list[str]) -> list[tuple[str, bytes]] | None:
    """Attachments inside a ``winmail.dat``; None when it cannot be unpacked."""
    try:
        from tnefparse import TNEF

        tnef = TNEF(data, do_checksum=False)
        files: list[tuple[str, bytes]] = []
        for att in tnef.attachments:
            try:
                name = att.long_filename()
            except Exception:
                name = att.name
            if isinstance(name, bytes):
                name = decode_bytes(name)
            files.append((str(name or "").strip("\x00"), bytes(att.data or b"")))
        return files
    except Exception as exc:
        defects.append(f"winmail.dat could not be unpacked ({type(exc).__name__}); kept as is")
        return None


def _message_bytes(inner: Message) -> bytes:
    """The bytes of an attached message, as close to the original as the parser allows."""
    buf = BytesIO()
    BytesGenerator(buf, mangle_from_=False, policy=policy.compat32.clone(max_line_length=0)).flatten(inner)
    return buf.getvalue()


#: defect texts (substrings, lower-case) that mean content was lost or may be garbled: the parser
#: gave up, a part or a word could not be decoded, a boundary or an ``end`` line is missing …
#: Harmless defects (an unparsable Date, a recovered address list, an unknown charset that decoded
#: cleanly with a fallback) are not in this list.
LOSSY_DEFECTS: tuple[str, ...] = (
    "message could not be parsed", "could not be decoded", "skipped", "undecodable", "do not match the declared",
    "missing 'end'", "corrupt line", "could not be re-serialised", "nested too deeply",
    "without usable boundary", "parser crashed", "could not be unpacked",
    "mail structure: a start boundary was found, but not",
    "mail structure: the claimed start boundary was never found",
    "mail structure: a message claimed to be a multipart",
    "mail structure: found line with no leading whitespace",
    "mail structure: base64 encoded sequence had invalid length",
    "mail structure: base64 encoded sequence had characters not in",
)


def content_was_lost(defects: list[str]) -> bool:
    """True when one of ``defects`` means part of the message was lost or may be garbled, so the
    raw original should be kept on the ticket (``original.eml``)."""
    return any(marker in d.lower() for d in defects for marker in LOSSY_DEFECTS)


def _without_nul(msg: ParsedMessage) -> ParsedMessage:
    """Drop NUL characters from decoded text: databases (PostgreSQL) refuse them in text columns."""
    found = False
    for attr in ("subject", "body_text", "body_display", "body_html"):
        value = getattr(msg, attr)
        if value and "\x00" in value:
            setattr(msg, attr, value.replace("\x00", ""))
            found = True
    if any("\x00" in k or "\x00" in v for k, v in msg.headers):
        msg.headers = [(k.replace("\x00", ""), v.replace("\x00", "")) for k, v in msg.headers]
        found = True
    for group in (msg.to, msg.cc, msg.reply_to):
        group[:] = [Address(a.email.replace("\x00", ""), a.name.replace("\x00", "")) for a in group]
    if msg.from_ is not None and "\x00" in msg.from_.name + msg.from_.email:
        msg.from_ = Address(msg.from_.email.replace("\x00", ""), msg.from_.name.replace("\x00", ""))
    if found:
        msg.defects.append("NUL characters removed from the text")
    return msg
