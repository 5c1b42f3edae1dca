"""A local Maildir as a mailbox: read ``new/`` and ``cur/``, delete the files once imported.

Messages are returned oldest first in Dovecot's order of Maildir file names: the leading seconds,
then the ``.M<microseconds>`` part, then the name (``<secs>.M<usecs>P<pid>Q<n>.<host>``). The bytes
are the file's bytes (Maildir files normally use LF line endings).
"""

from __future__ import annotations

import mailbox
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from helpdesk_core.errors import MailboxError
from helpdesk_core.providers.base import MailboxSession, RemoteMessage

from .errors import MAIL_ERRORS, translate

__all__ = ["MaildirSession", "maildir_sort_key"]

_NAME = re.compile(r"^(\d+)(?:\.M(\d+))?")


def maildir_sort_key(name: str) -> tuple[int, int, str]:
    """Sort key of a Maildir file name or key: (seconds, microseconds, name)."""
    match = _NAME.match(name)
    if not match:
        return (2**63, 0, name)
    return (int(match.group(1)), int(match.group(2) or 0), name)


class MaildirSession(MailboxSession):
    """A Maildir folder on this machine (``config["path"]``). Keys are Maildir keys (the file name
    without the ``:2,<flags>`` suffix), so a file moved from ``new/`` to ``cur/`` keeps its key.

    Raises :class:`MailboxError` ``folder_missing`` when the path does not exist or is no Maildir.
    """

    stable_keys = True  # fetched ahead while the previous batch is imported

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config: dict[str, Any] = {"protocol": "maildir", **config}
        self.path: str = os.path.abspath(os.path.expanduser(str(self.config["path"])))
        if not os.path.isdir(self.path):
            raise MailboxError(f"Maildir {self.path!r} does not exist: check the path.",
                               kind="folder_missing", temporary=False)
        missing = [sub for sub in ("cur", "new", "tmp") if not os.path.isdir(os.path.join(self.path, sub))]
        if missing:
            raise MailboxError(
                f"{self.path!r} is not a Maildir (no {', '.join(m + '/' for m in missing)} folder): "
                "give the Maildir folder itself, the one holding cur/, new/ and tmp/.",
                kind="folder_missing", temporary=False)
        try:
            self.box: mailbox.Maildir | None = mailbox.Maildir(self.path, factory=None, create=False)
        except MAIL_ERRORS as exc:
            raise translate(exc, config=self.config, step="connect") from exc

    def _files(self) -> list[tuple[str, str]]:
        """``(key, relative path)`` of every message in ``new/`` and ``cur/``, oldest first."""
        files: list[tuple[str, str]] = []
        colon = self._box().colon
        for sub in ("new", "cur"):
            try:
                names = os.listdir(os.path.join(self.path, sub))
            except MAIL_ERRORS as exc:
                raise translate(exc, config=self.config, step="fetch") from exc
            for name in names:
                if name.startswith("."):
                    continue
                files.append((name.split(colon)[0], os.path.join(sub, name)))
        files.sort(key=lambda item: maildir_sort_key(item[0]))
        return files

    def count(self) -> int | None:
        """Number of message files in ``new/`` and ``cur/``."""
        return len(self._files())

    def fetch(self, *, batch_size: int = 100) -> Iterator[list[RemoteMessage]]:
        """Yield the files' bytes, oldest first; files removed meanwhile are skipped."""
        size = max(1, int(batch_size))
        files = self._files()
        for start in range(0, len(files), size):
            batch: list[RemoteMessage] = []
            for key, rel in files[start:start + size]:
                message = self._read(key, rel)
                if message is not None:
                    batch.append(message)
            if batch:
                yield batch

    def _read(self, key: str, rel: str) -> RemoteMessage | None:
        full = os.path.join(self.path, rel)
        try:
            with open(full, "rb") as handle:
                raw = handle.read()
        except FileNotFoundError:  # moved to cur/ or deleted by another client since listing
            try:
                raw = self._box().get_bytes(key)
            except (KeyError, FileNotFoundError):
                return None
        except MAIL_ERRORS as exc:
            raise translate(exc, config=self.config, step="fetch") from exc
        return RemoteMessage(key=key, raw=raw, size=len(raw))

    def delete(self, keys: Sequence[str]) -> None:
        """Remove the files; keys already gone are ignored."""
        box = self._box()
        for key in keys:
            try:
                box.discard(key)
            except MAIL_ERRORS as exc:
                raise translate(exc, config=self.config, step="delete") from exc

    def close(self) -> None:
        """Nothing to release; deletions are immediate."""
        self.box = None

    def _box(self) -> mailbox.Maildir:
        if self.box is None:
            raise MailboxError(f"The Maildir session for {self.path!r} is closed.", kind="server_error")
        return self.box
