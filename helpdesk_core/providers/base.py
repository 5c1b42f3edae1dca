"""Base classes for mailbox providers.

A provider plugin registers one :class:`MailboxProvider` per name through the
``helpdesk_register_providers`` hook::

    from helpdesk_core import hookimpl
    from helpdesk_core.providers.base import MailboxProvider, ConfigField

    class MyProvider(MailboxProvider):
        name = "myprovider"
        label = "My mail service"
        fields = (ConfigField("host", "Server host name", required=True),)

        def open(self, config, secrets):
            return MySession(...)

    @hookimpl
    def helpdesk_register_providers(register):
        register(MyProvider())

The core owns everything else: the database session, the ledger, commit-then-delete, retries.
A provider only connects, lists, fetches and deletes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from helpdesk_core.errors import ConfigurationError


@dataclass(frozen=True)
class ConfigField:
    """One setting of a provider, shown by ``helpdesk plugins --json`` and the web admin.

    ``type`` is one of ``str``, ``int``, ``choice``, ``path``, ``email``. ``secret`` fields are
    stored encrypted, never shown, and passed to :meth:`MailboxProvider.open` in ``secrets``.
    """

    name: str
    label: str
    type: str = "str"
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    secret: bool = False
    help: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "required": self.required,
            "default": self.default,
            "choices": list(self.choices),
            "secret": self.secret,
            "help": self.help,
        }


class StoredSecrets(dict[str, str]):
    """The decrypted secrets of a saved mailbox, as the core passes them to
    :meth:`MailboxProvider.open` (import cycles) and to ``helpdesk_deliver_reply``.

    A plain ``dict`` plus two optional seams for providers whose secrets change while in use,
    e.g. OAuth 2.0 (a refresh token rotated by the token endpoint, a cached access token):

    * :meth:`save` merges updates and stores the whole dict encrypted at once, in a transaction of
      its own (it survives a rollback of the import);
    * :meth:`reload` re-reads what is stored (another process may have rotated a token meanwhile).

    While a configuration is being validated (``set_mailbox``) providers get a plain dict: update it
    in place and the core saves it with the configuration. :func:`update_secrets` does the right
    thing for both.
    """

    def __init__(self, values: Mapping[str, str] = (), *,
                 saver: Callable[[dict[str, str]], None] | None = None,
                 loader: Callable[[], dict[str, str]] | None = None) -> None:
        super().__init__(values)
        self._saver = saver
        self._loader = loader

    def save(self, updates: Mapping[str, str]) -> None:
        """Merge ``updates`` into these secrets and store them, encrypted, now."""
        self.update(updates)
        if self._saver is not None:
            self._saver(dict(self))

    def reload(self) -> None:
        """Replace the contents with the secrets stored now (no-op without a loader)."""
        if self._loader is not None:
            fresh = self._loader()
            self.clear()
            self.update(fresh)


def update_secrets(secrets: Mapping[str, str], updates: Mapping[str, str]) -> None:
    """Record changed secrets: :meth:`StoredSecrets.save` when stored, else update a plain dict in
    place (validation: the core saves it with the configuration)."""
    if isinstance(secrets, StoredSecrets):
        secrets.save(updates)
    elif isinstance(secrets, dict):
        secrets.update(updates)


@dataclass
class RemoteMessage:
    """One message as fetched from a mailbox.

    ``key`` identifies the message in this mailbox for :meth:`MailboxSession.delete`
    (IMAP UID, POP3 message number, Maildir file name). ``raw`` is the exact RFC 5322 bytes.
    """

    key: str
    raw: bytes
    size: int | None = None


class MailboxSession(ABC):
    """An open connection to one mailbox, used for one import cycle. A context manager.

    The importer calls :meth:`fetch`, commits the tickets, then calls :meth:`delete` with the keys
    it has safely stored, and finally :meth:`close`. Deletions must only become permanent at or
    after :meth:`delete` (POP3 commits them on ``QUIT`` in :meth:`close`).
    """

    @abstractmethod
    def count(self) -> int | None:
        """Number of messages waiting, or ``None`` when unknown."""

    @abstractmethod
    def fetch(self, *, batch_size: int = 100, max_size: int | None = None) -> Iterator[list[RemoteMessage]]:
        """Yield batches of messages, oldest first, without marking them read or deleted.

        ``max_size`` (bytes): messages larger than this may be yielded with ``raw=b""`` and
        ``size`` set, so the importer can record them as too large without downloading them.
        """

    @abstractmethod
    def delete(self, keys: Sequence[str]) -> None:
        """Delete these messages (they are committed as tickets). Called after each batch."""

    def checkpoint(self) -> None:  # noqa: B027 - optional
        """Make deletions so far permanent (POP3: ``QUIT`` and reconnect). Optional."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection, making deletions permanent."""

    def __enter__(self) -> MailboxSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MailboxProvider(ABC):
    """A kind of mailbox an admin can pick for a department (``generic``, ``google``, ...)."""

    #: unique provider name used in ``set-mailbox --provider``
    name: ClassVar[str]
    #: human-readable name
    label: ClassVar[str] = ""
    #: configuration fields, secrets included
    fields: ClassVar[tuple[ConfigField, ...]] = ()

    def normalize_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Check and complete a configuration (defaults, types). Raise ConfigurationError."""
        out: dict[str, Any] = {}
        known = {f.name: f for f in self.fields if not f.secret}
        for key in config:
            if key not in known:
                raise ConfigurationError(f"Unknown setting {key!r} for provider {self.name!r}; "
                                         f"known settings: {', '.join(sorted(known))}.")
        for f in known.values():
            value = config.get(f.name, f.default)
            if value is None and f.required:
                raise ConfigurationError(f"Setting {f.name!r} is required for provider {self.name!r}.")
            if value is not None and f.type == "int":
                try:
                    value = int(value)
                except (TypeError, ValueError):
                    raise ConfigurationError(f"Setting {f.name!r} must be a whole number.") from None
            if value is not None and f.choices and value not in f.choices:
                raise ConfigurationError(
                    f"Setting {f.name!r} must be one of {', '.join(f.choices)} (got {value!r}).")
            out[f.name] = value
        return out

    def identity(self, config: Mapping[str, Any]) -> str:
        """A string naming the mailbox itself (host + login + folder); two departments may not
        share one. Override when the default (all non-secret settings) is too broad."""
        return "|".join(f"{k}={config[k]}" for k in sorted(config) if config[k] is not None)

    @abstractmethod
    def open(self, config: Mapping[str, Any], secrets: Mapping[str, str]) -> MailboxSession:
        """Connect, log in and select the folder. Raise :class:`~helpdesk_core.errors.MailboxError`
        with a precise ``kind`` and a message saying what to check.

        ``secrets`` is a :class:`StoredSecrets` in import cycles (a provider whose secrets change,
        e.g. a rotated OAuth refresh token, stores them with :func:`update_secrets`) and a plain
        dict during :meth:`validate`."""

    def validate(self, config: Mapping[str, Any], secrets: Mapping[str, str]) -> dict[str, Any]:
        """Check connectivity before a configuration is saved; return facts (e.g. ``{"waiting": 3}``).

        The default opens a session and counts messages. Raise MailboxError on failure.
        """
        with self.open(config, secrets) as session:
            return {"waiting": session.count()}

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "fields": [f.as_dict() for f in self.fields]}


@dataclass
class ProviderRegistry:
    """Collects providers from ``helpdesk_register_providers``; refuses duplicates clearly."""

    providers: dict[str, MailboxProvider] = field(default_factory=dict)
    plugin_of: dict[str, str] = field(default_factory=dict)

    def register(self, provider: MailboxProvider, *, plugin: str = "?") -> None:
        if not isinstance(provider, MailboxProvider):
            raise TypeError(f"register() takes a MailboxProvider instance, got {provider!r}")
        name = getattr(provider, "name", None)
        if not name:
            raise ValueError(f"Provider {provider!r} has no name")
        if name in self.providers:
            raise ValueError(f"Provider {name!r} is registered twice (by {self.plugin_of[name]} and {plugin})")
        self.providers[name] = provider
        self.plugin_of[name] = plugin

    def get(self, name: str) -> MailboxProvider:
        try:
            return self.providers[name]
        except KeyError:
            known = ", ".join(sorted(self.providers)) or "none installed"
            raise ConfigurationError(
                f"No mailbox provider named {name!r} (installed: {known}). "
                f"Install its plugin, e.g. pip install helpdesk-mail-{name}.") from None
