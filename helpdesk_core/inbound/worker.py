"""The long-running worker: each department on its own interval, failures isolated.

Cycles run in a thread pool, so a department whose server hangs until its timeout never delays
the others. Mailbox leases keep two workers (on any machine) from importing one mailbox at once.
SIGTERM/SIGINT stop it cleanly: running cycles finish their current batch, nothing new starts.
With ``push`` (the default), IDLE-capable mailboxes also get an :mod:`.idle` watcher thread each:
new mail wakes the loop and its department is imported at once; polling goes on as a safety net.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime

from sqlalchemy import or_, select

from helpdesk_core.app import Helpdesk
from helpdesk_core.inbound.cycle import run_cycle
from helpdesk_core.inbound.idle import WatcherSet, push_departments
from helpdesk_core.inbound.leases import worker_id
from helpdesk_core.models import Department, Mailbox
from helpdesk_core.outbound.outbox import flush_task

log = logging.getLogger("helpdesk.worker")

#: how often the set of IDLE watchers follows added, removed or push-disabled departments
WATCHER_SYNC_SECONDS = 60.0


class Worker:
    """Runs import cycles until stopped. ``tasks`` are callables run every tick; each gets the app
    and must not raise. Default: :func:`helpdesk_core.outbound.outbox.flush_task` (send due outgoing mail)."""

    def __init__(self, app: Helpdesk, *, threads: int = 4, tick_seconds: float = 5.0,
                 tasks: list[Callable[[Helpdesk], None]] | None = None, push: bool = True,
                 idle_options: dict[str, float] | None = None) -> None:
        self.app = app
        self.threads = threads
        self.tick_seconds = tick_seconds
        self.tasks = list(tasks) if tasks is not None else [flush_task]  # default: send the outbox
        self.stopping = threading.Event()
        self.owner = worker_id()
        self._running: dict[int, Future[object]] = {}
        self.push = push
        self._wake = threading.Event()
        self._requested: set[int] = set()
        self._requested_lock = threading.Lock()
        self.watchers = WatcherSet(app, self.request, **(idle_options or {})) if push else None

    def request(self, department_id: int) -> None:
        """Import this department as soon as possible (called by IDLE watchers; thread-safe). A
        department already importing is imported again right after, so no new mail is missed."""
        with self._requested_lock:
            self._requested.add(department_id)
        self._wake.set()

    def _take_requested(self) -> list[int]:
        with self._requested_lock:
            ready = [d for d in self._requested if d not in self._running]
            self._requested.difference_update(ready)
        return ready

    def due(self) -> list[int]:
        now = datetime.now(UTC)
        with self.app.session() as session:
            rows = session.scalars(
                select(Department.id).join(Mailbox)
                .where(Mailbox.needs_reauthorization.is_(False),
                       or_(Mailbox.next_run_at.is_(None), Mailbox.next_run_at <= now))
                .order_by(Mailbox.next_run_at)).all()
        return [r for r in rows if r not in self._running]

    def _cycle(self, department_id: int) -> None:
        try:
            result = run_cycle(self.app, department_id, owner=self.owner)
            if result.error:
                log.warning("%s: %s", result.department, result.error)
            elif result.fetched:
                log.info("%s: %s", result.department, result.as_json())
        except Exception:  # noqa: BLE001
            log.exception("cycle of department %s crashed", department_id)

    def install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: object) -> None:
            log.info("signal %s: stopping after the current batches", signum)
            self.stopping.set()
            self._wake.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def _run_tasks(self) -> None:
        for task in self.tasks:
            try:
                task(self.app)
            except Exception:  # noqa: BLE001
                log.exception("worker task %r failed", task)

    def run(self, *, once: bool = False) -> None:
        """Tick until stopped: start the due departments' cycles, and the tasks in a thread of their
        own (a mail server that hangs while the outbox is flushed never delays an import)."""
        if threading.current_thread() is threading.main_thread():
            self.install_signal_handlers()
        tasks_run: Future[None] | None = None
        next_sync = next_tasks = 0.0
        with ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="import") as pool, \
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="tasks") as task_pool:
            while not self.stopping.is_set():
                if self.watchers is not None and not once and time.monotonic() >= next_sync:
                    self._sync_watchers()
                    next_sync = time.monotonic() + WATCHER_SYNC_SECONDS
                for dept_id in dict.fromkeys([*self._take_requested(), *self.due()]):
                    if dept_id not in self._running:
                        future = pool.submit(self._cycle, dept_id)
                        future.add_done_callback(lambda _f: self._wake.set())
                        self._running[dept_id] = future
                if (tasks_run is None or tasks_run.done()) and time.monotonic() >= next_tasks:
                    tasks_run = task_pool.submit(self._run_tasks)  # never two runs at once; once a tick
                    next_tasks = time.monotonic() + self.tick_seconds
                if once:
                    for fut in [*self._running.values(), tasks_run]:
                        fut.result()
                    break
                self._wake.wait(self.tick_seconds)
                self._wake.clear()
                self._running = {k: f for k, f in self._running.items() if not f.done()}
        if self.watchers is not None:
            self.watchers.stop()
        log.info("worker stopped")

    def _sync_watchers(self) -> None:
        try:
            self.watchers.sync(push_departments(self.app))  # type: ignore[union-attr]
        except Exception:  # noqa: BLE001 - push is an optimisation; polling goes on
            log.exception("could not start the IDLE watchers")
