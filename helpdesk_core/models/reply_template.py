"""Canned replies: named reply texts of a department (jinja2, rendered sandboxed)."""

from __future__ import annotations

from sqlalchemy import String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk_core.models.base import Base, DepartmentRow, created_at


class ReplyTemplate(DepartmentRow, Base):
    """A canned reply of one department, used by ``ticket reply --template NAME``."""

    __tablename__ = "reply_templates"
    __table_args__ = (UniqueConstraint("department_id", "name"),)

    name: Mapped[str] = mapped_column(String(100))
    #: jinja2 source; variables as in reply templates (``ticket``, ``requester_name``, ``reference`` …)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[created_at]
