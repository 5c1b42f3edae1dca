"""Users and their per-department roles (see docs/permissions.md)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from helpdesk_core.errors import ConfigurationError, PermissionDenied
from helpdesk_core.models import Department, Membership, Role, User
from helpdesk_core.services.departments import get_department
from helpdesk_core.services.permissions import (
    Actor, is_global_admin, require_manage_settings, require_staff_somewhere, role_in,
)


def summary_role(user: User) -> Role:
    """The highest role ``user`` holds (``admin`` for a global admin): ``User.role``."""
    if user.global_admin:
        return Role.ADMIN
    return max((m.role for m in user.memberships), key=lambda r: r.rank, default=Role.REQUESTER)


def _require_may_change(actor: Actor, user: User, dept: Department | None, role: Role) -> None:
    """A department admin may give roles up to its own in its departments, to users who are not
    global admins; only a global admin (or the operator) may do anything else."""
    if is_global_admin(actor):
        return
    require_manage_settings(actor, dept)  # a department, and Manage Settings for it
    assert dept is not None
    own = role_in(actor, dept)
    if own is None or role.rank > own.rank:
        raise PermissionDenied(f"{actor.email} cannot grant the role {role} in {dept.name!r}, above its own.",
                               details={"hint": "ask_admin", "permission": "grant_role"})
    if user.global_admin:
        raise PermissionDenied(f"{user.email} is a global admin: only a global admin can change them.",
                               details={"hint": "ask_admin", "permission": "global_admin"})


def add_user(session: Session, *, actor: Actor, email: str, role: str, name: str = "",
             department: str | None = None) -> User:
    """Create a user, or set their role in ``department`` (a membership with that role).

    Without a department, ``admin`` makes a global admin and ``agent``/``requester`` just create
    the user (or take away global admin): both only for a global admin. A department admin may
    add and change the agents and requesters (and admins) of its own departments; adding a
    membership never changes someone's standing elsewhere (a global admin stays one).
    """
    try:
        role_enum = Role(role)
    except ValueError:
        raise ConfigurationError(f"Unknown role {role!r}; use admin, agent or requester.",
                                 details={"field": "role"}) from None
    dept = get_department(session, department) if department else None
    email = email.strip().lower()
    if "@" not in email:
        raise ConfigurationError(f"{email!r} is not an email address.", details={"field": "email"})
    user = session.scalar(select(User).where(User.email == email))
    new = user is None
    if user is None:
        user = User(email=email, name=name, role=Role.REQUESTER)
    _require_may_change(actor, user, dept, role_enum)
    if new:
        session.add(user)
    elif name:
        user.name = name
    session.flush()
    if dept is None:
        user.global_admin = role_enum == Role.ADMIN
    else:
        membership = next((m for m in user.memberships if m.department_id == dept.id), None)
        if membership is None:
            user.memberships.append(Membership(user_id=user.id, department_id=dept.id, role=role_enum))
        else:
            membership.role = role_enum
    user.role = summary_role(user)
    session.flush()
    return user


def list_users(session: Session, *, actor: Actor) -> list[dict[str, Any]]:
    """Users with their roles: the shape of ``helpdesk user list --json``. A global admin sees
    everyone; other staff see the members of the departments where they are staff."""
    visible = require_staff_somewhere(actor, "the users")
    query = select(User).options(selectinload(User.memberships)).order_by(User.email)
    if visible is not None:
        query = query.where(User.id.in_(select(Membership.user_id).where(Membership.department_id.in_(visible))))
    return [{"email": u.email, "name": u.name, "role": str(u.role), "global_admin": u.global_admin,
             "departments": sorted(m.department_id for m in u.memberships),
             "memberships": [{"department": m.department_id, "role": str(m.role)}
                             for m in sorted(u.memberships, key=lambda m: m.department_id)]}
            for u in session.scalars(query)]
