"""An in-memory mailbox provider for tests: no server, exact control over failures.

Plugin authors can use it to test hooks against the real import engine (ledger, retries,
commit-then-delete) without a mail server::

    from helpdesk_core.testing.fake import FakeMailbox, FakePlugin

    plugin = FakePlugin()                       # registers provider "fake"
    app = Helpdesk.from_config(config, extra_plugins=(plugin,))
    box = plugin.provider.mailbox("tech")       # created on first use
    box.deliver(raw_bytes)
    # configure the department with provider "fake", config {"mailbox": "tech"}:
    services.departments.set_mailbox(app, session, actor=SYSTEM, department="Tech",
                                     provider="fake", config={"mailbox": "tech"}, secrets={})
    run_cycle(app, department_id)
    assert len(box) == 0

Outgoing mail: a mailbox made with ``sends_mail=True`` sends through the provider's
:meth:`FakeProvider.deliver` (recorded in :attr:`FakeMailbox.sent`); without it the provider sends no
mail, like a provider without an outgoing side.

Failure injection on :class:`FakeMailbox` (each fires once, then resets itself):

* ``fail_open``: an exception raised by :meth:`FakeProvider.open` (e.g. ``MailboxError(kind="auth_failed")``);
* ``fail_fetch_after``: raise :attr:`fetch_error` after this many messages were yielded this session
  (``0`` = before the first batch) -- a connection lost before the importer committed;
* ``fail_delete``: raise :attr:`delete_error` from :meth:`FakeSession.delete` -- a crash between the
  importer's commit and its delete;
* ``crash_after_checkpoint``: an exception raised by :meth:`FakeSession.checkpoint` *after* the
  deletions became permanent -- the process dies right after the mailbox let go of the messages
  (an importer that deleted before committing loses them here);
* ``fail_deliver``: an exception raised by :meth:`FakeProvider.deliver` (the whole batch fails,
  e.g. ``MailboxError(kind="auth_failed")``).

By default deletions are immediate (like IMAP with UIDPLUS). With ``transactional=True`` they only
become permanent at :meth:`FakeSession.checkpoint` / :meth:`FakeSession.close` and are rolled back
when the session ends with an exception (like POP3, whose ``DELE`` is undone unless ``QUIT`` is sent).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from helpdesk_core import hookimpl
from helpdesk_core.errors import DeliveryError, MailboxError
from helpdesk_core.hooktypes import OutgoingMail
from helpdesk_core.providers.base import ConfigField, MailboxProvider, MailboxSession, RemoteMessage

__all__ = ["FakeMailbox", "FakePlugin", "FakeProvider", "FakeSession"]


class FakeMailbox:
    """The messages of one fake mailbox (thread-safe), in arrival order, keyed by a counter."""

    def __init__(self, name: str, *, password: str | None = None, transactional: bool = False,
                 sends_mail: bool = False) -> None:
        self.name = name
        self.password = password
        self.transactional = transactional
        self.sends_mail = sends_mail
        #: outgoing mail the provider sent from this mailbox, in order
        self.sent: list[OutgoingMail] = []
        self.fail_deliver: BaseException | None = None
        self.messages: dict[str, bytes] = {}
        self.fail_open: BaseException | None = None
        self.fail_fetch_after: int | None = None
        self.fetch_error: BaseException = MailboxError("fake: connection lost while fetching",
                                                       kind="server_error", temporary=True)
        self.fail_delete: bool = False
        self.crash_after_checkpoint: BaseException | None = None
        self.delete_error: BaseException = MailboxError("fake: connection lost while deleting",
                                                        kind="server_error", temporary=True)
        #: every key ever deleted, in order (for assertions)
        self.deleted: list[str] = []
        self.sessions_opened = 0
        self._keys = itertools.count(1)
        self._lock = threading.Lock()

    def deliver(self, raw: bytes) -> str:
        """Add a message; returns its key."""
        with self._lock:
            key = str(next(self._keys))
            self.messages[key] = bytes(raw)
            return key

    def __len__(self) -> int:
        with self._lock:
            return len(self.messages)

    def snapshot(self) -> list[tuple[str, bytes]]:
        with self._lock:
            return list(self.messages.items())

    def _remove(self, keys: Sequence[str]) -> None:
        with self._lock:
            for key in keys:
                if self.messages.pop(key, None) is not None:
                    self.deleted.append(key)


class FakeSession(MailboxSession):
    """One session on a :class:`FakeMailbox`; see the module docstring for failure injection."""

    stable_keys = True  # fetched ahead while the previous batch is imported

    def __init__(self, box: FakeMailbox) -> None:
        self.box = box
        self.closed = False
        self._pending: list[str] = []  # transactional deletions not yet permanent

    def count(self) -> int | None:
        return len(self.box) - len(set(self._pending) & set(self.box.messages))

    def fetch(self, *, batch_size: int = 100) -> Iterator[list[RemoteMessage]]:
        size = max(1, int(batch_size))
        listing = [(k, r) for k, r in self.box.snapshot() if k not in self._pending]
        yielded = 0
        for start in range(0, len(listing), size):
            batch: list[RemoteMessage] = []
            for key, raw in listing[start:start + size]:
                if self.box.fail_fetch_after is not None and yielded >= self.box.fail_fetch_after:
                    self.box.fail_fetch_after = None
                    raise self.box.fetch_error
                batch.append(RemoteMessage(key=key, raw=raw, size=len(raw)))
                yielded += 1
            yield batch
        if self.box.fail_fetch_after is not None and yielded >= self.box.fail_fetch_after:
            self.box.fail_fetch_after = None
            raise self.box.fetch_error

    def delete(self, keys: Sequence[str]) -> None:
        if self.closed:
            raise MailboxError("fake: session is closed", kind="server_error", temporary=True)
        if self.box.fail_delete:
            self.box.fail_delete = False
            raise self.box.delete_error
        if self.box.transactional:
            self._pending.extend(keys)
        else:
            self.box._remove(keys)

    def checkpoint(self) -> None:
        self.box._remove(self._pending)
        self._pending = []
        if self.box.crash_after_checkpoint is not None:
            exc, self.box.crash_after_checkpoint = self.box.crash_after_checkpoint, None
            raise exc

    def close(self) -> None:
        if not self.closed:
            self.box._remove(self._pending)
            self._pending = []
        self.closed = True

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None:  # the connection died: like POP3 without QUIT, undo deletions
            self._pending = []
            self.closed = True
            return
        self.close()


class FakeProvider(MailboxProvider):
    """Provider ``fake``: config ``mailbox`` names a :class:`FakeMailbox` of this provider."""

    name = "fake"
    label = "In-memory test mailbox"
    fields = (
        ConfigField("mailbox", "Mailbox name", required=True),
        ConfigField("password", "Password", secret=True),
    )

    def __init__(self) -> None:
        self.mailboxes: dict[str, FakeMailbox] = {}

    def mailbox(self, name: str, **options: Any) -> FakeMailbox:
        """The mailbox called ``name`` (created with ``options`` on first use)."""
        if name not in self.mailboxes:
            self.mailboxes[name] = FakeMailbox(name, **options)
        return self.mailboxes[name]

    def identity(self, config: Mapping[str, Any]) -> str:
        return f"fake:{config['mailbox']}"

    def open(self, config: Mapping[str, Any], secrets: Mapping[str, str]) -> FakeSession:
        box = self.mailbox(str(config["mailbox"]))
        box.sessions_opened += 1
        if box.fail_open is not None:
            exc, box.fail_open = box.fail_open, None
            raise exc
        self._login(box, secrets)
        return FakeSession(box)

    def deliver(self, config: Mapping[str, Any], secrets: Mapping[str, str],
                mails: Sequence[OutgoingMail]) -> list[DeliveryError | None] | None:
        """Record ``mails`` in the mailbox's :attr:`~FakeMailbox.sent` (None: it sends no mail)."""
        box = self.mailbox(str(config["mailbox"]))
        if not box.sends_mail:
            return None
        if box.fail_deliver is not None:
            exc, box.fail_deliver = box.fail_deliver, None
            raise exc
        self._login(box, secrets)
        box.sent.extend(mails)
        return [None for _ in mails]

    @staticmethod
    def _login(box: FakeMailbox, secrets: Mapping[str, str]) -> None:
        if box.password is not None and secrets.get("password") != box.password:
            raise MailboxError(f"Login failed for fake mailbox {box.name!r}: check the password.",
                               kind="auth_failed", temporary=False)


class FakePlugin:
    """A plugin object registering one :class:`FakeProvider` (``extra_plugins=(FakePlugin(),)``)."""

    def __init__(self, provider: FakeProvider | None = None) -> None:
        self.provider = provider or FakeProvider()

    @hookimpl
    def helpdesk_register_providers(self, register: Callable[[MailboxProvider], None]) -> None:
        register(self.provider)
