"""Changing and removing departments, users and memberships after they were added."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from helpdesk_core.app import Helpdesk
from helpdesk_core.errors import ConfigurationError, ConflictError, NotFoundError, PermissionDenied
from helpdesk_core.models import Department, Membership, OutboxMessage, Ticket, TicketMessage, User
from helpdesk_core.outbound.notifications import NOTIFY_OPTION
from helpdesk_core.services.departments import get_department
from helpdesk_core.services.lifecycle import AUTO_CLOSE_OPTION, move_ticket, record
from helpdesk_core.services.permissions import (
    Actor, can_manage_settings, is_global_admin, require_manage_settings,
)
from helpdesk_core.services.users import summary_role


def update_department(session: Session, *, actor: Actor, department: str, rename: str | None = None,
                      sender: str | None = None, interval_minutes: int | None = None,
                      auto_close_days: int | None = None, notify_staff: bool | None = None) -> Department:
    """Rename a department, change its sender address, import interval, ``auto_close_days``
    (0 = never) or ``notify_staff``; None leaves a value unchanged. Needs Manage Settings for it."""
    dept = get_department(session, department)
    require_manage_settings(actor, dept)
    if rename is not None:
        rename = rename.strip()
        if not rename:
            raise ConfigurationError("--rename needs a name.")
        taken = session.scalar(select(Department.id).where(Department.name == rename, Department.id != dept.id))
        if taken is not None:
            raise ConflictError(f"Department {rename!r} already exists: choose another name.")
        dept.name = rename
    if sender is not None:
        if "@" not in sender:
            raise ConfigurationError(f"--sender must be an email address (got {sender!r}).")
        dept.sender_address = sender.strip().lower()
    if interval_minutes is not None:
        if interval_minutes < 1:
            raise ConfigurationError("--interval must be at least 1 minute.")
        dept.interval_minutes = interval_minutes
    options = dict(dept.options or {})
    if auto_close_days is not None:
        if auto_close_days < 0:
            raise ConfigurationError("--auto-close-days must be 0 (never) or more.")
        options[AUTO_CLOSE_OPTION] = auto_close_days
    if notify_staff is not None:
        options[NOTIFY_OPTION] = notify_staff
    dept.options = options
    session.flush()
    return dept


def remove_department(app: Helpdesk, session: Session, *, actor: Actor, department: str,
                      move_tickets_to: str | None = None) -> int:
    """Delete a department with its mailbox configuration (and secrets), import history, canned
    replies and memberships. Refused while it has tickets, unless ``move_tickets_to`` names the
    department that receives them (each gets a new number there). Returns how many were moved."""
    dept = get_department(session, department)
    require_manage_settings(actor, dept)
    ids = list(session.scalars(select(Ticket.id).where(Ticket.department_id == dept.id).order_by(Ticket.id)))
    if ids and not move_tickets_to:
        raise ConflictError(f"Department {dept.name!r} has {len(ids)} tickets: move them first with "
                            "--move-tickets-to DEPARTMENT (they keep their history).")
    if move_tickets_to and get_department(session, move_tickets_to).id == dept.id:
        raise ConfigurationError("--move-tickets-to must name another department.")
    for ticket_id in ids:
        target = move_ticket(app, session, actor=actor, ticket_id=ticket_id, department=str(move_tickets_to))
        # messages and sent mail keep the department they came through, which is about to go (and
        # would take them along, ON DELETE CASCADE): they follow the ticket now
        for model in (TicketMessage, OutboxMessage):
            session.execute(update(model).where(model.ticket_id == ticket_id, model.department_id == dept.id)
                            .values(department_id=target.department_id).execution_options(synchronize_session=False))
    session.delete(dept)
    session.flush()
    return len(ids)


def _get_user(session: Session, email: str) -> User:
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise NotFoundError(f"No user {email!r}: see 'helpdesk user list'.")
    return user


def _require_user_admin(session: Session, actor: Actor, user: User) -> None:
    """A global admin; or a department admin when the user is not a global admin, has a
    membership and every one of them is in a department the actor administers (a change to the
    user reaches every department they belong to)."""
    if is_global_admin(actor):
        return
    departments = [session.get(Department, m.department_id) for m in user.memberships]
    if user.global_admin or not departments or not all(can_manage_settings(actor, d) for d in departments):
        raise PermissionDenied(f"{actor.email} cannot change {user.email}: that needs the Manage Settings "
                               "permission for every department of the user (and a global admin is changed "
                               "only by a global admin).",
                               details={"hint": "ask_admin", "permission": "manage_users"})


def set_user(session: Session, *, actor: Actor, email: str, name: str | None = None, active: bool | None = None,
             notifications: bool | None = None) -> User:
    """Change a user's name, deactivate/activate them (a deactivated user can't act and gets no
    mail; their tickets stay), or their staff notifications (a user may change their own)."""
    user = _get_user(session, email)
    if not (notifications is not None and name is None and active is None and actor is user):
        _require_user_admin(session, actor, user)
    if actor is user and active is False:
        raise ConfigurationError("You cannot deactivate yourself: ask another admin.")
    if name is not None:
        user.name = name.strip()
    if active is not None:
        user.active = active
    if notifications is not None:
        user.notifications = notifications
    session.flush()
    return user


def remove_membership(session: Session, *, actor: Actor, email: str, department: str) -> int:
    """Remove ``email`` from ``department``'s staff; their tickets there are unassigned (with an
    event). Returns how many were unassigned."""
    dept = get_department(session, department)
    require_manage_settings(actor, dept)
    user = _get_user(session, email)
    membership = session.scalar(select(Membership).where(Membership.user_id == user.id,
                                                         Membership.department_id == dept.id))
    if membership is None:
        raise NotFoundError(f"{user.email} is not a member of {dept.name!r}.")
    if not is_global_admin(actor) and user.global_admin:
        raise PermissionDenied(f"{user.email} is a global admin: only a global admin can change them.",
                               details={"hint": "ask_admin", "permission": "global_admin"})
    user.memberships.remove(membership)
    user.role = summary_role(user)
    assigned = list(session.scalars(select(Ticket).where(Ticket.department_id == dept.id,
                                                         Ticket.assignee_id == user.id)))
    for ticket in assigned:
        record(session, ticket, actor, "assignee", user.email, None)
        ticket.assignee = None
    session.flush()
    return len(assigned)
