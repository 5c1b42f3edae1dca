"""Outgoing mail over real SMTP (the aiosmtpd sink: STARTTLS + AUTH, implicit TLS) and, end to end,
through Dovecot: the requester reads the reply by IMAP, answers it, and the answer threads."""

from __future__ import annotations

import email
import email.policy
import json
import smtplib
import socket
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from imapclient import IMAPClient

from helpdesk_core.crypto import generate_key
from helpdesk_core.mail.quotes import REPLY_ABOVE_MARKER
from helpdesk_core.mail.references import verify_message_id

from conftest import Cli, make_app
from mailfactory import plain


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def sqlite_cli(tmp_path, sqlite_url) -> Cli:
    home = tmp_path / "home"
    home.mkdir()
    runner = Cli({"HELPDESK_HOME": str(home), "HELPDESK_DATABASE_URL": sqlite_url,
                  "HELPDESK_SECRET_KEY": generate_key()}, CliRunner())
    runner("init")
    return runner


def set_mailbox(cli, tmp_path, dovecot, user, *, port, security="starttls", password=None, ok=True,
                timeout="5", with_ca=True, department="Tech"):
    maildir = tmp_path / f"Maildir-{department}"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    args = ["department", "set-mailbox", department, "--protocol", "maildir", "--path", str(maildir),
            "--email", user.email, "--smtp-host", "127.0.0.1", "--smtp-port", str(port),
            "--smtp-security", security, "--timeout", timeout, "--password-stdin"]
    if with_ca:
        args += ["--ca-file", str(dovecot.ca_file)]
    return cli(*args, input=(password or user.password) + "\n", ok=ok)


def department(cli, user, name="Tech"):
    cli("department", "add", name, "--sender", user.email)


# ---- validation when saving ------------------------------------------------------------------

@pytest.mark.parametrize("case", ["refused", "timeout", "tls_to_plain_port", "bad_password",
                                  "auth_before_starttls", "certificate"])
def test_each_smtp_failure_is_explained_and_nothing_saved(sqlite_cli, tmp_path, dovecot, mail_user, smtp_sink,
                                                         silent_port, case):
    cli = sqlite_cli
    department(cli, mail_user)
    port, security, password, with_ca = smtp_sink.port_starttls, "starttls", None, True
    expected: tuple[str, ...]
    if case == "refused":
        port, expected = free_port(), ("[connection_refused]", "Connection refused by 127.0.0.1:")
    elif case == "timeout":
        port, expected = silent_port, ("[timeout]", "Timed out after 2 s")
    elif case == "tls_to_plain_port":
        security, expected = "ssl", ("[tls]", "TLS handshake", "465")
    elif case == "bad_password":
        password, expected = "wrong", ("[auth_failed]", f"Login failed for user {mail_user.email!r}", "535")
    elif case == "auth_before_starttls":
        security, expected = "none", ("[tls]", "no login (AUTH) on an unencrypted connection", "starttls")
    else:
        security, port, with_ca = "ssl", smtp_sink.port_ssl, False
        expected = ("[certificate]", "self-signed", "--ca-file")
    result = set_mailbox(cli, tmp_path, dovecot, mail_user, port=port, security=security, password=password,
                         ok=False, timeout="2", with_ca=with_ca)
    assert result.exit_code == 1
    for words in ("Outgoing mail (SMTP)", "Nothing was saved", *expected):
        assert words in result.output, result.output
    assert cli.json("department", "list", "--json")[0]["mailbox"] is None
    assert smtp_sink.messages == []


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_valid_smtp_settings_are_saved(sqlite_cli, tmp_path, dovecot, mail_user, smtp_sink, security):
    department(sqlite_cli, mail_user)
    port = smtp_sink.port_starttls if security == "starttls" else smtp_sink.port_ssl
    result = set_mailbox(sqlite_cli, tmp_path, dovecot, mail_user, port=port, security=security)
    assert f"outgoing mail via 127.0.0.1:{port} checked" in result.output
    config = sqlite_cli.json("department", "list", "--json")[0]["mailbox"]["config"]
    assert (config["smtp_security"], config["smtp_username"]) == (security, mail_user.email)
    assert "smtp_password" not in json.dumps(config) and smtp_sink.messages == []


def test_separate_smtp_password_is_read_as_second_line(sqlite_cli, tmp_path, dovecot, mail_user, smtp_sink):
    department(sqlite_cli, mail_user)
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    base = ["department", "set-mailbox", "Tech", "--protocol", "maildir", "--path", str(maildir), "--email",
            mail_user.email, "--smtp-host", "127.0.0.1", "--smtp-port", str(smtp_sink.port_starttls),
            "--smtp-security", "starttls", "--ca-file", str(dovecot.ca_file), "--password-stdin",
            "--smtp-password-stdin"]
    bad = sqlite_cli(*base, input=f"{mail_user.password}\nwrong\n", ok=False)
    assert "[auth_failed]" in bad.output
    sqlite_cli(*base, input=f"imap-only-password\n{mail_user.password}\n")


