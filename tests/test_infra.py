"""Tests of the real-server test infrastructure (helpdesk_core.testing) against the real servers."""

from __future__ import annotations

import imaplib
import json
import poplib
import smtplib
import socket
import ssl
import threading
import time
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest
import sqlalchemy as sa
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from helpdesk_core.testing.servers.dovecot import DovecotServer
from helpdesk_core.testing.servers.postgres import PostgresServer
from helpdesk_core.testing.pytest_plugin import MailUser, skip_or_fail
from helpdesk_core.testing.servers.smtp import SmtpSink


def _raw(subject: str, to: str = "techhelp@district.test", body: str = "hello") -> bytes:
    msg = EmailMessage()
    msg["From"] = "parent@example.test"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    return msg.as_bytes()


def _imaps(dovecot: DovecotServer) -> IMAPClient:
    return IMAPClient(dovecot.host, port=dovecot.imaps_port, ssl=True, ssl_context=dovecot.ssl_context(), timeout=10)


# --------------------------------------------------------------------------- Dovecot


def test_imaps_login_verifies_ca_file(dovecot: DovecotServer) -> None:
    ctx = ssl.create_default_context(cafile=str(dovecot.ca_file))
    with IMAPClient("127.0.0.1", port=dovecot.imaps_port, ssl=True, ssl_context=ctx, timeout=10) as c:
        c.login("techhelp@district.test", "techpass")
        assert b"UIDPLUS" in c.capabilities()
        assert c.select_folder("INBOX", readonly=True)[b"READ-ONLY"] == [b""]
    # hostname "localhost" is in the SAN too
    with IMAPClient("localhost", port=dovecot.imaps_port, ssl=True, ssl_context=ctx, timeout=10) as c:
        c.login("facilities@district.test", "facpass")


def test_imaps_rejects_default_trust_store(dovecot: DovecotServer) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        IMAPClient("127.0.0.1", port=dovecot.imaps_port, ssl=True, ssl_context=ssl.create_default_context(), timeout=5)


def test_imap_starttls_on_plain_port(dovecot: DovecotServer) -> None:
    c = IMAPClient("127.0.0.1", port=dovecot.imap_port, ssl=False, timeout=10)
    assert b"STARTTLS" in c.capabilities()
    c.starttls(dovecot.ssl_context())
    c.login("principal@district.test", "princpass")
    assert {f[2] for f in c.list_folders()} >= {"INBOX", "Sent", "Drafts", "Trash"}
    c.logout()


def test_pop3_stls_and_pop3s(dovecot: DovecotServer, mail_user: MailUser) -> None:
    mail_user.deliver(_raw("pop one"))
    mail_user.deliver(_raw("pop two"))
    p = poplib.POP3("127.0.0.1", dovecot.pop3_port, timeout=10)
    p.stls(context=dovecot.ssl_context())
    p.user(mail_user.email)
    p.pass_(mail_user.password)
    assert p.stat()[0] == 2
    p.quit()
    s = poplib.POP3_SSL("127.0.0.1", dovecot.pop3s_port, context=dovecot.ssl_context(), timeout=10)
    s.user("requester@example.test")
    s.pass_("reqpass")
    s.stat()
    s.quit()


def test_deliver_three_messages_fetched_in_delivery_order(dovecot: DovecotServer, mail_user: MailUser) -> None:
    subjects = ["zulu first", "alpha second", "mike third"]
    for s in subjects:
        dovecot.deliver(mail_user.email, _raw(s, to=mail_user.email))
    assert dovecot.count(mail_user.email) == 3
    with _imaps(dovecot) as c:
        c.login(mail_user.email, mail_user.password)
        c.select_folder("INBOX")
        uids = c.search()
        data = c.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
        got = [data[u][b"BODY[HEADER.FIELDS (SUBJECT)]"].decode().split(":", 1)[1].strip() for u in sorted(uids)]
    assert got == subjects


def test_mail_user_is_fresh_and_can_log_in(mail_user: MailUser) -> None:
    assert mail_user.email.endswith("@district.test")
    assert mail_user.count() == 0
    with _imaps(mail_user.server) as c:
        c.login(mail_user.email, mail_user.password)
        assert c.select_folder("INBOX")[b"EXISTS"] == 0


def test_add_user_allows_immediate_login(dovecot: DovecotServer) -> None:
    email = f"late{time.monotonic_ns()}@district.test"
    with _imaps(dovecot) as c:  # a lookup in this second, then the edit in the same second
        with pytest.raises(LoginError):
            c.login(email, "pw-late")
    dovecot.add_user(email, "pw-late")
    with _imaps(dovecot) as c:
        c.login(email, "pw-late")


