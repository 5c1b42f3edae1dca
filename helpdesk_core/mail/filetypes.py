"""The content type stored for an attachment: what its bytes and its name say, never a type a
browser would render as a document or run (:func:`safe_content_type`).

A mail's declared ``Content-Type`` is the sender's word: ``report.txt`` declared ``text/html`` or
``image.png`` declared ``image/svg+xml`` would make whoever serves the file with its stored type
serve script. :func:`helpdesk_core.storage.download_headers` applies the same rule when serving.
The parser passes the first bytes of each attachment; for a part it streamed into the storage
(:mod:`helpdesk_core.mail.largeparts`) it has none, and the name and declared type decide.
"""

from __future__ import annotations

import mimetypes
import re

__all__ = ["safe_content_type", "SNIFF_BYTES"]

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
