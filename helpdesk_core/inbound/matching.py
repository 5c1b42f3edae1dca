"""Thread matching: which existing ticket an inbound message continues.

Strategies ("matchers", :class:`~helpdesk_core.hooktypes.Matcher`) are registered by plugins through
``helpdesk_register_thread_matchers`` (the core registers ``message_id`` and ``subject_reference``),
once per application, into a :class:`MatcherRegistry`, and run in the order of the General setting
``mail.thread_matchers``. :func:`find_thread` is the default ``helpdesk_find_ticket``.

:func:`settle` applies the rules every match is subject to, whoever found it (see
``docs/threading.md``); the importer runs it on the result of ``helpdesk_find_ticket``:

* only tickets of the receiving department count (another department's ticket → a new ticket here),
  and tickets moved away from it (``ticket move``: their old reference keeps threading);
* a match that is not trusted (anything but the signed Message-IDs we issue: a stored Message-ID of
  someone else's mail, which anyone Cc'd once has seen, or a subject reference) is accepted only from
  the requester, a participant or staff of the department; otherwise the claimed reference is kept
  in :attr:`ThreadMatch.mentions` for the new ticket;
* a sender the receiving server failed (DKIM/DMARC in ``Authentication-Results`` of the mailbox's
  ``authserv_id``, :mod:`helpdesk_core.mail.authentication`) never joins a ticket: new ticket with
  ``sender_verified`` False (or held, General setting ``mail.unverified_followups``); where that
  server gave no verdict and the General setting ``mail.verify_dkim`` is on, our own DKIM check
  (:func:`~helpdesk_core.mail.authentication.dkim_verdict`) decides the same way;
* a reply to a closed ticket reopens it, unless the department option ``reopen_closed`` is false:
  then a new ticket linked to the closed one is opened (:attr:`ThreadMatch.linked_ticket_id`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from sqlalchemy import select

from helpdesk_core.errors import ConfigurationError, PluginError
from helpdesk_core.hooktypes import Matcher, ThreadMatch
from helpdesk_core.mail import authentication
from helpdesk_core.mail.authentication import sender_verdict
from helpdesk_core.models import Membership, Ticket, TicketStatus, User

if TYPE_CHECKING:
    from helpdesk_core.hooktypes import Classification, HelpdeskContext
    from helpdesk_core.mail.message import ParsedMessage
    from helpdesk_core.models import Department

log = logging.getLogger("helpdesk.matching")

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


#: ``context.cache`` key of the :class:`ChunkFacts` the importer prefetched for a chunk
CHUNK_FACTS = "chunk_facts"


@dataclass
class ChunkFacts:
    """What the default hooks would look up once per message, read for a whole chunk in one query
    each by the importer's bulk path (``importer._Chunk``) and kept current by it as it writes.

    ``thread_rows``: ticket ids by stored Message-ID among ``ids`` (the In-Reply-To/References of
    the chunk), from imported messages (``inbound``) and from our outbox (``outbox``);
    ``new_tickets``: tickets opened in the last hour by each of ``senders`` (the rate limit).
    The importer drops them (``context.cache.pop(CHUNK_FACTS)``) before any write it does not
    track; a hook that finds none, or a question they do not cover, queries as usual.
    """

    department_id: int
    ids: set[str]
    inbound: dict[str, list[int]]
    outbox: dict[str, list[int]]
    senders: set[str]
    new_tickets: dict[str, int]

    def thread_rows(self, department_id: int, ids: list[str], *, outbox_only: bool,
                    ) -> list[tuple[int, str]] | None:
        """``(ticket_id, message_id)`` rows for ``ids``, or None when not covered."""
        if department_id != self.department_id or not self.ids.issuperset(ids):
            return None
        rows = [(t, mid) for mid in ids for t in self.outbox.get(mid, ())]
        if not outbox_only:
            rows += [(t, mid) for mid in ids for t in self.inbound.get(mid, ())]
        return rows

    def new_tickets_of(self, department_id: int, sender: str) -> int | None:
        if department_id != self.department_id or sender not in self.senders:
            return None
        return self.new_tickets.get(sender, 0)


@dataclass
class MatcherRegistry:
    """The thread matchers of one application, by name (``app.hooks.thread_matchers``).

    Filled once from ``helpdesk_register_thread_matchers``; refuses bad names, non-callables and
    duplicates with a :class:`~helpdesk_core.errors.PluginError` naming the plugin.
    """

    matchers: dict[str, Matcher] = field(default_factory=dict)
    plugin_of: dict[str, str] = field(default_factory=dict)

    def register(self, name: str, matcher: Matcher, *, plugin: str) -> None:
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise PluginError(f"Plugin {plugin} registered the thread matcher name {name!r}: use "
                              "lower-case letters, digits and _ (starting with a letter).")
        if not callable(matcher):
            raise PluginError(f"Plugin {plugin} registered thread matcher {name!r} as {matcher!r}, "
                              "which is not callable: register a function.")
        if name in self.matchers:
            raise PluginError(f"Thread matcher {name!r} is registered twice (by {self.plugin_of[name]} "
                              f"and {plugin}): rename one of them or uninstall one plugin.")
        self.matchers[name] = matcher
        self.plugin_of[name] = plugin

    def names(self) -> list[str]:
        return list(self.matchers)


def check_matcher_names(registry: MatcherRegistry, names: Iterable[str]) -> list[str]:
    """Validate a value of ``mail.thread_matchers``; raise ConfigurationError naming the known ones."""
    names = list(names)
    known = registry.names()
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
    if not sender or message.from_suspicious:  # several From addresses, or a name that is another address
        return False
    if ticket.requester is not None and ticket.requester.email.lower() == sender:
        return True
    if sender in {str(p).lower() for p in ticket.participants or []}:
        return True
    staff = context.session.scalar(
        select(Membership.id).join(User, Membership.user_id == User.id)
        .where(User.email == sender, Membership.department_id == ticket.department_id))
    return staff is not None


def authserv_id(department: Department) -> str | None:
    """The receiving server whose Authentication-Results count: the mailbox setting ``authserv_id``."""
    mailbox = department.mailbox
    value = (mailbox.config or {}).get("authserv_id") if mailbox is not None else None
    return str(value) if value else None


def own_dkim_verdict(message: ParsedMessage) -> str:
    """``mail.verify_dkim``: our dkimpy check of the raw message against its From domain (computed
    once per message)."""
    if message.own_dkim_verdict is None:
        sender = message.from_.email if message.from_ and not message.from_suspicious else ""
        domain = sender.rpartition("@")[2] if "@" in sender else None
        message.own_dkim_verdict = authentication.dkim_verdict(message.raw, domain)
        if message.own_dkim_verdict != "none":
            log.info("own DKIM check of %s: %s", message.message_id or "a message without Message-ID",
                     message.own_dkim_verdict)
    return message.own_dkim_verdict


def belongs_to(ticket: Ticket, department: Department) -> bool:
    """Is ``ticket`` one of ``department``'s: it is there, or was moved away from it ('ticket move')."""
    return ticket.department_id == department.id or any(a.department_id == department.id for a in ticket.aliases)


