"""Base classes for mailbox providers.

A provider plugin registers one :class:`MailboxProvider` per name through the
``helpdesk_register_providers`` hook::

    from helpdesk_core import hookimpl
    from helpdesk_core.providers.base import MailboxProvider, ConfigField

    class MyProvider(MailboxProvider):
        name = "myprovider"
        label = "My mail service"
        fields = (ConfigField("host", "Server host name", required=True),)

        def open(self, config, secrets):             # incoming mail
            return MySession(...)

        def deliver(self, config, secrets, mails):   # outgoing mail (optional)
            return [send(mail) for mail in mails]    # None = sent, else a DeliveryError

    @hookimpl
    def helpdesk_register_providers(register):
        register(MyProvider())

One provider object serves both directions of every mailbox of its kind: :meth:`~MailboxProvider.open`
(fetch and delete) and :meth:`~MailboxProvider.deliver` (send). The core owns everything else: the
database session, the ledger, commit-then-delete, the outbox and its retries. A provider only
connects, lists, fetches, deletes and sends. See ``docs/writing-a-provider.md``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from helpdesk_core.errors import ConfigurationError, DeliveryError, PluginError
from helpdesk_core.providers.secrets import StoredSecrets, update_secrets

if TYPE_CHECKING:
    from helpdesk_core.hooktypes import OutgoingMail

__all__ = ["ConfigField", "MailboxProvider", "MailboxSession", "ProviderRegistry", "RemoteMessage",
           "StoredSecrets", "update_secrets"]


@dataclass(frozen=True)
class ConfigField:
    """One setting of a provider: the single description of it that every interface builds on.

    ``helpdesk plugins --json`` lists it, ``helpdesk department set-mailbox`` turns it into an
    option (``--name-with-dashes``; any plain field also as ``--set name=VALUE``) and the web admin
    into a form field. ``type`` is one of ``str``, ``int``, ``choice``, ``path``, ``email``;
    ``choices`` limits the values; ``default`` fills an omitted plain field; ``required`` refuses
    to save without it.

    ``secret`` fields are never taken from a command-line argument (only from standard input or
    a prompt), are stored encrypted, never shown, and reach :meth:`MailboxProvider.open` and
    :meth:`MailboxProvider.deliver` in ``secrets`` instead of ``config``. Whether a field is
    secret is said here and nowhere else: nothing is guessed from its name.
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

    #: keys stay valid across :meth:`delete` and :meth:`checkpoint` (IMAP UIDs, Maildir names; not
    #: POP3 message numbers, renumbered after ``QUIT``): then the core fetches the next batch in a
    #: thread while it imports this one, so :meth:`fetch`'s generator may be resumed from another
    #: thread (never at the same time as another call on the session)
    stable_keys: bool = False

    @abstractmethod
    def count(self) -> int | None:
        """Number of messages waiting, or ``None`` when unknown."""

    @abstractmethod
    def fetch(self, *, batch_size: int = 100) -> Iterator[list[RemoteMessage]]:
        """Yield batches of at most ``batch_size`` messages, oldest first, without marking them
        read or deleted."""

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
    """A kind of mailbox an admin can pick for a department (``generic``, ``google``, ...).

    One object serves both directions of a department's mail: :meth:`open` a session to fetch
    and delete incoming mail, :meth:`deliver` outgoing mail (replies, acknowledgements). Errors:
    raise :class:`~helpdesk_core.errors.MailboxError` (connection, login) or
    :class:`~helpdesk_core.errors.ConfigurationError` (settings) with ``temporary`` saying
    whether the next attempt may work unchanged.
    """

    #: unique provider name used in ``set-mailbox --provider``
    name: ClassVar[str]
    #: human-readable name
    label: ClassVar[str] = ""
    #: configuration fields, secrets included
    fields: ClassVar[tuple[ConfigField, ...]] = ()
    #: the label of a "Connect …" button on the web admin's department page (e.g. an OAuth consent),
    #: or None; it posts to ``/plugins/<name>/connect/<department id>``, which the plugin registers
    #: with ``helpdesk_register_routes``
    web_connect: ClassVar[str | None] = None

    def normalize_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Check and complete a configuration (defaults, types). Raise ConfigurationError."""
        out: dict[str, Any] = {}
        known = {f.name: f for f in self.fields if not f.secret}
        secret = {f.name for f in self.fields if f.secret}
        for key in config:
            if key in secret:
                raise ConfigurationError(f"Setting {key!r} of provider {self.name!r} is a secret: give it "
                                         "with the secrets (stored encrypted), not with the settings.")
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

    def deliver(self, config: Mapping[str, Any], secrets: Mapping[str, str],
                mails: Sequence[OutgoingMail]) -> list[DeliveryError | None] | None:
        """Send ``mails`` (rendered: ``mail.raw``, envelope ``mail.mail_from``/``mail.recipients``)
        from this mailbox, reusing one connection; return one result per mail, in order: ``None``
        when the server accepted it, else a :class:`~helpdesk_core.errors.DeliveryError`
        (``temporary=False`` for a refusal that retrying will not change, e.g. SMTP 5xx).

        Raise :class:`~helpdesk_core.errors.MailboxError` or ConfigurationError when nothing can
        be sent at all (server unreachable, login refused, bad settings): every mail then stays
        queued and is retried, and saving the mailbox again makes it due at once.

        Return ``None`` (not a list) when this provider, or this configuration, sends no mail:
        the default. The core then tells the admin to configure outgoing mail. ``secrets`` is a
        :class:`StoredSecrets` (rotated tokens: :func:`update_secrets`).
        """
        return None

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
    """Collects providers from ``helpdesk_register_providers``; refuses what is not a usable
    provider with a :class:`~helpdesk_core.errors.PluginError` naming the plugin."""

    providers: dict[str, MailboxProvider] = field(default_factory=dict)
    plugin_of: dict[str, str] = field(default_factory=dict)

    def register(self, provider: MailboxProvider, *, plugin: str = "?") -> None:
        if not isinstance(provider, MailboxProvider):
            raise PluginError(f"Plugin {plugin!r} registered {provider!r}, which is not a mailbox provider: "
                              "register() takes an instance of a MailboxProvider subclass. Update or "
                              "uninstall that plugin.")
        name = getattr(provider, "name", None)
        if not name or not isinstance(name, str):
            raise PluginError(f"Plugin {plugin!r} registered a provider without a name "
                              f"({type(provider).__name__}): set its class attribute 'name'.")
        if name in self.providers:
            raise PluginError(f"Provider {name!r} is registered twice (by plugin {self.plugin_of[name]!r} "
                              f"and by plugin {plugin!r}): uninstall one of them or disable it with "
                              "HELPDESK_DISABLE_PLUGINS.")
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
