"""Large MIME parts streamed into the attachment storage, so that big messages parse in bounded memory.

The :mod:`email` parser holds a message several times over (the raw bytes, a decoded ``str`` copy,
one string per line, the joined payload and the decoded bytes): ~10x the size of a message with a
big attachment. :func:`stream_large_parts` avoids that for the big parts:

1. it scans the raw bytes by byte offsets (``bytes.find`` over the original object, no copies of
   the message, no per-line splitting of big bodies) for the MIME leaf parts, following the
   multipart boundaries recursively with the same rules as :mod:`email.feedparser` (a line matching
   the boundary of *any* enclosing multipart ends a part; consecutive boundary lines are one
   separator; the line break before a boundary belongs to the boundary; lines end at ``\\r\\n``,
   ``\\r``, ``\\n`` and the other ASCII characters :meth:`str.splitlines` breaks at);
2. every leaf body larger than the threshold that the caller wants streamed (``wants``: parts that
   become attachments), with a ``base64`` transfer encoding (or ``7bit``/``8bit``/``binary``, stored
   as they are), is decoded in windows of :data:`WINDOW` bytes straight into
   :meth:`~helpdesk_core.storage.AttachmentStorage.put_stream`;
3. it returns a *skeleton*: the raw message with those bodies emptied and a header
   ``X-Helpdesk-Stored: <sha256> <size> <token>`` added to each such part, which the normal parser
   then reads (small), plus the stored parts by header value. The token is random per call, so a
   header of that name in an incoming message is never mistaken for a stored part.

Anything unusual (a header block without a blank line, characters outside the base64 alphabet,
misplaced padding, a 1-mod-4 length, a nested ``message/*`` part, a ``multipart/digest``) leaves the
part, or the whole subtree, in the skeleton unchanged: it then goes through the normal path, which
decodes it exactly as before. The decoded content of a streamed part is byte-identical to what
``Message.get_payload(decode=True)`` returns for it.
"""

from __future__ import annotations

import binascii
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.policy import Policy

from helpdesk_core.storage import AttachmentStorage

__all__ = ["MARKER_HEADER", "StoredPart", "LargeParts", "stream_large_parts", "CutParts", "limit_parts"]

#: header added to a skeleton part whose body was streamed into the storage
MARKER_HEADER = "X-Helpdesk-Stored"
#: bytes of encoded body read per step when streaming (each step holds ~2-3 windows of copies)
WINDOW = 256 * 1024
_MAX_DEPTH = 30
_MAX_HEADER_BLOCK = 256 * 1024
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
#: feedparser's header-line pattern (a line that is not one ends the header block)
_HEADER_RE = re.compile(rb"(From |[\041-\071\073-\176]*:|[\t ])")
#: characters after which :meth:`str.splitlines` (used by the feedparser) starts a new line
_LINE_BREAKS = frozenset(b"\r\n\x0b\x0c\x1c\x1d\x1e")
_ODD_BREAKS = re.compile(rb"[\x0b\x0c\x1c\x1d\x1e]")


class NotStreamable(Exception):
    """A body the streaming decoder cannot reproduce exactly; the part stays on the normal path."""


@dataclass(frozen=True)
class StoredPart:
    """A part body already in the storage: its key, decoded size and sha256."""

    key: str
    size: int
    sha256: str


@dataclass
class LargeParts:
    """Result of :func:`stream_large_parts`: the skeleton to parse and the parts it refers to."""

    skeleton: bytes
    #: ``X-Helpdesk-Stored`` header value → the stored part
    stored: dict[str, StoredPart] = field(default_factory=dict)


@dataclass
class _Leaf:
    header_end: int  # offset of the blank line ending the header block (the marker goes here)
    eol: bytes       # line break of that blank line
    body_start: int
    body_end: int    # exclusive; without the line break that belongs to a following boundary
    base64: bool


# --------------------------------------------------------------------------- scanning


