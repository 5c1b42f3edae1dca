"""The secrets of a saved mailbox: decrypted for the provider, saved again when they change.

The import cycle (:mod:`helpdesk_core.inbound.cycle`) and outgoing delivery
(:mod:`helpdesk_core.outbound.delivery`) both hand the provider :func:`stored_secrets`; the
service that saves a configuration (``set_mailbox``) passes a plain dict. Lives here, below the
engine and the services, so that neither has to import the other for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from sqlalchemy.orm.attributes import set_committed_value

from helpdesk_core.models import Mailbox

if TYPE_CHECKING:
    from helpdesk_core.app import Helpdesk

__all__ = ["StoredSecrets", "stored_secrets", "update_secrets"]


class StoredSecrets(dict[str, str]):
    """The decrypted secrets of a saved mailbox, as the core passes them to
    :meth:`~helpdesk_core.providers.base.MailboxProvider.open` (import cycles),
    :meth:`~helpdesk_core.providers.base.MailboxProvider.deliver` and ``helpdesk_deliver_reply``
    (outgoing mail). Build one with :func:`stored_secrets`.

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


def stored_secrets(app: Helpdesk, mailbox: Mailbox) -> StoredSecrets:
    """The decrypted secrets of ``mailbox`` as a :class:`StoredSecrets`.

    ``save()`` writes the new secrets encrypted in a session and transaction of its own (so a
    rotated OAuth refresh token is kept even when the import rolls back) and refreshes the value
    on ``mailbox`` without marking it dirty; ``reload()`` re-reads them from the database.
    """
    mailbox_id = mailbox.id

    def saver(values: dict[str, str]) -> None:
        encrypted = app.secrets.encrypt(values)
        with app.session() as own:
            row = own.get(Mailbox, mailbox_id)
            if row is not None:
                row.secrets_encrypted = encrypted
                own.commit()
        set_committed_value(mailbox, "secrets_encrypted", encrypted)

    def loader() -> dict[str, str]:
        with app.session() as own:
            row = own.get(Mailbox, mailbox_id)
            return app.secrets.decrypt(row.secrets_encrypted if row is not None else None)

    return StoredSecrets(app.secrets.decrypt(mailbox.secrets_encrypted), saver=saver, loader=loader)
