"""One import cycle of one department's mailbox, safe to run from any process."""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from helpdesk_core.app import Helpdesk
from helpdesk_core.config import env_number
from helpdesk_core.errors import HelpdeskError, MailboxError, NotFoundError
from helpdesk_core.inbound.importer import BATCH_SIZE, CycleResult, import_batch
from helpdesk_core.inbound.leases import fence, release_lease, take_lease, worker_id
from helpdesk_core.models import Department, ImportCycle, Mailbox
from helpdesk_core.models.imports import LONG_TEXT, bounded
from helpdesk_core.providers.secrets import stored_secrets
from helpdesk_core.settings import GeneralSettings

log = logging.getLogger("helpdesk.cycle")

ProgressCallback = Callable[[int, int | None], None]

#: longest wait between two cycles of a failing mailbox (unless its interval is longer)
BACKOFF_CAP = timedelta(hours=1)


def backoff(interval_minutes: int, failures: int) -> timedelta:
    """Wait before the next cycle after ``failures`` failed ones in a row: the interval, then
    twice, four times … as long, at most :data:`BACKOFF_CAP` (or the interval, if longer)."""
    interval = timedelta(minutes=interval_minutes)
    return min(interval * (2 ** min(max(failures - 1, 0), 16)), max(interval, BACKOFF_CAP))


def default_batch_size() -> int:
    """``HELPDESK_BATCH_SIZE`` from the environment (messages committed per batch), else 100."""
    return env_number("HELPDESK_BATCH_SIZE", BATCH_SIZE, int, 1)


def run_cycle(app: Helpdesk, department_id: int, *, owner: str | None = None,
              progress: ProgressCallback | None = None, batch_size: int | None = None) -> CycleResult:
    """Import everything waiting in one department's mailbox. Never raises for mailbox errors:
    they are recorded on the mailbox (``department status``) and in the result.

    ``batch_size`` defaults to :func:`default_batch_size` (``HELPDESK_BATCH_SIZE`` or 100).
    """
    owner = owner or worker_id()
    batch_size = batch_size or default_batch_size()
    with app.session() as session:
        department = session.get(Department, department_id)
        if department is None:
            raise NotFoundError(f"No department with id {department_id}.")
        name = department.name  # kept: after a failed flush the session cannot load it again
        result = CycleResult(department=name)
        mailbox = department.mailbox
        if mailbox is None:
            result.ran = False
            result.error = "no mailbox configured"
            return result
        mailbox_id = mailbox.id
        generation = take_lease(session, mailbox_id, owner)
        if generation is None:
            result.ran = False
            result.error = "another worker is importing this mailbox"
            result.error_kind = "leased"
            return result
        cycle = ImportCycle(department_id=department_id, worker=owner)
        session.add(cycle)
        session.commit()
        cycle_id = cycle.id
        started = time.monotonic()
        try:
            _run(app, session, department, mailbox, result, progress, batch_size, (owner, generation))
        except HelpdeskError as exc:
            result.error, result.error_kind = exc.message, exc.kind
        except KeyboardInterrupt:  # Ctrl-C: what was committed stays; the next cycle goes on from there
            result.error, result.error_kind = "interrupted (Ctrl-C) before the mailbox was emptied", "interrupted"
            raise
        except Exception as exc:  # noqa: BLE001 - recorded, never kills the worker
            log.exception("cycle of %s failed", name)
            result.error, result.error_kind = bounded(f"{type(exc).__name__}: {exc}", LONG_TEXT), "internal"
        finally:
            session.rollback()
            try:
                _record(session, cycle_id, mailbox_id, result)
            except Exception:  # noqa: BLE001 - the database went away too; the lease expires
                log.exception("could not record the cycle of %s", name)
                session.rollback()
            release_lease(session, mailbox_id, owner, generation)
            _log_cycle(department_id, result, owner, time.monotonic() - started)
    return result


def _log_cycle(department_id: int, result: CycleResult, owner: str, seconds: float) -> None:
    """One structured line per cycle (logger ``helpdesk.cycle``, a JSON object after ``cycle ``):
    department, counts, duration, error; at INFO, or WARNING when the cycle failed."""
    fields = {"event": "cycle", "department": result.department, "department_id": department_id,
              **result.as_json(), "seconds": round(seconds, 3), "worker": owner}
    log.log(logging.WARNING if result.error else logging.INFO, "cycle %s",
            json.dumps(fields, ensure_ascii=False, default=str))


