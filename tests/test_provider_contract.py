"""The provider contract: one provider object per mailbox for both directions, the override hook
consulted first, one ``temporary`` attribute on every error, and a registry that names the plugin."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from helpdesk_core import hookimpl
from helpdesk_core.errors import (
    ConfigurationError, DatabaseUnavailable, DeliveryError, HelpdeskError, MailboxError, PluginError,
    TemporaryError,
)
from helpdesk_core.hooktypes import OutgoingMail
from helpdesk_core.models import Department
from helpdesk_core.outbound.delivery import deliver
from helpdesk_core.providers import MailboxProvider, MailboxSession, ProviderRegistry, StoredSecrets
from helpdesk_core.services.departments import add_department, set_mailbox
from helpdesk_core.services.permissions import SYSTEM
from helpdesk_core.testing.apps import memory_app
from helpdesk_core.testing.fake import FakePlugin

CORE = Path(__file__).resolve().parents[1] / "helpdesk_core"


def mails(n: int = 2) -> list[OutgoingMail]:
    return [OutgoingMail(id=i, mail_from="techhelp@district.test", recipients=[f"r{i}@example.test"],
                         raw=f"Subject: {i}\r\n\r\nhello\r\n".encode(), message_id=f"<{i}@district.test>")
            for i in range(1, n + 1)]


def department_with_fake_mailbox(*plugins, sends_mail=True, password="pw"):
    fake = FakePlugin()
    box = fake.provider.mailbox("tech", sends_mail=sends_mail, password=password)
    app = memory_app(fake, *plugins)
    with app.session() as session:
        add_department(session, actor=SYSTEM, name="Tech", sender="techhelp@district.test")
        set_mailbox(app, session, actor=SYSTEM, department="Tech", provider="fake",
                    config={"mailbox": "tech"}, secrets={"password": password})
        session.commit()
    return app, box


def deliver_to_tech(app, outgoing):
    with app.session() as session:
        dept = session.query(Department).filter_by(name="Tech").one()
        return deliver(app, dept, outgoing)


def test_the_departments_provider_object_delivers_its_outgoing_mail():
    app, box = department_with_fake_mailbox()
    seen: list[object] = []
    provider = app.providers.get("fake")
    original = provider.deliver

    def spy(config, secrets, outgoing):
        seen.append(secrets)
        return original(config, secrets, outgoing)

    provider.deliver = spy  # type: ignore[method-assign]
    outgoing = mails(3)
    assert deliver_to_tech(app, outgoing) == [None, None, None]
    assert box.sent == outgoing
    # the same StoredSecrets the import cycle gets (rotated tokens can be saved)
    assert isinstance(seen[0], StoredSecrets) and seen[0] == {"password": "pw"}


class Override:
    def __init__(self, answer):
        self.answer = answer
        self.calls = 0

    @hookimpl
    def helpdesk_deliver_reply(self, mails, department, mailbox, secrets):
        self.calls += 1
        return self.answer(mails) if self.answer else None


def test_the_override_hook_is_consulted_first():
    taker = Override(lambda ms: [DeliveryError("550 no", temporary=False)] + [None] * (len(ms) - 1))
    app, box = department_with_fake_mailbox(taker)
    results = deliver_to_tech(app, mails(2))
    assert taker.calls == 1 and box.sent == []
    assert isinstance(results[0], DeliveryError) and results[0].permanent and results[1] is None
    # an override returning None leaves the mail to the provider
    passer = Override(None)
    app, box = department_with_fake_mailbox(passer)
    assert deliver_to_tech(app, mails(2)) == [None, None] and passer.calls == 1 and len(box.sent) == 2


def test_a_provider_that_sends_no_mail_gets_the_clear_error():
    app, box = department_with_fake_mailbox(sends_mail=False)
    results = deliver_to_tech(app, mails(2))
    assert all(isinstance(r, DeliveryError) and r.kind == "no_delivery" and r.temporary for r in results)
    assert "department 'Tech' (provider fake)" in results[0].message
    assert "outgoing mail settings" in results[0].message
    # the base class's default outgoing side: no mail
    assert MailboxProvider.deliver(app.providers.get("fake"), {}, {}, mails(1)) is None


def test_a_failure_of_the_whole_batch_keeps_every_mail_queued():
    app, box = department_with_fake_mailbox()
    box.fail_deliver = MailboxError("Login refused: check the password.", kind="auth_failed", temporary=False)
    results = deliver_to_tech(app, mails(2))
    assert [(r.kind, r.temporary, r.message) for r in results] == \
        [("auth_failed", True, "Cannot send mail: Login refused: check the password.")] * 2
    box.fail_deliver = DeliveryError("Relay busy; will retry.", kind="server_error")
    assert {(r.kind, r.temporary) for r in deliver_to_tech(app, mails(2))} == {("server_error", True)}


def test_one_temporary_attribute_on_every_error():
    assert TemporaryError("x").temporary and DatabaseUnavailable("x").temporary
    assert not ConfigurationError("x").temporary and not HelpdeskError("x").temporary
    assert HelpdeskError("x", temporary=True).temporary
    assert not MailboxError("x").temporary and MailboxError("x", temporary=True).temporary
    # delivery: temporary by default; ``permanent`` still works, as its inverse
    assert DeliveryError("x").temporary and not DeliveryError("x").permanent
    assert not DeliveryError("x", permanent=True).temporary and DeliveryError("x", permanent=True).permanent
    assert DeliveryError("x", temporary=False).permanent
    error = DeliveryError("x")
    error.permanent = True
    assert not error.temporary


class NotAProvider:
    name = "odd"


class Nameless(MailboxProvider):
    name = ""

    def open(self, config, secrets):
        raise NotImplementedError


@pytest.mark.parametrize(("provider", "words"), [
    (NotAProvider(), "Plugin 'acme-mail' registered .* not a mailbox provider"),
    (Nameless(), "Plugin 'acme-mail' registered a provider without a name"),
])
def test_registry_refuses_with_a_plugin_error_naming_the_plugin(provider, words):
    with pytest.raises(PluginError, match=words) as info:
        ProviderRegistry().register(provider, plugin="acme-mail")
    assert info.value.kind == "plugin"


def test_duplicate_provider_names_both_plugins():
    registry = ProviderRegistry()
    registry.register(FakePlugin().provider, plugin="acme-mail")
    with pytest.raises(PluginError, match="'fake' is registered twice") as info:
        registry.register(FakePlugin().provider, plugin="other-mail")
    assert "'acme-mail'" in info.value.message and "'other-mail'" in info.value.message
    assert "HELPDESK_DISABLE_PLUGINS" in info.value.message


def test_fetch_takes_no_max_size():
    """The core never passed ``max_size``; it is not part of the contract any more."""
    assert list(inspect.signature(MailboxSession.fetch).parameters) == ["self", "batch_size"]


@pytest.mark.parametrize("module", ["inbound/cycle.py", "outbound/delivery.py", "providers/base.py",
                                    "providers/secrets.py"])
def test_the_engine_and_providers_do_not_import_services(module):
    tree = ast.parse((CORE / module).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not {m for m in imported if m.startswith(("helpdesk_core.services", "helpdesk_core.cli"))}