def test_folders_seen_flag_reset_append_and_kick(dovecot: DovecotServer, mail_user: MailUser) -> None:
    dovecot.create_folder(mail_user.email, "Archive/2024")
    mail_user.deliver(_raw("filed"), folder="Archive/2024")
    mail_user.deliver(_raw("already read"), seen=True)
    uid = dovecot.append(mail_user.email, _raw("appended"))
    assert uid is not None and dovecot.count(mail_user.email) == 2
    with _imaps(dovecot) as c:
        c.login(mail_user.email, mail_user.password)
        assert "Archive/2024" in {f[2] for f in c.list_folders()}
        assert c.folder_status("Archive/2024", [b"MESSAGES"])[b"MESSAGES"] == 1
        c.select_folder("INBOX", readonly=True)
        assert len(c.search(["SEEN"])) == 1
        dovecot.kick(mail_user.email)
        with pytest.raises(imaplib.IMAP4.abort):
            c.noop()
    dovecot.reset(mail_user.email)  # no session open any more
    assert dovecot.count(mail_user.email) == 0
    with _imaps(dovecot) as c:
        c.login(mail_user.email, mail_user.password)
        assert c.select_folder("INBOX")[b"EXISTS"] == 0
        assert c.folder_status("Archive/2024", [b"MESSAGES"])[b"MESSAGES"] == 1
    assert "Login: user=<" + mail_user.email in dovecot.log_text()


def test_bad_password_fails_fast(dovecot: DovecotServer) -> None:
    for _ in range(3):  # anvil penalty off: repeated failures stay fast
        t0 = time.monotonic()
        with _imaps(dovecot) as c, pytest.raises(LoginError, match="AUTHENTICATIONFAILED"):
            c.login("techhelp@district.test", "wrong")
        assert time.monotonic() - t0 < 1.5


class _TokenInfo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    tokens = {"ya29.valid-techhelp": "techhelp@district.test"}

    def do_GET(self) -> None:
        token = self.path.split("access_token=", 1)[-1]
        email = self.tokens.get(token)
        status, body = (200, {"email": email}) if email else (400, {"error": "invalid_token"})
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def token_server(dovecot: DovecotServer) -> Iterator[ThreadingHTTPServer]:
    srv = ThreadingHTTPServer(("127.0.0.1", dovecot.port_base + 80), _TokenInfo)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_dovecot_xoauth2_via_tokeninfo(dovecot: DovecotServer, token_server: ThreadingHTTPServer) -> None:
    with _imaps(dovecot) as c:
        assert b"AUTH=XOAUTH2" in c.capabilities()
        c.oauth2_login("techhelp@district.test", "ya29.valid-techhelp")
    with _imaps(dovecot) as c, pytest.raises(LoginError, match="AUTHENTICATIONFAILED"):
        c.oauth2_login("techhelp@district.test", "ya29.expired")


# --------------------------------------------------------------------------- PostgreSQL


def test_postgres_url_is_a_fresh_database(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            assert conn.execute(sa.text("select count(*) from pg_tables where schemaname='public'")).scalar() == 0
            conn.execute(sa.text("create table t (id serial primary key, v text)"))
            conn.execute(sa.text("insert into t (v) values ('x')"))
            assert conn.execute(sa.text("select v from t")).scalar() == "x"
    finally:
        engine.dispose()


def test_postgres_create_and_drop(postgres: PostgresServer) -> None:
    url = postgres.create_database("infra_tmp")
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("select current_database()")).scalar() == "infra_tmp"
    postgres.drop_database("infra_tmp")  # the pooled connection does not block the drop (WITH FORCE)
    engine.dispose()
    postgres.drop_database("infra_tmp")  # idempotent
    with pytest.raises(ValueError):
        postgres.create_database("bad name; drop")


# --------------------------------------------------------------------------- SMTP sink


def _smtp_starttls(sink: SmtpSink) -> smtplib.SMTP:
    s = smtplib.SMTP(sink.host, sink.port_starttls, timeout=10)
    s.starttls(context=sink.client_ssl_context())
    return s


def test_smtp_starttls_auth_send_and_capture(smtp_sink: SmtpSink) -> None:
    s = smtplib.SMTP(smtp_sink.host, smtp_sink.port_starttls, timeout=10)
    s.ehlo()
    assert not s.has_extn("auth")
    with pytest.raises(smtplib.SMTPNotSupportedError):
        s.login("techhelp@district.test", "techpass")
    s.starttls(context=smtp_sink.client_ssl_context())
    s.login("techhelp@district.test", "techpass")
    for i in range(3):
        assert s.send_message(_msg(i)) == {}
    s.quit()
    msgs = smtp_sink.wait_for(3)
    assert [m.as_email()["Subject"] for m in msgs] == ["reply 0", "reply 1", "reply 2"]
    m = msgs[0]
    assert (m.mail_from, m.rcpt_tos, m.auth_login, m.tls) == (
        "techhelp@district.test", ("parent@example.test",), "techhelp@district.test", True)
    assert b"\r\nSubject: reply 0\r\n" in m.raw
    assert smtp_sink.connections == 1  # one connection reused for three messages


