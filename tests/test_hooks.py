"""Each hook exercised through the core function that calls it, with small test plugins.

``tests/test_hooks_contract.py`` requires one ``test_hook_<hook name>`` here per hook, in which a
plugin implementing the hook changes what the core does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from helpdesk_core import hookimpl
from helpdesk_core.cli.main import register_plugin_commands
from helpdesk_core.errors import DeliveryError, PluginError
from helpdesk_core.hooktypes import Classification, OutgoingMail, ThreadMatch
from helpdesk_core.models import Department, OutboxMessage, Ticket, TicketMessage, TicketStatus
from helpdesk_core.outbound.delivery import deliver
from helpdesk_core.plugins import Hooks, describe_plugins
from helpdesk_core.providers.base import MailboxProvider
from helpdesk_core.services.departments import set_department_options
from helpdesk_core.services.permissions import SYSTEM
from helpdesk_core.settings import set_setting
from helpdesk_core.testing.apps import ingest as ingest_into
from helpdesk_core.testing.apps import installation
from mailfactory import plain


def setup(env, *plugins):
    return installation(env, *plugins, departments={"Tech": "techhelp@district.test"})


def ingest(app, raw, department="Tech"):
    return ingest_into(app, raw, department=department)


def ticket_number_in(message) -> int | None:
    """``techhelp+<number>@`` in To: the ticket number a plus address names."""
    for addr in message.to:
        local = addr.email.split("@")[0]
        if "+" in local and local.split("+")[1].isdigit():
            return int(local.split("+")[1])
    return None


def plus_addressed_ticket(message, department, context) -> Ticket | None:
    number = ticket_number_in(message)
    if number is None:
        return None
    return context.session.scalar(select(Ticket).where(Ticket.department_id == department.id,
                                                       Ticket.number == number))


# ---- helpdesk_classify_message ------------------------------------------------------------------

class SkipNewsletters:
    @hookimpl
    def helpdesk_classify_message(self, message):
        if "newsletter" in message.subject.lower():
            return Classification(kind="newsletter", action="skip", reason="newsletters are not tickets")
        return None


def test_hook_helpdesk_classify_message(hd_env):
    app = setup(hd_env, SkipNewsletters())
    skipped = ingest(app, plain(subject="Monthly newsletter"))
    assert skipped.status == "skipped" and skipped.reason == "newsletters are not tickets"
    assert ingest(app, plain(subject="Printer")).status == "created"


# ---- helpdesk_find_ticket -----------------------------------------------------------------------

class PlusAddressing:
    """A thread-finding plugin: ``techhelp+<number>@`` continues ticket <number>."""

    def __init__(self, trusted: bool = True) -> None:
        self.trusted = trusted

    @hookimpl
    def helpdesk_find_ticket(self, message, department, context):
        ticket = plus_addressed_ticket(message, department, context)
        if ticket is None:
            return None
        return ThreadMatch(ticket=ticket, matched_by="plus_address", trusted=self.trusted)


def test_hook_helpdesk_find_ticket(hd_env):
    app = setup(hd_env, PlusAddressing())
    first = ingest(app, plain(subject="Printer"))
    second = ingest(app, plain(subject="no reference at all", to="techhelp+1@district.test"))
    assert second.status == "updated" and second.ticket_id == first.ticket_id


def close(app, ticket_id: int) -> None:
    with app.session() as s:
        s.get(Ticket, ticket_id).status = TicketStatus.CLOSED
        s.commit()


def test_find_ticket_plugin_keeps_the_closed_ticket_and_sender_rules(hd_env):
    """The core settles a plugin's match like its own: before, a plugin's closed ticket was
    continued although ``reopen_closed`` is false, and an untrusted match skipped the sender check."""
    app = setup(hd_env, PlusAddressing(trusted=False))
    first = ingest(app, plain(subject="Printer"))
    close(app, first.ticket_id)
    with app.session() as s:
        set_department_options(s, actor=SYSTEM, department="Tech", reopen_closed=False)
        s.commit()
    follow_up = ingest(app, plain(subject="again", to="techhelp+1@district.test"))
    assert follow_up.status == "created"
    stranger = ingest(app, plain(subject="x", sender="mallory@evil.test", to="techhelp+2@district.test"))
    assert stranger.status == "created"
    with app.session() as s:
        assert s.get(Ticket, follow_up.ticket_id).linked_ticket_id == first.ticket_id
        assert s.get(Ticket, stranger.ticket_id).mentions == "#2"
        assert s.get(Ticket, first.ticket_id).status == TicketStatus.CLOSED


def test_find_ticket_plugin_reopens_a_closed_ticket(hd_env):
    app = setup(hd_env, PlusAddressing())
    first = ingest(app, plain(subject="Printer"))
    close(app, first.ticket_id)
    assert ingest(app, plain(subject="again", to="techhelp+1@district.test")).ticket_id == first.ticket_id
    with app.session() as s:
        assert s.get(Ticket, first.ticket_id).status == TicketStatus.OPEN


class ReturnsATicket:
    @hookimpl
    def helpdesk_find_ticket(self, department, context):
        return context.session.scalar(select(Ticket).where(Ticket.department_id == department.id))


def test_find_ticket_returning_a_bare_ticket_says_what_to_return(hd_env):
    app = setup(hd_env, ReturnsATicket())
    ingest(app, plain(subject="Printer"))
    outcome = ingest(app, plain(subject="second"))
    assert outcome.status == "failed" and "PluginError" in outcome.reason  # kept for helpdesk failed
    assert "return a ThreadMatch or None" in outcome.reason


# ---- helpdesk_register_thread_matchers ----------------------------------------------------------

class PlusAddressMatcher:
    @hookimpl
    def helpdesk_register_thread_matchers(self, register):
        register("plus_address", plus_addressed_ticket_matcher)


def plus_addressed_ticket_matcher(*, message, department, classification, context):
    return plus_addressed_ticket(message, department, context)


def test_hook_helpdesk_register_thread_matchers(hd_env):
    app = setup(hd_env, PlusAddressMatcher())
    first = ingest(app, plain(subject="Printer"))
    with app.session() as s:
        set_setting(s, "mail.thread_matchers", "plus_address,message_id", hooks=app.hooks)
        s.commit()
    assert ingest(app, plain(subject="plain", to="techhelp+1@district.test")).ticket_id == first.ticket_id
    assert app.hooks.thread_matchers.plugin_of["plus_address"] != app.hooks.thread_matchers.plugin_of["message_id"]


class BadMatcherName:
    @hookimpl
    def helpdesk_register_thread_matchers(self, register):
        register("Plus Address", plus_addressed_ticket_matcher)


def test_bad_thread_matcher_is_a_plugin_error_naming_the_plugin():
    hooks = Hooks.build(load_entrypoints=False, extra_plugins=[plugin := BadMatcherName()])
    name = hooks.pm.get_name(plugin)
    with pytest.raises(PluginError, match=f"Plugin {name} registered the thread matcher name 'Plus Address'"):
        hooks.thread_matchers


# ---- helpdesk_message_to_ticket -----------------------------------------------------------------

class PriorityMapping:
    @hookimpl(tryfirst=True)
    def helpdesk_message_to_ticket(self, message, department, ticket, classification, match, context):
        if "URGENT" not in message.subject:
            return None
        from helpdesk_core.defaults.store import helpdesk_message_to_ticket as default

        tm = default(message=message, department=department, ticket=ticket,
                     classification=classification, match=match, context=context)
        tm.ticket.subject = "[P1] " + tm.ticket.subject
        return tm


def test_hook_helpdesk_message_to_ticket(hd_env):
    app = setup(hd_env, PriorityMapping())
    urgent = ingest(app, plain(subject="URGENT: network down"))
    normal = ingest(app, plain(subject="Mouse"))
    with app.session() as s:
        assert s.get(Ticket, urgent.ticket_id).subject == "[P1] URGENT: network down"
        assert s.get(Ticket, normal.ticket_id).subject == "Mouse"


# ---- helpdesk_message_imported ------------------------------------------------------------------

@dataclass
class Recorder:
    seen: list[tuple[str, bool, str, str]] = field(default_factory=list)

    @hookimpl
    def helpdesk_message_imported(self, message, ticket_message, created, classification, match, context):
        assert isinstance(ticket_message, TicketMessage) and ticket_message.id is not None
        assert match.ticket is (None if created else ticket_message.ticket)
        self.seen.append((message.subject, created, classification.kind, match.matched_by))


def test_hook_helpdesk_message_imported(hd_env):
    rec = Recorder()
    app = setup(hd_env, rec)
    ingest(app, plain(subject="Printer"))
    ingest(app, plain(subject="Re: [Ticket #1] Printer"))
    assert rec.seen == [("Printer", True, "normal", ""),
                        ("Re: [Ticket #1] Printer", False, "normal", "subject_reference")]


# ---- helpdesk_deliver_reply ---------------------------------------------------------------------

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


def test_hook_helpdesk_deliver_reply(hd_env):
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


# ---- helpdesk_register_providers ----------------------------------------------------------------

class Dummy(MailboxProvider):
    name = "dummy"
    label = "Dummy"

    def open(self, config, secrets):  # pragma: no cover - never opened here
        raise NotImplementedError


class RegistersDummy:
    @hookimpl
    def helpdesk_register_providers(self, register):
        register(Dummy())


def test_hook_helpdesk_register_providers(hd_env):
    app = setup(hd_env, plugin := RegistersDummy())
    assert isinstance(app.providers.get("dummy"), Dummy)
    [listed] = [p for p in describe_plugins(app.pm, app.providers) if p["name"] == app.pm.get_name(plugin)]
    assert [p["name"] for p in listed["providers"]] == ["dummy"]


def test_duplicate_providers_are_refused():
    hooks = Hooks.build(load_entrypoints=False, extra_plugins=[RegistersDummy(), RegistersDummy()])
    with pytest.raises(PluginError, match="registered twice"):
        hooks.providers


# ---- helpdesk_register_template_folders ---------------------------------------------------------

class TemplateFolder:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @hookimpl
    def helpdesk_register_template_folders(self, register):
        register(self.folder)


def test_hook_helpdesk_register_template_folders(hd_env, tmp_path):
    folder = tmp_path / "templates"
    (folder / "acknowledgement").mkdir(parents=True)
    (folder / "acknowledgement" / "subject.txt").write_text("We got it {{ reference }}")
    app = setup(hd_env, TemplateFolder(folder))
    with app.session() as s:
        set_department_options(s, actor=SYSTEM, department="Tech", acknowledge=True)
        s.commit()
    ingest(app, plain(subject="Printer"))
    with app.session() as s:
        [row] = s.scalars(select(OutboxMessage))
        assert row.subject == "We got it [Ticket #1]"


def test_template_folder_that_is_no_directory_names_the_plugin(tmp_path):
    hooks = Hooks.build(load_entrypoints=False, extra_plugins=[plugin := TemplateFolder(tmp_path / "missing")])
    with pytest.raises(PluginError, match=f"Plugin {hooks.pm.get_name(plugin)} registered the template folder"):
        hooks.template_folders


# ---- helpdesk_register_commands -----------------------------------------------------------------

@click.command("hello")
def hello() -> None:
    click.echo("hello from a plugin")


class CommandsPlugin:
    @hookimpl
    def helpdesk_register_commands(self, cli: click.Group) -> None:
        cli.add_command(hello)


def test_hook_helpdesk_register_commands():
    @click.group()
    def top() -> None:
        pass

    hooks = Hooks.build(load_entrypoints=False, extra_plugins=[CommandsPlugin()])
    assert register_plugin_commands(top, hooks) is hooks
    assert CliRunner().invoke(top, ["hello"]).output == "hello from a plugin\n"
