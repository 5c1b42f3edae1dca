"""One error root for the whole help desk.

Every error a user can see derives from :class:`HelpdeskError`. Its message says what to do next.
Two families are kept apart because callers treat them differently:

* :class:`ConfigurationError` — the settings are wrong; retrying will not help until an admin
  changes something (bad password, unknown host, missing folder).
* :class:`TemporaryError` — try again later (server down, timeout, database unavailable).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class HelpdeskError(Exception):
    """Root of every error raised by the help desk and its plugins."""

    #: short machine-readable kind, e.g. ``"auth_failed"``; stable for scripts and the web UI
    kind: str = "error"

    def __init__(self, message: str, *, kind: str | None = None, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind
        #: structured facts each interface words for itself: ``field`` (the argument that is wrong),
        #: ``hint`` (the next step, e.g. ``"add_department"``) and the values the hint needs
        self.details: dict[str, Any] = dict(details or {})

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class ConfigurationError(HelpdeskError):
    """The configuration is wrong; an admin must change a setting before this can work."""

    kind = "configuration"


class TemporaryError(HelpdeskError):
    """Something is unavailable right now; the same action may work later."""

    kind = "temporary"


class MailboxError(HelpdeskError):
    """A mailbox could not be reached, logged into or read. ``kind`` tells which step failed.

    Kinds used by the core and the bundled providers: ``unknown_host``, ``connection_refused``,
    ``timeout``, ``tls``, ``certificate``, ``auth_failed``, ``folder_missing``,
    ``protocol_disabled``, ``needs_reauthorization``, ``server_error``.
    """

    kind = "mailbox"

    #: whether the next cycle may succeed without an admin changing anything
    temporary: bool = False

    def __init__(self, message: str, *, kind: str | None = None, temporary: bool | None = None) -> None:
        super().__init__(message, kind=kind)
        if temporary is not None:
            self.temporary = temporary


class DeliveryError(HelpdeskError):
    """An outgoing mail could not be delivered. ``permanent`` says whether to stop retrying."""

    kind = "delivery"

    def __init__(self, message: str, *, kind: str | None = None, permanent: bool = False) -> None:
        super().__init__(message, kind=kind)
        self.permanent = permanent


class NotFoundError(HelpdeskError):
    """A named object (department, ticket, user, failed import) does not exist."""

    kind = "not_found"


class PermissionDenied(HelpdeskError):
    """The acting user lacks the permission the action needs (e.g. Manage Settings)."""

    kind = "permission_denied"


class ConflictError(HelpdeskError):
    """The action conflicts with existing data (e.g. a mailbox already used by another department)."""

    kind = "conflict"


class DatabaseUnavailable(TemporaryError):
    """The database cannot be reached; mail servers piping into ``helpdesk ingest`` should retry."""

    kind = "database_unavailable"


class PluginError(HelpdeskError):
    """A plugin registered something invalid (duplicate provider name, missing fields)."""

    kind = "plugin"
