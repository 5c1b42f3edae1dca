"""Departments and their mail configuration."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from helpdesk_core.app import Helpdesk
from helpdesk_core.errors import ConfigurationError, ConflictError, HelpdeskError, NotFoundError
from helpdesk_core.models import (
    Department, KeptMail, KeptMailStatus, ImportCycle, ImportEvent, LedgerEntry, Mailbox, OutboxMessage,
    OutboxStatus,
)
from helpdesk_core.providers.secrets import stored_secrets  # noqa: F401 - re-exported for callers of services
from helpdesk_core.services.operator_roots import MAILDIR_ROOT, TEMPLATE_ROOT, require_under_root
from helpdesk_core.services.permissions import (
    Actor, can_manage_settings, require_department_staff, require_manage_settings, require_signed_in,
)


def get_department(session: Session, name: str) -> Department:
    dept = session.scalar(select(Department).where(Department.name == name))
    if dept is None:
        names = ", ".join(session.scalars(select(Department.name).order_by(Department.name))) or "none yet"
        raise NotFoundError(f"No department named {name!r} (departments: {names}).",
                            details={"hint": "add_department", "department": name})
    return dept


def add_department(session: Session, *, actor: Actor, name: str, sender: str,
                   interval_minutes: int = 5) -> Department:
    require_manage_settings(actor)
    name = name.strip()
    if not name:
        raise ConfigurationError("A department needs a name.", details={"field": "name"})
    if "@" not in sender:
        raise ConfigurationError(f"The sender must be an email address (got {sender!r}).",
                                 details={"field": "sender"})
    if interval_minutes < 1:
        raise ConfigurationError("The import interval must be at least 1 minute.",
                                 details={"field": "interval_minutes"})
    if session.scalar(select(Department.id).where(Department.name == name)) is not None:
        raise ConflictError(f"Department {name!r} already exists.")
    dept = Department(name=name, sender_address=sender.strip().lower(),
                      interval_minutes=interval_minutes, options={})
    session.add(dept)
    session.flush()
    return dept


def list_departments(session: Session, *, actor: Actor) -> list[Department]:
    """Every department (each signed-in user may see the list; not its mailbox configuration:
    see :func:`department_summaries`)."""
    require_signed_in(actor)
    return list(session.scalars(select(Department).order_by(Department.name)))


def department_summary(dept: Department, *, mailbox: bool = True) -> dict[str, Any]:
    """The department; its mailbox configuration only with ``mailbox`` (the key is then absent)."""
    data: dict[str, Any] = {"id": dept.id, "name": dept.name, "sender": dept.sender_address,
                            "interval_minutes": dept.interval_minutes}
    if mailbox:
        mb = dept.mailbox
        data["mailbox"] = None if mb is None else {
            "provider": mb.provider, "identity": mb.identity,
            "config": {k: v for k, v in mb.config.items()},
        }
    return data


def department_summaries(session: Session, *, actor: Actor) -> list[dict[str, Any]]:
    """:func:`department_summary` of every department, with the mailbox configuration only where
    ``actor`` has Manage Settings: ``helpdesk department list --json``."""
    return [department_summary(d, mailbox=can_manage_settings(actor, d))
            for d in list_departments(session, actor=actor)]


def set_mailbox(app: Helpdesk, session: Session, *, actor: Actor, department: str, provider: str,
                config: Mapping[str, Any], secrets: Mapping[str, str],
                validate: bool = True) -> dict[str, Any]:
    """Validate connectivity, then save the department's mailbox. Saves nothing on failure.

    Raises :class:`~helpdesk_core.errors.MailboxError` with a precise ``kind`` when the check fails,
    ConflictError when another department already uses this mailbox. Returns the validation facts.
    Existing secrets are kept for fields not given (e.g. changing the port keeps the password).
    """
    dept = get_department(session, department)
    require_manage_settings(actor, dept)
    prov = app.providers.get(provider)
    normalized = prov.normalize_config(config)
    for f in prov.fields:  # folders and files on the server: only under the operator's root
        if f.type == "path" and normalized.get(f.name):
            require_under_root(actor, str(normalized[f.name]), MAILDIR_ROOT, f"Setting {f.name!r}")
    identity = prov.identity(normalized)
    other = _mailbox_with_identity(app, session, identity, dept.id)
    if other is not None:
        raise ConflictError(f"This mailbox ({identity}) is already configured for department "
                            f"{other.department.name!r}; one mailbox serves one department. "
                            f"Clear it there first ('helpdesk department clear-mailbox "
                            f"{other.department.name!r}').")
    current = dept.mailbox
    merged: dict[str, str] = {}
    if current is not None and current.provider == provider:
        merged.update(app.secrets.decrypt(current.secrets_encrypted))
    merged.update({k: v for k, v in secrets.items() if v is not None})
    missing = [f.name for f in prov.fields if f.secret and f.required and not merged.get(f.name)]
    if missing:
        raise ConfigurationError(f"Missing secret setting(s) {', '.join(missing)} of provider {provider!r}: "
                                 "give them with the secrets (set-mailbox: --secret-stdin NAME, read from "
                                 "standard input).")
    facts = prov.validate(normalized, merged) if validate else {}
    encrypted = app.secrets.encrypt(merged)
    if current is None:
        current = Mailbox(department_id=dept.id, provider=provider, identity=identity, config=normalized,
                          secrets_encrypted=encrypted, state={})
        session.add(current)
    else:
        if current.identity != identity:  # another mailbox: its mail so far is a backlog of its own
            current.state = {}
            current.configured_at = datetime.now(UTC)
        current.provider, current.identity, current.config = provider, identity, normalized
        current.secrets_encrypted = encrypted
        current.needs_reauthorization = False
        current.failing_since = current.last_error = current.last_error_kind = None
    current.waiting = facts.get("waiting")
    # mail queued while the old settings failed (wrong password, revoked token) is due again now
    session.execute(update(OutboxMessage).where(OutboxMessage.department_id == dept.id,
                                                OutboxMessage.status == OutboxStatus.QUEUED)
                    .values(next_attempt_at=None).execution_options(synchronize_session=False))
    session.flush()
    return facts


def _mailbox_with_identity(app: Helpdesk, session: Session, identity: str, department_id: int) -> Mailbox | None:
    """Another department's mailbox reading the same account. Each stored mailbox's identity is
    computed again by its provider, so mailboxes saved before the identity became the normalised
    account (login, canonical host, folder) are recognised too; their stored identity is updated."""
    for mailbox in session.scalars(select(Mailbox).where(Mailbox.department_id != department_id)):
        current = mailbox.identity
        try:
            current = app.providers.get(mailbox.provider).identity(mailbox.config)
        except HelpdeskError:  # provider not installed, or its settings no longer valid
            pass
        if current != mailbox.identity and session.scalar(
                select(func.count(Mailbox.id)).where(Mailbox.identity == current)) == 0:
            mailbox.identity = current
        if current == identity:
            return mailbox
    return None


#: department options and their defaults
DEPARTMENT_OPTIONS: dict[str, Any] = {"acknowledge": False, "reopen_closed": True, "templates_dir": None}


def set_department_options(session: Session, *, actor: Actor, department: str, acknowledge: bool | None = None,
                           reopen_closed: bool | None = None, templates_dir: str | None = None) -> dict[str, Any]:
    """Change department options (None = unchanged; ``templates_dir=""`` removes the override).
    Returns all options with their defaults filled in. Needs Manage Settings for the department."""
    dept = get_department(session, department)
    require_manage_settings(actor, dept)
    options = dict(dept.options or {})
    if acknowledge is not None:
        options["acknowledge"] = bool(acknowledge)
    if reopen_closed is not None:
        options["reopen_closed"] = bool(reopen_closed)
    if templates_dir is not None:
        if templates_dir.strip():
            path = os.path.abspath(os.path.expanduser(templates_dir.strip()))
            require_under_root(actor, path, TEMPLATE_ROOT, "Templates folder")
            if not os.path.isdir(path):
                raise ConfigurationError(f"Templates folder {path!r} does not exist: create it with reply/ "
                                         "and/or acknowledgement/ subfolders (see docs/configuration.md).")
            options["templates_dir"] = path
        else:
            options.pop("templates_dir", None)
    dept.options = options  # a new dict, so the JSON column is saved
    session.flush()
    return {**DEPARTMENT_OPTIONS, **options}


def clear_mailbox(session: Session, *, actor: Actor, department: str) -> bool:
    """Remove the department's mailbox; the department keeps working for internal tickets."""
    dept = get_department(session, department)
    require_manage_settings(actor, dept)
    if dept.mailbox is None:
        return False
    session.delete(dept.mailbox)
    dept.mailbox = None
    session.flush()
    return True


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def department_status(session: Session, *, actor: Actor, department: str) -> dict[str, Any]:
    """Health of a department's import: the shape of ``helpdesk department status --json``.
    For the department's staff."""
    dept = get_department(session, department)
    require_department_staff(actor, dept, "the import status")
    mb = dept.mailbox
    last = session.scalar(select(ImportCycle).where(ImportCycle.department_id == dept.id)
                          .order_by(ImportCycle.id.desc()).limit(1))
    failed = session.scalar(select(func.count(KeptMail.id)).where(
        KeptMail.department_id == dept.id, KeptMail.status == KeptMailStatus.FAILED))
    left = list(session.scalars(select(LedgerEntry).where(LedgerEntry.department_id == dept.id,
                                                          LedgerEntry.outcome == "kept")
                                .order_by(LedgerEntry.id)))
    problem = session.scalar(select(ImportEvent).where(ImportEvent.department_id == dept.id,
                                                       ImportEvent.outcome.in_(("retry", "failed")))
                             .order_by(ImportEvent.id.desc()).limit(1))
    return {
        "department": dept.name,
        "mailbox": None if mb is None else mb.identity,
        "provider": None if mb is None else mb.provider,
        "state": ("no mailbox" if mb is None else "needs re-authorisation" if mb.needs_reauthorization
                  else "failing" if mb.failing_since else "ok" if mb.last_success_at else "never run"),
        "last_success_at": _iso(mb.last_success_at) if mb else None,
        "failing_since": _iso(mb.failing_since) if mb else None,
        "last_error": mb.last_error if mb else None,
        "last_error_kind": mb.last_error_kind if mb else None,
        "needs_reauthorization": bool(mb and mb.needs_reauthorization),
        "waiting": mb.waiting if mb else None,
        "next_run_at": _iso(mb.next_run_at) if mb else None,
        "failed_imports": failed or 0,
        "left_in_mailbox": len(left),
        "left_in_mailbox_reasons": [e.reason or "" for e in left[-10:]],
        "last_import_error": None if problem is None else {
            "at": _iso(problem.created_at), "outcome": problem.outcome, "reason": problem.reason,
            "message_id": problem.message_id, "subject": problem.subject},
        "counts": None if mb is None else reconciliation((mb.state or {}).get("counts")),
        "last_cycle": None if last is None else {
            "started_at": _iso(last.started_at), "finished_at": _iso(last.finished_at),
            "fetched": last.fetched, "created": last.created, "updated": last.updated,
            "failed": last.failed, "skipped": last.skipped, "deleted": last.deleted,
            "error": last.error,
        },
    }


