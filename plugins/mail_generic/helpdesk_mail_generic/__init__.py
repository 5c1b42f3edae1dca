"""helpdesk-mail-generic: the ``generic`` mailbox provider (IMAP / POP3 / Maildir with a password).

Only hook implementations live here; the code is in :mod:`helpdesk_mail_generic.provider`,
:mod:`~helpdesk_mail_generic.imap`, :mod:`~helpdesk_mail_generic.pop3` and
:mod:`~helpdesk_mail_generic.maildir`; outgoing mail in :mod:`~helpdesk_mail_generic.smtp`
(the provider object sends it: :meth:`~helpdesk_mail_generic.provider.GenericProvider.deliver`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from helpdesk_core import hookimpl


@hookimpl
def helpdesk_register_providers(register: Callable[..., Any]) -> None:
    """Register the ``generic`` provider."""
    from .provider import GenericProvider

    register(GenericProvider())
