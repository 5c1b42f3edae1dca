"""POP3 sessions with poplib: connect (ssl / stls / none), log in, list, retrieve, delete.

Like :mod:`helpdesk_mail_generic.imap`, how to log in is a parameter, so an OAuth provider reuses
this module and only sends ``AUTH XOAUTH2`` itself::

    session = Pop3Session(config, login=lambda pop: pop._shortcmd("AUTH XOAUTH2 " + b64))

POP3 makes ``DELE`` permanent only at ``QUIT``: :meth:`Pop3Session.checkpoint` quits and
reconnects so deletions become permanent batch by batch; if the process dies before that the server
rolls them back and the importer's ledger recognises the re-fetched messages.
"""

from __future__ import annotations

import logging
import os
import poplib
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from helpdesk_core.errors import MailboxError
from helpdesk_core.providers.base import MailboxSession, RemoteMessage

from .errors import MAIL_ERRORS, Opening, translate
from .imap import tls_context

__all__ = ["Pop3Login", "Pop3Session", "password_login"]

log = logging.getLogger(__name__)

#: logs a connected, not yet authenticated POP3 connection in; raise error_proto/MailboxError on failure
Pop3Login = Callable[[poplib.POP3], None]

#: default seconds for connecting and for every read when the configuration has no ``timeout``
DEFAULT_TIMEOUT = 30.0
#: longest line accepted (poplib's own limit of 2048 bytes rejects real-world HTML mail)
MAX_LINE = 1024 * 1024
#: messages larger than this (by ``LIST``) are spooled to a temporary file while ``RETR`` reads them,
#: so the session holds one copy of a big message (the bytes read back), not its lines plus a join
SPOOL_BYTES = 1024 * 1024
#: bytes collected in memory before they are written to the spool file
_SPOOL_WRITE = 1024 * 1024


def password_login(username: str, password: str) -> Pop3Login:
    """The ``login`` of the generic provider: ``USER`` + ``PASS``."""

    def login(pop: poplib.POP3) -> None:
        pop.user(username)
        pop.pass_(password)

    return login


class _LongLines:
    """poplib's ``_getline`` with a 1 MiB instead of a 2 KiB line limit (no global patching)."""

    file: Any

    def _getline(self) -> tuple[bytes, int]:
        line: bytes = self.file.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise poplib.error_proto("line too long")
        if not line:
            raise poplib.error_proto("-ERR EOF")
        octets = len(line)
        if line[-2:] == b"\r\n":
            return line[:-2], octets
        return line[:-1], octets


class _POP3(_LongLines, poplib.POP3):
    pass


class _POP3_SSL(_LongLines, poplib.POP3_SSL):  # noqa: N801 - mirrors poplib's name
    pass


@dataclass
class _Entry:
    number: int
    uidl: str | None
    size: int | None = None


