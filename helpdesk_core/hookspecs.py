"""The plugin contract of the help desk (pluggy project ``helpdesk``).

Every hook is called from exactly one method of the application's hook facade
(:class:`helpdesk_core.plugins.Hooks`), always with keyword arguments, so an implementation may
accept any subset of the arguments. Hooks never commit: the importer owns the database session and
its transaction. What one hook needs from another is a typed argument or a field of a typed result
(:mod:`helpdesk_core.hooktypes`). Documented with exact signatures in ``docs/hooks.md``.

Hook kinds by name: ``register_*`` collect (all implementations are called); ``find_*``, ``*_to_*``,
``classify_*`` and ``deliver_*`` decide (``firstresult``: stops at the first non-None result);
``*_imported`` notify. The ``register_*`` hooks run once per application; the facade keeps what
they registered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from pathlib import Path

    import click

    from helpdesk_core.hooktypes import (
        Classification, HelpdeskContext, Matcher, OutgoingMail, ThreadMatch,
    )
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

    Called once per application (``app.providers`` keeps the result). Call ``register(provider)``
    with a :class:`~helpdesk_core.providers.base.MailboxProvider` instance for each provider; a
    duplicate name is refused with an error naming both plugins.

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
) -> ThreadMatch | None:
    """Find the existing ticket an inbound message continues. Stops at first non-None result.

    Return a :class:`~helpdesk_core.hooktypes.ThreadMatch` (``ThreadMatch(ticket=t,
    matched_by="my_plugin")``), or None to let others decide; ``ThreadMatch()`` means "a new
    ticket". The core settles whatever is returned by the same rules: a ticket of another
    department is dropped, an untrusted match counts only from a sender on the ticket (else the
    reference is kept in ``mentions``), and a closed ticket follows the department's
    ``reopen_closed`` option (reopened, or a new ticket linked to it). The core default runs the
    strategies of ``helpdesk_register_thread_matchers`` in the order of ``mail.thread_matchers``.

    :param message: the parsed inbound message
    :param department: the department whose mailbox received it
    :param classification: the result of ``helpdesk_classify_message``
    :param context: session, settings, storage and secrets of this import
    :return: a ThreadMatch, or None
    """


@hookspec
def helpdesk_register_thread_matchers(register: Callable[[str, Matcher], None]) -> None:
    """Register named thread-matching strategies run by the default ``helpdesk_find_ticket``.

    Called once per application. Call ``register(name, matcher)`` with a
    :class:`~helpdesk_core.hooktypes.Matcher`: a callable taking the keyword arguments
    ``message``, ``department``, ``classification`` and ``context`` and returning a ticket, a
    :class:`~helpdesk_core.hooktypes.ThreadMatch` (to say per match whether it is ``trusted``) or None.
    General setting ``mail.thread_matchers`` names which run, in which order (core:
    ``message_id``, ``subject_reference``); a bad or duplicate name is refused with a
    :class:`~helpdesk_core.errors.PluginError` naming the plugin. The core drops tickets of other
    departments and, unless the matcher is marked with
    :func:`helpdesk_core.inbound.matching.trusted_matcher` or returned a trusted ``ThreadMatch``,
    matches from senders not on the ticket.

    :param register: callback taking a strategy name and a matcher
    """


@hookspec(firstresult=True)
def helpdesk_message_to_ticket(
    message: ParsedMessage, department: Department, ticket: Ticket | None,
    classification: Classification, match: ThreadMatch, context: HelpdeskContext,
) -> TicketMessage | None:
    """Store an inbound message: as a new ticket (``ticket`` is None) or on ``ticket``.
    Stops at first non-None result.

    Add objects to ``context.session`` and flush if needed; never commit. The core default
    creates the ticket and requester, stores the attachments allowed by General settings and
    records the ones it removed and why; a new ticket gets ``match.mentions`` and
    ``match.linked_ticket_id``, and a reply reopens a closed ticket it may reopen.

    :param message: the parsed inbound message
    :param department: the department whose mailbox received it
    :param ticket: the ticket the message continues (``match.ticket``), or None for a new ticket
    :param classification: the result of ``helpdesk_classify_message``
    :param match: the settled result of ``helpdesk_find_ticket``
    :param context: session, settings, storage and secrets of this import
    :return: the new :class:`~helpdesk_core.models.TicketMessage` (with ``ticket`` set)
    """


@hookspec
def helpdesk_message_imported(
    message: ParsedMessage, ticket_message: TicketMessage, created: bool,
    department: Department, classification: Classification, match: ThreadMatch,
    context: HelpdeskContext,
) -> None:
    """Notification: an inbound message was stored, in the same transaction, before commit.

    Use it for work that must commit or roll back with the ticket (queueing an acknowledgement,
    indexing). Do not commit; do no slow network I/O here.

    :param message: the parsed inbound message
    :param ticket_message: the stored message (``ticket_message.ticket`` is its ticket)
    :param created: True when the message opened a new ticket
    :param department: the department whose mailbox received it
    :param classification: the result of ``helpdesk_classify_message``
    :param match: the settled result of ``helpdesk_find_ticket``
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

    Called once per application. Call ``register(folder)`` for each folder (a directory); it
    holds ``reply/`` and/or ``acknowledgement/`` with ``subject.txt``, ``body.txt`` and
    ``body.html`` (any subset). Lookup order: the department's ``templates_dir`` option, then
    plugin folders in registration order, then the core's built-in templates. A folder that is
    not a directory is refused with a :class:`~helpdesk_core.errors.PluginError` naming the plugin.

    :param register: callback taking a :class:`pathlib.Path` of a template folder
    """


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

@hookspec
def helpdesk_register_commands(cli: click.Group) -> None:
    """Add commands to the ``helpdesk`` command line.

    Called once per ``helpdesk`` invocation, before its arguments are parsed, with the plugin
    manager the invocation's application then uses; the core's own commands exist already.
    Add groups or commands with ``cli.add_command(...)``, or extend a core group, e.g.
    ``cli.commands["department"].add_command(my_command)``. Keep the logic in service functions
    (the web admin calls those); commands only parse options and print.

    :param cli: the top-level ``helpdesk`` click group
    """


# ---------------------------------------------------------------------------------------------
# Web app
# ---------------------------------------------------------------------------------------------

@hookspec
def helpdesk_register_routes(register: Callable[..., None]) -> None:
    """Add pages to the web app (``helpdesk web``), e.g. an OAuth consent callback.

    Called once per web app, from :func:`helpdesk_core.web.app.create_app`. Call
    ``register(path, endpoint, methods=("GET",), name=None)`` with a Starlette endpoint (``def
    endpoint(request) -> Response``; ``request.app.state.helpdesk`` is the application); a path
    the core or another plugin has already is refused with a ``ValueError``. Keep the logic in
    service functions; the core's security headers apply to these pages too.

    :param register: callback taking a path, an endpoint and optional ``methods`` and ``name``
    """
