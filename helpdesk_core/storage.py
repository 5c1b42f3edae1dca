"""Attachment storage: a content-addressed local folder by default.

Files are written before the ticket commits; a crash in between leaves only an unreferenced file,
and identical content is stored once.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO


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
        dest = self.path(key)
        if dest.exists():
            return key
        if dest.parent not in self._made:
            dest.parent.mkdir(parents=True, exist_ok=True)
            self._made.add(dest.parent)
        tmp = dest.parent / f".tmp-{key}-{os.getpid()}-{threading.get_ident()}"
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, dest)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return key

    def put_stream(self, chunks: Iterable[bytes]) -> tuple[str, int, str]:
        """Store the concatenation of ``chunks`` without holding it in memory.

        The chunks are written to a temporary file in ``root`` while their sha256 is computed, then
        the file is renamed atomically to its content-addressed path (or dropped when that content
        is already stored). Returns ``(key, size, sha256)``; the key is the sha256 hex digest, as
        with :meth:`put`. When iterating ``chunks`` raises, the temporary file is removed and the
        exception propagates (nothing is stored).
        """
        if self.root not in self._made:
            self.root.mkdir(parents=True, exist_ok=True)
            self._made.add(self.root)
        tmp = self.root / f".tmp-stream-{os.getpid()}-{threading.get_ident()}-{uuid.uuid4().hex}"
        digest = hashlib.sha256()
        size = 0
        try:
            with open(tmp, "wb") as fh:
                for chunk in chunks:
                    if chunk:
                        digest.update(chunk)
                        fh.write(chunk)
                        size += len(chunk)
            key = digest.hexdigest()
            dest = self.path(key)
            if dest.exists():
                os.unlink(tmp)
                return key, size, key
            if dest.parent not in self._made:
                dest.parent.mkdir(parents=True, exist_ok=True)
                self._made.add(dest.parent)
            os.replace(tmp, dest)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return key, size, key

    def open(self, key: str) -> BinaryIO:
        return open(self.path(key), "rb")

    def get(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self.path(key).exists()
