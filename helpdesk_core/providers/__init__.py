"""Mailbox providers: the base classes plugins subclass and the registry the core keeps."""

from helpdesk_core.providers.base import (
    ConfigField, MailboxProvider, MailboxSession, ProviderRegistry, RemoteMessage, StoredSecrets,
    update_secrets,
)

__all__ = ["ConfigField", "MailboxProvider", "MailboxSession", "ProviderRegistry", "RemoteMessage",
           "StoredSecrets", "update_secrets"]
