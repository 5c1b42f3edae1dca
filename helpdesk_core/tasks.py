"""The Celery application for many mailboxes on many machines (optional: ``helpdesk-core[celery]``).

Run, on any number of machines sharing one PostgreSQL database and one Redis::

    celery -A helpdesk_core.tasks worker --loglevel INFO      # N of them
    celery -A helpdesk_core.tasks beat -s /var/lib/helpdesk/celerybeat-schedule   # exactly one
    helpdesk watch                                            # IMAP IDLE push, one or several

Settings come from the environment, like the rest of the help desk:

* ``HELPDESK_BROKER_URL`` -- the broker (Redis), default ``redis://127.0.0.1:6379/0``;
  ``HELPDESK_RESULT_URL`` -- where results go (default: the broker);
* ``HELPDESK_DATABASE_URL``, ``HELPDESK_HOME``, ``HELPDESK_SECRET_KEY`` -- as for ``helpdesk``;
* ``HELPDESK_DISPATCH_SECONDS`` -- how often beat runs :func:`dispatch` (default 5);
* ``HELPDESK_REDISPATCH_SECONDS`` -- a department sent to the queue is sent again after this long
  if its cycle has not finished by then (a lost task, a broker that restarted empty; default 600);
* ``HELPDESK_VISIBILITY_TIMEOUT`` -- Redis redelivers an unacknowledged task after this long
  (default 3600); ``HELPDESK_LEASE_SECONDS`` -- the mailbox lease (default 300).

The schedule lives in the database, not in beat: :func:`dispatch` sends ``import_department`` for
every mailbox whose ``next_run_at`` has come (an admin's new interval counts from the next cycle,
nothing is restarted), after moving ``next_run_at`` forward in a compare-and-set, so two
dispatchers never send one department twice. Every task is safe to run twice: the mailbox lease
(with its fencing token) and the ledger make a second run import nothing. ``acks_late`` and
``reject_on_worker_lost`` put the task of a killed worker back in the queue.

Routing: each department's tasks go to the queue named by its ``queue`` option (default
``helpdesk``), so a big department can get workers of its own (``worker -Q big``).

Nothing here is imported by the embedded default (``helpdesk worker``).
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

try:
    from celery import Celery
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError("Celery is not installed: pip install 'helpdesk-core[celery]' "
                      "(the embedded 'helpdesk worker' needs no Celery).") from exc

from sqlalchemy import or_, select, update
from sqlalchemy.exc import OperationalError

from helpdesk_core.app import Helpdesk
from helpdesk_core.config import Config, env_number
from helpdesk_core.errors import DatabaseUnavailable, NotFoundError
from helpdesk_core.models import Department, Mailbox, OutboxMessage, OutboxStatus

log = logging.getLogger("helpdesk.tasks")

DEFAULT_QUEUE = "helpdesk"


def _env_seconds(name: str, default: float) -> float:
    return env_number(name, default, float, 0.1)


BROKER_URL = os.environ.get("HELPDESK_BROKER_URL") or "redis://127.0.0.1:6379/0"
DISPATCH_SECONDS = _env_seconds("HELPDESK_DISPATCH_SECONDS", 5.0)
REDISPATCH_SECONDS = _env_seconds("HELPDESK_REDISPATCH_SECONDS", 600.0)

app = Celery("helpdesk_core.tasks")
app.conf.update(
    broker_url=BROKER_URL,
    result_backend=os.environ.get("HELPDESK_RESULT_URL") or BROKER_URL,
    result_expires=3600,
    task_default_queue=DEFAULT_QUEUE,
    task_serializer="json", result_serializer="json", accept_content=["json"],
    task_acks_late=True,                  # acknowledged after the cycle, not before
    task_reject_on_worker_lost=True,      # a killed worker's task goes back to the queue
    worker_prefetch_multiplier=1,         # a busy worker does not sit on tasks others could run
    broker_connection_retry_on_startup=True,
    broker_transport_options={"visibility_timeout": _env_seconds("HELPDESK_VISIBILITY_TIMEOUT", 3600)},
    timezone="UTC",
    beat_schedule={
        "helpdesk-dispatch": {"task": "helpdesk_core.tasks.dispatch", "schedule": DISPATCH_SECONDS,
                              "options": {"expires": DISPATCH_SECONDS * 2}},
        "helpdesk-periodic": {"task": "helpdesk_core.tasks.periodic", "schedule": 60.0,
                              "options": {"expires": 60.0}},
    },
)


@lru_cache(maxsize=1)
def helpdesk() -> Helpdesk:
    """This process's application (built on first use, so after a prefork worker's fork)."""
    return Helpdesk.from_config(Config.from_env())


def queue_of(options: dict[str, Any] | None) -> str:
    """The queue of a department's tasks: its ``queue`` option, else :data:`DEFAULT_QUEUE`."""
    name = (options or {}).get("queue")
    return str(name).strip() if name and str(name).strip() else DEFAULT_QUEUE