# ---- delivery through the outbox ---------------------------------------------------------------

@pytest.fixture
def tech(cli, tmp_path, dovecot, mail_user, smtp_sink):
    """Department Tech: Maildir mailbox, outgoing mail through the sink (STARTTLS + AUTH), one ticket."""
    department(cli, mail_user)
    set_mailbox(cli, tmp_path, dovecot, mail_user, port=smtp_sink.port_starttls)
    cli("ingest", "--department", "Tech", input=plain(subject="Printer broken", to=mail_user.email,
                                                       cc="bob@example.test"))
    (tmp_path / "reply.txt").write_text("We replaced the toner.\n")
    return cli


def reply(cli, tmp_path, *extra, ok=True):
    return cli("ticket", "reply", "1", "--body-file", str(tmp_path / "reply.txt"), *extra, ok=ok)


def outbox(cli):
    return cli.json("outbox", "list", "--json")


def test_reply_goes_out_at_once(tech, tmp_path, mail_user, smtp_sink):
    result = reply(tech, tmp_path)
    assert "sent to alice@example.test, bob@example.test" in result.output
    [sent] = smtp_sink.messages
    assert sent.tls and sent.auth_login == mail_user.email and sent.mail_from == mail_user.email
    assert sorted(sent.rcpt_tos) == ["alice@example.test", "bob@example.test"]
    assert sent.as_email()["Subject"] == "Re: [Ticket #1] Printer broken"
    [row] = outbox(tech)
    assert (row["status"], row["kind"], row["attempts"]) == ("sent", "reply", 1)


def test_server_down_stays_queued_then_goes_out(tech, tmp_path, smtp_sink):
    smtp_sink.stop()
    result = reply(tech, tmp_path)
    assert result.exit_code == 0 and "queued" in result.output
    [row] = outbox(tech)
    assert row["status"] == "queued" and "[connection_refused]" not in row["last_error"]
    assert "Connection refused" in row["last_error"] and row["last_error_kind"] == "connection_refused"
    assert tech.json("outbox", "flush", "--json")["sent"] == 0  # the retry is not due yet
    smtp_sink.start()
    assert tech.json("outbox", "flush", "--retry-now", "--json") == {"sent": 1, "retry": 0, "failed": 0,
                                                                    "requeued": 0}
    assert len(smtp_sink.messages) == 1 and outbox(tech)[0]["status"] == "sent"


def test_permanent_refusal_fails_with_the_servers_reply(tech, tmp_path, smtp_sink):
    smtp_sink.set_reply(554, "5.7.1 Message rejected as spam", stage="DATA")
    result = reply(tech, tmp_path, ok=False)
    assert result.exit_code == 1 and "554 5.7.1 Message rejected as spam" in result.output
    [row] = outbox(tech)
    assert row["status"] == "failed" and "554 5.7.1 Message rejected as spam" in row["last_error"]
    smtp_sink.set_reply(None)
    tech("outbox", "retry", str(row["id"]))
    assert tech.json("outbox", "flush", "--json")["sent"] == 1


def test_temporary_refusal_is_retried(tech, tmp_path, smtp_sink):
    smtp_sink.fail_next(451, "4.3.0 Try again later", stage="DATA")
    reply(tech, tmp_path)
    [row] = outbox(tech)
    assert row["status"] == "queued" and "451 4.3.0 Try again later" in row["last_error"]
    assert tech.json("outbox", "flush", "--retry-now", "--json")["sent"] == 1


def test_recipient_refusals(tech, tmp_path, smtp_sink):
    smtp_sink.fail_next(550, "5.1.1 No such user", stage="RCPT")  # only the first recipient
    reply(tech, tmp_path)
    assert outbox(tech)[0]["status"] == "sent" and len(smtp_sink.messages[0].rcpt_tos) == 1
    smtp_sink.set_reply(550, "5.1.1 No such user", stage="RCPT")  # every recipient
    reply(tech, tmp_path, ok=False)
    row = outbox(tech)[0]
    assert row["status"] == "failed" and "refused every recipient" in row["last_error"]


def test_several_replies_share_one_connection(tech, tmp_path, smtp_sink):
    for _ in range(3):
        reply(tech, tmp_path, "--queue-only")
    assert smtp_sink.messages == [] and {r["status"] for r in outbox(tech)} == {"queued"}
    before = smtp_sink.connections
    assert tech.json("outbox", "flush", "--json")["sent"] == 3
    assert smtp_sink.connections - before == 1 and len(smtp_sink.messages) == 3


