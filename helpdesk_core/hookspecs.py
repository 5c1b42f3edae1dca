"""The plugin contract of the help desk (pluggy project ``helpdesk``).

Every hook is called from exactly one core function, always with keyword arguments, so an
implementation may accept any subset of the arguments. Hooks never commit: the importer owns the
database session and its transaction. Documented with exact signatures in ``docs/hooks.md``.

Hook kinds by name: ``register_*`` collect (all implementations are called); ``find_*``, ``*_to_*``,
``classify_*`` and ``deliver_*`` decide (``firstresult``: stops at the first non-None result);
``*_imported`` notify.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from pathlib import Path

    import click

    from helpdesk_core.hooktypes import Classification, HelpdeskContext, OutgoingMail
    from helpdesk_core.mail.message import ParsedMessage
    from helpdesk_core.models import Department, Mailbox, Ticket, TicketMessage
    from helpdesk_core.providers.base import MailboxProvider

hookspec = pluggy.HookspecMarker("helpdesk")


# ---------------------------------------------------------------------------------------------
# Providers
# ---------------------------------------------------------------------------------------------

@hookspec
def helpdesk_register_providers(register: Callable[[MailboxProvider], None]) -> None:
    """Register mailbox providers an admin can pick per department.

    Called once when the plugin manager is built. Call ``register(provider)`` with a
    :class:`~helpdesk_core.providers.base.MailboxProvider` instance for each provider; a duplicate
    name is refused with an error naming both plugins.

    :param register: callback taking a ``MailboxProvider``
    """


# ---------------------------------------------------------------------------------------------
# Inbound mail
# ---------------------------------------------------------------------------------------------

@hookspec(firstresult=True)
def helpdesk_classify_message(
    message: ParsedMessage, department: Department, context: HelpdeskContext
) -> Classification | None:
    """Classify an inbound message before threading (ordinary mail, bounce, auto-reply, our own
    mail …). Stops at first non-None result.

    The core default returns ``Classification(kind="normal")``.

    :param message: the parsed inbound message
    :param department: the department whose mailbox received it
    :param context: session, settings, storage and secrets of this import
    :return: a :class:`~helpdesk_core.hooktypes.Classification`, or None to let others decide
    """


@hookspec(firstresult=True)
def helpdesk_find_ticket(
    message: ParsedMessage, department: Department, classification: Classification,
    context: HelpdeskContext,
) -> Ticket | None:
    """Find the existing ticket an inbound message continues. Stops at first non-None result.

    Implementations must only return tickets of ``department``. Returning None from every
    implementation means "make a new ticket". The core default matches ``In-Reply-To`` /
    ``References`` against stored Message-IDs, then a ``[Ticket #N]`` subject reference.

    :param message: the parsed inbound message
    :param department: the department whose mailbox received it
    :param classification: the result of ``helpdesk_classify_message``
    :param context: session, settings, storage and secrets of this import
    :return: the ticket, or None
    """


@hookspec
def helpdesk_register_thread_matchers(
    register: Callable[[str, Callable[..., Ticket | None]], None],
) -> None:
    """Register named thread-matching strategies run by the default ``helpdesk_find_ticket``.

    Called for every inbound message. Call ``register(name, matcher)``; the matcher is called with
    the keyword arguments ``message``, ``department``, ``classification`` and ``context`` and
    returns a ticket or None. General setting ``mail.thread_matchers`` names which run, in which
    order (core: ``message_id``, ``subject_reference``); a duplicate name is refused. The core
    drops tickets of other departments and, unless the matcher is marked with
    :func:`helpdesk_core.inbound.matching.trusted_matcher`, matches from senders not on the ticket.

    :param register: callback taking a strategy name and a matcher callable
    """


@hookspec(firstresult=True)
def helpdesk_message_to_ticket(
    message: ParsedMessage, department: Department, ticket: Ticket | None,
    classification: Classification, context: HelpdeskContext,
) -> TicketMessage | None:
    """Store an inbound message: as a new ticket (``ticket`` is None) or on ``ticket``.
    Stops at first non-None result.

    Add objects to ``context.session`` and flush if needed; never commit. The core default
    creates the ticket and requester, stores the attachments allowed by General settings and
    records the ones it removed and why.

    :param message: the parsed inbound message
    :param department: the department whose mailbox received it
    :param ticket: the ticket found by ``helpdesk_find_ticket``, or None for a new ticket
    :param classification: the result of ``helpdesk_classify_message``
    :param context: session, settings, storage and secrets of this import
    :return: the new :class:`~helpdesk_core.models.TicketMessage` (with ``ticket`` set)
    """


@hookspec
def helpdesk_message_imported(
    message: ParsedMessage, ticket_message: TicketMessage, created: bool,
    department: Department, context: HelpdeskContext,
) -> None:
    """Notification: an inbound message was stored, in the same transaction, before commit.

    Use it for work that must commit or roll back with the ticket (queueing an acknowledgement,
    indexing). Do not commit; do no slow network I/O here.

    :param message: the parsed inbound message
    :param ticket_message: the stored message (``ticket_message.ticket`` is its ticket)
    :param created: True when the message opened a new ticket
    :param department: the department whose mailbox received it
    :param context: session, settings, storage and secrets of this import
    """


# ---------------------------------------------------------------------------------------------
# Outbound mail
# ---------------------------------------------------------------------------------------------

@hookspec(firstresult=True)
def helpdesk_deliver_reply(
    mails: list[OutgoingMail], department: Department, mailbox: Mailbox | None,
    secrets: dict[str, str],
) -> list[Any] | None:
    """Deliver outgoing mails of one department (staff replies, acknowledgements).
    Stops at first non-None result.

    An override point, consulted before the department's provider: outgoing mail is normally
    sent by the provider object of the department's mailbox
    (:meth:`~helpdesk_core.providers.base.MailboxProvider.deliver`). Implement this hook only
    to send some other way (an HTTP mail API, a relay, a test double): return one result per
    mail in order, ``None`` for sent or a :class:`~helpdesk_core.errors.DeliveryError`
    (``temporary=False`` for a 5xx); return None (not a list) to leave the mail to the provider.

    :param mails: the outgoing mails, already rendered (``mail.raw`` holds the bytes)
    :param department: the sending department
    :param mailbox: the department's mail configuration, or None when it has none
    :param secrets: the decrypted secrets of that configuration
    :return: a list of ``None | DeliveryError``, one per mail, or None
    """


@hookspec
def helpdesk_register_template_folders(register: Callable[[Path], None]) -> None:
    """Add folders of jinja2 templates for outgoing mail (staff replies, acknowledgements).

    Called each time outgoing mail is rendered. Call ``register(folder)`` for each folder; it
    holds ``reply/`` and/or ``acknowledgement/`` with ``subject.txt``, ``body.txt`` and
    ``body.html`` (any subset). Lookup order: the department's ``templates_dir`` option, then
    plugin folders in registration order, then the core's built-in templates.

    :param register: callback taking a :class:`pathlib.Path` of a template folder
    """


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

@hookspec
def helpdesk_register_commands(cli: click.Group) -> None:
    """Add commands to the ``helpdesk`` command line.

    Called once when ``helpdesk_core.cli.main`` is imported, after the core's own commands exist.
    Add groups or commands with ``cli.add_command(...)``, or extend a core group, e.g.
    ``cli.commands["department"].add_command(my_command)``. Keep the logic in service functions
    (the web admin calls those); commands only parse options and print.

    :param cli: the top-level ``helpdesk`` click group
    """
