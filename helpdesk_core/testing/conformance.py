"""The provider conformance suite: what every mailbox provider must do, checked against the real
import engine and outbox.

A provider's tests subclass :class:`ProviderConformance` and give it one fixture,
``conformance_mailbox``, that returns a :class:`ConformanceMailbox`: a configured test mailbox
(provider name, config, secrets), a way to put raw mail into it and count what is left, the
failure kinds its validation declares, and -- when the provider sends mail -- where sent mail
lands and how to make the next send fail temporarily::

    from helpdesk_core.testing.conformance import ConformanceMailbox, ProviderConformance

    class TestExampleConformance(ProviderConformance):
        @pytest.fixture
        def conformance_mailbox(self, my_server):
            return ConformanceMailbox(
                provider="example", email=my_server.address,
                config={"account": my_server.account, "email": my_server.address},
                secrets={"api_token": my_server.token},
                deliver=my_server.deliver, count=my_server.count,
                failures={"auth_failed": ({}, {"api_token": "wrong"})},
                sent=lambda: [m.raw for m in my_server.outgoing],
                fail_next_send=lambda: my_server.fail_next_send(451))

Each check runs on a fresh SQLite installation with one department, ``Conformance``, whose sender
address is ``email``. See ``docs/writing-a-provider.md``.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from helpdesk_core.app import Helpdesk
from helpdesk_core.errors import HelpdeskError, MailboxError
from helpdesk_core.models import Department, LedgerEntry, Ticket
from helpdesk_core.providers.base import (
    ConfigField,
    MailboxProvider,
    MailboxSession,
    RemoteMessage,
)
from helpdesk_core.services.permissions import SYSTEM
from helpdesk_core.testing.apps import Cli, environment, installation

__all__ = ["ConformanceMailbox", "ProviderConformance", "closed_port", "message"]

DEPARTMENT = "Conformance"


@dataclass
class ConformanceMailbox:
    """A configured test mailbox of one provider, as :class:`ProviderConformance` needs it.

    ``failures`` maps each failure kind the provider declares to the ``(config changes, secret
    changes)`` that make validation refuse with that kind. ``sent`` (None: the provider sends no
    mail) returns the raw bytes of every mail sent so far; ``fail_next_send`` makes the next
    delivery attempt fail temporarily. ``secret_values`` names more strings that must never appear
    in errors or logs (e.g. tokens inside a cache); every secret of ``secrets`` and ``failures``
    is checked anyway.
    """

    provider: str
    email: str
    config: dict[str, Any]
    secrets: dict[str, str]
    deliver: Callable[[bytes], None]
    count: Callable[[], int]
    failures: dict[str, tuple[dict[str, Any], dict[str, str]]] = field(default_factory=dict)
    sent: Callable[[], list[bytes]] | None = None
    fail_next_send: Callable[[], None] | None = None
    secret_values: Callable[[], list[str]] = lambda: []


class _Watched(MailboxSession):
    """A provider's session with a hook before ``delete`` (to check or to crash there)."""

    def __init__(self, inner: MailboxSession, before_delete: Callable[[Sequence[str]], None]) -> None:
        self.inner, self.before_delete = inner, before_delete

    def count(self) -> int | None:
        return self.inner.count()

    def fetch(self, *, batch_size: int = 100) -> Iterator[list[RemoteMessage]]:
        return self.inner.fetch(batch_size=batch_size)

    def delete(self, keys: Sequence[str]) -> None:
        self.before_delete(keys)
        self.inner.delete(keys)

    def checkpoint(self) -> None:
        self.inner.checkpoint()

    def close(self) -> None:
        self.inner.close()


