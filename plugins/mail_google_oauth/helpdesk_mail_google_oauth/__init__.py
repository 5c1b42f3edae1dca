"""helpdesk-mail-google-oauth: the ``google`` mailbox provider (Gmail / Workspace, OAuth 2.0).

Only hook implementations live here; the code is in :mod:`.provider` (IMAP/SMTP with XOAUTH2: the
provider object imports and sends the mailbox's mail),
:mod:`.oauth` (Authlib client), :mod:`.service` (admin flow), :mod:`.cli` (commands) and :mod:`.web`
(the web admin's consent redirect and callback).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from helpdesk_core import hookimpl

if TYPE_CHECKING:
    import click


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
def helpdesk_register_routes(register: Callable[..., Any]) -> None:
    """Add the web admin's "Connect Google Workspace" consent redirect and callback."""
    from .web import register_routes

    register_routes(register)
