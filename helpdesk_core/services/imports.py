"""Running imports: one cycle now (``helpdesk import``), the worker, and piped mail (``helpdesk ingest``)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from helpdesk_core.app import Helpdesk
from helpdesk_core.errors import ConfigurationError
from helpdesk_core.inbound.cycle import ProgressCallback, departments_with_mailbox, run_cycle
from helpdesk_core.inbound.importer import CycleResult, Outcome, import_message
from helpdesk_core.services.departments import get_department
from helpdesk_core.models import Department
from helpdesk_core.services.permissions import Actor, admin_department_ids, require_manage_settings


def import_targets(app: Helpdesk, session: Session, *, actor: Actor,
                   department: str | None = None) -> list[tuple[int, str]]:
    """``(id, name)`` of the departments an import cycle would run for: every one with a mailbox,
    or ``department`` (ConfigurationError when it has none). Only those where ``actor`` has
    Manage Settings."""
    if department is None:
        allowed = admin_department_ids(actor)
        if allowed is not None and not allowed:
            require_manage_settings(actor)
        return [(i, n) for i, n in departments_with_mailbox(app) if allowed is None or i in allowed]
    dept = get_department(session, department)
    require_manage_settings(actor, dept)
    if dept.mailbox is None:
        raise ConfigurationError(f"Department {department!r} has no mailbox.",
                                 details={"hint": "set_mailbox", "department": department})
    return [(dept.id, dept.name)]


def run_import(app: Helpdesk, *, actor: Actor, department_id: int,
               progress: ProgressCallback | None = None) -> CycleResult:
    """One import cycle of a department now (it opens and commits its own sessions). Needs
    Manage Settings for the department."""
    with app.session() as session:
        require_manage_settings(actor, session.get(Department, department_id))
    return run_cycle(app, department_id, progress=progress)


def run_worker(app: Helpdesk, *, actor: Actor, threads: int = 4, once: bool = False) -> None:
    """Run import cycles (each department on its own interval) until SIGTERM/SIGINT, or once.
    Only a global admin (or the operator) runs the worker: it acts for every department."""
    require_manage_settings(actor)
    from helpdesk_core.inbound.worker import Worker
    from helpdesk_core.outbound.outbox import flush_task
    from helpdesk_core.services.lifecycle import auto_close_task

    Worker(app, threads=threads, tasks=[flush_task, auto_close_task]).run(once=once)


def ingest_raw(app: Helpdesk, session: Session, *, actor: Actor, department: str, raw: bytes) -> Outcome:
    """Import one raw message handed over by a mail server. A message that cannot be imported is
    kept at once as a failed import (the mail server cannot retry a bad message usefully), so the
    caller may acknowledge the delivery after commit. There is no mailbox to leave a message in:
    an empty or over-size one comes back ``refused`` (logged) for the mail server to bounce.
    Needs Manage Settings for the department (the mail server runs as the operator)."""
    dept = get_department(session, department)
    require_manage_settings(actor, dept)
    return import_message(app.context(session), dept, raw, max_attempts=1, from_mailbox=False)
