"""Loop and noise protection: bounces, auto-replies, our own mail, the rate limit (held mail), the
import log, damaged mail kept as ``original.eml``; on the real corpora."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from helpdesk_core.models import KeptMail, LedgerEntry, OutboxMessage, Ticket, TicketMessage
from helpdesk_core.models.imports import ledger_key
from helpdesk_core.mail.parsing import parse_message
from helpdesk_core.mail.automated import auto_reply_reason, bounce_info, bounce_reason
from helpdesk_core.settings import set_setting
from helpdesk_core.mail.references import make_message_id

from mailfactory import plain
from test_threading import ingest, setup

CORPORA = Path(__file__).parent / "corpora"
BOUNCES = sorted((CORPORA / "flufl_bounce" / "data").iterdir())
#: flufl.bounce's own negative examples: a person's reply and a vacation auto-reply
NOT_BOUNCES = {"groupwise_03.txt": None, "qmail_08.txt": "auto_reply"}


def _bounce_for(mid: str, recipient: str = "alice@example.test") -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.district.test>\r\n"
        "To: techhelp@district.test\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <bounce-1@mx.district.test>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you that your message could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.district.test\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: techhelp@district.test\r\nTo: {recipient}\r\nSubject: Re: [Ticket #1] Printer\r\n"
        f"Message-ID: <{mid}>\r\n--B--\r\n").encode()


# ------------------------------------------------------------------------------- corpora


def test_flufl_bounce_corpus_classifies_as_bounces():
    found, recipients_ok, expected = 0, 0, {}
    for line in (CORPORA / "flufl_bounce" / "expected.jsonl").read_text().splitlines():
        row = json.loads(line)
        expected.setdefault(Path(row["file"]).name, set()).update(a.lower() for a in row["addresses"])
    for path in BOUNCES:
        msg = parse_message(path.read_bytes())
        reason = bounce_reason(msg)
        if path.name in NOT_BOUNCES:
            assert reason is None, path.name
            assert (auto_reply_reason(msg) or (None,))[0] == NOT_BOUNCES[path.name], path.name
            continue
        assert reason, f"{path.name} not recognised as a bounce"
        found += 1
        info = bounce_info(msg, reason)
        if info.recipient and info.recipient in expected.get(path.name, set()):
            recipients_ok += 1
    assert found == len(BOUNCES) - len(NOT_BOUNCES) == 115
    assert recipients_ok >= 80, recipients_ok  # best effort: the failed recipient named by flufl


def test_bounces_from_the_corpus_never_open_tickets(hd_env):
    app = setup(hd_env)
    for path in BOUNCES[::8]:
        outcome = ingest(app, path.read_bytes())
        if path.name == "groupwise_03.txt":
            continue
        assert outcome.status == "skipped", (path.name, outcome)


TALON = sorted((CORPORA / "talon" / "standard_replies").glob("*.eml"))
REPLY_PARSER = sorted((CORPORA / "email_reply_parser").glob("*.txt"))


def _with_headers(raw: bytes, **headers: str) -> bytes:
    head, sep, body = raw.partition(b"\n\n") if b"\r\n\r\n" not in raw else raw.partition(b"\r\n\r\n")
    nl = b"\r\n" if sep == b"\r\n\r\n" else b"\n"
    lines = [ln for ln in head.split(nl)]
    out: list[bytes] = []
    skip = False
    names = {k.lower().replace("_", "-") for k in headers}
    for ln in lines:
        if ln[:1] in (b" ", b"\t") and skip:
            continue
        skip = ln.split(b":", 1)[0].strip().lower().decode("latin-1") in names
        if not skip:
            out.append(ln)
    out += [f"{k.replace('_', '-')}: {v}".encode() for k, v in headers.items()]
    return nl.join(out) + sep + body


def test_talon_replies_thread_by_subject_and_by_message_id(hd_env):
    app = setup(hd_env)
    threaded = 0
    for i, path in enumerate(TALON):
        raw = path.read_bytes()
        sender = parse_message(raw).from_
        assert sender is not None, path.name
        first = ingest(app, plain(subject=f"Question {i}", sender=sender.email, msgid=f"<q{i}@example.test>"))
        with app.session() as s:
            number = s.get(Ticket, first.ticket_id).number
        by_subject = _with_headers(raw, Subject=f"Re: [Ticket #{number}] Question {i}",
                                   Message_ID=f"<talon-s{i}@example.test>")
        mid = make_message_id(app.secrets, first.ticket_id, "district.test")
        by_id = _with_headers(raw, Subject="Re: Test", In_Reply_To=f"<{mid}>", Message_ID=f"<talon-m{i}@example.test>")
        for variant in (by_subject, by_id):
            outcome = ingest(app, variant)
            assert outcome.ticket_id == first.ticket_id, (path.name, outcome)
            threaded += 1
    assert threaded == 2 * len(TALON) == 24


def test_email_reply_parser_replies_thread(hd_env):
    app = setup(hd_env)
    first = ingest(app, plain(subject="Riak question"))
    for i, path in enumerate(REPLY_PARSER):
        body = path.read_text(errors="replace")
        outcome = ingest(app, plain(subject="RE: AW: [Ticket #1] Riak question", body=body,
                                    msgid=f"<erp{i}@example.test>"))
        assert outcome.ticket_id == first.ticket_id, path.name
    with app.session() as s:
        assert len(s.get(Ticket, first.ticket_id).messages) == len(REPLY_PARSER) + 1 == 25


# ------------------------------------------------------------------------------- bounces


def test_bounce_of_our_mail_becomes_a_note_and_marks_the_outbox(hd_env):
    app = setup(hd_env)
    first = ingest(app, plain(subject="Printer"))
    mid = make_message_id(app.secrets, first.ticket_id, "district.test")
    with app.session() as s:
        s.add(OutboxMessage(department_id=s.get(Ticket, first.ticket_id).department_id, ticket_id=first.ticket_id,
                            kind="reply", mail_from="techhelp@district.test", recipients=["alice@example.test"],
                            to_email="alice@example.test", subject="Re: [Ticket #1] Printer", raw=b"x",
                            message_id=mid, status="sent"))
        s.commit()
    outcome = ingest(app, _bounce_for(mid))
    assert outcome.status == "updated" and outcome.ticket_id == first.ticket_id
    with app.session() as s:
        note = s.get(TicketMessage, outcome.ticket_message_id)
        assert note.direction == "note" and note.kind == "bounce"
        assert note.body_display.startswith("Delivery failed: alice@example.test (5.1.1)")
        row = s.scalar(select(OutboxMessage))
        assert row.bounced_at is not None and row.bounce_recipient == "alice@example.test"
        assert row.bounce_status == "5.1.1"


def test_bounce_naming_nothing_of_ours_is_skipped_and_logged(hd_env, cli):
    app = setup(hd_env)
    ingest(app, plain(subject="Printer"))
    outcome = ingest(app, _bounce_for("someone-else@example.test"))
    assert outcome.status == "skipped" and "bounce" in outcome.reason
    # a bounce carrying a subject reference does not thread (MAILER-DAEMON is not on the ticket)
    with app.session() as s:
        assert s.scalar(select(LedgerEntry.outcome).where(LedgerEntry.key == ledger_key("bounce-1@mx.district.test", ""))) == "skipped"
    entries = cli.json("log", "--json")
    assert entries[0]["outcome"] == "skipped" and "bounce" in entries[0]["reason"]
    assert "skipped" in cli("log", "--department", "Tech").output


# ------------------------------------------------------------------------------- auto-replies, own mail


@pytest.mark.parametrize("header", [{"Auto_Submitted": "auto-replied"}, {"X_Autoreply": "yes"},
                                    {"X_Autorespond": "1"}, {"X_Auto_Response_Suppress": "All"},
                                    {"Precedence": "bulk"}, {"List_Id": "<news.example.test>"},
                                    {"List_Unsubscribe": "<mailto:x@example.test>"}])
def test_auto_replies_thread_as_notes_or_are_skipped(hd_env, header):
    app = setup(hd_env)
    first = ingest(app, plain(subject="Printer"))
    alone = ingest(app, plain(subject="Out of office", **header))
    assert alone.status == "skipped" and alone.reason
    note = ingest(app, plain(subject="Re: [Ticket #1] Out of office", **header))
    assert note.ticket_id == first.ticket_id
    with app.session() as s:
        assert s.get(TicketMessage, note.ticket_message_id).direction == "note"


def test_auto_submitted_no_is_ordinary_mail(hd_env):
    app = setup(hd_env)
    assert ingest(app, plain(subject="Printer", Auto_Submitted="no")).status == "created"


def test_our_own_mail_is_dropped(hd_env):
    app = setup(hd_env)
    looped = ingest(app, plain(subject="Re: [Ticket #1] Printer", X_Helpdesk_Loop="techhelp@district.test"))
    assert looped.status == "skipped" and "loop" in looped.reason
    own = ingest(app, plain(subject="hello", sender="library@district.test"))
    assert own.status == "skipped" and "own address" in own.reason
    with app.session() as s:
        assert s.scalar(select(Ticket.id)) is None


# ------------------------------------------------------------------------------- rate limit


def test_rate_limit_holds_mail_and_release_imports_it(hd_env, cli):
    app = setup(hd_env)
    with app.session() as s:
        set_setting(s, "mail.rate_limit_per_hour", 2)
        s.commit()
    results = [ingest(app, plain(subject=f"Case {i}", msgid=f"<case{i}@example.test>")) for i in range(4)]
    assert [r.status for r in results] == ["created", "created", "skipped", "skipped"]
    assert "mail.rate_limit_per_hour" in results[2].reason
    # a reply to an existing ticket is never held
    assert ingest(app, plain(subject="Re: [Ticket #1] more")).status == "updated"
    # another sender is not limited
    assert ingest(app, plain(subject="Other", sender="bob@example.test")).status == "created"
    held = cli.json("held", "list", "--json")
    assert [h["subject"] for h in held] == ["Case 2", "Case 3"]
    assert "Case 2" not in cli("failed", "list").output  # held mail is not failed mail
    out = cli("held", "release", str(held[0]["id"])).output
    assert "created" in out
    assert [h["subject"] for h in cli.json("held", "list", "--json")] == ["Case 3"]
    with app.session() as s:
        assert s.scalar(select(Ticket).where(Ticket.subject == "Case 2")) is not None
        assert s.get(KeptMail, held[0]["id"]).status == "released"
    assert cli("held", "release", str(held[0]["id"]), ok=False).exit_code != 0
    assert any(e["outcome"] == "held" for e in cli.json("log", "--json"))


# ------------------------------------------------------------------------------- damaged mail


def test_damaged_mail_becomes_a_ticket_with_the_original_attached(hd_env):
    app = setup(hd_env)
    with app.session() as s:
        set_setting(s, "attachments.allowed_extensions", "pdf")
        s.commit()
    raw = (b"From: alice@example.test\r\nTo: techhelp@district.test\r\nSubject: broken\r\n"
           b"Message-ID: <broken-1@example.test>\r\nMIME-Version: 1.0\r\n"
           b'Content-Type: multipart/mixed; boundary="XYZ"\r\n\r\n'
           b"--XYZ\r\nContent-Type: text/plain\r\n\r\nThe text that survived.\r\n"
           b"--XYZ\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           b"JVBERi0xLjQK%%%%truncated")
    outcome = ingest(app, raw)
    assert outcome.status == "created"
    with app.session() as s:
        tm = s.get(TicketMessage, outcome.ticket_message_id)
        names = [a.filename for a in tm.attachments]
        assert "original.eml" in names and "survived" in tm.body_text
        assert app.storage.get(next(a for a in tm.attachments if a.filename == "original.eml").storage_key) == raw


def test_clean_mail_gets_no_original(hd_env):
    app = setup(hd_env)
    outcome = ingest(app, plain(subject="Printer"))
    with app.session() as s:
        assert [a.filename for a in s.get(TicketMessage, outcome.ticket_message_id).attachments] == []


def test_a_release_that_fails_keeps_one_held_copy_and_can_be_released_later(hd_env):
    from dataclasses import dataclass

    from sqlalchemy import select

    from helpdesk_core import hookimpl
    from helpdesk_core.models import KeptMail
    from helpdesk_core.services.held import release_held
    from helpdesk_core.services.permissions import SYSTEM
    from helpdesk_core.settings import set_setting
    from helpdesk_core.testing.apps import ingest, installation

    @dataclass
    class Breaks:
        on: bool = False

        @hookimpl(tryfirst=True)
        def helpdesk_message_to_ticket(self, message):
            if self.on:
                raise RuntimeError("storage is down")

    breaks = Breaks()
    app = installation(hd_env, breaks, departments={"Tech": "techhelp@district.test"})
    with app.session() as s:
        set_setting(s, "mail.rate_limit_per_hour", 1)
        s.commit()
    ingest(app, plain(subject="Case 1", sender="busy@example.test"), department="Tech")
    ingest(app, plain(subject="Case 2", sender="busy@example.test"), department="Tech")
    with app.session() as s:
        [held] = s.scalars(select(KeptMail).where(KeptMail.status == "held")).all()
        held_id = held.id
    breaks.on = True
    with app.session() as s:
        assert release_held(app, s, actor=SYSTEM, held_id=held_id).status == "failed"
        s.commit()
    with app.session() as s:
        rows = s.scalars(select(KeptMail)).all()
        assert [(r.id, r.status) for r in rows] == [(held_id, "held")] and "storage is down" in rows[0].error
    breaks.on = False
    with app.session() as s:
        assert release_held(app, s, actor=SYSTEM, held_id=held_id).status == "created"
        s.commit()
    with app.session() as s:
        assert s.get(KeptMail, held_id).status == "released"
    app.engine.dispose()