def _run(app: Helpdesk, session, department: Department, mailbox: Mailbox, result: CycleResult,
         progress: ProgressCallback | None, batch_size: int, lease: tuple[str, int]) -> None:
    provider = app.providers.get(mailbox.provider)
    secrets = stored_secrets(app, mailbox)  # providers may save rotated tokens (StoredSecrets.save)
    settings = GeneralSettings.load(session)
    session.commit()
    done = 0
    department_id, mailbox_id = department.id, mailbox.id
    with provider.open(mailbox.config, secrets) as remote, FetchAhead(remote, batch_size) as ahead:
        _track_uidvalidity(session, mailbox, remote)
        total = result.total = remote.count()
        if progress:
            progress(0, total)
        for batch in ahead:
            ctx = app.context(session, settings)
            to_delete: list[str] = []
            outcomes = import_batch(ctx, department, [m.raw for m in batch])
            done += len(batch)
            if progress:
                progress(done, total)
            fence(session, mailbox_id, *lease)    # still ours? (else: LeaseLost, rolled back)
            session.commit()                      # the tickets are safe ...
            result.fetched += len(batch)          # counted once committed: a crash leaves no gap
            for item, outcome in zip(batch, outcomes):
                result.count(outcome)
                if outcome.delete:
                    to_delete.append(item.key)
            if to_delete:
                with ahead.lock:                  # (after the fetch of the next batch, if ahead)
                    remote.delete(to_delete)      # ... only then acknowledge the mailbox
                    remote.checkpoint()
                result.deleted += len(to_delete)
            del batch, ctx, outcomes  # a large batch is never held with the next (FetchAhead)
            # nor any row of this batch: a backlog of 50,000 mails imports with memory flat
            session.expunge_all()
            department = session.get(Department, department_id) or department
        ahead.close()
        fence(session, mailbox_id, *lease)        # a cycle that lost its lease reports so, even
        session.commit()                          # with nothing left to commit (another took over)
        try:
            result.waiting = remote.count()
        except MailboxError:
            result.waiting = None


class FetchAhead:
    """The batches of ``remote.fetch()``, the next one fetched in a thread while the caller imports,
    commits and deletes this one (network and database overlap).

    Only for sessions whose keys survive deletions (:attr:`MailboxSession.stable_keys`: IMAP UIDs,
    Maildir names); a POP3 session is read in the caller's thread, one batch after the other. At
    most one batch is fetched ahead, and none after a batch of :data:`AHEAD_MAX_BYTES` or more (a
    large message is never held together with the next batch). Every other use of the session
    (``delete``, ``checkpoint``) holds :attr:`lock`, so the connection never runs two commands at
    once. Safe because deletion still follows the commit of the batch deleted: a crash with a batch
    fetched ahead leaves it in the mailbox, and the ledger recognises whatever was imported.
    A fetch error surfaces when the caller asks for that batch, as without fetching ahead.
    """

    #: a batch this large (bytes of raw mail) is not fetched ahead of
    AHEAD_MAX_BYTES = 8 * 1024 * 1024

    def __init__(self, remote: object, batch_size: int) -> None:
        self.remote = remote
        self.batch_size = batch_size
        self.lock = threading.Lock()
        self.ahead = bool(getattr(remote, "stable_keys", False))
        self._batches = None
        self._pending: Future | None = None
        self._pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> FetchAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _next(self):
        with self.lock:
            if self._batches is None:
                self._batches = iter(self.remote.fetch(batch_size=self.batch_size))
            return next(self._batches, None)

    def _submit(self) -> Future:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fetch-ahead")
        return self._pool.submit(self._next)

    def __iter__(self):
        while True:
            if self._pending is not None:
                pending, self._pending = self._pending, None
                batch = pending.result()
            else:
                batch = self._next()
            if batch is None:
                return
            if self.ahead and sum(len(m.raw) for m in batch) < self.AHEAD_MAX_BYTES:
                self._pending = self._submit()
            yield batch
            del batch

    def close(self) -> None:
        """Wait for a fetch under way (its batch is dropped: still in the mailbox), end the thread."""
        pending, self._pending = self._pending, None
        if pending is not None:
            try:
                pending.result()
            except Exception:  # noqa: BLE001 - the cycle already ended; its batch stays in the mailbox
                log.debug("fetch ahead failed after the cycle ended", exc_info=True)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._batches is not None:
            close = getattr(self._batches, "close", None)  # a generator; a provider may return any iterator
            if close is not None:
                with self.lock:
                    close()
            self._batches = None


