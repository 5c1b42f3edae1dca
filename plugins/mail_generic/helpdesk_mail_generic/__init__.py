"""helpdesk-mail-generic: the ``generic`` mailbox provider (IMAP / POP3 / Maildir with a password).

Only hook implementations live here; the code is in :mod:`helpdesk_mail_generic.provider`,
:mod:`~helpdesk_mail_generic.imap`, :mod:`~helpdesk_mail_generic.pop3` and
:mod:`~helpdesk_mail_generic.maildir`; outgoing mail in :mod:`~helpdesk_mail_generic.smtp`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from helpdesk_core import hookimpl

if TYPE_CHECKING:
    from helpdesk_core.hooktypes import OutgoingMail
    from helpdesk_core.models import Department, Mailbox


@hookimpl
def helpdesk_register_providers(register: Callable[..., Any]) -> None:
    """Register the ``generic`` provider."""
    from .provider import GenericProvider

    register(GenericProvider())


@hookimpl
def helpdesk_deliver_reply(mails: list[OutgoingMail], department: Department, mailbox: Mailbox | None,
                           secrets: dict[str, str]) -> list[Any] | None:
    """Send the mails of a ``generic`` department over its SMTP server, on one connection.

    Returns None (not ours) for other providers and when no ``smtp_host`` is configured, so the
    core reports that outgoing mail must be configured.
    """
    if mailbox is None or mailbox.provider != "generic":
        return None
    from helpdesk_core.errors import DeliveryError, HelpdeskError

    from .provider import GenericProvider, smtp_login
    from .smtp import deliver_mails, smtp_settings

    try:
        config = GenericProvider().normalize_config(mailbox.config)
    except HelpdeskError as exc:
        return [DeliveryError(f"The mailbox settings are invalid: {exc.message}", kind="configuration")
                for _ in mails]
    settings = smtp_settings(config)
    if settings is None:
        return None
    try:
        login = smtp_login(config, secrets)
    except HelpdeskError as exc:
        return [DeliveryError(exc.message, kind=exc.kind) for _ in mails]
    return deliver_mails(settings, login, mails)
