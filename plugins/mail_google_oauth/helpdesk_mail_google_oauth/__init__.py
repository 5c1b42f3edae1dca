"""helpdesk-mail-google-oauth: the ``google`` mailbox provider (Gmail / Workspace, OAuth 2.0).

Only hook implementations live here; the code is in :mod:`.provider` (IMAP/SMTP with XOAUTH2),
:mod:`.oauth` (Authlib client), :mod:`.service` (admin flow) and :mod:`.cli` (commands).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from helpdesk_core import hookimpl

if TYPE_CHECKING:
    import click

    from helpdesk_core.hooktypes import OutgoingMail
    from helpdesk_core.models import Department, Mailbox


@hookimpl
def helpdesk_register_providers(register: Callable[..., Any]) -> None:
    """Register the ``google`` provider."""
    from .provider import GoogleProvider

    register(GoogleProvider())


@hookimpl
def helpdesk_register_commands(cli: click.Group) -> None:
    """Add ``helpdesk google …`` and ``helpdesk department connect-google``."""
    from .cli import register

    register(cli)


@hookimpl
def helpdesk_deliver_reply(mails: list[OutgoingMail], department: Department, mailbox: Mailbox | None,
                           secrets: dict[str, str]) -> list[Any] | None:
    """Send the mails of a ``google`` department over SMTP with XOAUTH2 (one connection)."""
    if mailbox is None or mailbox.provider != "google":
        return None
    from .provider import deliver

    return deliver(mailbox.config, secrets, mails)
