"""One error root for the whole help desk.

Every error a user can see derives from :class:`HelpdeskError`. Its message says what to do next.
Two families are kept apart because callers treat them differently:

* :class:`ConfigurationError` — the settings are wrong; retrying will not help until an admin
  changes something (bad password, unknown host, missing folder).
* :class:`TemporaryError` — try again later (server down, timeout, database unavailable).

Whether the same action may work later without anybody changing anything is said one way only:
the ``temporary`` attribute every :class:`HelpdeskError` has (``True`` for TemporaryError and its
subclasses, ``False`` for ConfigurationError; a :class:`MailboxError` or :class:`DeliveryError`
says it per instance) -- for fetching, delivering and storing alike. Code that decides whether to
retry reads this attribute, not the class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class HelpdeskError(Exception):
    """Root of every error raised by the help desk and its plugins."""

    #: short machine-readable kind, e.g. ``"auth_failed"``; stable for scripts and the web UI
    kind: str = "error"
    #: whether the same action may succeed later without an admin changing anything
    temporary: bool = False

    def __init__(self, message: str, *, kind: str | None = None, temporary: bool | None = None,
                 details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind
        if temporary is not None:
            self.temporary = temporary
        #: structured facts each interface words for itself: ``field`` (the argument that is wrong),
        #: ``hint`` (the next step, e.g. ``"add_department"``) and the values the hint needs
        self.details: dict[str, Any] = dict(details or {})

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class ConfigurationError(HelpdeskError):
    """The configuration is wrong; an admin must change a setting before this can work."""

    kind = "configuration"
    temporary = False


class TemporaryError(HelpdeskError):
    """Something is unavailable right now; the same action may work later."""

    kind = "temporary"
    temporary = True


class MailboxError(HelpdeskError):
    """A mailbox could not be reached, logged into or read. ``kind`` tells which step failed.

    Kinds used by the core and the bundled providers: ``unknown_host``, ``connection_refused``,
    ``timeout``, ``tls``, ``certificate``, ``auth_failed``, ``folder_missing``,
    ``protocol_disabled``, ``needs_reauthorization``, ``server_error``.
    """

    kind = "mailbox"
    #: ``temporary=True``: the next cycle may succeed without an admin changing anything
    temporary = False


class DeliveryError(HelpdeskError):
    """An outgoing mail could not be delivered. ``temporary`` (the default) keeps it queued for
    another attempt; ``temporary=False`` (e.g. a 5xx refusal) stops retrying.

    ``permanent`` is the inverse of ``temporary``, kept for plugins written against it: both the
    ``permanent=`` argument and the attribute still work.
    """

    kind = "delivery"
    temporary = True

    def __init__(self, message: str, *, kind: str | None = None, temporary: bool | None = None,
                 permanent: bool | None = None) -> None:
        if temporary is None and permanent is not None:
            temporary = not permanent
        super().__init__(message, kind=kind, temporary=temporary)

    @property
    def permanent(self) -> bool:
        """``not temporary``: whether the outbox stops retrying this mail."""
        return not self.temporary

    @permanent.setter
    def permanent(self, value: bool) -> None:
        self.temporary = not value


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
    """A plugin registered something invalid (duplicate provider name, not a provider, no name).
    The message names the plugin, so the admin knows which one to update or uninstall."""

    kind = "plugin"