class _Scanner:
    """Finds the leaf parts worth streaming; works on offsets into ``raw``."""

    def __init__(self, raw: bytes, threshold: int, wants: Callable[[Message], bool], policy: Policy) -> None:
        self.raw = raw
        self.threshold = threshold
        self.wants = wants
        self.parser = BytesParser(policy=policy)
        self.leaves: list[_Leaf] = []

    def _line_end(self, pos: int, limit: int) -> int:
        """Offset just after the line starting at ``pos`` (``limit`` when it has no line break)."""
        raw = self.raw
        cr, lf = raw.find(b"\r", pos, limit), raw.find(b"\n", pos, limit)
        if cr == -1 and lf == -1:
            return limit
        if cr == -1 or (lf != -1 and lf < cr):
            return lf + 1
        return cr + 2 if raw[cr + 1 : cr + 2] == b"\n" else cr + 1

    def _boundary_at(self, start: int, sep: bytes) -> tuple[int, bool] | None:
        """If a boundary line of ``sep`` starts at ``start``: (its end, is the close boundary)."""
        raw = self.raw
        if not raw.startswith(sep, start):
            return None
        j = start + len(sep)
        close = raw.startswith(b"--", j)
        if close:
            j += 2
        while raw[j : j + 1] in (b" ", b"\t"):
            j += 1
        if j == len(raw):
            return j, close
        if raw[j] == 0x0D:
            return (j + 2 if raw[j + 1 : j + 2] == b"\n" else j + 1), close
        if raw[j] == 0x0A:
            return j + 1, close
        return None

    def _next_boundary(self, sep: bytes, pos: int, limit: int) -> tuple[int, int, bool] | None:
        """First boundary line of ``sep`` starting at a line start in [pos, limit): (start, end, close)."""
        raw = self.raw
        i = raw.find(sep, pos, limit)
        while i != -1:
            if i == pos or raw[i - 1] in _LINE_BREAKS:
                found = self._boundary_at(i, sep)
                if found is not None:
                    return i, found[0], found[1]
            i = raw.find(sep, i + 1, limit)
        return None

    def entity(self, start: int, end: int, in_multipart: bool, depth: int) -> bool:
        """Scan the entity (headers + body) in [start, end); True when it is a multipart that was
        scanned part by part (a container), False for a leaf (or a subtree left as one piece)."""
        if depth > _MAX_DEPTH:
            return False
        raw = self.raw
        pos = start
        header_limit = min(end, start + _MAX_HEADER_BLOCK)
        while True:
            if pos >= header_limit:
                return False  # no end of the header block in sight: leave it to the normal path
            line_end = self._line_end(pos, end)
            if raw[pos : pos + 1] in (b"\r", b"\n"):
                header_end, eol, body_start = pos, raw[pos:line_end], line_end
                break
            if not _HEADER_RE.match(raw, pos, line_end):
                return False  # a body line without the blank line before it (a defect): normal path
            pos = line_end
        if _ODD_BREAKS.search(raw, start, header_end):
            return False
        headers = self.parser.parsebytes(raw[start:header_end], headersonly=True)
        maintype = headers.get_content_maintype()
        if maintype == "multipart":
            boundary = headers.get_boundary()
            if boundary is not None and headers.get_content_subtype() != "digest":
                self.multipart(boundary, body_start, end, depth)
                return True
            return False
        if maintype == "message":
            return False
        self.leaf(headers, header_end, eol, body_start, end, in_multipart)
        return False

    def leaf(self, headers: Message, header_end: int, eol: bytes, body_start: int, end: int,
             in_multipart: bool) -> None:
        """A leaf part whose header block ends at ``header_end``: note it if worth streaming."""
        raw = self.raw
        body_end = end
        if in_multipart:  # the line break before the next boundary belongs to the boundary
            if raw[body_end - 2 : body_end] == b"\r\n" and body_end - 2 >= body_start:
                body_end -= 2
            elif body_end > body_start and raw[body_end - 1] in (0x0D, 0x0A):
                body_end -= 1
        if body_end - body_start <= self.threshold:
            return
        cte = str(headers.get("content-transfer-encoding", "")).lower()
        if cte not in ("base64", "7bit", "8bit", "binary"):
            return
        try:
            if not self.wants(headers):
                return
        except Exception:  # noqa: BLE001 - undecidable: leave it to the normal path
            return
        self.leaves.append(_Leaf(header_end, eol, body_start, body_end, cte == "base64"))

    def multipart(self, boundary: str, start: int, end: int, depth: int) -> None:
        """Scan the parts of a multipart body in [start, end)."""
        try:
            sep = b"--" + boundary.encode("ascii", "surrogateescape")
        except UnicodeEncodeError:
            return
        found = self._next_boundary(sep, start, end)
        while found is not None:
            _line_start, pos, close = found
            if close:
                return
            while pos < end:  # consecutive boundary lines are one separator
                again = self._boundary_at(pos, sep)
                if again is None:
                    break
                pos = again[0]
            if not self.part(sep, _line_start, pos, end, depth):
                return
            found = self._next_boundary(sep, pos, end)
            part_end = found[0] if found is not None else end
            if part_end > pos:
                self.entity(pos, part_end, True, depth + 1)

    def part(self, sep: bytes, line_start: int, pos: int, end: int, depth: int) -> bool:
        """A part of a multipart starts at ``pos`` (its boundary line at ``line_start``); False
        stops the scan of that multipart."""
        return True