@app.task(name="helpdesk_core.tasks.import_department", bind=True, max_retries=None)
def import_department(self: Any, department_id: int) -> dict[str, Any]:
    """One import cycle of one department (:func:`helpdesk_core.inbound.cycle.run_cycle`).

    Safe to run twice or concurrently: a second run finds the lease taken (``error_kind``
    ``leased``) or the mail already in the ledger. A database outage retries the task later.
    """
    from helpdesk_core.inbound.cycle import run_cycle

    try:
        result = run_cycle(helpdesk(), department_id)
    except NotFoundError as exc:  # deleted since it was queued: nothing to do
        return {"department_id": department_id, "error": exc.message, "error_kind": exc.kind}
    except (DatabaseUnavailable, OperationalError) as exc:
        raise self.retry(exc=exc, countdown=min(60, 5 * 2 ** min(self.request.retries, 4)))
    return {"department_id": department_id, "department": result.department, **result.as_json()}


@app.task(name="helpdesk_core.tasks.flush_outbox", bind=True, max_retries=None, ignore_result=True)
def flush_outbox(self: Any, department_id: int) -> dict[str, int]:
    """Send one department's due outgoing mail (claims rows, so two runs never send one twice)."""
    from helpdesk_core.outbound.outbox import flush_outbox as flush

    try:
        return flush(helpdesk(), department=department_id).as_json()
    except NotFoundError:
        return {}
    except (DatabaseUnavailable, OperationalError) as exc:
        raise self.retry(exc=exc, countdown=30)


def due_departments(application: Helpdesk, now: datetime, limit: int = 1000) -> list[tuple[int, str]]:
    """Claim up to ``limit`` due departments (id, queue): each one's ``next_run_at`` is moved
    :data:`REDISPATCH_SECONDS` ahead in a compare-and-set, committed before anything is sent, so
    a second dispatcher skips it and a task that is lost is sent again after that time."""
    claimed: list[tuple[int, str]] = []
    later = now + timedelta(seconds=REDISPATCH_SECONDS)
    due = or_(Mailbox.next_run_at.is_(None), Mailbox.next_run_at <= now)
    with application.session() as session:
        rows = session.execute(
            select(Department.id, Department.options, Mailbox.id).join(Mailbox)
            .where(Mailbox.needs_reauthorization.is_(False), due)
            .order_by(Mailbox.next_run_at).limit(limit)).all()
        for department_id, options, mailbox_id in rows:
            hit = session.execute(update(Mailbox).where(Mailbox.id == mailbox_id, due)
                                  .values(next_run_at=later).execution_options(synchronize_session=False))
            if hit.rowcount == 1:
                claimed.append((department_id, queue_of(options)))
        session.commit()
    return claimed


def outbox_departments(application: Helpdesk, now: datetime) -> list[tuple[int, str]]:
    """Departments (id, queue) with outgoing mail due now."""
    with application.session() as session:
        rows = session.execute(
            select(Department.id, Department.options).where(Department.id.in_(
                select(OutboxMessage.department_id).where(
                    OutboxMessage.status == OutboxStatus.QUEUED,
                    or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now))
            ))).all()
    return [(r[0], queue_of(r[1])) for r in rows]


def enqueue_import(department_id: int, queue: str = DEFAULT_QUEUE) -> None:
    """Send ``import_department`` (used by :func:`dispatch` and by ``helpdesk watch``)."""
    import_department.apply_async((department_id,), queue=queue,
                                  expires=REDISPATCH_SECONDS)


def enqueue_department(department_id: int) -> None:
    """Send ``import_department`` to the department's queue now (``helpdesk watch`` on new mail)."""
    with helpdesk().session() as session:
        department = session.get(Department, department_id)
        options = department.options if department is not None else None
    enqueue_import(department_id, queue_of(options))


@app.task(name="helpdesk_core.tasks.dispatch", ignore_result=True)
def dispatch() -> dict[str, int]:
    """Run by beat every :data:`DISPATCH_SECONDS`: send each due department and outbox."""
    application = helpdesk()
    now = datetime.now(UTC)
    imports = due_departments(application, now)
    for department_id, queue in imports:
        enqueue_import(department_id, queue)
    outboxes = outbox_departments(application, now)
    for department_id, queue in outboxes:
        flush_outbox.apply_async((department_id,), queue=queue, expires=DISPATCH_SECONDS * 2)
    if imports or outboxes:
        log.info("dispatch: %d imports, %d outbox flushes", len(imports), len(outboxes))
    return {"imports": len(imports), "outboxes": len(outboxes)}


@app.task(name="helpdesk_core.tasks.periodic", ignore_result=True)
def periodic() -> None:
    """Run by beat every minute: the housekeeping ``helpdesk worker`` does besides imports and the
    outbox (which :func:`dispatch` sends per department) -- today the auto-close of resolved
    tickets -- so both set-ups do the same."""
    from helpdesk_core.services.lifecycle import auto_close_task

    auto_close_task(helpdesk())


def queue_depths(queues: list[str] | None = None) -> dict[str, int | None]:
    """Messages waiting per queue (None when the broker cannot be reached), for ``helpdesk status``."""
    depths: dict[str, int | None] = {}
    try:
        with app.connection_for_write(os.environ.get("HELPDESK_BROKER_URL") or BROKER_URL) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            channel = conn.default_channel
            for name in queues or [DEFAULT_QUEUE]:
                try:
                    depths[name] = channel.queue_declare(queue=name, passive=True).message_count
                except Exception:  # noqa: BLE001 - a queue nobody declared yet
                    depths[name] = 0
    except Exception as exc:  # noqa: BLE001 - status must answer even when Redis is down
        log.warning("broker unreachable: %s", exc)
        return {name: None for name in queues or [DEFAULT_QUEUE]}
    return depths