class Pop3Session(MailboxSession):
    """One POP3 connection (reopened by :meth:`checkpoint`) for one import cycle.

    ``config`` keys used: ``host``, ``port``, ``security`` (``ssl``/``starttls``/``none``),
    ``ca_file``, ``timeout``, and ``username``/``email`` for messages. Keys are message numbers of
    the current connection; :meth:`fetch` renumbers by UIDL after a :meth:`checkpoint`.
    """

    def __init__(self, config: Mapping[str, Any], *, login: Pop3Login) -> None:
        self.config: dict[str, Any] = {"protocol": "pop3", **config}
        self.pop: poplib.POP3 | None = None
        self._login = login
        self._generation = 0  # bumped on every (re)connect
        self._dirty = False  # DELE sent since the last QUIT
        self._deleted = 0  # messages deleted this session (for servers without UIDL)
        self._open()

    # ---- connection --------------------------------------------------------------------------

    def _open(self) -> None:
        pop: poplib.POP3 | None = None
        with Opening(self.config, translate, MAIL_ERRORS, drop=lambda: _drop(pop)) as opening:
            pop = self._connect()
            opening.step = "login"
            self._login(pop)
        self.pop = pop
        self._generation += 1
        self._dirty = False

    def _connect(self) -> poplib.POP3:
        """TCP connection secured as configured; ``starttls`` never falls back to plain text."""
        security = self.config.get("security")
        host, port = self.config["host"], self.config.get("port")
        timeout = float(self.config.get("timeout") or DEFAULT_TIMEOUT)
        if security == "ssl":
            return _POP3_SSL(host, port or 995, context=tls_context(self.config), timeout=timeout)
        if security not in ("starttls", "none"):
            raise MailboxError(f"Unknown security {security!r}: use ssl, starttls or none.", kind="tls")
        pop = _POP3(host, port or 110, timeout=timeout)
        if security == "starttls":
            with Opening(self.config, translate, MAIL_ERRORS, drop=lambda: _drop(pop), step="tls"):
                try:
                    caps = pop.capa()
                except poplib.error_proto:
                    caps = {}
                if "STLS" not in caps:
                    raise poplib.error_proto("-ERR STLS not supported by server")
                pop.stls(context=tls_context(self.config))
        return pop

    def _quit(self, step: str) -> None:
        pop, self.pop = self.pop, None
        if pop is None:
            return
        try:
            pop.quit()
        except MAIL_ERRORS as exc:
            _drop(pop)
            raise translate(exc, config=self.config, step=step) from exc

    # ---- MailboxSession ----------------------------------------------------------------------

    def count(self) -> int | None:
        """Messages waiting (``STAT``)."""
        try:
            return int(self._pop().stat()[0])
        except MAIL_ERRORS as exc:
            raise translate(exc, config=self.config, step="count") from exc

    def fetch(self, *, batch_size: int = 100) -> Iterator[list[RemoteMessage]]:
        """Yield messages in message-number order (= arrival order), ``RETR`` with CRLF restored."""
        size = max(1, int(batch_size))
        yielded: set[str] = set()
        yielded_count = 0
        generation = -1
        pending: list[_Entry] = []
        while True:
            if generation != self._generation:  # first call, or reconnected by checkpoint()
                generation = self._generation
                listing = self._listing()
                if all(e.uidl is not None for e in listing):
                    pending = [e for e in listing if e.uidl not in yielded]
                else:  # no UIDL: the messages yielded and kept come first
                    pending = listing[max(0, yielded_count - self._deleted):]
            if not pending:
                return
            chunk, pending = pending[:size], pending[size:]
            batch: list[RemoteMessage] = []
            pop = self._pop()
            for entry in chunk:
                try:
                    raw = _retr(pop, entry)
                except MAIL_ERRORS as exc:
                    raise translate(exc, config=self.config, step="fetch") from exc
                batch.append(RemoteMessage(key=str(entry.number), raw=raw, size=len(raw)))
                if entry.uidl is not None:
                    yielded.add(entry.uidl)
                yielded_count += 1
            yield batch
            batch = []  # drop this generator's reference before the next (maybe big) RETR

    def _listing(self) -> list[_Entry]:
        """``LIST`` message numbers plus ``UIDL`` ids (when the server has UIDL), in order."""
        pop = self._pop()
        try:
            sizes: dict[int, int | None] = {}
            for line in pop.list()[1]:
                fields = line.split()
                sizes[int(fields[0])] = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None
            numbers = sorted(sizes)
            uidls: dict[int, str] = {}
            try:
                for line in pop.uidl()[1]:
                    number, uid = line.split()[:2]
                    uidls[int(number)] = uid.decode("ascii", "replace")
            except poplib.error_proto:
                pass
        except MAIL_ERRORS as exc:
            raise translate(exc, config=self.config, step="fetch") from exc
        return [_Entry(n, uidls.get(n), sizes[n]) for n in numbers]

    def delete(self, keys: Sequence[str]) -> None:
        """``DELE`` each message number; permanent at the next :meth:`checkpoint` or :meth:`close`."""
        pop = self._pop()
        for key in keys:
            try:
                pop.dele(int(key))
            except poplib.error_proto as exc:
                if b"deleted" in (exc.args[0] if exc.args and isinstance(exc.args[0], bytes) else b""):
                    continue  # "-ERR Message is deleted." - already marked in this connection
                raise translate(exc, config=self.config, step="delete") from exc
            except MAIL_ERRORS as exc:
                raise translate(exc, config=self.config, step="delete") from exc
            self._dirty = True
            self._deleted += 1

    def checkpoint(self) -> None:
        """``QUIT`` (making the deletions permanent) and log in again; nothing to do if none."""
        if not self._dirty:
            return
        self._quit("checkpoint")
        self._open()

    def close(self) -> None:
        """``QUIT``, which makes the deletions permanent. A failure is logged, not raised: the
        server then rolls the deletions back and the next cycle re-fetches (the ledger skips them)."""
        try:
            self._quit("close")
        except MailboxError as exc:
            log.warning("POP3 QUIT failed, deletions were rolled back: %s", exc)

    def _pop(self) -> poplib.POP3:
        if self.pop is None:
            raise MailboxError(f"The POP3 session for {self.config.get('host')} is closed.",
                               kind="server_error", temporary=True)
        return self.pop


def _retr(pop: poplib.POP3, entry: _Entry) -> bytes:
    """``RETR`` one message: the exact bytes with CRLF line ends and dot-stuffing undone.

    A message over :data:`SPOOL_BYTES` is written to a temporary file line by line and read back
    in one piece (one allocation of its size, as imaplib reads an IMAP literal), instead of
    poplib's list of lines joined into a second copy (~5x the message at the peak).
    """
    if entry.size is None or entry.size <= SPOOL_BYTES:
        return b"".join(line + b"\r\n" for line in pop.retr(entry.number)[1])
    pop._putcmd(f"RETR {entry.number}")  # what poplib's _longcmd does, without collecting lines
    pop._getresp()
    with tempfile.TemporaryFile(buffering=0) as spool:
        pending = bytearray()
        while True:
            line, _ = pop._getline()
            if line == b".":
                break
            if line[:2] == b"..":
                line = line[1:]
            pending += line
            pending += b"\r\n"
            if len(pending) >= _SPOOL_WRITE:
                _write_all(spool.fileno(), pending)
                pending.clear()
        _write_all(spool.fileno(), pending)
        del pending
        spool.seek(0)
        return spool.readall()  # FileIO sizes the result from fstat: a single bytes object


def _write_all(fd: int, data: bytearray) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _drop(pop: poplib.POP3 | None) -> None:
    """Close the socket without QUIT (the server rolls back any DELE)."""
    if pop is None:
        return
    try:
        pop.close()
    except Exception:  # noqa: BLE001
        pass
