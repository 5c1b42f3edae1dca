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

__all__ = ["decode_bytes", "detect_charset", "sanitize_filename", "extract_uuencoded", "extract_binhex",
           "content_was_lost", "LOSSY_DEFECTS"]

_NON_UTF8_CHARS_RE = re.compile("[^\x00-\x7f\ufffd]")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_FILENAME_RE = re.compile(r'[<>:"|?*]')
_UU_BEGIN_RE = re.compile(r"^begin(?:-base64)? ([0-7]{3,4}) (\S[^\r\n]*)$")
#: default-name extensions that mimetypes gets wrong or does not know (the rest: mimetypes)
_EXTENSIONS: dict[str, str] = {
    "text/plain": ".txt", "text/html": ".html", "text/rfc822-headers": ".txt", "image/jpeg": ".jpg",
    "message/rfc822": ".eml", "message/delivery-status": ".txt", "application/pgp-signature": ".asc",
    "application/ms-tnef": ".dat", "application/octet-stream": ".bin", "application/pgp-encrypted": ".pgp",
    "application/pkcs7-mime": ".p7m", "application/pkcs7-signature": ".p7s",
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


#: multi-byte charsets a detection is trusted with: on a few bytes (a header), single-byte guesses
#: are unreliable (``ö`` alone "is" EBCDIC), so windows-1252 -- the usual undeclared charset -- wins
_TRUSTED_DETECTIONS = re.compile(r"^(?:cp932|shift_jis\w*|euc_\w+|gb\w+|hz|big5\w*|cp949|cp950|johab|iso2022_\w+)$")


def detect_charset(data: bytes) -> str | None:
    """The multi-byte (CJK) charset :mod:`charset_normalizer` finds for ``data``, or None."""
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(data[:65536]).best()
    except Exception:  # noqa: BLE001 - detection is a best effort
        return None
    encoding = best.encoding if best is not None else ""
    return encoding if _TRUSTED_DETECTIONS.match(encoding or "") else None


def decode_bytes(data: bytes, charset: str | None = None, defects: list[str] | None = None,
                 what: str = "text", detect: bool = False) -> str:
    """Decode ``data`` with ``charset``, falling back to UTF-8, then (with ``detect``) a detected
    multi-byte charset (:func:`detect_charset`), then windows-1252; never raises.

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
    detected = detect_charset(data) if detect else None
    if detected is not None:
        try:
            return data.decode(detected)
        except Exception:  # noqa: BLE001 - fall through to windows-1252
            pass
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


#: the 64 characters of BinHex 4.0, in value order
BINHEX_ALPHABET = "!\"#$%&'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr"
_BINHEX_VALUES = {c: i for i, c in enumerate(BINHEX_ALPHABET)}
_BINHEX_RE = re.compile(r"\(This file must be converted with BinHex[^)\n]*\)[ \t]*\n(?:[ \t]*\n)*"
                        r"[ \t]*:([^:]*):[ \t]*(?:\n|$)", re.IGNORECASE)


def _binhex_fork(data: bytes, pos: int, length: int, defects: list[str], what: str) -> tuple[bytes, int]:
    fork = data[pos : pos + length]
    crc = int.from_bytes(data[pos + length : pos + length + 2], "big")
    if len(fork) < length or binascii.crc_hqx(fork, 0) != crc:
        defects.append(f"BinHex {what}: checksum mismatch or truncated data; kept as decoded")
    return fork, pos + length + 2


def _binhex_decode(encoded: str, defects: list[str]) -> tuple[str, bytes] | None:
    """(file name, data fork) of a BinHex 4.0 body (the text between the colons), or None."""
    bits = acc = 0
    out = bytearray()
    for char in encoded:
        value = _BINHEX_VALUES.get(char)
        if value is None:
            if char.isspace():
                continue
            return None
        acc, bits = (acc << 6) | value, bits + 6
        if bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    data = bytearray()  # run-length decoding: 0x90 n repeats the previous byte (0x90 0: a literal 0x90)
    i = 0
    while i < len(out):
        byte = out[i]
        if byte == 0x90 and i + 1 < len(out):
            count = out[i + 1]
            i += 2
            if count == 0:
                data.append(0x90)
            elif data:
                data.extend(data[-1:] * (count - 1))
            continue
        data.append(byte)
        i += 1
    if not data or len(data) < 1 + data[0] + 21:
        return None
    name_len = data[0]
    name = decode_bytes(bytes(data[1 : 1 + name_len]), "mac_roman")
    header_end = 1 + name_len + 1 + 4 + 4 + 2 + 4 + 4
    data_len = int.from_bytes(data[header_end - 8 : header_end - 4], "big")
    _header, pos = _binhex_fork(bytes(data), 0, header_end, defects, f"{name!r} header")
    fork, _pos = _binhex_fork(bytes(data), pos, data_len, defects, repr(name))
    return name, fork


def extract_binhex(text: str, defects: list[str]) -> tuple[str, list[tuple[str, bytes]]]:
    """Remove BinHex 4.0 blocks ("(This file must be converted with BinHex 4.0)" then ``:…:``)
    from ``text``; return (text, [(name, data fork)]). Undecodable blocks stay in the text."""
    if "binhex" not in text.lower():
        return text, []
    files: list[tuple[str, bytes]] = []

    def replace(m: re.Match[str]) -> str:
        decoded = _binhex_decode(m.group(1), defects)
        if decoded is None:
            defects.append("BinHex block could not be decoded; left in the text")
            return m.group(0)
        files.append(decoded)
        return ""

    return _BINHEX_RE.sub(replace, text), files


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
    "missing 'end'", "corrupt line", "checksum mismatch", "could not be re-serialised", "nested too deeply",
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