class _PartLimiter(_Scanner):
    """Counts the leaf parts and cuts every part after the first ``limit`` (see :func:`limit_parts`)."""

    def __init__(self, raw: bytes, limit: int, policy: Policy) -> None:
        super().__init__(raw, len(raw) + 1, lambda _headers: False, policy)
        self.limit = limit
        self.count = 0
        self.cuts: list[tuple[int, int]] = []

    def entity(self, start: int, end: int, in_multipart: bool, depth: int) -> bool:
        container = super().entity(start, end, in_multipart, depth)
        if not container:
            self.count += 1
        return container

    def part(self, sep: bytes, line_start: int, pos: int, end: int, depth: int) -> bool:
        if self.count < self.limit:
            return True
        found: tuple[int, int, bool] | None = (line_start, pos, False)
        while found is not None and not found[2]:  # up to the close boundary of this multipart
            found = self._next_boundary(sep, found[1], end)
        self.cuts.append((line_start, found[0] if found is not None else end))
        return False


@dataclass
class CutParts:
    """Result of :func:`limit_parts`: the message without the parts beyond the limit, and those parts."""

    skeleton: bytes
    limit: int
    #: how many parts were cut (a cut multipart counts as one)
    count: int
    #: ``{"filename", "content_type", "size", "reason"}`` of the first cut parts, then one summary entry
    removed: list[dict[str, object]] = field(default_factory=list)


_CUT_LISTED = 100
_CUT_TYPE_RE = re.compile(rb"(?im)^content-type:[ \t]*([\w.+-]+/[\w.+-]+)")
_CUT_NAME_RE = re.compile(rb"(?im)[; \t](?:file)?name\*?(?:\*\d+\*?)?[ \t]*=[ \t]*\"?([^\";\r\n]{1,200})")


def _cut_entries(raw: bytes, start: int, end: int, sep: bytes, scanner: _Scanner, reason: str,
                 entries: list[dict[str, object]]) -> int:
    """List the parts in a cut range (the first ones by name and type); returns how many there are."""
    count = 0
    found = scanner._next_boundary(sep, start, end) if sep else None
    while found is not None and not found[2]:
        following = scanner._next_boundary(sep, found[1], end)
        part_end = following[0] if following is not None else end
        count += 1
        if len(entries) < _CUT_LISTED:
            head = raw[found[1] : min(part_end, found[1] + 4096)]
            ctype, name = _CUT_TYPE_RE.search(head), _CUT_NAME_RE.search(head)
            entries.append({"filename": name.group(1).decode("ascii", "replace").strip() if name else "",
                            "content_type": ctype.group(1).decode("ascii").lower() if ctype else "text/plain",
                            "size": part_end - found[1], "reason": reason})
        found = following
    return count


def limit_parts(raw: bytes, limit: int, policy: Policy) -> CutParts | None:
    """Cut the MIME parts after the first ``limit`` leaf parts out of ``raw`` (by byte offsets, as
    :func:`stream_large_parts` scans), so that the parser never builds them: a mail of 100,000
    tiny attachments then costs what one of ``limit`` parts does. None when there are not more.

    Each cut runs from the boundary line of the first part beyond the limit to the close boundary
    of its multipart; an enclosing multipart's later parts are cut too. The first
    :data:`_CUT_LISTED` cut parts are listed by name and type, the rest in one summary entry.
    """
    limiter = _PartLimiter(raw, limit, policy)
    limiter.entity(0, len(raw), False, 0)
    if not limiter.cuts:
        return None
    reason = f"beyond mail.max_parts ({limit} parts); kept in the original message"
    entries: list[dict[str, object]] = []
    count = 0
    pieces: list[memoryview] = []
    view = memoryview(raw)
    pos = 0
    for start, end in sorted(limiter.cuts):
        line_end = limiter._line_end(start, end)
        sep = raw[start:line_end].rstrip(b"\r\n \t")
        count += _cut_entries(raw, start, end, sep, limiter, reason, entries)
        pieces.append(view[pos:start])
        pos = end
    pieces.append(view[pos:])
    if count > len(entries):
        rest = count - len(entries)
        entries.append({"filename": f"({rest} more parts)", "content_type": "multipart/mixed",
                        "size": sum(e - s for s, e in limiter.cuts), "reason": reason})
    return CutParts(skeleton=b"".join(pieces), limit=limit, count=count, removed=entries)


