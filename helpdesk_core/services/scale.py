"""Push on/off per department and the state of every department at once (``helpdesk status``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk_core.models import Department
from helpdesk_core.services.departments import department_status, get_department
from helpdesk_core.errors import PermissionDenied
from helpdesk_core.services.permissions import SYSTEM, Actor, require_manage_settings, require_staff_somewhere


def set_push(session: Session, *, actor: Actor, department: str, enabled: bool) -> dict[str, Any]:
    """Turn IMAP IDLE push on or off for a department (option ``push``, default on); polling on
    the interval goes on either way. Needs Manage Settings for the department. Caller commits."""
    dept = get_department(session, department)
    require_manage_settings(actor, dept)
    dept.options = {**(dept.options or {}), "push": bool(enabled)}  # a new dict: the JSON is saved
    session.flush()
    return dict(dept.options)


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def system_status(session: Session, *, actor: Actor, now: datetime | None = None) -> dict[str, Any]:
    """Every department: the fields of ``department status`` plus ``lag_seconds`` (how far behind its
    schedule it is; 0 when not yet due), ``consecutive_failures``, ``push``, ``importing`` (the
    worker holding its lease, if live) and ``watcher`` (the ``helpdesk watch`` holding its IDLE
    connection, if live); and ``watchers``: each watch process with its departments."""
    now = now or datetime.now(UTC)
    departments: list[dict[str, Any]] = []
    watchers: dict[str, list[str]] = {}
    visible = require_staff_somewhere(actor, "the import status")
    query = select(Department).order_by(Department.name)
    if visible is not None:
        query = query.where(Department.id.in_(visible))
    for dept in session.scalars(query):
        entry = department_status(session, actor=actor, department=dept.name)
        mb = dept.mailbox
        next_run = _utc(mb.next_run_at) if mb else None
        lease_live = bool(mb and mb.lease_owner and (_utc(mb.lease_expires_at) or now) >= now)
        watch_live = bool(mb and mb.watch_owner and (_utc(mb.watch_expires_at) or now) >= now)
        entry.update({
            "lag_seconds": (max(0.0, round((now - next_run).total_seconds(), 1)) if next_run else
                            None if mb is None else 0.0),
            "consecutive_failures": mb.consecutive_failures if mb else 0,
            "push": (dept.options or {}).get("push", True) is not False,
            "queue": (dept.options or {}).get("queue") or None,
            "importing": mb.lease_owner if lease_live else None,
            "watcher": mb.watch_owner if watch_live else None,
        })
        if watch_live:
            watchers.setdefault(mb.watch_owner, []).append(dept.name)
        departments.append(entry)
    return {"departments": departments,
            "watchers": [{"owner": o, "departments": d} for o, d in sorted(watchers.items())]}


def watch_service(app: Any, *, actor: Actor, enqueue: Any, limit: int) -> Any:
    """The IMAP IDLE watchers of ``helpdesk watch`` (a daemon: it acts for the installation, so only
    the system actor may run it); ``enqueue(department_id)`` sends an import to the task queue."""
    from helpdesk_core.inbound.idle import WatchService

    if actor is not SYSTEM:
        raise PermissionDenied("Only the installation's operator runs the watch service.",
                               details={"hint": "ask_admin"})
    return WatchService(app, enqueue, limit=limit)
