"""Users and roles."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk_core.errors import ConfigurationError
from helpdesk_core.models import Membership, Role, User
from helpdesk_core.services.departments import get_department
from helpdesk_core.services.permissions import Actor, require_manage_settings


def add_user(session: Session, *, actor: Actor, email: str, role: str, name: str = "",
             department: str | None = None) -> User:
    """Create a user, or update the role and add the department membership of an existing one."""
    try:
        role_enum = Role(role)
    except ValueError:
        raise ConfigurationError(f"Unknown role {role!r}; use admin, agent or requester.") from None
    dept = get_department(session, department) if department else None
    require_manage_settings(actor, dept)
    email = email.strip().lower()
    if "@" not in email:
        raise ConfigurationError(f"{email!r} is not an email address.")
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(email=email, name=name, role=role_enum)
        session.add(user)
    else:
        user.role = role_enum
        if name:
            user.name = name
    session.flush()
    if dept is not None and dept.id not in user.department_ids:
        user.memberships.append(Membership(user_id=user.id, department_id=dept.id))
        session.flush()
    return user


def list_users(session: Session, *, actor: Actor) -> list[dict[str, Any]]:
    """Every user with role and department ids: the shape of ``helpdesk user list --json``."""
    return [{"email": u.email, "name": u.name, "role": str(u.role),
             "departments": sorted(m.department_id for m in u.memberships)}
            for u in session.scalars(select(User).order_by(User.email))]
