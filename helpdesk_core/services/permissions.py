"""Who may do what. Enforced in the service layer, and only here (docs/permissions.md is the table).

Roles are per department membership (:class:`~helpdesk_core.models.Membership` ``role``):

* A **global admin** (``User.global_admin``) has *Manage Settings* everywhere and sees every ticket.
* A **department admin** (membership role ``admin``) has *Manage Settings* for that department,
  sees and answers all its tickets, and manages its agents and requesters — never granting a role
  above its own, never touching another department's memberships, never changing a global admin.
* An **agent** (membership role ``agent``) sees and answers the department's tickets and writes
  internal notes; it reads the department's failed/held mail, import log and status.
* A **requester** (no staff membership) sees only the tickets where they are the requester or a
  participant, never internal notes, logs, failed/held mail, users or mailbox configuration.
* :data:`SYSTEM` is the local operator running the CLI on the server: everything.
  :data:`ANONYMOUS` (nobody signed in) may do nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, Text, cast, false, or_, select
from sqlalchemy.orm import Session

from helpdesk_core.errors import NotFoundError, PermissionDenied
from helpdesk_core.models import Department, Role, Ticket, User


@dataclass(frozen=True)
class SystemActor:
    """The operator of the installation (CLI on the server). Has every permission."""

    email: str = "system"


@dataclass(frozen=True)
class AnonymousActor:
    """Nobody signed in (e.g. a web request without a session). Has no permission."""

    email: str = "anonymous"


SYSTEM = SystemActor()
ANONYMOUS = AnonymousActor()
Actor = User | SystemActor | AnonymousActor


def resolve_actor(session: Session, email: str | None) -> Actor:
    if not email:
        return SYSTEM
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise NotFoundError(f"No user {email!r}.", details={"hint": "add_user", "email": email})
    if not user.active:
        raise PermissionDenied(f"{user.email} is deactivated and cannot act.",
                               details={"hint": "reactivate", "email": user.email})
    return user


def _user(actor: Actor) -> User | None:
    """The acting user, when it is a (active) user."""
    return actor if isinstance(actor, User) and actor.active else None


def is_global_admin(actor: Actor) -> bool:
    if isinstance(actor, SystemActor):
        return True
    user = _user(actor)
    return user is not None and user.global_admin


def role_in(actor: Actor, department: Department | int) -> Role | None:
    """``actor``'s role in ``department`` (ADMIN for a global admin; None: no membership)."""
    if is_global_admin(actor):
        return Role.ADMIN
    user = _user(actor)
    if user is None:
        return None
    return user.role_in(department if isinstance(department, int) else department.id)


def staff_department_ids(actor: Actor) -> set[int] | None:
    """Departments where ``actor`` is staff; None means every department (global admin)."""
    if is_global_admin(actor):
        return None
    user = _user(actor)
    return set() if user is None else user.department_ids


def admin_department_ids(actor: Actor) -> set[int] | None:
    """Departments where ``actor`` has Manage Settings; None means every department."""
    if is_global_admin(actor):
        return None
    user = _user(actor)
    return set() if user is None else user.admin_department_ids


def can_manage_settings(actor: Actor, department: Department | None = None) -> bool:
    if is_global_admin(actor):
        return True
    return department is not None and role_in(actor, department) == Role.ADMIN


def require_manage_settings(actor: Actor, department: Department | None = None) -> None:
    """Raise PermissionDenied unless ``actor`` has Manage Settings (for ``department``)."""
    if not can_manage_settings(actor, department):
        where = f" for department {department.name!r}" if department else ""
        raise PermissionDenied(f"{actor.email} lacks the Manage Settings permission{where}.",
                               details={"hint": "ask_admin", "permission": "manage_settings",
                                        "department": department.name if department else None})


def is_staff(actor: Actor, department: Department) -> bool:
    return role_in(actor, department) in (Role.ADMIN, Role.AGENT)


def require_signed_in(actor: Actor) -> None:
    if isinstance(actor, AnonymousActor) or (isinstance(actor, User) and not actor.active):
        raise PermissionDenied("Sign in first.", details={"hint": "sign_in"})


def require_staff_somewhere(actor: Actor, what: str) -> set[int] | None:
    """Raise PermissionDenied unless ``actor`` is staff of some department; returns the
    departments it may read (None: all) — for failed/held mail, the import log, users."""
    ids = staff_department_ids(actor)
    if ids is not None and not ids:
        raise PermissionDenied(f"{actor.email} may not see {what}: only staff of a department may.",
                               details={"hint": "ask_admin", "permission": "staff"})
    return ids


def require_department_staff(actor: Actor, department: Department, what: str) -> None:
    if not is_staff(actor, department):
        raise PermissionDenied(f"{actor.email} may not see {what} of department {department.name!r}: "
                               "only its staff may.",
                               details={"hint": "ask_admin", "permission": "staff",
                                        "department": department.name})


def sees_internal(actor: Actor, ticket: Ticket) -> bool:
    """Internal notes are for the staff of the ticket's department only."""
    return is_staff(actor, ticket.department)


def _participant_filter(user: User) -> ColumnElement[bool]:
    # participants is a JSON list of lower-cased addresses; match it portably on its text
    return cast(Ticket.participants, Text).contains(f'"{user.email.lower()}"', autoescape=True)


def visible_tickets(actor: Actor, query: Select[tuple[Ticket]]) -> Select[tuple[Ticket]]:
    """Restrict a ticket query to what ``actor`` may see."""
    if is_global_admin(actor):
        return query
    user = _user(actor)
    if user is None:
        return query.where(false())
    mine = [Ticket.requester_id == user.id, _participant_filter(user)]
    if user.department_ids:
        mine.append(Ticket.department_id.in_(user.department_ids))
    return query.where(or_(*mine))


def is_participant(user: User, ticket: Ticket) -> bool:
    return ticket.requester_id == user.id or user.email.lower() in {str(p).lower() for p in ticket.participants or []}


def require_ticket_visible(actor: Actor, ticket: Ticket) -> None:
    if is_global_admin(actor) or is_staff(actor, ticket.department):
        return
    user = _user(actor)
    if user is not None and is_participant(user, ticket):
        return
    raise NotFoundError(f"No ticket {ticket.id}.")  # don't reveal that it exists
