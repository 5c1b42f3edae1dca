"""Staff replies, the outbox state machine, templates and acknowledgements (no mail servers).

Delivery is replaced by a small ``helpdesk_deliver_reply`` plugin; the SMTP side is tested against
the aiosmtpd sink in ``test_outgoing_smtp.py``.
"""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from helpdesk_core import hookimpl
from helpdesk_core.mail.compose import LOOP_HEADER, clean_subject, reply_subject
from helpdesk_core.hooktypes import Classification
from helpdesk_core.errors import DeliveryError, NotFoundError, PermissionDenied
from helpdesk_core.models import Direction, OutboxMessage, Ticket, TicketMessage
from helpdesk_core.outbound.outbox import STUCK_AFTER, backoff, flush_outbox
from helpdesk_core.mail.quotes import REPLY_ABOVE_MARKER
from helpdesk_core.services.departments import add_department, set_department_options, set_mailbox
from helpdesk_core.services.permissions import SYSTEM
from helpdesk_core.services.replies import reply_to_ticket
from helpdesk_core.services.users import add_user
from helpdesk_core.mail.references import verify_message_id
from helpdesk_core.inbound.worker import Worker

from helpdesk_core.testing.apps import ingest as ingest_into
from helpdesk_core.testing.apps import installation
from mailfactory import plain


