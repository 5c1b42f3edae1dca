"""The generic provider passes the provider conformance suite over IMAP, POP3 and Maildir (the
test Dovecot for mail in, the SMTP sink for replies)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from helpdesk_core.testing.conformance import ConformanceMailbox, ProviderConformance, closed_port


def generic_mailbox(mail_user: Any, smtp_sink: Any, config: dict[str, Any], failures: dict[str, Any],
                    deliver: Any = None, count: Any = None) -> ConformanceMailbox:
    config = {**config, "email": mail_user.email, "smtp_host": "127.0.0.1", "smtp_port": smtp_sink.port_starttls,
              "smtp_security": "starttls"}
    return ConformanceMailbox(
        provider="generic", email=mail_user.email, config=config, secrets={"password": mail_user.password},
        deliver=deliver or mail_user.deliver, count=count or mail_user.count, failures=failures,
        sent=lambda: [m.raw for m in smtp_sink.messages],
        fail_next_send=lambda: smtp_sink.fail_next(451, "4.3.0 Try again later", stage="MAIL"))


def server_failures(mail_user: Any) -> dict[str, Any]:
    return {"auth_failed": ({}, {"password": "wrong-" + mail_user.password}),
            "connection_refused": ({"port": closed_port()}, {}),
            "certificate": ({"ca_file": None}, {})}


class TestImapConformance(ProviderConformance):
    @pytest.fixture
    def conformance_mailbox(self, dovecot, mail_user, smtp_sink):
        failures = {**server_failures(mail_user), "folder_missing": ({"folder": "No such folder"}, {})}
        return generic_mailbox(mail_user, smtp_sink, {"protocol": "imap", "host": "127.0.0.1", "security": "ssl",
                                                      "port": dovecot.imaps_port, "ca_file": str(dovecot.ca_file)},
                               failures)


class TestPop3Conformance(ProviderConformance):
    @pytest.fixture
    def conformance_mailbox(self, dovecot, mail_user, smtp_sink):
        return generic_mailbox(mail_user, smtp_sink, {"protocol": "pop3", "host": "127.0.0.1", "security": "ssl",
                                                      "port": dovecot.pop3s_port, "ca_file": str(dovecot.ca_file)},
                               server_failures(mail_user))


class TestMaildirConformance(ProviderConformance):
    @pytest.fixture
    def conformance_mailbox(self, tmp_path: Path, mail_user, smtp_sink, dovecot):
        root = tmp_path / "Maildir"
        for sub in ("cur", "new", "tmp"):
            (root / sub).mkdir(parents=True)

        def deliver(raw: bytes) -> None:
            (root / "new" / f"{len(list((root / 'new').iterdir()))}.{id(raw)}.test").write_bytes(raw)

        def count() -> int:
            return sum(1 for sub in ("cur", "new") for _ in (root / sub).iterdir())

        box = generic_mailbox(mail_user, smtp_sink, {"protocol": "maildir", "path": str(root),
                                                     "ca_file": str(dovecot.ca_file)},
                              {"folder_missing": ({"path": str(tmp_path / "missing")}, {})}, deliver, count)
        return box


class TestImapMoveConformance(ProviderConformance):
    """The same contract when imported mail is moved to a folder instead of deleted
    (``after_import=move``): the folder read empties exactly as with deletion."""

    @pytest.fixture
    def conformance_mailbox(self, dovecot, mail_user, smtp_sink):
        failures = {**server_failures(mail_user), "folder_missing": ({"folder": "No such folder"}, {})}
        return generic_mailbox(mail_user, smtp_sink, {"protocol": "imap", "host": "127.0.0.1", "security": "ssl",
                                                      "port": dovecot.imaps_port, "ca_file": str(dovecot.ca_file),
                                                      "after_import": "move", "move_to_folder": "Imported"},
                               failures)