#: the outcomes that together account for every fetched message
OUTCOMES = ("created", "updated", "duplicates", "held", "failed", "retried", "kept")


def reconciliation(counts: dict[str, Any] | None) -> dict[str, Any]:
    """The mailbox's cumulative counts since it was configured (kept by the import cycle), with
    ``accounted`` (the sum of the outcomes, skipped by reason included), ``gap`` (fetched minus
    accounted: 0 unless mail went missing) and ``server`` (messages on the server when a cycle
    last started)."""
    counts = dict(counts or {})
    skipped = dict(counts.get("skipped") or {})
    accounted = sum(int(counts.get(k, 0)) for k in OUTCOMES) + sum(skipped.values())
    fetched = int(counts.get("fetched", 0))
    return {"fetched": fetched, **{k: int(counts.get(k, 0)) for k in OUTCOMES}, "skipped": skipped,
            "deleted": int(counts.get("deleted", 0)), "server": counts.get("server"),
            "accounted": accounted, "gap": fetched - accounted, "balanced": fetched == accounted}



#: the ledger's outcomes as the status chart counts them (``held`` was skipped by the rate limit;
#: ``kept`` is still in the mailbox and not counted)
ACTIVITY_OUTCOMES = {"imported": "imported", "skipped": "skipped", "held": "skipped", "failed": "failed"}


def import_activity(session: Session, *, actor: Actor, department: str, days: int = 30,
                    today: date | None = None) -> list[dict[str, Any]]:
    """Imported, skipped (held included) and failed mail per UTC day of the last ``days`` days,
    oldest first, one entry per day (zeros included), from the import ledger: the department
    status chart. For the department's staff."""
    dept = get_department(session, department)
    require_department_staff(actor, dept, "the import status")
    last = today or datetime.now(UTC).date()
    first = last - timedelta(days=days - 1)
    per_day = {first + timedelta(days=i): {"imported": 0, "skipped": 0, "failed": 0} for i in range(days)}
    rows = session.execute(select(LedgerEntry.created_at, LedgerEntry.outcome).where(
        LedgerEntry.department_id == dept.id, LedgerEntry.created_at >= datetime.combine(first, time(), UTC)))
    for created, outcome in rows:
        counts = per_day.get(created.astimezone(UTC).date())
        if counts is not None and outcome in ACTIVITY_OUTCOMES:
            counts[ACTIVITY_OUTCOMES[outcome]] += 1
    return [{"day": day.isoformat(), **counts} for day, counts in per_day.items()]
