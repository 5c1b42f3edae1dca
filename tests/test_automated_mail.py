"""Issue 11, case 6: automated mail -- feedback (ARF) and DMARC reports, list-manager and gateway
notices, JSON bounce notifications, localized auto-reply subjects, Precedence + system senders --
never opens a ticket nor gets an acknowledgement, and carries its kind; human mail still opens
tickets.

The automated set is crafted (tests/corpora/automated/, see its README) plus the flufl_bounce
corpus; the human set is the talon, email_reply_parser, django-helpdesk and own corpora plus crafted
mails that merely *mention* a delivery failure or an absence (tests/corpora/human/).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from helpdesk_core.mail.automated import auto_reply_reason, bounce_info, bounce_reason
from helpdesk_core.mail.parsing import parse_message
from helpdesk_core.mail.references import make_message_id
from helpdesk_core.models import OutboxMessage, Ticket, TicketMessage
from helpdesk_core.testing.strategies import prefix_chains, subjects

from mailfactory import plain
from test_threading import ingest, setup

CORPORA = Path(__file__).parent / "corpora"
LABELLED = [json.loads(line) for line in (CORPORA / "automated" / "expected.jsonl").read_text("utf-8").splitlines()]
AUTOMATED = [row for row in LABELLED if row["kind"] != "normal"]
#: flufl.bounce's own negative example: a person's reply
FLUFL_HUMAN = {"groupwise_03.txt"}


def kind_of(raw: bytes) -> tuple[str, str]:
    """The kind the default classifier gives (its bounce → auto-reply order), without a database."""
    msg = parse_message(raw)
    reason = bounce_reason(msg)
    if reason is not None:
        return "bounce", reason
    return auto_reply_reason(msg) or ("normal", "")


def _with_headers(body: bytes, index: int) -> bytes:
    return (b"From: Erin Staff <erin%d@example.test>\r\nTo: techhelp@district.test\r\nSubject: Re: question\r\n"
            b"Message-ID: <erp%d@example.test>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" % (index, index)
            + body)


def human_mails() -> list[tuple[str, bytes]]:
    mails = [(f"talon/{p.name}", p.read_bytes()) for p in sorted((CORPORA / "talon" / "standard_replies").glob("*.eml"))]
    mails += [(f"email_reply_parser/{p.name}", _with_headers(p.read_bytes(), i))
              for i, p in enumerate(sorted((CORPORA / "email_reply_parser").glob("*.txt")))]
    for folder in ("django-helpdesk", "own", "human"):
        mails += [(f"{folder}/{p.name}", p.read_bytes()) for p in sorted((CORPORA / folder).glob("*.eml"))]
    mails += [(f"flufl_bounce/{name}", (CORPORA / "flufl_bounce" / "data" / name).read_bytes()) for name in FLUFL_HUMAN]
    return mails


# --------------------------------------------------------------------------- the labelled sets


@pytest.mark.parametrize("row", AUTOMATED, ids=lambda r: Path(r["file"]).stem)
def test_each_crafted_automated_mail_is_recognised_with_its_kind(row: dict) -> None:
    kind, reason = kind_of((CORPORA / row["file"]).read_bytes())
    assert kind == row["kind"], reason
    assert reason


def test_the_automated_set_covers_every_kind_and_language() -> None:
    kinds = {row["kind"] for row in AUTOMATED}
    assert kinds >= {"feedback_report", "dmarc_report", "list_notice", "gateway_notice", "bounce", "auto_reply", "bulk"}
    languages = {Path(r["file"]).stem.split("_")[1] for r in AUTOMATED if Path(r["file"]).stem.startswith("subject_")}
    assert languages >= {"en", "de", "fr", "es", "it", "nl", "pt", "pl", "ja", "zh"}


def test_the_flufl_bounce_corpus_is_all_automated() -> None:
    for path in sorted((CORPORA / "flufl_bounce" / "data").iterdir()):
        if path.name not in FLUFL_HUMAN:
            assert kind_of(path.read_bytes())[0] != "normal", path.name


def test_every_human_mail_stays_normal() -> None:
    mails = human_mails()
    assert len(mails) >= 60
    wrong = {name: kind_of(raw) for name, raw in mails if kind_of(raw)[0] != "normal"}
    assert wrong == {}


@pytest.mark.parametrize("subject", ["Re: Out of office", "Fwd: Automatic reply: Printer", "Out of office equipment",
                                     "Automatic replies do not work in Outlook", "Printer: auto reply setting?"])
def test_subjects_that_only_mention_an_auto_reply_are_human(subject: str) -> None:
    assert kind_of(plain(subject=subject))[0] == "normal"


def test_json_bounce_names_the_recipient_and_our_message() -> None:
    msg = parse_message((CORPORA / "automated" / "ses_sns_bounce.eml").read_bytes())
    info = bounce_info(msg, bounce_reason(msg) or "")
    assert info.recipient == "gone@example.test"
    assert "hd.1.abcdef@district.test" in info.returned_message_ids


# --------------------------------------------------------------------------- through the importer


def test_automated_mail_opens_no_ticket_and_gets_no_acknowledgement(hd_env) -> None:
    app = setup(hd_env)
    for row in AUTOMATED:
        outcome = ingest(app, (CORPORA / row["file"]).read_bytes())
        assert outcome.status == "skipped", (row, outcome)
        assert outcome.reason, row
    with app.session() as s:
        assert s.scalar(select(func.count(Ticket.id))) == 0
        assert s.scalar(select(func.count(OutboxMessage.id))) == 0


def test_automated_mail_is_logged_with_its_kind(hd_env, cli) -> None:
    app = setup(hd_env)
    for name in ("arf_yahoo.eml", "dmarc_aggregate_zip.eml", "sympa_loop.eml", "carrier_vzw.eml",
                 "subject_ja_jidou_outou.eml"):
        ingest(app, (CORPORA / "automated" / name).read_bytes())
    reasons = " | ".join(e["reason"] for e in cli.json("log", "--json"))
    for words in ("feedback/abuse report (ARF", "DMARC aggregate report", "mailing-list manager notice",
                  "carrier/gateway error notice", "automatic reply (subject"):
        assert words in reasons, (words, reasons)


def test_the_log_and_the_kept_lists_filter_on_the_command_line(hd_env, cli) -> None:
    """``log``, ``failed list`` and ``held list`` take the web lists' filters (department, days,
    text; the log also by outcome)."""
    app = setup(hd_env)
    for name in ("arf_yahoo.eml", "sympa_loop.eml"):
        ingest(app, (CORPORA / "automated" / name).read_bytes())
    assert len(cli.json("log", "--json", "--text", "mailing-list manager")) == 1
    assert len(cli.json("log", "--json", "--outcome", "skipped", "--since", "2000-01-01")) == 2
    assert cli.json("log", "--json", "--until", "2000-01-01") == []
    assert cli.json("failed", "list", "--json", "--text", "anything", "--all") == []
    assert cli.json("held", "list", "--json", "--since", "2000-01-01") == []


def test_human_mail_mentioning_failures_opens_tickets(hd_env) -> None:
    app = setup(hd_env)
    for path in sorted((CORPORA / "human").glob("*.eml")):
        assert ingest(app, path.read_bytes()).status == "created", path.name


def test_a_json_bounce_of_our_reply_annotates_the_ticket(hd_env) -> None:
    app = setup(hd_env)
    first = ingest(app, plain(subject="Printer"))
    mid = make_message_id(app.secrets, first.ticket_id, "district.test")
    with app.session() as s:
        s.add(OutboxMessage(department_id=s.get(Ticket, first.ticket_id).department_id, ticket_id=first.ticket_id,
                            kind="reply", mail_from="techhelp@district.test", recipients=["gone@example.test"],
                            to_email="gone@example.test", subject="Re: [Ticket #1] Printer", raw=b"x",
                            message_id=mid, status="sent"))
        s.commit()
    raw = (CORPORA / "automated" / "ses_sns_bounce.eml").read_bytes().replace(b"hd.1.abcdef@district.test", mid.encode())
    outcome = ingest(app, raw)
    assert outcome.status == "updated" and outcome.ticket_id == first.ticket_id
    with app.session() as s:
        note = s.get(TicketMessage, outcome.ticket_message_id)
        assert note.direction == "note" and note.kind == "bounce"
        assert note.body_display.startswith("Delivery failed: gone@example.test")
        assert s.scalar(select(OutboxMessage)).bounced_at is not None


@settings(max_examples=150, deadline=None)
@given(subject=subjects(), body=st.text(min_size=1, max_size=300), prefix=prefix_chains())
def test_generated_human_mail_stays_normal(subject: str, body: str, prefix: str) -> None:
    """Arbitrary subjects (with reply prefixes) and bodies from a person never look automated."""
    body = body.replace("\r", "").replace("\x00", "") + "\n"
    assert kind_of(plain(subject=prefix + subject, body=body)) == ("normal", "")
