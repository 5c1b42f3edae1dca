"""Users, roles and department membership."""

from __future__ import annotations

import enum

from sqlalchemy import Enum, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk_core.models.base import Base, created_at, email_str, intpk


class Role(enum.StrEnum):
    """``admin``: Manage Settings (all departments, or one with a membership) and sees all tickets
    of its departments. ``agent``: staff of its departments. ``requester``: own tickets only."""

    ADMIN = "admin"
    AGENT = "agent"
    REQUESTER = "requester"


class User(Base):
    __tablename__ = "users"

    id: Mapped[intpk]
    email: Mapped[email_str] = mapped_column(unique=True)
    name: Mapped[str] = mapped_column(String(300), default="")
    role: Mapped[Role] = mapped_column(Enum(Role, name="user_role", native_enum=False, length=20),
                                       default=Role.REQUESTER)
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
        return {m.department_id for m in self.memberships}


class Membership(Base):
    """Staff (agent or department admin) of a department."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "department_id"),)

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id", ondelete="CASCADE"), index=True)

    user: Mapped[User] = relationship(back_populates="memberships")
