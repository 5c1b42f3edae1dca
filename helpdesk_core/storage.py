"""Attachment storage: a content-addressed local folder by default, and the headers a stored file
is served with (:func:`download_headers`).

Files are written before the ticket commits; a crash in between leaves only an unreferenced file,
and identical content is stored once.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

from helpdesk_core.mail.controls import strip_controls
from helpdesk_core.mail.filetypes import safe_content_type

_ASCII_FALLBACK_RE = re.compile(r'[^\x20-\x7e]|["\\]')


#: folders :meth:`AttachmentStorage._dir` remembers as made (then it forgets them and checks again)
MADE_FOLDERS_KEPT = 1024


class AttachmentStorage:
    """Stores blobs by sha256 under ``root/ab/cd/<sha256>``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._made: set[Path] = set()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / key[2:4] / key

    def put(self, data: bytes, sha256: str | None = None) -> str:
        """Store ``data``; return its key (the sha256 hex digest)."""
        key = sha256 or hashlib.sha256(data).hexdigest()
        if not self.path(key).exists():
            self._write(lambda fh: fh.write(data), key)
        return key

    def put_stream(self, chunks: Iterable[bytes]) -> tuple[str, int, str]:
        """Store the concatenation of ``chunks`` without holding it in memory.

        The chunks are written to a temporary file while their sha256 is computed, then the file
        is renamed atomically to its content-addressed path (or dropped when that content is
        already stored). Returns ``(key, size, sha256)``; the key is the sha256 hex digest, as with
        :meth:`put`. When iterating ``chunks`` raises, the temporary file is removed and the
        exception propagates (nothing is stored).
        """
        digest = hashlib.sha256()
        size = 0

        def write(fh: BinaryIO) -> None:
            nonlocal size
            for chunk in chunks:
                if chunk:
                    digest.update(chunk)
                    fh.write(chunk)
                    size += len(chunk)

        key = self._write(write, None, digest)
        return key, size, key

    def _dir(self, path: Path) -> Path:
        """``path``, created with its missing parents readable by the owner only (0700: the blobs
        are mail); the storage root itself is made 0700 when it is ours."""
        if path not in self._made:
            if self.root not in self._made:
                self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
                st = self.root.stat()
                if st.st_mode & 0o077 and st.st_uid == os.getuid():
                    os.chmod(self.root, 0o700)
                self._made.add(self.root)
            missing = [p for p in [path, *path.parents] if p != self.root and self.root in p.parents
                       and not p.exists()]
            for folder in reversed(missing):
                folder.mkdir(mode=0o700, exist_ok=True)
            if len(self._made) >= MADE_FOLDERS_KEPT:  # a backlog fills up to 65,536 ab/cd folders:
                self._made = {self.root}               # remember some, not all (memory flat)
            self._made.add(path)
        return path

    def _write(self, write: Callable[[BinaryIO], object], key: str | None,
               digest: Any = None) -> str:
        """Write through ``write`` into a temporary file, then move it to the path of ``key`` (or of
        ``digest``'s hex digest once written). An existing blob is kept; failures leave nothing."""
        folder = self._dir(self.path(key).parent if key else self.root)
        tmp = folder / f".tmp-{os.getpid()}-{threading.get_ident()}-{uuid.uuid4().hex}"
        try:
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as fh:
                write(fh)
            key = key or digest.hexdigest()
            dest = self.path(key)
            if dest.exists():
                os.unlink(tmp)
            else:
                os.replace(tmp, self._dir(dest.parent) / key)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return key

    def open(self, key: str) -> BinaryIO:
        return open(self.path(key), "rb")

    def get(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self.path(key).exists()


def download_headers(filename: str, content_type: str, head: bytes = b"") -> dict[str, str]:
    r"""HTTP headers for serving a stored attachment: whoever sends a file to a browser uses these.

    ``Content-Disposition: attachment`` (the browser saves, never renders, the file) with an ASCII
    ``filename`` and the exact UTF-8 ``filename*`` (RFC 6266 / RFC 5987); ``X-Content-Type-Options:
    nosniff`` and a sandboxing ``Content-Security-Policy`` (the browser never guesses a renderable
    type); ``Content-Type`` made safe again by :func:`~helpdesk_core.mail.filetypes.safe_content_type`
    (for rows stored before types were checked; ``head`` is the file's first bytes, if at hand).
    Names lose control characters, so no value can break a header line.

    >>> download_headers("Grüße.pdf", "application/pdf")["Content-Disposition"]
    'attachment; filename="Gr__e.pdf"; filename*=UTF-8\'\'Gr%C3%BC%C3%9Fe.pdf'
    """
    name = strip_controls(filename or "")
    disposition = "attachment"
    if name:
        disposition += f'; filename="{_ASCII_FALLBACK_RE.sub("_", name)}"'
        if not name.isascii() or _ASCII_FALLBACK_RE.search(name):
            disposition += f"; filename*=UTF-8''{quote(name, safe='')}"
    else:
        disposition += '; filename="attachment"'
    return {
        "Content-Type": safe_content_type(name, strip_controls(content_type or ""), head),
        "Content-Disposition": disposition,
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
