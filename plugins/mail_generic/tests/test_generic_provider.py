"""The ``generic`` provider against the real test Dovecot (IMAP, IMAPS, POP3, POP3S) and Maildirs.

Fixtures (``dovecot``, ``mail_user``, ``silent_port``) come from ``helpdesk_core.testing.pytest_plugin``.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from helpdesk_core.errors import MailboxError
from helpdesk_core.providers.base import MailboxSession, RemoteMessage
from helpdesk_mail_generic.imap import ImapSession
from helpdesk_mail_generic.maildir import MaildirSession
from helpdesk_mail_generic.pop3 import Pop3Session
from helpdesk_mail_generic.provider import GenericProvider, connect_imap

PROVIDER = GenericProvider()

SERVER_MODES = [("imap", "ssl"), ("imap", "starttls"), ("imap", "none"),
                ("pop3", "ssl"), ("pop3", "starttls"), ("pop3", "none")]


def message(n: int, extra: bytes = b"") -> bytes:
    """A small message; #n in the subject, a dot-stuffed line and a long line for POP3."""
    return (b"From: Parent %d <parent%d@example.test>\r\n" % (n, n)
            + b"To: help@district.test\r\n"
            + b"Subject: question #%d\r\n" % n
            + b"Message-ID: <q%d@example.test>\r\n" % n
            + b"\r\n"
            + b"Hello, this is question %d.\r\n" % n
            + b".a line starting with a dot\r\n"
            + b"x" * 3000 + b"\r\n"
            + extra
            + b"Bye.\r\n")


def lf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n")


def server_config(dovecot: Any, user: Any, protocol: str, security: str, **extra: Any) -> dict[str, Any]:
    tls = security == "ssl"
    port = {("imap", True): dovecot.imaps_port, ("imap", False): dovecot.imap_port,
            ("pop3", True): dovecot.pop3s_port, ("pop3", False): dovecot.pop3_port}[(protocol, tls)]
    config = {"protocol": protocol, "host": dovecot.host, "port": port, "security": security,
              "email": user.email, "ca_file": str(dovecot.ca_file), "timeout": 10}
    config.update(extra)
    return config


def open_session(dovecot: Any, user: Any, protocol: str, security: str, **extra: Any) -> MailboxSession:
    return PROVIDER.open(server_config(dovecot, user, protocol, security, **extra), {"password": user.password})


def fetch_all(session: MailboxSession, **kwargs: Any) -> list[list[RemoteMessage]]:
    return list(session.fetch(**kwargs))


def open_error(config: dict[str, Any], password: str = "irrelevant") -> MailboxError:
    with pytest.raises(MailboxError) as info:
        PROVIDER.open(config, {"password": password})
    error = info.value
    assert error.message and "\n" not in error.message
    assert password not in error.message
    return error


# ---- open + fetch + delete over every protocol and security ---------------------------------

@pytest.mark.parametrize(("protocol", "security"), SERVER_MODES, ids=[f"{p}-{s}" for p, s in SERVER_MODES])
def test_open_fetch_delete(dovecot: Any, mail_user: Any, protocol: str, security: str) -> None:
    delivered = [message(n) for n in range(1, 6)]
    for raw in delivered:
        mail_user.deliver(raw)
    with open_session(dovecot, mail_user, protocol, security) as session:
        assert session.count() == 5
        batches = fetch_all(session, batch_size=2)
        assert [len(b) for b in batches] == [2, 2, 1]
        fetched = [m for b in batches for m in b]
        assert [lf(m.raw) for m in fetched] == [lf(raw) for raw in delivered]  # delivery order, same bytes
        assert all(m.size == len(m.raw) for m in fetched)
        assert len({m.key for m in fetched}) == 5
        session.delete([m.key for m in fetched])
        session.checkpoint()
    assert mail_user.count() == 0


def test_imap_peek_keeps_unseen_and_tracks_uidvalidity(dovecot: Any, mail_user: Any) -> None:
    for n in range(3):
        mail_user.deliver(message(n))
    with open_session(dovecot, mail_user, "imap", "ssl") as session:
        assert isinstance(session, ImapSession)
        assert isinstance(session.uidvalidity, int) and session.uidvalidity > 0
        keys = [m.key for batch in session.fetch() for m in batch]
        assert keys == sorted(keys, key=int)
        flags = session.client.get_flags([int(k) for k in keys])  # type: ignore[union-attr]
        assert all(b"\\Seen" not in f for f in flags.values()), flags
        session.delete(keys[:1])  # UIDPLUS: only that UID is expunged
        assert session.count() == 2
    assert mail_user.count() == 2


