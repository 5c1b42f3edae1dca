"""Attachment storage: a content-addressed local folder by default.

Files are written before the ticket commits; a crash in between leaves only an unreferenced file,
and identical content is stored once.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO


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
        if path not in self._made:
            path.mkdir(parents=True, exist_ok=True)
            self._made.add(path)
        return path

    def _write(self, write: Callable[[BinaryIO], object], key: str | None,
               digest: Any = None) -> str:
        """Write through ``write`` into a temporary file, then move it to the path of ``key`` (or of
        ``digest``'s hex digest once written). An existing blob is kept; failures leave nothing."""
        folder = self._dir(self.path(key).parent if key else self.root)
        tmp = folder / f".tmp-{os.getpid()}-{threading.get_ident()}-{uuid.uuid4().hex}"
        try:
            with open(tmp, "wb") as fh:
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
