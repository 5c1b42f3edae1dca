"""IMAP IDLE push (RFC 2177): an import starts within a second of new mail, not on the next poll.

One :class:`IdleWatcher` thread per IDLE-capable mailbox holds a connection of its own in IDLE and
calls ``trigger(department_id)`` when the server announces new mail (``EXISTS`` growing). The
import itself runs elsewhere, exactly as a polled one: the embedded worker's pool
(:mod:`.worker`) or a Celery task sent by ``helpdesk watch`` (:class:`WatchService`). Polling on the
department's interval goes on as a safety net, so nothing depends on a push arriving.

* IDLE is re-issued every :data:`IDLE_RENEW_SECONDS` (9 minutes; servers may drop an IDLE after 30,
  and NATs a silent connection sooner).
* A dropped connection (``* BYE``, EOF, a timeout) is reconnected with exponential backoff (1 s, 2 s,
  4 s … at most :data:`RECONNECT_MAX_SECONDS`), and **every (re)connect triggers a catch-up import**:
  mail that arrived while no connection was watching is imported at once.
* Every connect goes through the provider's own ``open()`` with freshly loaded secrets, so a
  provider that refreshes OAuth tokens on open does so before each reconnect.
* Push needs a provider session that exposes an ``imapclient.IMAPClient`` as ``client`` (the
  generic IMAP provider and those built on it) and a server that offers ``IDLE``; otherwise the
  watcher ends at once and the mailbox is polled only. A department turns push off with its option
  ``push`` set to false (the JSON ``options`` of the department).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select

from helpdesk_core.app import Helpdesk
from helpdesk_core.errors import MailboxError
from helpdesk_core.models import Department, Mailbox

log = logging.getLogger("helpdesk.idle")

#: IDLE is ended and re-issued this often (RFC 2177: at most every 29 minutes; we use ≤ 10)
IDLE_RENEW_SECONDS = 540.0
#: longest wait between two reconnection attempts
RECONNECT_MAX_SECONDS = 60.0
#: how long one wait for server responses lasts (also how fast a watcher notices it must stop)
CHECK_SECONDS = 1.0

Trigger = Callable[[int], None]


class ConnectionLost(Exception):
    """The IDLE connection was closed by the server or the network."""


def push_enabled(options: dict[str, Any] | None, config: dict[str, Any] | None) -> bool:
    """Push is on unless the department says ``push: false``; only IMAP mailboxes can push
    (a provider without a ``protocol`` setting is assumed to be IMAP, e.g. Google)."""
    if (options or {}).get("push", True) is False:
        return False
    return (config or {}).get("protocol", "imap") == "imap"


def push_mailboxes(app: Helpdesk) -> dict[int, int]:
    """Mailbox id → department id of the mailboxes that may push (see :func:`push_enabled`) and
    are not waiting for re-authorisation."""
    with app.session() as session:
        rows = session.execute(select(Mailbox.id, Department.id, Department.options, Mailbox.config)
                               .join(Department).where(Mailbox.needs_reauthorization.is_(False))
                               .order_by(Department.id)).all()
    return {r[0]: r[1] for r in rows if push_enabled(r[2], r[3])}


def push_departments(app: Helpdesk) -> list[int]:
    """The departments of :func:`push_mailboxes`."""
    return list(push_mailboxes(app).values())


class IdleWatcher(threading.Thread):
    """Watches one department's mailbox with IMAP IDLE until :meth:`stop`."""

    def __init__(self, app: Helpdesk, department_id: int, trigger: Trigger, *,
                 renew_seconds: float = IDLE_RENEW_SECONDS,
                 reconnect_max_seconds: float = RECONNECT_MAX_SECONDS) -> None:
        super().__init__(name=f"idle-{department_id}", daemon=True)
        self.app = app
        self.department_id = department_id
        self.trigger = trigger
        self.renew_seconds = renew_seconds
        self.reconnect_max_seconds = reconnect_max_seconds
        self.stopping = threading.Event()
        #: False once the mailbox turned out unable to push (not IMAP, no IDLE): polling only
        self.capable: bool | None = None
        #: connections made so far (the first one and every reconnect)
        self.connects = 0

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        failures = 0
        while not self.stopping.is_set():
            try:
                with self._connect() as client:
                    if client is None:
                        self.capable = False
                        log.info("department %s: no IMAP IDLE; polling only", self.department_id)
                        return
                    self.capable = True
                    self.connects += 1
                    failures = 0
                    self._fire("connected")           # catch-up: mail that came while unwatched
                    self._watch(client)
            except Exception as exc:  # noqa: BLE001 - any failure: reconnect later
                failures += 1
                delay = min(self.reconnect_max_seconds, float(2 ** min(failures - 1, 10)))
                if isinstance(exc, MailboxError) and not exc.temporary:
                    delay = self.reconnect_max_seconds  # e.g. a wrong password: an admin must act
                log.warning("department %s: IDLE connection lost (%s: %s); reconnecting in %.0f s",
                            self.department_id, type(exc).__name__, exc, delay)
                self.stopping.wait(delay)

    @contextmanager
    def _connect(self) -> Iterator[Any]:
        """Open the mailbox the way an import does (provider + fresh secrets); yield its IMAPClient,
        or None when it cannot IDLE."""
        from helpdesk_core.providers.secrets import stored_secrets

        with self.app.session() as session:
            department = session.get(Department, self.department_id)
            mailbox = department.mailbox if department is not None else None
            if mailbox is None or not push_enabled(department.options, mailbox.config):
                yield None
                return
            provider = self.app.providers.get(mailbox.provider)
            secrets = stored_secrets(self.app, mailbox)
            config = dict(mailbox.config)
        with provider.open(config, secrets) as remote:
            client = getattr(remote, "client", None)
            if client is None or not hasattr(client, "idle") or not client.has_capability("IDLE"):
                yield None
                return
            self._exists = remote.count() or 0
            yield client

    def _watch(self, client: Any) -> None:
        """IDLE, re-issued every ``renew_seconds``; fire on growing ``EXISTS``; raise when lost."""
        while not self.stopping.is_set():
            client.idle()
            started = time.monotonic()
            quick_empty = 0
            try:
                while not self.stopping.is_set() and time.monotonic() - started < self.renew_seconds:
                    asked = time.monotonic()
                    responses = client.idle_check(timeout=CHECK_SECONDS)
                    if not responses and time.monotonic() - asked < CHECK_SECONDS / 2:
                        quick_empty += 1  # readable but nothing to read: the server hung up
                        if quick_empty >= 3:
                            raise ConnectionLost("end of stream")
                        continue
                    quick_empty = 0
                    if self._handle(responses):
                        self._fire("new mail")
            finally:
                try:
                    client.idle_done()
                except Exception:  # noqa: BLE001 - stopping, or already lost: reconnect decides
                    if not self.stopping.is_set():
                        raise

    def _handle(self, responses: list[tuple[Any, ...]]) -> bool:
        """Track the folder size; True when it grew (new mail)."""
        grew = False
        for response in responses:
            if len(response) >= 2 and response[0] == b"BYE":
                raise ConnectionLost(f"server said BYE {response[1]!r}")
            if len(response) >= 2 and isinstance(response[0], int):
                if response[1] == b"EXISTS":
                    grew = grew or response[0] > self._exists
                    self._exists = response[0]
                elif response[1] == b"EXPUNGE":
                    self._exists = max(0, self._exists - 1)
        return grew

    def _fire(self, why: str) -> None:
        log.info("department %s: %s, importing", self.department_id, why)
        try:
            self.trigger(self.department_id)
        except Exception:  # noqa: BLE001 - the next push or poll tries again
            log.exception("department %s: could not start the import", self.department_id)