def test_imap_fetch_of_other_folder(dovecot: Any, mail_user: Any) -> None:
    dovecot.deliver(mail_user.email, message(1), folder="Support")
    dovecot.deliver(mail_user.email, message(2, b"y" * 20000 + b"\r\n"), folder="Support")
    with open_session(dovecot, mail_user, "imap", "starttls", folder="Support") as session:
        (batch,) = fetch_all(session)
        small, big = batch
        assert lf(small.raw) == lf(message(1)) and small.size == len(small.raw)
        assert lf(big.raw) == lf(message(2, b"y" * 20000 + b"\r\n")) and big.size == len(big.raw)
    assert mail_user.count("Support") == 2  # nothing deleted


def test_pop3_checkpoint_renumbers_and_skips_kept(dovecot: Any, mail_user: Any) -> None:
    """Delete batch by batch with QUIT+reconnect in between; a kept message is not fetched twice."""
    for n in range(1, 8):
        mail_user.deliver(message(n))
    seen: list[bytes] = []
    with open_session(dovecot, mail_user, "pop3", "ssl") as session:
        assert isinstance(session, Pop3Session)
        for batch in session.fetch(batch_size=3):
            seen.extend(m.raw for m in batch)
            keep_first = len(seen) == 3  # first batch: keep its first message (a failed import)
            session.delete([m.key for m in batch[1:]] if keep_first else [m.key for m in batch])
            session.checkpoint()
            assert session.count() == 1 + 7 - len(seen)
    assert [lf(r) for r in seen] == [lf(message(n)) for n in range(1, 8)]
    assert mail_user.count() == 1


def test_pop3_deletions_roll_back_without_quit(dovecot: Any, mail_user: Any) -> None:
    mail_user.deliver(message(1))
    session = open_session(dovecot, mail_user, "pop3", "none")
    assert isinstance(session, Pop3Session)
    (batch,) = fetch_all(session)
    session.delete([batch[0].key])
    session.pop.close()  # type: ignore[union-attr]  # the process "dies": no QUIT
    assert mail_user.count() == 1


def test_maildir_fetch_delete(dovecot: Any, mail_user: Any) -> None:
    delivered = [message(n) for n in range(1, 5)]
    for raw in delivered[:2]:
        mail_user.deliver(raw)
    mail_user.deliver(delivered[2], seen=True)  # cur/...:2,S
    mail_user.deliver(delivered[3])
    config = {"protocol": "maildir", "path": str(mail_user.maildir), "email": mail_user.email}
    assert PROVIDER.identity(config) == f"maildir:{mail_user.maildir}"
    with PROVIDER.open(config, {}) as session:
        assert isinstance(session, MaildirSession)
        assert session.count() == 4
        batches = fetch_all(session, batch_size=3)
        fetched = [m for b in batches for m in b]
        assert [m.raw for m in fetched] == [lf(raw) for raw in delivered]  # files are LF, kept exact
        session.delete([m.key for m in fetched] + ["1.M1P1Q1.gone"])
        assert session.count() == 0
    assert mail_user.count() == 0


def test_maildir_missing_and_not_a_maildir(tmp_path: Any) -> None:
    missing = open_error({"protocol": "maildir", "path": str(tmp_path / "nope"), "email": "a@b.test"})
    assert missing.kind == "folder_missing" and "nope" in missing.message
    (tmp_path / "cur").mkdir()
    plain = open_error({"protocol": "maildir", "path": str(tmp_path), "email": "a@b.test"})
    assert plain.kind == "folder_missing" and "not a Maildir" in plain.message and "new/" in plain.message


# ---- every failure kind ------------------------------------------------------------------------

def test_unknown_host() -> None:
    error = open_error({"protocol": "imap", "host": "nonexistent.invalid", "security": "ssl",
                        "email": "a@b.test", "timeout": 2})
    assert error.kind == "unknown_host"
    assert "nonexistent.invalid" in error.message
    assert "check the server name" in error.message or "DNS" in error.message


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_connection_refused(protocol: str) -> None:
    port = unused_port()
    error = open_error({"protocol": protocol, "host": "127.0.0.1", "port": port, "security": "none",
                        "email": "a@b.test"})
    assert error.kind == "connection_refused" and error.temporary
    assert f"127.0.0.1:{port}" in error.message and protocol.upper() in error.message


@pytest.mark.parametrize(("protocol", "security"), [("imap", "none"), ("imap", "ssl"), ("pop3", "ssl")])
def test_timeout_on_silent_port(silent_port: int, protocol: str, security: str) -> None:
    error = open_error({"protocol": protocol, "host": "127.0.0.1", "port": silent_port, "security": security,
                        "email": "a@b.test", "timeout": 1})
    assert error.kind == "timeout" and error.temporary
    assert "ssl vs starttls" in error.message and "1 s" in error.message


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_tls_to_plain_port(dovecot: Any, mail_user: Any, protocol: str) -> None:
    config = server_config(dovecot, mail_user, protocol, "ssl")
    config["port"] = dovecot.imap_port if protocol == "imap" else dovecot.pop3_port
    error = open_error(config, mail_user.password)
    assert error.kind == "tls" and not error.temporary
    assert "WRONG_VERSION_NUMBER" in error.message and "starttls" in error.message


