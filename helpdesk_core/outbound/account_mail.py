"""Mail about a user's account (not about a ticket): a password-reset link, a sign-in link, an
invitation. Rendered from the ``password_reset``, ``sign_in_link`` and ``invite`` mail templates
(overridable like the others, see :mod:`helpdesk_core.mail.rendering`) and queued in the outbox
From a department's address, like every other mail, so it is delivered (and retried) by the
same flush. The mail carries no ticket reference and a plain random Message-ID: an answer to it
never threads onto a ticket. The link is in the mail only; nothing here logs it, and once the
mail is sent the outbox keeps only its headers (``outbox.SECRET_BODY_KINDS``).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from helpdesk_core.mail.compose import SMTP_POLICY, ComposedMail, build_message
from helpdesk_core.mail.message import Address
from helpdesk_core.mail.rendering import render_mail
from helpdesk_core.models import Department, OutboxMessage, User
from helpdesk_core.outbound.outbox import queue_mail

#: outbox kind → mail template kind (each is in :data:`helpdesk_core.outbound.outbox.SECRET_BODY_KINDS`)
ACCOUNT_KINDS = {"password_reset": "password_reset", "sign_in_link": "sign_in_link", "invite": "invite"}


def queue_account_mail(app: Any, session: Session, *, kind: str, user: User, department: Department,
                       link: str, valid_for: str, variables: dict[str, Any] | None = None,
                       now: datetime | None = None) -> OutboxMessage:
    """Render ``kind``'s templates for ``user`` and queue the mail From ``department`` (the caller
    commits, then flushes the outbox). ``app`` is anything with ``hooks.template_folders``."""
    now = now or datetime.now(UTC)
    values = {"department": department, "user_name": user.name or "", "email": user.email, "link": link,
              "valid_for": valid_for, **(variables or {})}
    rendered = render_mail(app.hooks.template_folders, department, ACCOUNT_KINDS[kind], values)
    domain = department.sender_address.rpartition("@")[2] or "localhost"
    message_id = f"account.{now.strftime('%Y%m%d%H%M%S')}.{secrets.token_hex(8)}@{domain}"
    to = [Address(user.email, user.name or "")]
    msg = build_message(mail_from=Address(department.sender_address, department.name), to=to, cc=[],
                        subject=rendered.subject, text=rendered.text, html=rendered.html, message_id=message_id,
                        date=now, auto_submitted="auto-generated", extra_headers=[("X-Auto-Response-Suppress", "All")])
    mail = ComposedMail(raw=msg.as_bytes(policy=SMTP_POLICY), message_id=message_id,
                        mail_from=department.sender_address, to=to, cc=[], subject=rendered.subject,
                        text=rendered.text, html=rendered.html, date=now)
    return queue_mail(session, mail, department=department, kind=kind)