# --------------------------------------------------------------------------- decoding


def _identity_chunks(raw: bytes, start: int, end: int) -> Iterator[bytes]:
    view = memoryview(raw)
    for pos in range(start, end, WINDOW):
        yield view[pos : min(end, pos + WINDOW)].tobytes()


def _base64_chunks(raw: bytes, start: int, end: int) -> Iterator[bytes]:
    """Decode base64 in windows; the same bytes as ``Message.get_payload(decode=True)`` or
    :class:`NotStreamable` when the body is irregular (that path then decodes it)."""
    view = memoryview(raw)
    carry = b""
    padding = b""
    total = 0
    for pos in range(start, end, WINDOW):
        data = view[pos : min(end, pos + WINDOW)].tobytes().translate(None, b"\r\n")
        if not data:
            continue
        total += len(data)
        if padding:  # only more '=' may follow the first '='
            if data.strip(b"="):
                raise NotStreamable("base64 data after padding")
            padding += data
            continue
        rest = data.translate(None, _B64_ALPHABET)
        if rest:
            if rest.strip(b"="):
                raise NotStreamable("characters outside the base64 alphabet")
            cut = data.index(b"=")
            if data[cut:].strip(b"="):
                raise NotStreamable("base64 data after padding")
            data, padding = data[:cut], data[cut:]
        if carry:
            data = carry + data
        usable = len(data) - len(data) % 4
        carry = data[usable:]
        if usable:
            yield binascii.a2b_base64(memoryview(data)[:usable])
    # the email package: length % 4 padding added, then a strict decode (else a lenient one)
    rem = total % 4
    if rem == 1:
        raise NotStreamable("base64 length is 1 mod 4")
    final = carry + padding + (b"==="[: 4 - rem] if rem else b"")
    if final.count(b"=") > 2 or len(final) % 4:
        raise NotStreamable("irregular base64 padding")
    if final:
        yield binascii.a2b_base64(final)


# --------------------------------------------------------------------------- entry point


def stream_large_parts(raw: bytes, storage: AttachmentStorage, threshold: int,
                       wants: Callable[[Message], bool], policy: Policy) -> LargeParts | None:
    """Stream the leaf bodies of ``raw`` larger than ``threshold`` into ``storage``.

    ``wants(headers)`` is asked for each candidate part (a headers-only :class:`Message` parsed
    with ``policy``) and says whether it would become an attachment. Returns None when no part was
    streamed (parse ``raw`` as usual), else the skeleton and the stored parts. Storage errors and
    irregular bodies only keep the part in the skeleton; this function raises only on bugs.
    """
    scanner = _Scanner(raw, threshold, wants, policy)
    scanner.entity(0, len(raw), False, 0)
    if not scanner.leaves:
        return None
    view = memoryview(raw)
    token = secrets.token_hex(8)
    pieces: list[bytes | memoryview] = []
    stored: dict[str, StoredPart] = {}
    pos = 0
    for index, leaf in enumerate(scanner.leaves):
        chunks = (_base64_chunks if leaf.base64 else _identity_chunks)(raw, leaf.body_start, leaf.body_end)
        try:
            key, size, sha256 = storage.put_stream(chunks)
        except Exception:  # noqa: BLE001 - NotStreamable, or a storage error: normal path for this part
            continue
        value = f"{sha256} {size} {token}-{index}"
        stored[value] = StoredPart(key, size, sha256)
        pieces += [view[pos : leaf.header_end], f"{MARKER_HEADER}: {value}".encode("ascii") + leaf.eol,
                   view[leaf.header_end : leaf.body_start]]
        pos = leaf.body_end
    if not stored:
        return None
    pieces.append(view[pos:])
    return LargeParts(skeleton=b"".join(pieces), stored=stored)
