"""helpdesk-mail-microsoft-oauth: the ``microsoft`` mailbox provider (Microsoft 365, OAuth 2.0).

Only hook implementations live here: :mod:`.tokens` (MSAL), :mod:`.provider` (IMAP/POP3/SMTP with
XOAUTH2, Graph ``sendMail``) and :mod:`.connect` (``helpdesk microsoft …`` and
``helpdesk department connect-microsoft``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from helpdesk_core import hookimpl


@hookimpl
def helpdesk_register_providers(register: Callable[..., Any]) -> None:
    """Register the ``microsoft`` provider."""
    from .provider import MicrosoftProvider

    register(MicrosoftProvider())


@hookimpl
def helpdesk_register_commands(cli: Any) -> None:
    """Add ``helpdesk microsoft set-client`` and ``helpdesk department connect-microsoft``."""
    from .connect import register

    register(cli)