def test_plain_to_tls_port_times_out(dovecot: Any, mail_user: Any) -> None:
    config = server_config(dovecot, mail_user, "imap", "none", port=dovecot.imaps_port, timeout=1)
    error = open_error(config, mail_user.password)
    assert error.kind == "timeout" and "plain connection to a TLS port" in error.message


def test_starttls_on_imaps_port_times_out(dovecot: Any, mail_user: Any) -> None:
    """STARTTLS starts in plain text, so on the IMAPS port it hangs like any plain client."""
    config = server_config(dovecot, mail_user, "imap", "starttls", port=dovecot.imaps_port, timeout=1)
    error = open_error(config, mail_user.password)
    assert error.kind == "timeout" and "ssl vs starttls" in error.message


@pytest.mark.parametrize(("protocol", "security"), [("imap", "ssl"), ("imap", "starttls"), ("pop3", "starttls")])
def test_self_signed_without_ca_file(dovecot: Any, mail_user: Any, protocol: str, security: str) -> None:
    config = server_config(dovecot, mail_user, protocol, security)
    del config["ca_file"]
    error = open_error(config, mail_user.password)
    assert error.kind == "certificate" and not error.temporary
    assert "self-signed" in error.message and "--ca-file" in error.message


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_wrong_password(dovecot: Any, mail_user: Any, protocol: str) -> None:
    wrong = "wrong-" + mail_user.password
    error = open_error(server_config(dovecot, mail_user, protocol, "ssl"), wrong)
    assert error.kind == "auth_failed" and not error.temporary
    assert f"Login failed for user '{mail_user.email}'" in error.message
    assert "check the username and password" in error.message


def test_missing_password_does_not_connect() -> None:
    with pytest.raises(MailboxError) as info:
        PROVIDER.open({"protocol": "imap", "host": "nonexistent.invalid", "security": "ssl",
                       "email": "a@b.test"}, {})
    assert info.value.kind == "auth_failed" and "No password" in info.value.message


def test_missing_folder(dovecot: Any, mail_user: Any) -> None:
    error = open_error(server_config(dovecot, mail_user, "imap", "ssl", folder="NoSuchFolder"), mail_user.password)
    assert error.kind == "folder_missing" and "'NoSuchFolder'" in error.message


def test_validate_counts_waiting(dovecot: Any, mail_user: Any) -> None:
    mail_user.deliver(message(1))
    assert PROVIDER.validate(server_config(dovecot, mail_user, "imap", "starttls"),
                             {"password": mail_user.password}) == {"waiting": 1}


# ---- the login seam and STARTTLS never falling back -----------------------------------------

def test_connect_imap_with_custom_login(dovecot: Any, mail_user: Any) -> None:
    """A future OAuth plugin passes its own login; here it logs in with the password by hand."""
    calls: list[str] = []

    def login(client: Any) -> None:
        calls.append("login")
        client.login(mail_user.email, mail_user.password)

    config = PROVIDER.normalize_config(server_config(dovecot, mail_user, "imap", "ssl"))
    with connect_imap(config, login) as session:
        assert session.count() == 0
    assert calls == ["login"]


def test_login_callable_may_raise_mailbox_error(dovecot: Any, mail_user: Any) -> None:
    def login(client: Any) -> None:
        raise MailboxError("Token revoked: authorize again.", kind="needs_reauthorization")

    config = PROVIDER.normalize_config(server_config(dovecot, mail_user, "imap", "ssl"))
    with pytest.raises(MailboxError) as info:
        ImapSession(config, login=login)
    assert info.value.kind == "needs_reauthorization"


class FakeServer:
    """A one-connection line server answering from ``reply(line) -> bytes``; records what it got."""

    def __init__(self, greeting: bytes, reply: Callable[[bytes], bytes]) -> None:
        self.received: list[bytes] = []
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(1)
        self.port = int(self._sock.getsockname()[1])
        self._greeting, self._reply = greeting, reply
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self._sock.accept()
        with conn, conn.makefile("rb") as reader:
            conn.sendall(self._greeting)
            for line in reader:
                self.received.append(line)
                answer = self._reply(line)
                if not answer:
                    break
                conn.sendall(answer)

    def close(self) -> None:
        self._sock.close()
        self._thread.join(timeout=5)


@pytest.fixture
def no_starttls_imap() -> Iterator[FakeServer]:
    def reply(line: bytes) -> bytes:
        tag, _, command = line.strip().partition(b" ")
        if command.upper() == b"CAPABILITY":
            return b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + b" OK done\r\n"
        if command.upper() == b"LOGOUT":
            return b"* BYE\r\n" + tag + b" OK bye\r\n"
        return tag + b" BAD unexpected\r\n"

    server = FakeServer(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] fake ready\r\n", reply)
    yield server
    server.close()