def configured_order(context: HelpdeskContext, registry: MatcherRegistry) -> list[str]:
    """The strategies to run, from ``mail.thread_matchers``; unknown names (a plugin removed since
    the setting was made) are skipped with a warning."""
    names = context.settings.get("mail.thread_matchers") or list(DEFAULT_MATCHERS)
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    order = []
    for name in names:
        if name in registry.matchers:
            order.append(name)
        else:
            log.warning("thread matcher %r in mail.thread_matchers is not installed; skipped", name)
    return order


def settle(match: ThreadMatch, message: ParsedMessage, department: Department,
           classification: Classification, context: HelpdeskContext) -> ThreadMatch:
    """Apply the scope, sender and closed-ticket rules to ``match``, whoever found it.

    Returns the match to store by: its ticket, or no ticket (a new one) with ``mentions`` or
    ``linked_ticket_id`` set. An accepted match comes back ``trusted``, so settling it again changes
    nothing.
    """
    if match.sender_verified is None:
        verdict = sender_verdict(message.headers, authserv_id(department))
        if verdict == "none" and context.settings.get("mail.verify_dkim"):
            verdict = own_dkim_verdict(message)
        if verdict != "none":
            match = replace(match, sender_verified=verdict == "pass")
    ticket = match.ticket
    if ticket is None:
        return match
    found_by = match.matched_by or "helpdesk_find_ticket"
    if not belongs_to(ticket, department):
        log.info("%s: %s matched a ticket of another department; ignored", department.name, found_by)
        return replace(match, ticket=None, trusted=False)
    if match.sender_verified is False:
        log.info("%s: %s matched #%s but the receiving server failed the sender's DKIM/DMARC; new ticket",
                 department.name, found_by, ticket.number)
        return replace(match, ticket=None, trusted=False, mentions=match.mentions or f"#{ticket.number}")
    if not match.trusted and not sender_may_use(ticket, message, context):
        log.info("%s: %s matched #%s but the sender is not on the ticket; new ticket",
                 department.name, found_by, ticket.number)
        return replace(match, ticket=None, mentions=match.mentions or f"#{ticket.number}")
    if (ticket.status == TicketStatus.CLOSED and classification.may_reopen
            and not (department.options or {}).get("reopen_closed", True)):
        return replace(match, ticket=None, trusted=True, linked_ticket_id=ticket.id)
    return match if match.trusted else replace(match, trusted=True)


def find_thread(message: ParsedMessage, department: Department, classification: Classification,
                context: HelpdeskContext) -> ThreadMatch:
    """Run the configured matchers in order; the first match that :func:`settle` accepts wins."""
    registry = context.hooks.thread_matchers
    mentions: str | None = None
    for name in configured_order(context, registry):
        matcher = registry.matchers[name]
        found = matcher(message=message, department=department, classification=classification,
                        context=context)
        if found is None or (isinstance(found, ThreadMatch) and found.ticket is None):
            continue
        if isinstance(found, ThreadMatch):  # the matcher judged this match's trust itself
            candidate = replace(found, matched_by=found.matched_by or name,
                                trusted=found.trusted or is_trusted(matcher), mentions=found.mentions or mentions)
        else:
            candidate = ThreadMatch(ticket=found, matched_by=name, trusted=is_trusted(matcher), mentions=mentions)
        match = settle(candidate, message, department, classification, context)
        if match.ticket is not None or match.linked_ticket_id is not None:
            return match
        mentions = match.mentions
    return ThreadMatch(mentions=mentions)