class WatcherSet:
    """Keeps one :class:`IdleWatcher` per wanted department: :meth:`sync` starts the missing ones
    and stops those no longer wanted; a watcher that found no IDLE is not restarted."""

    def __init__(self, app: Helpdesk, trigger: Trigger, **watcher_options: Any) -> None:
        self.app = app
        self.trigger = trigger
        self.watcher_options = watcher_options
        self.watchers: dict[int, IdleWatcher] = {}

    def sync(self, wanted: list[int]) -> None:
        for department_id in set(self.watchers) - set(wanted):
            self.watchers.pop(department_id).stop()
        for department_id in wanted:
            current = self.watchers.get(department_id)
            if current is not None and (current.is_alive() or current.capable is False):
                continue
            watcher = IdleWatcher(self.app, department_id, self.trigger, **self.watcher_options)
            self.watchers[department_id] = watcher
            watcher.start()

    def stop(self, timeout: float = 5.0) -> None:
        for watcher in self.watchers.values():
            watcher.stop()
        for watcher in self.watchers.values():
            watcher.join(timeout)
        self.watchers.clear()

    def describe(self) -> list[dict[str, Any]]:
        return [{"department_id": d, "alive": w.is_alive(), "capable": w.capable, "connects": w.connects}
                for d, w in sorted(self.watchers.items())]


class WatchService:
    """``helpdesk watch``: hold the IDLE connections of up to ``limit`` mailboxes, taken by watch
    lease (:func:`~helpdesk_core.inbound.leases.claim_watches`), and ``trigger`` their imports
    (with Celery: send ``import_department``). Run one or several: together they watch every
    mailbox exactly once; a stopped or killed one's mailboxes are taken over when its leases
    expire (at once for a dead process of the same host)."""

    def __init__(self, app: Helpdesk, trigger: Trigger, *, owner: str | None = None, limit: int = 500,
                 lease_seconds: int | None = None, **watcher_options: Any) -> None:
        from helpdesk_core.inbound.leases import lease_seconds as default_lease, worker_id

        self.app = app
        self.owner = owner or worker_id()
        self.limit = limit
        self.lease_seconds = lease_seconds or default_lease()
        self.watchers = WatcherSet(app, trigger, **watcher_options)
        self.stopping = threading.Event()
        self.held: list[int] = []

    def step(self) -> list[int]:
        """Renew and take watch leases, then start/stop watchers to match; the departments watched."""
        from helpdesk_core.inbound.leases import claim_watches, release_watches

        wanted = push_mailboxes(self.app)
        with self.app.session() as session:
            held = claim_watches(session, self.owner, limit=self.limit, seconds=self.lease_seconds,
                                 candidates=list(wanted))
            unwanted = [m for m in held if m not in wanted]
            if unwanted:
                release_watches(session, self.owner, unwanted)
        self.held = [m for m in held if m in wanted]
        departments = [wanted[m] for m in self.held]
        self.watchers.sync(departments)
        return departments

    def run(self) -> None:
        """Step every third of the lease time until :attr:`stopping` is set; then let go of all."""
        from helpdesk_core.inbound.leases import release_watches

        try:
            while not self.stopping.is_set():
                try:
                    self.step()
                except Exception:  # noqa: BLE001 - database down: keep the watchers, retry
                    log.exception("watch: could not renew the watch leases")
                self.stopping.wait(max(1.0, self.lease_seconds / 3))
        finally:
            self.watchers.stop()
            with self.app.session() as session:
                release_watches(session, self.owner)
