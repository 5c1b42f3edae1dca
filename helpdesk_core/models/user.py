"""Users, roles and department membership."""

from __future__ import annotations

import enum

from sqlalchemy import Enum, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk_core.models.base import Base, created_at, email_str, intpk


class Role(enum.StrEnum):
    """A role in a department (per :class:`Membership`; see docs/permissions.md). ``admin``: Manage
    Settings for the department and sees all its tickets. ``agent``: staff of the department.
    ``requester``: own tickets only. Ordered: admin > agent > requester (:attr:`rank`)."""

    ADMIN = "admin"
    AGENT = "agent"
    REQUESTER = "requester"

    @property
    def rank(self) -> int:
        return {"requester": 0, "agent": 1, "admin": 2}[self.value]


class User(Base):
    __tablename__ = "users"

    id: Mapped[intpk]
    email: Mapped[email_str] = mapped_column(unique=True)
    name: Mapped[str] = mapped_column(String(300), default="")
    #: the highest role the user holds anywhere (``admin`` for a global admin); a summary kept by
    #: :mod:`helpdesk_core.services.users` — permissions are decided by ``global_admin`` and the
    #: per-department :attr:`Membership.role`
    role: Mapped[Role] = mapped_column(Enum(Role, name="user_role", native_enum=False, length=20),
                                       default=Role.REQUESTER)
    #: Manage Settings everywhere, sees every ticket (independent of memberships)
    global_admin: Mapped[bool] = mapped_column(default=False)
    #: a deactivated user can't act (``--as``) and gets no mail; their tickets stay
    active: Mapped[bool] = mapped_column(default=True)
    #: staff notifications (new ticket, requester reply, assignment); the user's own opt-out
    notifications: Mapped[bool] = mapped_column(default=True)
    #: argon2 hash for signing in to the web app; None = no password set (``user set-password``)
    password_hash: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[created_at]

    memberships: Mapped[list[Membership]] = relationship(back_populates="user", cascade="all, delete-orphan")

    @property
    def department_ids(self) -> set[int]:
        """The departments where the user is staff (agent or admin)."""
        return {m.department_id for m in self.memberships if m.role != Role.REQUESTER}

    @property
    def admin_department_ids(self) -> set[int]:
        """The departments where the user is department admin."""
        return {m.department_id for m in self.memberships if m.role == Role.ADMIN}

    def role_in(self, department_id: int) -> Role | None:
        """The user's role in a department (None: no membership)."""
        return next((m.role for m in self.memberships if m.department_id == department_id), None)


class Membership(Base):
    """A user's role in one department: ``admin``, ``agent`` or ``requester``."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "department_id"),)

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(Enum(Role, name="membership_role", native_enum=False, length=20),
                                       default=Role.AGENT, server_default=Role.AGENT.name)

    user: Mapped[User] = relationship(back_populates="memberships")
