"""Thread matching: which existing ticket an inbound message continues.

Strategies ("matchers") are registered by plugins through ``helpdesk_register_thread_matchers``
(the core registers ``message_id`` and ``subject_reference``) and run in the order of the General
setting ``mail.thread_matchers``. :func:`find_thread` is the default ``helpdesk_find_ticket``; it
enforces the rules every matcher is subject to (see ``docs/threading.md``):

* only tickets of the receiving department count (another department's ticket → a new ticket here),
  and tickets moved away from it (``ticket move``: their old reference keeps threading);
* a match by an untrusted matcher (anything but signed/stored Message-IDs, e.g. a subject
  reference) is accepted only from the requester, a participant or staff of the department;
  otherwise the claimed reference is remembered (``context.extra["mentions"]``) for the new ticket;
* a reply to a closed ticket reopens it, unless the department option ``reopen_closed`` is false:
  then a new ticket linked to the closed one is opened (``context.extra["linked_ticket_id"]``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from helpdesk_core.errors import ConfigurationError
from helpdesk_core.models import Membership, Ticket, TicketStatus, User

if TYPE_CHECKING:
    import pluggy

    from helpdesk_core.hooktypes import Classification, HelpdeskContext
    from helpdesk_core.mail.message import ParsedMessage
    from helpdesk_core.models import Department

log = logging.getLogger("helpdesk.matching")

Matcher = Callable[..., "Ticket | None"]
#: the core's strategies, in the default order of ``mail.thread_matchers``
DEFAULT_MATCHERS: tuple[str, ...] = ("message_id", "subject_reference")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_TRUSTED_ATTR = "__helpdesk_trusted_matcher__"


def trusted_matcher(fn: Matcher) -> Matcher:
    """Mark a matcher whose match is proof on its own (e.g. a signed token), so the core does not
    also require the sender to be on the ticket. Use only for unguessable evidence."""
    setattr(fn, _TRUSTED_ATTR, True)
    return fn


def is_trusted(fn: Matcher) -> bool:
    return bool(getattr(fn, _TRUSTED_ATTR, False))


def collect_thread_matchers(pm: pluggy.PluginManager) -> dict[str, Matcher]:
    """Call ``helpdesk_register_thread_matchers`` on every plugin; return ``{name: matcher}``."""
    registry: dict[str, Matcher] = {}

    def register(name: str, matcher: Matcher) -> None:
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ValueError(f"Thread matcher name {name!r} must be lower-case letters, digits and _.")
        if not callable(matcher):
            raise TypeError(f"Thread matcher {name!r} is not callable.")
        if name in registry:
            raise ValueError(f"Thread matcher {name!r} registered twice; rename one of them.")
        registry[name] = matcher

    pm.hook.helpdesk_register_thread_matchers(register=register)
    return registry


def check_matcher_names(pm: pluggy.PluginManager, names: Iterable[str]) -> list[str]:
    """Validate a value of ``mail.thread_matchers``; raise ConfigurationError naming the known ones."""
    names = list(names)
    known = collect_thread_matchers(pm)
    unknown = [n for n in names if n not in known]
    if not names:
        raise ConfigurationError("mail.thread_matchers needs at least one strategy; known: "
                                 f"{', '.join(known)} (default: {','.join(DEFAULT_MATCHERS)}).")
    if unknown:
        raise ConfigurationError(
            f"Unknown thread matcher(s) {', '.join(unknown)} in mail.thread_matchers; known: "
            f"{', '.join(known)}. Install the plugin that provides them, or fix the spelling.")
    if len(set(names)) != len(names):
        raise ConfigurationError("mail.thread_matchers names a strategy twice.")
    return names


def sender_may_use(ticket: Ticket, message: ParsedMessage, context: HelpdeskContext) -> bool:
    """May the sender of ``message`` add to ``ticket``: its requester, a participant (To/Cc of its
    earlier messages) or staff (a membership) of its department."""
    sender = (message.from_.email if message.from_ else "").lower()
    if not sender:
        return False
    if ticket.requester is not None and ticket.requester.email.lower() == sender:
        return True
    if sender in {str(p).lower() for p in ticket.participants or []}:
        return True
    staff = context.session.scalar(
        select(Membership.id).join(User, Membership.user_id == User.id)
        .where(User.email == sender, Membership.department_id == ticket.department_id))
    return staff is not None


def belongs_to(ticket: Ticket, department: Department) -> bool:
    """Is ``ticket`` one of ``department``'s: it is there, or was moved away from it ('ticket move')."""
    return ticket.department_id == department.id or any(a.department_id == department.id for a in ticket.aliases)


def configured_order(context: HelpdeskContext, known: dict[str, Matcher]) -> list[str]:
    """The strategies to run, from ``mail.thread_matchers``; unknown names (a plugin removed since
    the setting was made) are skipped with a warning."""
    names = context.settings.get("mail.thread_matchers") or list(DEFAULT_MATCHERS)
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    order = []
    for name in names:
        if name in known:
            order.append(name)
        else:
            log.warning("thread matcher %r in mail.thread_matchers is not installed; skipped", name)
    return order


def find_thread(message: ParsedMessage, department: Department, classification: Classification,
                context: HelpdeskContext) -> Ticket | None:
    """Run the configured matchers and apply the scope, trust and closed-ticket rules."""
    known = collect_thread_matchers(context.pm)
    kwargs: dict[str, Any] = {"message": message, "department": department,
                              "classification": classification, "context": context}
    for name in configured_order(context, known):
        matcher = known[name]
        ticket = matcher(**kwargs)
        if ticket is None:
            continue
        if not belongs_to(ticket, department):
            log.info("%s: %s matched a ticket of another department; ignored", department.name, name)
            continue
        if not is_trusted(matcher) and not sender_may_use(ticket, message, context):
            context.extra.setdefault("mentions", f"#{ticket.number}")
            log.info("%s: %s matched #%s but the sender is not on the ticket; new ticket",
                     department.name, name, ticket.number)
            continue
        if (ticket.status == TicketStatus.CLOSED and classification.may_reopen
                and not (department.options or {}).get("reopen_closed", True)):
            context.extra["linked_ticket_id"] = ticket.id
            return None
        context.extra["matched_by"] = name
        return ticket
    return None
