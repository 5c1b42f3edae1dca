"""IMAP sessions with imapclient: connect (ssl / starttls / none), log in, select, fetch, delete.

How to log in is a parameter (``login``), so a provider for another service reuses this module
unchanged and only supplies its own login step, e.g. XOAUTH2::

    session = ImapSession(config, login=lambda client: client.oauth2_login(user, token))

Guarantees: TLS certificates are always verified (``ca_file`` names the CA to trust instead of the
system store); ``security=starttls`` never falls back to plain text; every socket operation has a
timeout; messages are fetched with ``BODY.PEEK[]`` so ``\\Seen`` is never set; imapclient's protocol
logging works as before when its ``imapclient.imaplib`` logger is at DEBUG (it costs ~7x at fetch),
but is switched off in imaplib otherwise (:func:`quiet_imaplib`). Messages larger than
:data:`BIG_MESSAGE_BYTES` (by ``RFC822.SIZE``) are fetched and yielded one at a time, so two big
messages are never in memory together.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from imapclient import IMAPClient, SocketTimeout
from imapclient.exceptions import CapabilityError

from helpdesk_core.errors import MailboxError
from helpdesk_core.providers.base import MailboxSession, RemoteMessage

from .errors import MAIL_ERRORS, Opening, close_quietly, translate

__all__ = ["ImapLogin", "ImapSession", "password_login", "socket_timeout", "tls_context"]

#: logs a connected, not yet authenticated client in; raise LoginError/MailboxError on failure
ImapLogin = Callable[[IMAPClient], None]

#: timeouts when the configuration has no ``timeout`` setting
DEFAULT_TIMEOUT = SocketTimeout(connect=10, read=60)
#: longest wait for the TCP connection when ``timeout`` is larger
MAX_CONNECT_TIMEOUT = 10.0

#: messages larger than this (``RFC822.SIZE``) are fetched and yielded alone, not with their batch
BIG_MESSAGE_BYTES = 8 * 1024 * 1024

_BODY = b"BODY[]"
_SIZE = b"RFC822.SIZE"
_DELETED = b"\\Deleted"


def password_login(username: str, password: str) -> ImapLogin:
    """The ``login`` of the generic provider: IMAP ``LOGIN`` with username and password."""

    def login(client: IMAPClient) -> None:
        client.login(username, password)

    return login


def socket_timeout(config: Mapping[str, Any]) -> SocketTimeout:
    """``timeout`` seconds for reads, at most 10 s for connecting; (10, 60) when not set."""
    seconds = config.get("timeout")
    if seconds is None:
        return DEFAULT_TIMEOUT
    seconds = float(seconds)
    return SocketTimeout(connect=min(seconds, MAX_CONNECT_TIMEOUT), read=seconds)


def tls_context(config: Mapping[str, Any]) -> ssl.SSLContext:
    """A verifying TLS context; with ``ca_file`` it trusts that PEM file (e.g. a self-signed cert)."""
    ca_file = config.get("ca_file") or None
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ValueError) as exc:  # FileNotFoundError, ssl.SSLError (not PEM)
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
        raise MailboxError(f"Cannot load the CA file {ca_file!r} ({reason}): check the --ca-file path; "
                           "it must be a PEM certificate.", kind="certificate", temporary=False) from exc


class ImapSession(MailboxSession):
    """One IMAP connection with ``folder`` selected read-write, for one import cycle.

    ``config`` keys used: ``host``, ``port``, ``security`` (``ssl``/``starttls``/``none``),
    ``folder`` (default ``INBOX``), ``ca_file``, ``timeout``, ``after_import`` (``delete``, the
    default, or ``move`` to ``move_to_folder``), and ``username``/``email`` for messages.
    ``login`` authenticates the connected client. Raises :class:`MailboxError` (see
    :func:`helpdesk_mail_generic.errors.translate`).

    Keys are UIDs; :attr:`uidvalidity` is the folder's UIDVALIDITY (UIDs are only comparable
    between sessions while it stays the same).
    """

    stable_keys = True  # fetched ahead while the previous batch is imported

    def __init__(self, config: Mapping[str, Any], *, login: ImapLogin) -> None:
        self.config: dict[str, Any] = {"protocol": "imap", "folder": "INBOX", **config}
        self.folder: str = self.config["folder"] or "INBOX"
        #: where :meth:`delete` moves imported mail (None: it deletes it)
        self.move_to: str | None = (self.config.get("move_to_folder") or None
                                    if self.config.get("after_import") == "move" else None)
        self.client: IMAPClient | None = None
        #: UIDVALIDITY of the selected folder
        self.uidvalidity: int | None = None
        self._exists: int | None = None
        with Opening(self.config, translate, MAIL_ERRORS, drop=self._drop) as opening:
            self.client = self._connect()
            quiet_imaplib(self.client)
            opening.step = "login"
            login(self.client)
            opening.step = "select"
            info = self.client.select_folder(self.folder)
        self.uidvalidity = _int_or_none(info.get(b"UIDVALIDITY"))
        self._exists = _int_or_none(info.get(b"EXISTS"))

    def _connect(self) -> IMAPClient:
        """Open the TCP connection and secure it as configured (never silently unencrypted)."""
        security = self.config.get("security")
        host, port = self.config["host"], self.config.get("port")
        timeout = socket_timeout(self.config)
        if security == "ssl":
            return IMAPClient(host, port=port or 993, ssl=True, ssl_context=tls_context(self.config),
                              timeout=timeout)
        if security not in ("starttls", "none"):
            raise MailboxError(f"Unknown security {security!r}: use ssl, starttls or none.", kind="tls")
        client = IMAPClient(host, port=port or 143, ssl=False, timeout=timeout)
        if security == "starttls":
            self.client = client  # so a failure below closes it
            try:
                offered = client.has_capability("STARTTLS")
                if not offered:
                    raise CapabilityError("Server does not support STARTTLS capability")
                client.starttls(tls_context(self.config))
            except MAIL_ERRORS as exc:
                raise translate(exc, config=self.config, step="tls") from exc
        return client

    # ---- MailboxSession --------------------------------------------------------------------

    def count(self) -> int | None:
        """Messages in the folder (SELECT's EXISTS, minus what this session expunged)."""
        return self._exists

    def fetch(self, *, batch_size: int = 100) -> Iterator[list[RemoteMessage]]:
        """Yield messages in UID order (= arrival order) in batches, never setting ``\\Seen``.

        The sizes (``RFC822.SIZE``) of each batch are fetched first; a message larger than
        :data:`BIG_MESSAGE_BYTES` is fetched and yielded as a batch of its own (the smaller ones
        before and after it form their own batches), so at most one big message is in memory.
        """
        client = self._client()
        try:
            uids = sorted(int(u) for u in client.search(["ALL"]))
        except MAIL_ERRORS as exc:
            raise translate(exc, config=self.config, step="fetch") from exc
        size = max(1, int(batch_size))
        for start in range(0, len(uids), size):
            chunk = uids[start:start + size]
            try:
                sizes = self._fetch_sizes(client, chunk)
            except MAIL_ERRORS as exc:
                raise translate(exc, config=self.config, step="fetch") from exc
            for group in _groups(chunk, sizes):
                try:
                    batch = self._fetch_batch(client, group)
                except MAIL_ERRORS as exc:
                    raise translate(exc, config=self.config, step="fetch") from exc
                if batch:
                    yield batch
                batch = []  # drop this generator's reference before the next (maybe big) fetch

    @staticmethod
    def _fetch_sizes(client: IMAPClient, uids: list[int]) -> dict[int, int]:
        sizes: dict[int, int] = {}
        wanted = set(uids)
        for uid, data in client.fetch(uids, [_SIZE]).items():
            if uid in wanted and _SIZE in data:
                sizes[uid] = int(data[_SIZE])
        return sizes

    @staticmethod
    def _fetch_batch(client: IMAPClient, uids: list[int]) -> list[RemoteMessage]:
        bodies = client.fetch(uids, [b"BODY.PEEK[]"]) if uids else {}
        out: list[RemoteMessage] = []
        for uid in uids:  # ascending; messages expunged meanwhile are simply missing
            data = bodies.pop(uid, None)  # pop: no second reference to a big body stays in ``bodies``
            if data is not None and data.get(_BODY) is not None:
                raw = bytes(data.pop(_BODY))  # bytes(bytes) is the same object, not a copy
                out.append(RemoteMessage(key=str(uid), raw=raw, size=len(raw)))
        return out

    def delete(self, keys: Sequence[str]) -> None:
        """Remove these messages from the folder read (the core calls this only after their
        import was committed): flag ``\\Deleted`` and expunge -- only these UIDs with UIDPLUS,
        else the whole folder. With ``after_import`` ``move`` they are moved to
        ``move_to_folder`` instead (MOVE, else COPY then delete), the folder created if missing."""
        if not keys:
            return
        client = self._client()
        uids = [int(k) for k in keys]
        try:
            if self.move_to is not None:
                self.ensure_folder(self.move_to)
                if client.has_capability("MOVE"):
                    client.move(uids, self.move_to)
                    self._expunged(uids)
                    return
                client.copy(uids, self.move_to)
            client.add_flags(uids, [_DELETED], silent=True)
            if client.has_capability("UIDPLUS"):
                client.uid_expunge(uids)
            else:
                client.expunge()
        except MAIL_ERRORS as exc:
            raise translate(exc, config=self.config, step="delete") from exc
        finally:
            # imaplib files every "* n EXPUNGE" answer away and nothing reads them: over a backlog
            # of 50,000 mails in one session they would pile up
            imap = getattr(client, "_imap", None)
            if imap is not None:
                imap.untagged_responses.pop("EXPUNGE", None)
        self._expunged(uids)

    def ensure_folder(self, name: str) -> None:
        """Create the folder ``name`` (and subscribe to it) unless it exists. Raises
        :class:`MailboxError` (kind ``folder_missing``, not temporary) saying the server refused it."""
        client = self._client()
        try:
            if client.folder_exists(name):
                return
        except MAIL_ERRORS as exc:
            raise translate(exc, config=self.config, step="select") from exc
        try:
            client.create_folder(name)
        except MAIL_ERRORS as exc:
            reply = " ".join(str(exc).split())[:200]
            raise MailboxError(f"The IMAP folder {name!r} for imported mail does not exist and could not "
                               f"be created on {self.config.get('host')} ({reply}): create it in a mail client "
                               "or choose another folder with move_to_folder.",
                               kind="folder_missing", temporary=False) from exc
        try:
            client.subscribe_folder(name)
        except MAIL_ERRORS:  # a mail client may not show it; the move still works
            pass

    def _expunged(self, uids: Sequence[int]) -> None:
        if self._exists is not None:
            self._exists = max(0, self._exists - len(set(uids)))

    def close(self) -> None:
        """Log out; errors are swallowed (the deletions were already expunged in :meth:`delete`)."""
        client, self.client = self.client, None
        if client is not None:
            close_quietly(client.logout, client.shutdown)

    # ---- internals ---------------------------------------------------------------------------

    def _client(self) -> IMAPClient:
        if self.client is None:
            raise MailboxError(f"The IMAP session for {self.config.get('host')} is closed.",
                               kind="server_error", temporary=True)
        return self.client

    def _drop(self) -> None:
        """Close the socket without a LOGOUT after a failed open."""
        client, self.client = self.client, None
        if client is not None:
            _shutdown(client)


def quiet_imaplib(client: IMAPClient) -> None:
    """Stop imaplib from formatting every response for a logger that discards it.

    imapclient sets imaplib's ``debug`` level to 5 on every connection, so imaplib formats each
    untagged response with ``%r`` for imapclient's ``imapclient.imaplib`` logger, whether or not
    that logger is enabled. For a fetched message that is the repr of the whole literal plus the
    formatted line: ~2.3x the message size in transient strings (a 68 MB message: 226 MB traced
    peak instead of 68 MB), and CPU for every message. Unless that logger is at DEBUG (protocol
    logging wanted), the level is set to 0. imapclient itself is not changed.
    """
    if logging.getLogger("imapclient.imaplib").isEnabledFor(logging.DEBUG):
        return
    imap = getattr(client, "_imap", None)
    if imap is not None and hasattr(imap, "debug"):
        imap.debug = 0


def _groups(uids: list[int], sizes: dict[int, int]) -> Iterator[list[int]]:
    """Split ``uids`` (in order) into runs of small messages and single big ones.

    Big: larger than :data:`BIG_MESSAGE_BYTES`. Messages of unknown size count as small.
    """
    run: list[int] = []
    for uid in uids:
        n = sizes.get(uid, 0)
        if n > BIG_MESSAGE_BYTES:
            if run:
                yield run
                run = []
            yield [uid]
        else:
            run.append(uid)
    if run:
        yield run


def _shutdown(client: IMAPClient) -> None:
    try:
        client.shutdown()
    except Exception:  # noqa: BLE001
        pass


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