@pytest.fixture
def no_stls_pop3() -> Iterator[FakeServer]:
    def reply(line: bytes) -> bytes:
        command = line.strip().upper()
        if command == b"CAPA":
            return b"+OK\r\nUSER\r\nUIDL\r\n.\r\n"
        if command == b"QUIT":
            return b"+OK bye\r\n"
        return b"-ERR unexpected\r\n"

    server = FakeServer(b"+OK fake ready\r\n", reply)
    yield server
    server.close()


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_starttls_not_offered_never_sends_password(
        request: pytest.FixtureRequest, protocol: str) -> None:
    server: FakeServer = request.getfixturevalue("no_starttls_imap" if protocol == "imap" else "no_stls_pop3")
    error = open_error({"protocol": protocol, "host": "127.0.0.1", "port": server.port, "security": "starttls",
                        "email": "a@b.test", "timeout": 5}, "s3cret-password")
    assert error.kind == "tls" and not error.temporary
    assert "does not offer STARTTLS" in error.message and "never falls back" in error.message
    server.close()
    sent = b"".join(server.received).upper()
    assert b"LOGIN" not in sent and b"USER" not in sent and b"PASS" not in sent and b"S3CRET" not in sent


def test_imapclient_debug_logging_untouched(dovecot: Any, mail_user: Any) -> None:
    mail_user.deliver(message(1))
    """imapclient logs every protocol line at DEBUG (7x slower fetches): never switch it on."""
    names = ("imapclient", "imapclient.imaplib", "imapclient.imapclient")
    before = {name: logging.getLogger(name).level for name in names}
    with open_session(dovecot, mail_user, "imap", "ssl") as session:
        assert len(fetch_all(session)[0]) == 1
    assert {name: logging.getLogger(name).level for name in names} == before


def big_message(mb: int = 3) -> bytes:
    """Over :data:`~helpdesk_mail_generic.pop3.SPOOL_BYTES`: base64 lines, dot-stuffed lines, a lone
    dot, a double dot and a line as long as the line limit allows."""
    import base64
    import random

    body = base64.encodebytes(random.Random(16).randbytes(mb * 1024 * 1024)).replace(b"\n", b"\r\n")
    return (b"From: Big <big@example.test>\r\nTo: help@district.test\r\nSubject: big\r\n"
            b"Message-ID: <big@example.test>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\n"
            b"Content-Type: text/plain\r\n\r\n.\r\n..\r\n.. two dots\r\n.one dot\r\n" + b"y" * 500_000 + b"\r\n"
            b"--b1\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + body + b"--b1--\r\n")


def test_pop3_big_message_is_spooled_byte_identical(dovecot: Any, mail_user: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A message over SPOOL_BYTES goes through the temporary file: the same bytes as poplib's RETR."""
    from helpdesk_mail_generic import pop3

    big = big_message()
    assert len(big) > pop3.SPOOL_BYTES
    for raw in (message(1), big, message(2)):
        mail_user.deliver(raw)
    spooled: list[bytes] = []
    real_retr = pop3._retr
    monkeypatch.setattr(pop3, "_retr", lambda pop, entry: spooled.append(entry.number) or real_retr(pop, entry))
    with open_session(dovecot, mail_user, "pop3", "ssl") as session:
        streamed = [m for b in fetch_all(session, batch_size=10) for m in b]
    monkeypatch.setattr(pop3, "SPOOL_BYTES", 1 << 40)  # poplib's RETR for every message
    with open_session(dovecot, mail_user, "pop3", "none") as session:
        plain = [m for b in fetch_all(session, batch_size=10) for m in b]
    assert [m.raw for m in streamed] == [m.raw for m in plain]
    assert [lf(m.raw) for m in streamed] == [lf(message(1)), lf(big), lf(message(2))]
    assert [m.size for m in streamed] == [len(m.raw) for m in streamed]
    assert type(streamed[1].raw) is bytes


def test_imap_session_keeps_no_expunge_responses(dovecot: Any, mail_user: Any) -> None:
    """A first import of 50,000 mails runs in one session: the server's ``* n EXPUNGE`` answers,
    which imaplib files away and nothing reads, must not pile up batch after batch (issue 16)."""
    for n in range(30):
        mail_user.deliver(message(n))
    with open_session(dovecot, mail_user, "imap", "ssl") as session:
        for batch in session.fetch(batch_size=10):
            session.delete([m.key for m in batch])
        assert isinstance(session, ImapSession) and session.client is not None
        assert not session.client._imap.untagged_responses.get("EXPUNGE")
    assert mail_user.count() == 0
