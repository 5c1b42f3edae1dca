"""Each hook exercised through the core function that calls it, with small test plugins."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from helpdesk_core import hookimpl
from helpdesk_core.hooktypes import Classification, OutgoingMail
from helpdesk_core.outbound.delivery import deliver
from helpdesk_core.errors import DeliveryError, PluginError
from helpdesk_core.models import Department, Ticket, TicketMessage
from helpdesk_core.plugins import collect_providers, get_plugin_manager
from helpdesk_core.providers.base import MailboxProvider

from helpdesk_core.testing.apps import ingest as ingest_into
from helpdesk_core.testing.apps import installation
from mailfactory import plain


def setup(env, *plugins):
    return installation(env, *plugins, departments={"Tech": "techhelp@district.test"})


def ingest(app, raw, department="Tech"):
    return ingest_into(app, raw, department=department)


class SkipNewsletters:
    @hookimpl
    def helpdesk_classify_message(self, message):
        if "newsletter" in message.subject.lower():
            return Classification(kind="newsletter", action="skip", reason="newsletters are not tickets")
        return None


def test_classify_hook_can_skip(hd_env):
    app = setup(hd_env, SkipNewsletters())
    assert ingest(app, plain(subject="Monthly newsletter")).status == "skipped"
    assert ingest(app, plain(subject="Printer")).status == "created"


class PlusAddressing:
    """A thread-matching plugin: ``techhelp+<number>@`` continues ticket <number>."""

    @hookimpl
    def helpdesk_find_ticket(self, message, department, context):
        from sqlalchemy import select

        for addr in message.to:
            local = addr.email.split("@")[0]
            if "+" in local and local.split("+")[1].isdigit():
                return context.session.scalar(select(Ticket).where(
                    Ticket.department_id == department.id, Ticket.number == int(local.split("+")[1])))
        return None


def test_find_ticket_hook_plugin_runs_before_the_default(hd_env):
    app = setup(hd_env, PlusAddressing())
    first = ingest(app, plain(subject="Printer"))
    second = ingest(app, plain(subject="no reference at all", to="techhelp+1@district.test"))
    assert second.status == "updated" and second.ticket_id == first.ticket_id


class PriorityMapping:
    @hookimpl(tryfirst=True)
    def helpdesk_message_to_ticket(self, message, department, ticket, classification, context):
        if "URGENT" not in message.subject:
            return None
        from helpdesk_core.defaults.store import helpdesk_message_to_ticket as default

        tm = default(message=message, department=department, ticket=ticket,
                     classification=classification, context=context)
        tm.ticket.subject = "[P1] " + tm.ticket.subject
        return tm


def test_message_to_ticket_hook_overrides_storage(hd_env):
    app = setup(hd_env, PriorityMapping())
    urgent = ingest(app, plain(subject="URGENT: network down"))
    normal = ingest(app, plain(subject="Mouse"))
    with app.session() as s:
        assert s.get(Ticket, urgent.ticket_id).subject == "[P1] URGENT: network down"
        assert s.get(Ticket, normal.ticket_id).subject == "Mouse"


@dataclass
class Recorder:
    seen: list[tuple[str, bool]] = field(default_factory=list)

    @hookimpl
    def helpdesk_message_imported(self, message, ticket_message, created, context):
        assert isinstance(ticket_message, TicketMessage) and ticket_message.id is not None
        self.seen.append((message.subject, created))


def test_message_imported_notifies_in_the_same_transaction(hd_env):
    rec = Recorder()
    app = setup(hd_env, rec)
    ingest(app, plain(subject="Printer"))
    ingest(app, plain(subject="Re: [Ticket #1] Printer"))
    assert rec.seen == [("Printer", True), ("Re: [Ticket #1] Printer", False)]


@dataclass
class FakeDelivery:
    sent: list[bytes] = field(default_factory=list)

    @hookimpl
    def helpdesk_deliver_reply(self, mails, department, mailbox, secrets):
        results = []
        for mail in mails:
            if b"refuse-me" in mail.raw:
                results.append(DeliveryError("550 no such user", permanent=True))
            else:
                self.sent.append(mail.raw)
                results.append(None)
        return results


def test_deliver_reply_hook(hd_env):
    plugin = FakeDelivery()
    app = setup(hd_env, plugin)
    mails = [OutgoingMail(id=1, mail_from="techhelp@district.test", recipients=["a@example.test"],
                          raw=b"Subject: hi\r\n\r\nhello\r\n", message_id="x@y"),
             OutgoingMail(id=2, mail_from="techhelp@district.test", recipients=["b@example.test"],
                          raw=b"Subject: refuse-me\r\n\r\n", message_id="z@y")]
    with app.session() as s:
        dept = s.query(Department).one()
        results = deliver(app, dept, mails)
    assert results[0] is None and isinstance(results[1], DeliveryError) and results[1].permanent
    assert plugin.sent == [mails[0].raw]


def test_deliver_without_a_delivering_plugin_says_what_to_do(hd_env):
    app = setup(hd_env)
    with app.session() as s:
        dept = s.query(Department).one()
        [error] = deliver(app, dept, [OutgoingMail(1, "a@b", ["c@d"], b"x", "m@d")])
    assert "configure the department's mailbox" in str(error)


class Dummy(MailboxProvider):
    name = "dummy"
    label = "Dummy"

    def open(self, config, secrets):  # pragma: no cover - never opened here
        raise NotImplementedError


class RegistersDummy:
    @hookimpl
    def helpdesk_register_providers(self, register):
        register(Dummy())


def test_register_providers_collects_and_refuses_duplicates():
    pm = get_plugin_manager(load_entrypoints=False, extra_plugins=[RegistersDummy()])
    assert "dummy" in collect_providers(pm).providers
    pm2 = get_plugin_manager(load_entrypoints=False, extra_plugins=[RegistersDummy(), RegistersDummy()])
    with pytest.raises(PluginError, match="registered twice"):
        collect_providers(pm2)