def test_acknowledgement_is_delivered_once(cli, tmp_path, dovecot, mail_user, smtp_sink):
    department(cli, mail_user)
    set_mailbox(cli, tmp_path, dovecot, mail_user, port=smtp_sink.port_ssl, security="ssl")
    cli("department", "set", "Tech", "--acknowledge")
    cli("ingest", "--department", "Tech", input=plain(subject="Printer broken", to=mail_user.email))
    cli("ingest", "--department", "Tech", input=plain(subject="Away", sender="carol@example.test",
                                                        auto_submitted="auto-replied"))
    cli("outbox", "flush")
    [ack] = smtp_sink.messages
    msg = ack.as_email()
    assert ack.rcpt_tos == ("alice@example.test",) and msg["Auto-Submitted"] == "auto-replied"
    assert msg["Subject"] == "Re: [Ticket #1] Printer broken"


# ---- end to end through Dovecot ---------------------------------------------------------------

def imap_fetch_one(dovecot, user) -> EmailMessage:
    with IMAPClient(dovecot.host, port=dovecot.imaps_port, ssl_context=dovecot.ssl_context(), timeout=10) as c:
        c.login(user.email, user.password)
        c.select_folder("INBOX")
        uids = c.search("ALL")
        assert len(uids) == 1, uids
        raw = c.fetch(uids, ["BODY.PEEK[]"])[uids[0]][b"BODY[]"]
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_reply_reaches_the_requester_and_the_answer_threads(cli, tmp_path, dovecot, mail_user, smtp_sink):
    requester = dovecot._hd_pool.take()
    cli("department", "add", "Technik – Schule Nord", "--sender", mail_user.email)
    cli("department", "set-mailbox", "Technik – Schule Nord", "--protocol", "imap", "--host", "127.0.0.1",
        "--port", str(dovecot.imaps_port), "--security", "ssl", "--email", mail_user.email,
        "--ca-file", str(dovecot.ca_file), "--smtp-host", "127.0.0.1", "--smtp-port", str(smtp_sink.port_starttls),
        "--smtp-security", "starttls", "--password-stdin", input=mail_user.password + "\n")
    cli("user", "add", "agent@district.test", "--role", "agent", "--department", "Technik – Schule Nord",
        "--name", "Agnes Agent")
    smtp_sink.deliver_to = lambda rcpt, raw: dovecot.deliver(rcpt, raw)

    first_id = make_msgid(domain="example.test")
    mail_user.deliver(plain(subject="Beamer kaputt", sender=f"Rita Requester <{requester.email}>",
                            to=mail_user.email, msgid=first_id, body="The projector in room 5 is dead.\n"))
    assert cli.json("import", "--json")["Technik – Schule Nord"]["created"] == 1

    (tmp_path / "reply.txt").write_text("Please check the power cable.\n")
    out = cli("--as", "agent@district.test", "ticket", "reply", "1", "--body-file", str(tmp_path / "reply.txt"))
    assert f"sent to {requester.email}" in out.output
    assert smtp_sink.errors == []

    got = imap_fetch_one(dovecot, requester)
    frm = got["From"].addresses[0]
    assert (frm.display_name, frm.addr_spec) == ("Technik – Schule Nord", mail_user.email)
    assert got["Subject"] == "Re: [Ticket #1] Beamer kaputt"
    app = make_app(cli.env)
    assert verify_message_id(app.secrets, got["Message-ID"]) == 1
    assert got["In-Reply-To"] == first_id
    assert got["Auto-Submitted"] == "no" and got["X-Helpdesk-Loop"] == mail_user.email
    text = got.get_body(("plain",)).get_content()
    assert text.startswith(REPLY_ABOVE_MARKER) and "Please check the power cable." in text
    assert "Agnes Agent" in text

    # the requester answers from a mail client: Re:, attribution, quoted text, threading headers
    quoted = "\n".join("> " + line for line in text.splitlines())
    answer = EmailMessage()
    answer["From"] = f"Rita Requester <{requester.email}>"
    answer["To"] = got["From"]
    answer["Subject"] = "Re: " + got["Subject"]
    answer["Date"] = format_datetime(datetime.now(UTC))
    answer["Message-ID"] = make_msgid(domain="example.test")
    answer["In-Reply-To"] = got["Message-ID"]
    answer["References"] = f"{got['References']} {got['Message-ID']}"
    answer.set_content(f"It works again, thank you!\n\nOn {got['Date']}, Technik – Schule Nord "
                       f"<{mail_user.email}> wrote:\n{quoted}\n")
    with smtplib.SMTP("127.0.0.1", smtp_sink.port_starttls, timeout=10) as client:
        client.starttls(context=smtp_sink.client_ssl_context())
        client.login(requester.email, requester.password)
        client.send_message(answer)

    counts = cli.json("import", "--json")["Technik – Schule Nord"]
    assert (counts["created"], counts["updated"]) == (0, 1)
    ticket = cli.json("ticket", "show", "1", "--json")
    assert [m["direction"] for m in ticket["messages"]] == ["inbound", "outbound", "inbound"]
    assert ticket["messages"][2]["body_display"].strip() == "It works again, thank you!"
    assert "> " in ticket["messages"][2]["body_text"]
