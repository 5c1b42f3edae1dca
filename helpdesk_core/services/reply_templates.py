"""Canned replies: named reply texts per department, rendered in a jinja2 sandbox.

Variables are those of the reply mail templates: ``ticket``, ``department``, ``reference``,
``subject``, ``requester_name``, ``author_name``. The sandbox keeps a template (written by a
department admin) from reaching Python internals; undefined names are errors.
"""

from __future__ import annotations

import re
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk_core.errors import ConfigurationError, ConflictError, NotFoundError
from helpdesk_core.mail.compose import clean_subject
from helpdesk_core.mail.references import format_reference
from helpdesk_core.models import ReplyTemplate, Ticket, User
from helpdesk_core.services.departments import get_department
from helpdesk_core.services.permissions import Actor, is_staff, require_manage_settings
from helpdesk_core.settings import GeneralSettings

_NAME_RE = re.compile(r"^[\w.-]{1,100}$")
_ENV = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)


def _compile(body: str) -> jinja2.Template:
    try:
        return _ENV.from_string(body)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigurationError(f"The template does not compile (line {exc.lineno}: {exc.message}): "
                                 "fix it and add it again.") from exc


def add_template(session: Session, *, actor: Actor, department: str, name: str, body: str,
                 replace: bool = False) -> ReplyTemplate:
    """Add (or with ``replace`` change) a canned reply; needs Manage Settings for the department."""
    dept = get_department(session, department)
    require_manage_settings(actor, dept)
    if not _NAME_RE.match(name):
        raise ConfigurationError(f"Template name {name!r}: use letters, digits, '.', '-' and '_' (at most 100).")
    if not body.strip():
        raise ConfigurationError("The template is empty: write its text in the --body-file.")
    _compile(body)
    row = session.scalar(select(ReplyTemplate).where(ReplyTemplate.department_id == dept.id,
                                                     ReplyTemplate.name == name))
    if row is not None and not replace:
        raise ConflictError(f"{dept.name!r} already has a template {name!r}: add --replace to change it.")
    if row is None:
        row = ReplyTemplate(department_id=dept.id, name=name, body=body)
        session.add(row)
    row.body = body
    session.flush()
    return row


def list_templates(session: Session, *, actor: Actor, department: str) -> list[ReplyTemplate]:
    """The department's canned replies (for its staff)."""
    dept = get_department(session, department)
    if not is_staff(actor, dept):
        raise NotFoundError(f"No templates for {actor.email} in {dept.name!r}: only its staff use them.")
    return list(session.scalars(select(ReplyTemplate).where(ReplyTemplate.department_id == dept.id)
                                .order_by(ReplyTemplate.name)))


def remove_template(session: Session, *, actor: Actor, department: str, name: str) -> None:
    dept = get_department(session, department)
    require_manage_settings(actor, dept)
    row = session.scalar(select(ReplyTemplate).where(ReplyTemplate.department_id == dept.id,
                                                     ReplyTemplate.name == name))
    if row is None:
        raise NotFoundError(f"{dept.name!r} has no template {name!r}: see 'helpdesk reply-template list'.")
    session.delete(row)
    session.flush()


def render_template(session: Session, *, actor: Actor, ticket: Ticket, name: str) -> str:
    """The text of canned reply ``name`` of the ticket's department, for ``ticket``. For the
    department's staff (templates are replies)."""
    if not is_staff(actor, ticket.department):
        raise NotFoundError(f"No templates for {actor.email} in {ticket.department.name!r}: only its staff use them.")
    row = session.scalar(select(ReplyTemplate).where(ReplyTemplate.department_id == ticket.department_id,
                                                     ReplyTemplate.name == name))
    if row is None:
        raise NotFoundError(f"{ticket.department.name!r} has no reply template {name!r}: "
                            "see 'helpdesk reply-template list --department NAME'.")
    fmt = GeneralSettings.load(session).get("mail.ticket_reference_format")
    author = actor if isinstance(actor, User) else None
    values: dict[str, Any] = {
        "ticket": ticket, "department": ticket.department, "reference": format_reference(ticket.number, fmt),
        "subject": clean_subject(ticket.subject, fmt),
        "requester_name": (ticket.requester.name if ticket.requester else "") or "",
        "author_name": (author.name or author.email) if author else "",
    }
    try:
        return _compile(row.body).render(values)
    except jinja2.TemplateError as exc:  # includes SecurityError from the sandbox
        raise ConfigurationError(f"Reply template {name!r} is broken ({type(exc).__name__}: {exc}): "
                                 "fix it with 'helpdesk reply-template add --replace'.") from exc
