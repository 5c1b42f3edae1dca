"""Staff notifications and staff replies by mail, over the real SMTP sink (SQLite and PostgreSQL)."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid

import pytest

from mailfactory import plain


@pytest.fixture
def tech(cli, tmp_path, dovecot, mail_user, smtp_sink):
    """Tech with a Maildir mailbox and outgoing mail through the sink; agents Ann and Tom (opted
    out), notifications on; Alice's ticket 1 is imported."""
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    cli("department", "add", "Tech", "--sender", mail_user.email)
    cli("department", "set-mailbox", "Tech", "--protocol", "maildir", "--path", str(maildir), "--email",
        mail_user.email, "--smtp-host", "127.0.0.1", "--smtp-port", str(smtp_sink.port_starttls),
        "--smtp-security", "starttls", "--ca-file", str(dovecot.ca_file), "--password-stdin",
        input=mail_user.password + "\n")
    cli("department", "set", "Tech", "--notify-staff")
    cli("user", "add", "ann@district.test", "--role", "agent", "--department", "Tech", "--name", "Ann")
    cli("user", "add", "tom@district.test", "--role", "agent", "--department", "Tech")
    cli("user", "set", "tom@district.test", "--no-notifications")
    cli("ingest", "--department", "Tech", input=plain(subject="Printer broken", to=mail_user.email))
    cli("outbox", "flush")
    return cli


def sent_to(smtp_sink, email):
    return [m.as_email() for m in smtp_sink.messages if email in m.rcpt_tos]


def test_staff_are_notified_and_an_agents_answer_by_mail_reaches_the_requester(tech, smtp_sink, mail_user):
    [note] = sent_to(smtp_sink, "ann@district.test")
    assert sent_to(smtp_sink, "tom@district.test") == [] and sent_to(smtp_sink, "alice@example.test") == []
    assert note["Auto-Submitted"] == "auto-generated" and note["From"].addresses[0].addr_spec == mail_user.email
    assert note["Subject"] == "[Ticket #1] New ticket: Printer broken"
    assert "The printer in room 12 is broken." in note.get_body(("plain",)).get_content()

    answer = EmailMessage()
    answer["From"], answer["To"] = "Ann <ann@district.test>", mail_user.email
    answer["Subject"] = "Re: " + note["Subject"]
    answer["Message-ID"] = make_msgid(domain="district.test")
    answer["In-Reply-To"] = answer["References"] = note["Message-ID"]
    answer.set_content("Toner is on its way.\n\n> " + "quoted notification\n")
    tech("ticket", "set", "1", "--status", "pending")
    tech("ingest", "--department", "Tech", input=answer.as_bytes(policy=SMTP))
    assert tech.json("ticket", "show", "1", "--json")["status"] == "pending"  # staff's answer: still pending
    tech("outbox", "flush")
    [to_requester] = sent_to(smtp_sink, "alice@example.test")
    assert to_requester["From"].addresses[0].addr_spec == mail_user.email
    assert to_requester["Subject"] == "Re: [Ticket #1] Printer broken"
    assert "Toner is on its way." in to_requester.get_body(("plain",)).get_content()
    assert "ann@district.test" not in (to_requester["Cc"] or "")
    data = tech.json("ticket", "show", "1", "--json")
    staff = data["messages"][-1]
    assert (staff["direction"], staff["from"]["email"]) == ("outbound", mail_user.email)
    assert data["messages"][-2]["kind"] == "staff_mail"  # the agent's own mail, kept as a note
    assert len(sent_to(smtp_sink, "ann@district.test")) == 1  # no notification about their own mail

    tech("ingest", "--department", "Tech", input=plain(subject="Re: [Ticket #1] Printer broken",
                                                       to=mail_user.email, body="Thanks, it works!\n"))
    tech("outbox", "flush")
    assert tech.json("ticket", "show", "1", "--json")["status"] == "open"  # the requester's turn is over
    notes = sent_to(smtp_sink, "ann@district.test")
    assert len(notes) == 2 and notes[-1]["Subject"] == "[Ticket #1] New reply: Printer broken"


def test_no_notification_for_automatic_mail_nor_to_its_sender(tech, smtp_sink, mail_user):
    before = len(smtp_sink.messages)
    tech("ingest", "--department", "Tech", input=plain(subject="Out of office", sender="bob@example.test",
                                                       to=mail_user.email, Auto_Submitted="auto-replied"))
    tech("ingest", "--department", "Tech", input=plain(subject="My own", sender="ann@district.test",
                                                       to=mail_user.email))
    tech("outbox", "flush")
    assert smtp_sink.messages[before:] == []  # Tom opted out, Ann wrote it herself


def test_assignment_is_notified_and_internal_tickets_mail_the_requester(tech, smtp_sink, tmp_path):
    tech("ticket", "set", "1", "--assign", "tom@district.test")  # opted out: nothing
    tech("ticket", "set", "1", "--assign", "ann@district.test")
    assigned = [m for m in sent_to(smtp_sink, "ann@district.test") if "Assigned to you" in m["Subject"]]
    assert len(assigned) == 1 and assigned[0]["Auto-Submitted"] == "auto-generated"
    tech("--as", "ann@district.test", "ticket", "set", "1", "--unassign")
    tech("--as", "ann@district.test", "ticket", "set", "1", "--assign", "ann@district.test")  # herself
    assert len([m for m in sent_to(smtp_sink, "ann@district.test") if "Assigned" in m["Subject"]]) == 1
    (tmp_path / "b.txt").write_text("Caller says the wifi drops.\n")
    out = tech.json("--as", "ann@district.test", "ticket", "create", "--department", "Tech", "--requester",
                    "carl@example.test", "--subject", "Wifi drops", "--body-file", str(tmp_path / "b.txt"),
                    "--notify", "--json")
    assert out["outbox"] is not None
    [ack] = sent_to(smtp_sink, "carl@example.test")
    assert "[Ticket #2]" in ack["Subject"]
    tech("user", "set", "ann@district.test", "--deactivate")
    tech("ingest", "--department", "Tech", input=plain(subject="Another", sender="dan@example.test"))
    tech("outbox", "flush")
    assert not [m for m in sent_to(smtp_sink, "ann@district.test") if "Another" in m["Subject"]]
