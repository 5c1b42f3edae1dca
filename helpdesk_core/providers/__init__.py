"""Mailbox providers: the base classes plugins subclass, the registry the core keeps, and the
stored secrets handed to them."""

from helpdesk_core.providers.base import (
    ConfigField, MailboxProvider, MailboxSession, ProviderRegistry, RemoteMessage,
)
from helpdesk_core.providers.secrets import StoredSecrets, stored_secrets, update_secrets

__all__ = ["ConfigField", "MailboxProvider", "MailboxSession", "ProviderRegistry", "RemoteMessage",
           "StoredSecrets", "stored_secrets", "update_secrets"]