def _msg(i: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "techhelp@district.test"
    msg["To"] = "parent@example.test"
    msg["Subject"] = f"reply {i}"
    msg.set_content("thanks")
    return msg


def test_smtp_implicit_tls_and_bad_password(smtp_sink: SmtpSink) -> None:
    s = smtplib.SMTP_SSL(smtp_sink.host, smtp_sink.port_ssl, context=smtp_sink.client_ssl_context(), timeout=10)
    with pytest.raises(smtplib.SMTPAuthenticationError):
        s.login("techhelp@district.test", "nope")
    s.login("facilities@district.test", "facpass")
    s.send_message(_msg(1))
    s.quit()
    assert smtp_sink.messages[-1].auth_login == "facilities@district.test"
    assert smtp_sink.messages[-1].tls and smtp_sink.messages[-1].port == smtp_sink.port_ssl


def test_smtp_scripted_failures(smtp_sink: SmtpSink) -> None:
    s = _smtp_starttls(smtp_sink)
    s.login("techhelp@district.test", "techpass")
    smtp_sink.fail_next(451, "4.3.0 Try again later")
    with pytest.raises(smtplib.SMTPDataError) as exc:
        s.send_message(_msg(1))
    assert exc.value.smtp_code == 451
    s.send_message(_msg(2))  # only the next one failed
    smtp_sink.set_reply(550, "5.1.1 No such user", stage="RCPT")
    for _ in range(2):
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            s.send_message(_msg(3))
    smtp_sink.set_reply(None, stage="RCPT")
    s.send_message(_msg(4))
    s.quit()
    assert [m.as_email()["Subject"] for m in smtp_sink.messages] == ["reply 2", "reply 4"]


def test_smtp_sink_down_and_up(smtp_sink: SmtpSink) -> None:
    smtp_sink.stop()
    with pytest.raises(ConnectionRefusedError):
        smtplib.SMTP(smtp_sink.host, smtp_sink.port_starttls, timeout=2)
    smtp_sink.start()
    s = _smtp_starttls(smtp_sink)
    s.login("techhelp@district.test", "techpass")
    s.send_message(_msg(1))
    s.quit()
    assert len(smtp_sink.messages) == 1 and smtp_sink.connections == 1


def test_smtp_deliver_to_dovecot_and_xoauth2(dovecot: DovecotServer, mail_user: MailUser, smtp_sink: SmtpSink) -> None:
    smtp_sink.deliver_to = dovecot.deliver
    smtp_sink.accept_tokens({"tok-good": "techhelp@district.test"}.get)
    s = smtplib.SMTP_SSL(smtp_sink.host, smtp_sink.port_ssl, context=smtp_sink.client_ssl_context(), timeout=10)
    s.ehlo()
    assert "XOAUTH2" in s.esmtp_features["auth"]
    bad = "user=techhelp@district.test\x01auth=Bearer tok-bad\x01\x01"
    with pytest.raises(smtplib.SMTPAuthenticationError):
        s.auth("XOAUTH2", lambda challenge=None: bad if challenge is None else "")
    good = "user=techhelp@district.test\x01auth=Bearer tok-good\x01\x01"
    assert s.auth("XOAUTH2", lambda challenge=None: good)[0] == 235
    s.sendmail("techhelp@district.test", [mail_user.email], _raw("via smtp", to=mail_user.email))
    s.quit()
    assert smtp_sink.messages[0].auth_login == "techhelp@district.test"
    assert mail_user.count() == 1


# --------------------------------------------------------------------------- blackholes


def test_silent_port_read_timeouts(silent_port: int) -> None:
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        imaplib.IMAP4("127.0.0.1", silent_port, timeout=1)
    with pytest.raises(TimeoutError):
        poplib.POP3("127.0.0.1", silent_port, timeout=1)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        smtplib.SMTP("127.0.0.1", silent_port, timeout=1)
    assert time.monotonic() - t0 < 6


def test_noaccept_port_connect_timeout(noaccept_port: int) -> None:
    for _ in range(2):
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            socket.create_connection(("127.0.0.1", noaccept_port), timeout=1)
        assert 0.9 < time.monotonic() - t0 < 3


# --------------------------------------------------------------------------- CI policy


def test_missing_server_fails_in_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="dovecot-core"):
        skip_or_fail("dovecot is missing; apt-get install dovecot-core")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="dovecot-core"):
        skip_or_fail("dovecot is missing; apt-get install dovecot-core")
