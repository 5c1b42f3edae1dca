"""Who may do what. Enforced in the service layer, not only in the CLI.

* A global **admin** (role admin without department memberships) has *Manage Settings* everywhere
  and sees every ticket.
* A **department admin** (role admin with memberships) has *Manage Settings* for its departments
  and sees all their tickets.
* An **agent** (staff) sees and answers the tickets of its departments.
* A **requester** sees only the tickets they requested.
* :data:`SYSTEM` is the local operator running the CLI on the server: everything.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from helpdesk_core.errors import NotFoundError, PermissionDenied
from helpdesk_core.models import Department, Role, Ticket, User


@dataclass(frozen=True)
class SystemActor:
    """The operator of the installation (CLI on the server). Has every permission."""

    email: str = "system"


SYSTEM = SystemActor()
Actor = User | SystemActor


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


def is_global_admin(actor: Actor) -> bool:
    return isinstance(actor, SystemActor) or (actor.role == Role.ADMIN and not actor.memberships)


def can_manage_settings(actor: Actor, department: Department | None = None) -> bool:
    if is_global_admin(actor):
        return True
    assert isinstance(actor, User)
    return actor.role == Role.ADMIN and department is not None and department.id in actor.department_ids


def require_manage_settings(actor: Actor, department: Department | None = None) -> None:
    """Raise PermissionDenied unless ``actor`` has Manage Settings (for ``department``)."""
    if not can_manage_settings(actor, department):
        where = f" for department {department.name!r}" if department else ""
        raise PermissionDenied(f"{actor.email} lacks the Manage Settings permission{where}.",
                               details={"hint": "ask_admin", "permission": "manage_settings",
                                        "department": department.name if department else None})


def is_staff(actor: Actor, department: Department) -> bool:
    if is_global_admin(actor):
        return True
    assert isinstance(actor, User)
    return actor.role in (Role.ADMIN, Role.AGENT) and department.id in actor.department_ids


def visible_tickets(actor: Actor, query: Select[tuple[Ticket]]) -> Select[tuple[Ticket]]:
    """Restrict a ticket query to what ``actor`` may see."""
    if is_global_admin(actor):
        return query
    assert isinstance(actor, User)
    if actor.role in (Role.ADMIN, Role.AGENT):
        return query.where(Ticket.department_id.in_(actor.department_ids or {-1}))
    return query.where(Ticket.requester_id == actor.id)


def require_ticket_visible(actor: Actor, ticket: Ticket) -> None:
    if is_global_admin(actor):
        return
    assert isinstance(actor, User)
    if actor.role in (Role.ADMIN, Role.AGENT) and ticket.department_id in actor.department_ids:
        return
    if ticket.requester_id == actor.id:
        return
    raise NotFoundError(f"No ticket {ticket.id}.")  # don't reveal that it exists
