"""End to end through the CLI against the real Dovecot: mixed mail becomes tickets, mailbox empties."""

from __future__ import annotations

import mailbox as stdlib_mailbox
from pathlib import Path

import pytest

from mailfactory import EXE, PDF, PNG, latin1_8bit, mixed_mailbox, plain, sha

PROTOCOLS = [("imap", "ssl"), ("imap", "starttls"), ("pop3", "ssl"), ("pop3", "starttls"), ("maildir", None)]


def configure(cli, dovecot, user, protocol: str, security: str | None, maildir: Path | None = None,
              department: str = "Tech") -> None:
    cli("department", "add", department, "--sender", user.email)
    # these tests (and test_crash_safety) deliver many new tickets from one sender: no rate limit
    cli("settings", "set", "mail.rate_limit_per_hour", "0")
    if protocol == "maildir":
        cli("department", "set-mailbox", department, "--protocol", "maildir", "--path", str(maildir),
            "--email", user.email)
        return
    port = {("imap", "ssl"): dovecot.imaps_port, ("imap", "starttls"): dovecot.imap_port,
            ("pop3", "ssl"): dovecot.pop3s_port, ("pop3", "starttls"): dovecot.pop3_port}[(protocol, security)]
    cli("department", "set-mailbox", department, "--protocol", protocol, "--host", "127.0.0.1",
        "--port", str(port), "--security", security, "--email", user.email,
        "--ca-file", str(dovecot.ca_file), "--password-stdin", input=user.password + "\n")


def deliver_all(user, maildir: Path | None, raws: list[bytes]) -> None:
    if maildir is not None:
        box = stdlib_mailbox.Maildir(maildir, create=True)
        for raw in raws:
            box.add(raw)
        return
    for raw in raws:
        user.deliver(raw)


def remaining(user, maildir: Path | None) -> int:
    if maildir is not None:
        return len(stdlib_mailbox.Maildir(maildir, create=False))
    return user.count()


@pytest.mark.parametrize(("protocol", "security"), PROTOCOLS)
def test_mixed_mail_becomes_tickets(cli, dovecot, mail_user, tmp_path, protocol, security):
    maildir = tmp_path / "Maildir" if protocol == "maildir" else None
    if maildir is not None:
        stdlib_mailbox.Maildir(maildir, create=True)
    configure(cli, dovecot, mail_user, protocol, security, maildir)
    deliver_all(mail_user, maildir, mixed_mailbox())

    counts = cli.json("import", "--json")["Tech"]
    assert (counts["fetched"], counts["created"], counts["updated"], counts["failed"], counts["deleted"]) == (5, 5, 0, 0, 5)
    assert remaining(mail_user, maildir) == 0

    tickets = {t["subject"]: t for t in cli.json("ticket", "list", "--json")}
    assert set(tickets) == {"Printer broken", "Projector not working", "Überprüfung: Drucker kaputt – ñ 日本",
                            "Problème d'écran", "Scan of the error"}
    assert tickets["Printer broken"]["requester"] == {"email": "alice@example.test", "name": "Alice Parent"}
    assert all(t["message_count"] == 1 and t["status"] == "open" for t in tickets.values())

    nonascii = cli.json("ticket", "show", str(tickets["Überprüfung: Drucker kaputt – ñ 日本"]["id"]), "--json")
    msg = nonascii["messages"][0]
    assert msg["from"] == {"email": "jose@example.test", "name": "José Müller"}
    assert "Grüße aus Köln" in msg["body_text"] and "日本語" in msg["body_text"]

    latin = cli.json("ticket", "show", str(tickets["Problème d'écran"]["id"]), "--json")["messages"][0]
    assert "L'écran de la salle 5" in latin["body_text"] and "François" in latin["body_text"]
    assert latin["from"]["name"] == "François Gaël"

    html = cli.json("ticket", "show", str(tickets["Projector not working"]["id"]), "--json")["messages"][0]
    assert html["body_text"].strip() == "The projector shows no picture."
    assert "<b>no picture</b>" in html["body_html"] and "script" not in html["body_html"]

    att = cli.json("ticket", "show", str(tickets["Scan of the error"]["id"]), "--json")["messages"][0]
    stored = {a["filename"]: a for a in att["attachments"]}
    assert stored["error.png"]["sha256"] == sha(PNG) and stored["error.png"]["size"] == len(PNG)
    assert stored["report.pdf"]["sha256"] == sha(PDF) and stored["report.pdf"]["content_type"] == "application/pdf"
    assert "virus.exe" not in stored
    removed = att["removed_attachments"]
    assert [r["filename"] for r in removed] == ["virus.exe"] and "not allowed" in removed[0]["reason"]
    assert removed[0]["size"] == len(EXE)

    # a reply carrying the reference lands on the same ticket; a second cycle finds nothing new
    number = tickets["Printer broken"]["number"]
    deliver_all(mail_user, maildir, [plain(subject=f"RE: [Ticket #{number}] Printer broken", body="Still broken.\n")])
    counts = cli.json("import", "--json")["Tech"]
    assert (counts["created"], counts["updated"], counts["deleted"]) == (0, 1, 1)
    shown = cli.json("ticket", "show", str(tickets["Printer broken"]["id"]), "--json")
    assert [m["body_text"].strip() for m in shown["messages"]] == ["The printer in room 12 is broken.", "Still broken."]
    assert remaining(mail_user, maildir) == 0


def test_export_is_jsonl_of_show(cli, dovecot, mail_user):
    configure(cli, dovecot, mail_user, "imap", "ssl")
    deliver_all(mail_user, None, [plain(), latin1_8bit()])
    cli("import")
    import json

    from conftest import make_app
    from helpdesk_core.models import Mailbox

    app = make_app(cli.env)
    with app.session() as session:  # the IMAP UIDVALIDITY is tracked on the mailbox
        assert isinstance(session.query(Mailbox).one().state.get("uidvalidity"), int)
    app.engine.dispose()
    lines = [json.loads(line) for line in cli("ticket", "export").stdout.splitlines()]
    assert [line["id"] for line in lines] == [1, 2]
    assert lines[0] == cli.json("ticket", "show", "1", "--json")


def test_same_mail_to_two_departments_makes_one_ticket_each(cli, dovecot, mail_user, tmp_path):
    other = dovecot._hd_pool.take()
    configure(cli, dovecot, mail_user, "imap", "ssl", department="Tech")
    configure(cli, dovecot, other, "pop3", "ssl", department="Facilities")
    raw = plain(subject="Heating and network both down", to=f"{mail_user.email}, {other.email}")
    mail_user.deliver(raw)
    other.deliver(raw)
    mail_user.deliver(raw)  # delivered twice to the same mailbox: still one ticket there
    result = cli.json("import", "--json")
    assert result["Tech"]["created"] == 1 and result["Tech"]["skipped"] == 1
    assert result["Facilities"]["created"] == 1
    assert sorted(t["department"] for t in cli.json("ticket", "list", "--json")) == ["Facilities", "Tech"]


def test_department_without_mailbox_still_works(cli):
    cli("department", "add", "Library", "--sender", "library@district.test")
    assert cli.json("import", "--json") == {}
    status = cli.json("department", "status", "Library", "--json")
    assert status["state"] == "no mailbox"
    assert cli("import", "--department", "Library", ok=False).exit_code == 1