class FakeDelivery:
    """Delivers by recording; ``results`` scripts one result per mail (None = sent)."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.results: list[DeliveryError | None] | None = None
        self.crash = False

    @hookimpl
    def helpdesk_deliver_reply(self, mails, department, mailbox, secrets):
        if self.crash:
            raise RuntimeError("plugin bug")
        self.calls.append([m.message_id for m in mails])
        if self.results is None:
            return [None for _ in mails]
        return [self.results[i % len(self.results)] for i in range(len(mails))]


def setup(env, *plugins, name="Tech Support – Schule Nord", sender="techhelp@district.test"):
    return installation(env, *plugins, departments={name: sender})


def ingest(app, raw, department="Tech Support – Schule Nord"):
    return ingest_into(app, raw, department=department)


def reply(app, ticket_id=1, body="Have you tried turning it off and on again?", actor=SYSTEM, **kw):
    with app.session() as s:
        actor = actor if actor is SYSTEM else s.merge(actor)
        result = reply_to_ticket(app, s, actor=actor, ticket_id=ticket_id, body=body, **kw)
        s.commit()
        return result.ticket_message.id, (result.outbox.id if result.outbox else None)


def outbox_rows(app):
    with app.session() as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def parse(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


# ---- subjects --------------------------------------------------------------------------------

@pytest.mark.parametrize(("subject", "expected"), [
    ("Printer broken", "Printer broken"),
    ("Re: RE: AW: Fwd: Printer broken", "Printer broken"),
    ("Re: [Ticket #12] Re: Printer broken", "Printer broken"),
    ("SV: Re[2]: WG: Printer broken [ticket #12]", "Printer broken"),
    ("Ticket 5 printers are broken", "Ticket 5 printers are broken"),
])
def test_subject_prefixes_and_references_never_stack(subject, expected):
    assert clean_subject(subject) == expected
    assert reply_subject(subject, 12) == f"Re: [Ticket #12] {expected}"
    assert reply_subject(reply_subject(subject, 12), 12) == f"Re: [Ticket #12] {expected}"


# ---- replies ---------------------------------------------------------------------------------

def test_reply_is_stored_with_outbox_row_and_proper_headers(hd_env, tmp_path):
    app = setup(hd_env, FakeDelivery())  # a department that can send mail
    first = plain(subject="Printer broken", cc="Bob Teacher <bob@example.test>, techhelp@district.test",
                  msgid="<first@example.test>", references="<older@example.test>")
    assert ingest(app, first).status == "created"
    tm_id, outbox_id = reply(app, body="Grüße! We <b>replaced</b> the toner.\n\nRegards",
                             attachments=[("notes.txt", b"toner replaced\n")])

    with app.session() as s:
        tm = s.get(TicketMessage, tm_id)
        assert tm.direction == Direction.OUTBOUND and tm.ticket_id == 1
        assert tm.body_display == tm.body_text == "Grüße! We <b>replaced</b> the toner.\n\nRegards"
        assert [(a.filename, a.size) for a in tm.attachments] == [("notes.txt", 15)]
        assert app.storage.get(tm.attachments[0].storage_key) == b"toner replaced\n"
        row = s.get(OutboxMessage, outbox_id)
        assert (row.status, row.kind, row.ticket_message_id) == ("queued", "reply", tm_id)
        assert row.recipients == ["alice@example.test", "bob@example.test"]
        assert row.mail_from == "techhelp@district.test" and row.message_id == tm.message_id

    msg = parse(row.raw)
    assert msg["From"].addresses[0].display_name == "Tech Support – Schule Nord"
    assert msg["From"].addresses[0].addr_spec == "techhelp@district.test"
    assert b"=?utf-8?" in row.raw.split(b"\r\n\r\n")[0]  # non-ASCII name encoded, headers 7-bit
    assert msg["To"].addresses[0].addr_spec == "alice@example.test"
    assert [a.addr_spec for a in msg["Cc"].addresses] == ["bob@example.test"]  # not us, not the requester
    assert msg["Subject"] == "Re: [Ticket #1] Printer broken"
    assert verify_message_id(app.secrets, msg["Message-ID"]) == 1
    assert msg["Message-ID"].strip("<>").endswith("@district.test")
    assert msg["In-Reply-To"] == "<first@example.test>"
    assert msg["References"] == "<older@example.test> <first@example.test>"
    assert msg["Auto-Submitted"] == "no" and msg[LOOP_HEADER] == "techhelp@district.test"
    assert msg["Date"] is not None
    assert msg.get_content_type() == "multipart/mixed"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert text.startswith(REPLY_ABOVE_MARKER) and "We <b>replaced</b> the toner." in text
    assert REPLY_ABOVE_MARKER in html and "We &lt;b&gt;replaced&lt;/b&gt; the toner." in html
    assert [p.get_filename() for p in msg.iter_attachments()] == ["notes.txt"]


def test_no_cc_and_references_trimmed(hd_env):
    app = setup(hd_env, FakeDelivery())  # a department that can send mail
    refs = " ".join(f"<r{i}@example.test>" for i in range(30))
    ingest(app, plain(cc="bob@example.test", references=refs, msgid="<last@example.test>"))
    _, outbox_id = reply(app, cc=False)
    row = outbox_rows(app)[0]
    msg = parse(row.raw)
    assert row.recipients == ["alice@example.test"] and msg["Cc"] is None
    ids = msg["References"].split()
    assert len(ids) == 20 and ids[-1] == "<last@example.test>"


def test_internal_note_is_never_mailed(hd_env):
    app = setup(hd_env)
    ingest(app, plain())
    tm_id, outbox_id = reply(app, body="Toner is on order.", internal=True)
    assert outbox_id is None and outbox_rows(app) == []
    with app.session() as s:
        assert s.get(TicketMessage, tm_id).direction == Direction.NOTE


def test_only_department_staff_may_reply(hd_env):
    app = setup(hd_env, FakeDelivery())  # a department that can send mail
    with app.session() as s:
        add_department(s, actor=SYSTEM, name="Facilities", sender="facilities@district.test")
        agent = add_user(s, actor=SYSTEM, email="agent@district.test", role="agent",
                         department="Tech Support – Schule Nord")
        other = add_user(s, actor=SYSTEM, email="janitor@district.test", role="agent", department="Facilities")
        s.commit()
    ingest(app, plain())
    with app.session() as s:
        requester = s.scalar(select(Ticket)).requester
    with pytest.raises(PermissionDenied):
        reply(app, actor=requester)
    with pytest.raises(NotFoundError):
        reply(app, actor=other)
    tm_id, _ = reply(app, actor=agent)
    with app.session() as s:
        assert s.get(TicketMessage, tm_id).author_id == agent.id
    assert len(outbox_rows(app)) == 1


# ---- the outbox state machine ----------------------------------------------------------------

def test_flush_sends_then_marks_sent(hd_env):
    plugin = FakeDelivery()
    app = setup(hd_env, plugin)
    ingest(app, plain(subject="One"))
    ingest(app, plain(subject="Two"))
    reply(app, 1)
    reply(app, 2)
    counts = flush_outbox(app)
    assert counts.as_json() == {"sent": 2, "retry": 0, "failed": 0, "requeued": 0}
    assert len(plugin.calls) == 1 and len(plugin.calls[0]) == 2  # one call per department
    assert [(r.status, r.attempts) for r in outbox_rows(app)] == [("sent", 1), ("sent", 1)]
    assert flush_outbox(app).sent == 0


def test_temporary_errors_back_off_then_give_up(hd_env):
    plugin = FakeDelivery()
    plugin.results = [DeliveryError("451 try later", kind="temporary")]
    app = setup(hd_env, plugin)
    ingest(app, plain())
    reply(app)
    start = datetime.now(UTC)
    assert flush_outbox(app, now=start).retry == 1
    row = outbox_rows(app)[0]
    assert row.status == "queued" and row.last_error == "451 try later"
    assert timedelta(seconds=50) < row.next_attempt_at - start < timedelta(seconds=70)
    assert flush_outbox(app, now=start + timedelta(seconds=30)).retry == 0  # not due yet
    assert [backoff(n) for n in (1, 2, 3, 7, 20)] == [timedelta(minutes=m) for m in (1, 2, 4, 60, 60)]
    assert flush_outbox(app, now=start + timedelta(days=3)).failed == 1
    row = outbox_rows(app)[0]
    assert row.status == "failed" and "Gave up after 2 attempts" in row.last_error


def test_permanent_error_fails_with_the_reason(hd_env):
    plugin = FakeDelivery()
    plugin.results = [DeliveryError("550 5.1.1 no such user", kind="refused", permanent=True)]
    app = setup(hd_env, plugin)
    ingest(app, plain())
    reply(app)
    assert flush_outbox(app).failed == 1
    row = outbox_rows(app)[0]
    assert (row.status, row.last_error) == ("failed", "550 5.1.1 no such user")


def test_crashing_plugin_and_missing_delivery_keep_mail_queued(hd_env):
    plugin = FakeDelivery()
    plugin.crash = True
    app = setup(hd_env, plugin)
    ingest(app, plain())
    reply(app)
    assert flush_outbox(app).retry == 1
    assert outbox_rows(app)[0].status == "queued" and "crashed" in outbox_rows(app)[0].last_error

    app2 = setup(hd_env, name="Library", sender="library@district.test")  # no delivery plugin applies
    ingest(app2, plain(subject="Book"), department="Library")
    with app2.session() as s:  # a mailbox without outgoing mail settings: queued until they are set
        set_mailbox(app2, s, actor=SYSTEM, department="Library", provider="generic", validate=False,
                    config={"protocol": "maildir", "path": str(hd_env["HELPDESK_HOME"]) + "/Maildir",
                            "email": "library@district.test"}, secrets={})
        s.commit()
    reply(app2, 2)
    flush_outbox(app2, department="Library", now=datetime.now(UTC) + timedelta(minutes=5))
    row = outbox_rows(app2)[-1]
    assert row.status == "queued" and "configure the department's mailbox" in row.last_error


def test_a_reply_without_mailbox_nor_delivery_plugin_is_stored_not_queued(hd_env):
    """Nothing could ever send it: queueing it only left a mail failing for ever ('no_delivery')."""
    app = setup(hd_env)
    ingest(app, plain())
    with app.session() as s:
        result = reply_to_ticket(app, s, actor=SYSTEM, ticket_id=1, body="Fixed it.")
        s.commit()
        assert result.outbox is None and "has no mailbox" in (result.not_mailed or "")
        assert (result.ticket_message.direction, result.ticket_message.subject) == (
            Direction.OUTBOUND, "Re: [Ticket #1] Printer broken")
    assert outbox_rows(app) == []


def test_stuck_sending_rows_are_requeued(hd_env):
    plugin = FakeDelivery()
    app = setup(hd_env, plugin)
    ingest(app, plain())
    reply(app)
    with app.session() as s:
        row = s.scalar(select(OutboxMessage))
        row.status, row.sending_since = "sending", datetime.now(UTC) - STUCK_AFTER - timedelta(minutes=1)
        s.commit()
    counts = flush_outbox(app)
    assert (counts.requeued, counts.sent) == (1, 1)


def test_worker_flushes_the_outbox_by_default(hd_env):
    plugin = FakeDelivery()
    app = setup(hd_env, plugin)
    ingest(app, plain())
    reply(app)
    Worker(app, tick_seconds=0).run(once=True)
    assert outbox_rows(app)[0].status == "sent"
    assert Worker(app, tasks=[]).tasks == []


# ---- templates -------------------------------------------------------------------------------

class TemplateFolders:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @hookimpl
    def helpdesk_register_template_folders(self, register):
        register(self.folder)


def test_template_folders_from_plugins_and_department_override(hd_env, tmp_path):
    plugin_dir = tmp_path / "plugin"
    (plugin_dir / "reply").mkdir(parents=True)
    (plugin_dir / "reply" / "subject.txt").write_text("{{ reference }} Answer: {{ subject }}")
    (plugin_dir / "reply" / "body.html").write_text("<p>{{ marker }}</p><pre>{{ body }}</pre>")
    app = setup(hd_env, TemplateFolders(plugin_dir), FakeDelivery())
    ingest(app, plain(subject="Re: Printer"))
    reply(app, body="a < b & c")
    msg = parse(outbox_rows(app)[0].raw)
    assert msg["Subject"] == "[Ticket #1] Answer: Printer"
    assert "<pre>a &lt; b &amp; c</pre>" in msg.get_body(("html",)).get_content()  # autoescaped
    assert "a < b & c" in msg.get_body(("plain",)).get_content()  # built-in text template, not escaped

    dept_dir = tmp_path / "dept"
    (dept_dir / "reply").mkdir(parents=True)
    (dept_dir / "reply" / "body.txt").write_text("{{ marker }}\nDEPT {{ body }}")
    with app.session() as s:
        set_department_options(s, actor=SYSTEM, department="Tech Support – Schule Nord",
                               templates_dir=str(dept_dir))
        s.commit()
    reply(app, body="second")
    msg = parse(outbox_rows(app)[1].raw)
    assert msg.get_body(("plain",)).get_content().splitlines()[1] == "DEPT second"
    assert msg["Subject"] == "[Ticket #1] Answer: Printer"  # the plugin's folder still applies


# ---- acknowledgements ------------------------------------------------------------------------

def ack_setup(env, *plugins, acknowledge=True):
    app = setup(env, *plugins)
    with app.session() as s:
        set_department_options(s, actor=SYSTEM, department="Tech Support – Schule Nord", acknowledge=acknowledge)
        s.commit()
    return app


def acks(app):
    return [r for r in outbox_rows(app) if r.kind == "acknowledgement"]


def test_acknowledgement_for_a_humans_new_ticket_only(hd_env):
    app = ack_setup(hd_env)
    ingest(app, plain(subject="Printer broken", msgid="<p1@example.test>"))
    [ack] = acks(app)
    msg = parse(ack.raw)
    assert msg["Auto-Submitted"] == "auto-replied" and msg["In-Reply-To"] == "<p1@example.test>"
    assert msg["Subject"] == "Re: [Ticket #1] Printer broken" and ack.recipients == ["alice@example.test"]
    assert REPLY_ABOVE_MARKER in msg.get_body(("plain",)).get_content()
    assert "[Ticket #1]" in msg.get_body(("plain",)).get_content()
    ingest(app, plain(subject="Re: [Ticket #1] Printer broken"))  # a follow-up: no new acknowledgement
    assert len(acks(app)) == 1


@pytest.mark.parametrize("raw", [
    plain(subject="Out of office", auto_submitted="auto-replied"),
    plain(subject="Newsletter", precedence="bulk"),
    plain(subject="List mail", list_id="<parents.lists.example.test>"),
    plain(subject="Undelivered Mail Returned to Sender", sender="MAILER-DAEMON@mx.example.test"),
    plain(subject="From ourselves", sender="techhelp@district.test"),
    plain(subject="Loop", x_helpdesk_loop="other@district.test"),
], ids=["auto-replied", "bulk", "list", "mailer-daemon", "own-address", "loop-header"])
def test_no_acknowledgement_for_automatic_mail(hd_env, raw):
    app = ack_setup(hd_env)
    assert ingest(app, raw).status in ("created", "skipped")  # a classifier may skip it altogether
    assert acks(app) == []


def test_no_acknowledgement_for_a_bounce_report(hd_env):
    bounce = (b"From: Mail Delivery System <MAILER-DAEMON@mx.example.test>\r\n"
              b"To: techhelp@district.test\r\nSubject: Undelivered Mail\r\n"
              b"Message-ID: <bounce1@mx.example.test>\r\nMIME-Version: 1.0\r\n"
              b"Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
              b"--B\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
              b"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
              b"Final-Recipient: rfc822; x@example.test\r\nAction: failed\r\nStatus: 5.1.1\r\n--B--\r\n")
    app = ack_setup(hd_env)
    ingest(app, bounce)
    assert acks(app) == []


class NoAcks:
    active = True

    @hookimpl
    def helpdesk_classify_message(self, message):
        return Classification(kind="normal", may_acknowledge=False) if self.active else None


def test_acknowledgement_respects_classification_option_and_rate_limit(hd_env):
    plugin = NoAcks()
    app = ack_setup(hd_env, plugin)
    ingest(app, plain(subject="Quiet"))
    assert acks(app) == []
    plugin.active = False

    with app.session() as s:
        set_department_options(s, actor=SYSTEM, department="Tech Support – Schule Nord", acknowledge=False)
        s.commit()
    ingest(app, plain(subject="Off", sender="carol@example.test"))
    assert acks(app) == []

    with app.session() as s:
        options = set_department_options(s, actor=SYSTEM, department="Tech Support – Schule Nord",
                                         acknowledge=True)
        s.commit()
    assert options == {"acknowledge": True, "reopen_closed": True, "templates_dir": None}
    for n in range(5):
        ingest(app, plain(subject=f"Request {n}", sender="dave@example.test"))
    assert len(acks(app)) == 3  # mail.acknowledgements_per_hour


# ---- the command line ------------------------------------------------------------------------

def test_cli_department_set_reply_and_outbox_list(cli, tmp_path):
    cli("department", "add", "Tech", "--sender", "techhelp@district.test")
    cli("department", "set-mailbox", "Tech", "--protocol", "maildir", "--path", str(tmp_path / "Maildir"),
        "--email", "techhelp@district.test", "--no-validate")  # no SMTP: replies stay queued
    out = cli("department", "set", "Tech", "--acknowledge", "--new-ticket-on-closed").output
    assert "acknowledge=True" in out and "reopen_closed=False" in out
    cli("user", "add", "agent@district.test", "--role", "agent", "--department", "Tech")
    cli("ingest", "--department", "Tech", input=plain())
    (tmp_path / "body.txt").write_text("On it.\n")
    (tmp_path / "log.txt").write_text("log\n")
    out = cli("ticket", "reply", "1", "--body-file", str(tmp_path / "body.txt"), "--as", "agent@district.test",
              "--attach", str(tmp_path / "log.txt"), "--queue-only").output
    assert "queued for alice@example.test" in out
    listing = cli("outbox", "list").output
    assert "queued" in listing and "acknowledgement" in listing and "Re: [Ticket #1] Printer broken" in listing
    shown = cli.json("ticket", "show", "1", "--json")
    assert shown["messages"][1]["direction"] == "outbound"
    assert shown["messages"][1]["attachments"][0]["filename"] == "log.txt"
    denied = cli("--as", "alice@example.test", "ticket", "reply", "1", "--body-file", str(tmp_path / "body.txt"),
                 ok=False)
    assert denied.exit_code == 1 and "requesters answer tickets by mail" in denied.output
    note = cli("ticket", "reply", "1", "--body-file", str(tmp_path / "body.txt"), "--internal").output
    assert "Internal note" in note and len(cli.json("outbox", "list", "--json")) == 2


def test_a_reply_waiting_for_reauthorisation_never_gives_up():
    from datetime import UTC, datetime, timedelta

    from helpdesk_core.errors import DeliveryError
    from helpdesk_core.models import OutboxMessage
    from helpdesk_core.outbound.outbox import FlushCounts, _record

    now = datetime.now(UTC)
    row = OutboxMessage(attempts=500, created_at=now - timedelta(days=30), status="sending")
    _record(row, DeliveryError("run helpdesk department connect-google", kind="needs_reauthorization"),
            now, FlushCounts())
    assert row.status == "queued" and row.next_attempt_at > now