def closed_port() -> int:
    """A local port nothing listens on (for a ``connection_refused`` failure)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def oauth_client(oauth_server: Any, smtp_sink: Any, *, app: bool = False) -> tuple[str, str]:
    """``(client_id, client_secret)`` of a new client of the local OAuth server
    (:class:`~helpdesk_core.testing.servers.oauth.OAuthServer`; ``app``: a Microsoft app, which may
    also use the client-credentials grant) for an OAuth provider's conformance mailbox: the server
    keeps its refresh tokens (the suite validates the same secrets many times) and ``smtp_sink``
    accepts its access tokens (XOAUTH2)."""
    oauth_server.rotate_refresh_tokens = False
    smtp_sink.accept_tokens(oauth_server.token_owner)
    return oauth_server.add_app() if app else oauth_server.add_client()


def message(n: int, *, size: int = 0, sender: str = "requester@example.test") -> bytes:
    """A plain test message; ``size`` pads the body to about that many bytes."""
    body = f"Hello {n}.\r\n" + ("x" * 76 + "\r\n") * (size // 78)
    return (f"From: Requester <{sender}>\r\nTo: desk@example.test\r\nSubject: Conformance {n}\r\n"
            f"Message-ID: <conformance-{n}-{id(body)}@example.test>\r\n\r\n{body}").encode()


class ProviderConformance:
    """Subclass with a ``conformance_mailbox`` fixture; every ``test_*`` here then runs for it."""

    # ------------------------------------------------------------------ fixtures and helpers

    @pytest.fixture
    def conformance_env(self, tmp_path: Path, sqlite_url: str) -> dict[str, str]:
        return environment(tmp_path / "conformance-home", sqlite_url)

    @pytest.fixture
    def conformance_app(self, conformance_env: dict[str, str],
                        conformance_mailbox: ConformanceMailbox) -> Iterator[Helpdesk]:
        app = installation(conformance_env, departments={DEPARTMENT: conformance_mailbox.email})
        from helpdesk_core.settings import set_setting

        with app.session() as session:
            set_setting(session, "mail.rate_limit_per_hour", 0)
            session.commit()
        yield app
        app.engine.dispose()

    @staticmethod
    def connect(app: Helpdesk, box: ConformanceMailbox, config: Mapping[str, Any] | None = None,
                secrets: Mapping[str, str] | None = None) -> dict[str, Any]:
        from helpdesk_core.services.departments import set_mailbox

        with app.session() as session:
            facts = set_mailbox(app, session, actor=SYSTEM, department=DEPARTMENT, provider=box.provider,
                                config=box.config if config is None else config,
                                secrets=box.secrets if secrets is None else secrets, validate=True)
            session.commit()
        return facts

    @staticmethod
    def department_id(app: Helpdesk) -> int:
        with app.session() as session:
            return int(session.scalar(select(Department.id).where(Department.name == DEPARTMENT)))

    @staticmethod
    def tickets(app: Helpdesk) -> int:
        with app.session() as session:
            return int(session.scalar(select(func.count()).select_from(Ticket)) or 0)

    @staticmethod
    def watch(app: Helpdesk, box: ConformanceMailbox, monkeypatch: pytest.MonkeyPatch,
              before_delete: Callable[[Sequence[str]], None]) -> None:
        provider: MailboxProvider = app.providers.get(box.provider)
        real_open = provider.open
        monkeypatch.setattr(provider, "open", lambda config, secrets: _Watched(real_open(config, secrets),
                                                                                before_delete))

    def run(self, app: Helpdesk) -> Any:
        from helpdesk_core.inbound.cycle import run_cycle

        return run_cycle(app, self.department_id(app))

    def all_secrets(self, box: ConformanceMailbox) -> list[str]:
        values = [*box.secrets.values(), *box.secret_values()]
        values += [v for _config, secrets in box.failures.values() for v in secrets.values()]
        return [v for v in values if isinstance(v, str) and len(v) >= 6]

    # ------------------------------------------------------------------ the checks

    def test_validation_refuses_each_failure_kind_and_saves_nothing(self, conformance_app, conformance_mailbox):
        box = conformance_mailbox
        assert box.failures, "declare the failure kinds validation refuses (ConformanceMailbox.failures)"
        messages = {}
        for kind, (config_changes, secret_changes) in box.failures.items():
            with pytest.raises(HelpdeskError) as info:
                self.connect(conformance_app, box, {**box.config, **config_changes}, {**box.secrets, **secret_changes})
            assert info.value.kind == kind, f"{kind}: refused as {info.value.kind}: {info.value.message}"
            messages[kind] = info.value.message
            with conformance_app.session() as session:
                dept = session.scalar(select(Department).where(Department.name == DEPARTMENT))
                assert dept.mailbox is None, f"{kind}: a refused configuration was saved"
        assert len(set(messages.values())) == len(messages), f"two failure kinds share a message: {messages}"

    def test_fetch_ticket_then_delete_after_commit(self, conformance_app, conformance_mailbox, monkeypatch):
        box, app = conformance_mailbox, conformance_app
        self.connect(app, box)
        box.deliver(message(1))
        box.deliver(message(2))
        seen: list[int] = []

        def committed_first(keys: Sequence[str]) -> None:
            with app.session() as own:  # another session sees only committed rows
                seen.append(int(own.scalar(select(func.count()).select_from(LedgerEntry)) or 0))
            assert seen[-1] >= len(keys), "delete() was called before the batch was committed"

        self.watch(app, box, monkeypatch, committed_first)
        result = self.run(app)
        assert (result.error, result.created, result.deleted) == (None, 2, 2), result
        assert seen and self.tickets(app) == 2 and box.count() == 0

    def test_crash_between_commit_and_delete_imports_nothing_twice(self, conformance_app, conformance_mailbox,
                                                                   monkeypatch):
        box, app = conformance_mailbox, conformance_app
        self.connect(app, box)
        box.deliver(message(1))
        box.deliver(message(2))

        def crash(keys: Sequence[str]) -> None:
            raise MailboxError("simulated crash after the commit, before the delete", kind="server_error",
                               temporary=True)

        with monkeypatch.context() as patch:
            self.watch(app, box, patch, crash)
            first = self.run(app)
        assert first.created == 2 and first.deleted == 0 and box.count() == 2
        again = self.run(app)
        assert (again.error, again.created, again.skipped) == (None, 0, 2), again
        assert self.tickets(app) == 2 and box.count() == 0

    def test_message_over_the_size_limit_is_left_and_reported(self, conformance_app, conformance_mailbox):
        from helpdesk_core.services.held import import_log
        from helpdesk_core.settings import set_setting

        box, app = conformance_mailbox, conformance_app
        self.connect(app, box)
        with app.session() as session:
            set_setting(session, "mail.max_message_size_mb", 0.02)  # about 20 KB
            session.commit()
        box.deliver(message(1, size=60_000))
        box.deliver(message(2))
        result = self.run(app)
        assert (result.error, result.created, result.skipped) == (None, 1, 1), result
        assert box.count() == 1, "the large message must stay in the mailbox"
        with app.session() as session:
            [entry] = [e for e in import_log(session, actor=SYSTEM, department=DEPARTMENT) if e["outcome"] == "kept"]
        assert "larger than mail.max_message_size_mb" in entry["reason"]

    def test_secrets_never_in_errors_or_logs(self, conformance_app, conformance_mailbox, caplog):
        from helpdesk_core.services.departments import department_status

        box, app = conformance_mailbox, conformance_app
        caplog.set_level(logging.DEBUG)
        texts = []
        for config_changes, secret_changes in box.failures.values():
            try:
                self.connect(app, box, {**box.config, **config_changes}, {**box.secrets, **secret_changes})
            except HelpdeskError as exc:
                texts.append(str(exc))
        self.connect(app, box)
        box.deliver(message(1))
        texts.append(json.dumps(self.run(app).as_json()))
        with app.session() as session:
            texts.append(json.dumps(department_status(session, actor=SYSTEM, department=DEPARTMENT), default=str))
        texts.append(caplog.text)
        for secret in self.all_secrets(box):
            for text in texts:
                assert secret not in text, "a secret appeared in an error, the status or the log"

    def test_replies_from_the_department_and_temporary_failure_keeps_them_queued(self, conformance_app,
                                                                                  conformance_mailbox):
        from helpdesk_core.outbound.outbox import flush_outbox, list_outbox
        from helpdesk_core.services.permissions import SYSTEM
        from helpdesk_core.services.replies import reply_to_ticket

        box, app = conformance_mailbox, conformance_app
        if box.sent is None:
            pytest.skip(f"provider {box.provider!r} sends no mail in this configuration")
        assert box.fail_next_send is not None, "give fail_next_send to check the outbox semantics"
        self.connect(app, box)
        box.deliver(message(1))
        assert self.run(app).created == 1
        with app.session() as session:
            ticket_id = session.scalar(select(Ticket.id))
            reply_to_ticket(app, session, actor=SYSTEM, ticket_id=ticket_id, body="First answer.")
            session.commit()
        before = len(box.sent())
        box.fail_next_send()
        flush_outbox(app, department=DEPARTMENT)
        with app.session() as session:
            rows = [r for r in list_outbox(session, department=DEPARTMENT) if r["kind"] == "reply"]
        assert [r["status"] for r in rows] == ["queued"], rows
        assert rows[0]["last_error"] and len(box.sent()) == before
        flush_outbox(app, department=DEPARTMENT, ignore_backoff=True)
        with app.session() as session:
            [row] = [r for r in list_outbox(session, department=DEPARTMENT) if r["kind"] == "reply"]
        assert row["status"] == "sent", row
        sent = [message_from_bytes(raw) for raw in box.sent() if b"First answer." in raw]
        assert len(sent) == 1 and box.email in str(sent[0]["From"]), "the reply was not sent From the department"
        assert row["mail_from"] == box.email

    def test_config_fields_declared_and_listed(self, conformance_app, conformance_mailbox, conformance_env):
        box = conformance_mailbox
        provider = conformance_app.providers.get(box.provider)
        assert provider.fields and all(isinstance(f, ConfigField) for f in provider.fields)
        names = [f.name for f in provider.fields]
        assert len(names) == len(set(names)), f"a field is declared twice: {names}"
        secret = {f.name for f in provider.fields if f.secret}
        assert set(box.config) <= set(names) - secret, "the test config uses undeclared (or secret) fields"
        assert set(box.secrets) <= secret, "the test secrets use fields not declared secret=True"
        cli = Cli(conformance_env)
        listed = {p["name"]: p for p in cli.json("plugins", "--json")["providers"]}
        assert box.provider in listed, f"helpdesk plugins --json does not list {box.provider!r}"
        assert [f["name"] for f in listed[box.provider]["fields"]] == names
        assert {f["name"] for f in listed[box.provider]["fields"] if f["secret"]} == secret