def _track_uidvalidity(session, mailbox: Mailbox, remote: object) -> None:
    """Remember the IMAP UIDVALIDITY; when the server renumbers the folder, say so. Nothing else
    depends on UIDs: the ledger (Message-ID or content hash) recognises mail already imported."""
    value = getattr(remote, "uidvalidity", None)
    if value is None:
        return
    previous = (mailbox.state or {}).get("uidvalidity")
    if previous is not None and previous != value:
        log.warning("%s: UIDVALIDITY changed from %s to %s; the ledger keeps re-listed mail from "
                    "being imported twice", mailbox.identity, previous, value)
    if previous != value:
        mailbox.state = {**(mailbox.state or {}), "uidvalidity": value}
        session.commit()


def _record(session, cycle_id: int, mailbox_id: int, result: CycleResult) -> None:
    now = datetime.now(UTC)
    cycle = session.get(ImportCycle, cycle_id)
    mailbox = session.get(Mailbox, mailbox_id)
    for name in ("fetched", "created", "updated", "failed", "skipped", "deleted"):
        setattr(cycle, name, getattr(result, name))
    cycle.finished_at = now
    cycle.error, cycle.error_kind = result.error, result.error_kind
    if mailbox is not None and result.error_kind == "lease_lost":
        pass  # the mailbox is another worker's now: its counts, health and schedule are that worker's
    elif mailbox is not None:
        state = mailbox.state or {}
        mailbox.state = {**state, "counts": _add_counts(state.get("counts"), result)}
        if result.error:
            mailbox.consecutive_failures = (mailbox.consecutive_failures or 0) + 1
            mailbox.failing_since = mailbox.failing_since or now
            mailbox.last_error, mailbox.last_error_kind = result.error, result.error_kind
            if result.error_kind == "needs_reauthorization":
                mailbox.needs_reauthorization = True
        else:
            mailbox.last_success_at = now
            mailbox.consecutive_failures = 0
            mailbox.failing_since = None
            mailbox.last_error = mailbox.last_error_kind = None
            mailbox.waiting = result.waiting
        interval = mailbox.department.interval_minutes if mailbox.department else 5
        mailbox.next_run_at = now + backoff(interval, mailbox.consecutive_failures)
    session.commit()


#: the cumulative counts kept per mailbox (since it was configured), from each cycle's result
COUNTED = ("fetched", "created", "updated", "duplicates", "held", "failed", "retried", "kept", "deleted")


def _add_counts(counts: dict | None, result: CycleResult) -> dict:
    """The mailbox's cumulative counts plus this cycle's (``department status --json``):
    ``skipped`` by reason, ``failed`` (kept as failed imports), ``retried`` and ``kept`` (left in
    the mailbox), ``server`` the number on the server when the cycle last started."""
    counts = dict(counts or {})
    for key in COUNTED:
        value = result.retried if key == "retried" else getattr(result, key)
        if key == "failed":
            value = result.failed - result.retried
        counts[key] = counts.get(key, 0) + value
    by_reason = dict(counts.get("skipped", {}))
    for reason, n in result.skipped_by_reason.items():
        by_reason[reason] = by_reason.get(reason, 0) + n
    counts["skipped"] = by_reason
    if result.total is not None:
        counts["server"] = result.total
    return counts


def departments_with_mailbox(app: Helpdesk) -> list[tuple[int, str]]:
    with app.session() as session:
        rows = session.execute(select(Department.id, Department.name).join(Mailbox)
                               .order_by(Department.name)).all()
    return [(r.id, r.name) for r in rows]
