"""Hands rendered outgoing mail to the reply-delivery hook (the outbox builds on this)."""

from __future__ import annotations

from typing import Any

from helpdesk_core.app import Helpdesk
from helpdesk_core.hooktypes import OutgoingMail
from helpdesk_core.errors import DeliveryError
from helpdesk_core.models import Department
from helpdesk_core.services.departments import stored_secrets


def deliver(app: Helpdesk, department: Department, mails: list[OutgoingMail]) -> list[DeliveryError | None]:
    """Deliver ``mails`` of one department through ``helpdesk_deliver_reply``.

    Returns one entry per mail: None when sent, else the DeliveryError. When no plugin handles the
    department's mailbox, every mail gets a permanent-for-now ConfigurationError-like DeliveryError.
    """
    if not mails:
        return []
    mailbox = department.mailbox
    # StoredSecrets: a plugin may save rotated tokens (e.g. OAuth) with secrets.save()
    secrets = stored_secrets(app, mailbox) if mailbox is not None else {}
    results: list[Any] | None = app.hooks.deliver_reply(
        mails=mails, department=department, mailbox=mailbox, secrets=secrets)
    if results is None:
        provider = mailbox.provider if mailbox else "none"
        error = DeliveryError(
            f"No plugin delivers mail for department {department.name!r} (provider {provider}): "
            "configure the department's mailbox with outgoing mail settings.", kind="no_delivery")
        return [error for _ in mails]
    if len(results) != len(mails):
        raise DeliveryError(f"The delivery plugin returned {len(results)} results for {len(mails)} mails.")
    return [r if isinstance(r, DeliveryError) or r is None else DeliveryError(str(r)) for r in results]
