"""Hands rendered outgoing mail to the department's mailbox provider (the outbox builds on this).

Who sends a department's mail, in this order:

1. the ``helpdesk_deliver_reply`` hook -- an override point, consulted first: a plugin that sends
   through something else (an HTTP mail API, a relay for every department, a test double)
   returns a result list; returning None leaves the mail to
2. the provider of the department's mailbox, :meth:`MailboxProvider.deliver
   <helpdesk_core.providers.base.MailboxProvider.deliver>` -- the same provider object that
   imports the mailbox's incoming mail.

When neither sends (no mailbox, or a provider or configuration without outgoing mail), every
mail gets a temporary ``no_delivery`` error saying how to configure outgoing mail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from helpdesk_core.app import Helpdesk
from helpdesk_core.errors import DeliveryError, HelpdeskError
from helpdesk_core.hooktypes import OutgoingMail
from helpdesk_core.models import Department, Mailbox
from helpdesk_core.providers.secrets import stored_secrets


def deliver(app: Helpdesk, department: Department, mails: list[OutgoingMail]) -> list[DeliveryError | None]:
    """Deliver ``mails`` of one department: the override hook first, then its provider.

    Returns one entry per mail: None when sent, else the DeliveryError. A failure of the whole
    batch (server unreachable, login refused, bad settings) is a temporary error for every mail:
    it stays queued, and saving the mailbox again makes it due at once.
    """
    if not mails:
        return []
    mailbox = department.mailbox
    # StoredSecrets: a plugin may save rotated tokens (e.g. OAuth) with secrets.save()
    secrets = stored_secrets(app, mailbox) if mailbox is not None else {}
    results = _override(app, mails, department, mailbox, secrets)
    if results is None and mailbox is not None:
        try:
            results = app.providers.get(mailbox.provider).deliver(mailbox.config, secrets, mails)
        except DeliveryError as exc:
            return [exc for _ in mails]
        except HelpdeskError as exc:
            error = DeliveryError(f"Cannot send mail: {exc.message}", kind=exc.kind, temporary=True)
            return [error for _ in mails]
    if results is None:
        provider = mailbox.provider if mailbox else "none"
        error = DeliveryError(
            f"No plugin delivers mail for department {department.name!r} (provider {provider}): "
            "configure the department's mailbox with outgoing mail settings.", kind="no_delivery")
        return [error for _ in mails]
    if len(results) != len(mails):
        raise DeliveryError(f"The delivery plugin returned {len(results)} results for {len(mails)} mails.")
    return [r if isinstance(r, DeliveryError) or r is None else DeliveryError(str(r)) for r in results]


def _override(app: Helpdesk, mails: list[OutgoingMail], department: Department, mailbox: Mailbox | None,
              secrets: Mapping[str, str]) -> Sequence[Any] | None:
    """The ``helpdesk_deliver_reply`` override point: a result list, or None to use the provider."""
    return app.hooks.deliver_reply(mails=mails, department=department, mailbox=mailbox, secrets=secrets)
