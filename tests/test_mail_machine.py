"""A state machine over two departments' mailboxes: new mail, replies, forwards by strangers,
bounces, auto-replies, our own looped mail, duplicates delivered twice, crashes between commit and
delete. Invariants: no message lost, none imported twice, no ticket gets a message from outside its
department, no automated mail opens a ticket, no acknowledgement goes to an automated sender
(checked on the outbox rows: departments acknowledge new tickets).

Runs on :class:`helpdesk_core.testing.fake.FakeProvider` with an in-memory SQLite database per
example copied from a migrated template. Example counts come from the repo's Hypothesis profile.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import func, select

from helpdesk_core.inbound.cycle import run_cycle
from helpdesk_core.models import Department, LedgerEntry, OutboxMessage, Ticket, TicketMessage
from helpdesk_core.models.imports import ledger_key
from helpdesk_core.services.departments import add_department, set_mailbox
from helpdesk_core.services.permissions import SYSTEM
from helpdesk_core.settings import set_setting
from helpdesk_core.testing.apps import memory_app
from helpdesk_core.testing.fake import FakePlugin

from mailfactory import plain

_IDS = itertools.count(1)
DEPTS = {"Tech": "techhelp@district.test", "Library": "library@district.test"}
PEOPLE = ["alice@example.test", "bob@example.test", "carol@example.test"]
STRANGER = "mallory@elsewhere.test"
AUTOMATED = {"mailer-daemon@mx.example.test", "ooo@example.test", *DEPTS.values()}


fresh_app = memory_app  # a migrated in-memory installation per example


def _bounce(mid: str, returned: str) -> bytes:
    return (
        f"From: MAILER-DAEMON@mx.example.test\r\nTo: x@district.test\r\nSubject: Undelivered Mail\r\n"
        f"Message-ID: <{mid}>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        "Final-Recipient: rfc822; alice@example.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        f"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{returned}>\r\nSubject: x\r\n--B--\r\n"
    ).encode()


class MailMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self) -> None:
        self.fake = FakePlugin()
        self.app = fresh_app(self.fake)
        self.boxes = {}
        self.dept_ids: dict[str, int] = {}
        with self.app.session() as s:
            for name, sender in DEPTS.items():
                dept = add_department(s, actor=SYSTEM, name=name, sender=sender)
                dept.options = {"acknowledge": True}
                self.boxes[name] = self.fake.provider.mailbox(name.lower())
                set_mailbox(self.app, s, actor=SYSTEM, department=name, provider="fake",
                            config={"mailbox": name.lower()}, secrets={})
                self.dept_ids[name] = dept.id
            set_setting(s, "mail.rate_limit_per_hour", 0)
            s.commit()
        #: Message-ID -> (department, kind, sender); kind: person, reply, forward, auto, bounce, own
        self.sent: dict[str, tuple[str, str, str]] = {}
        self.raws: dict[str, bytes] = {}
        #: reply Message-ID -> the Message-ID it answers
        self.replies: dict[str, str] = {}

    def teardown(self) -> None:
        app = getattr(self, "app", None)
        if app is None:
            return
        try:
            for name in DEPTS:
                for _ in range(3):
                    assert run_cycle(app, self.dept_ids[name], batch_size=7).error is None
                    if not len(self.boxes[name]):
                        break
                assert len(self.boxes[name]) == 0, "mailbox not drained"
            with app.session() as s:
                ledger = {(e.department_id, e.key) for e in s.scalars(select(LedgerEntry))}
                stored = {m.message_id: m for m in s.scalars(select(TicketMessage))}
                for mid, (dept, kind, _sender) in self.sent.items():
                    assert (self.dept_ids[dept], ledger_key(mid, "")) in ledger, f"lost: {kind} {mid}"
                    if kind in ("person", "reply", "forward"):
                        assert mid in stored, f"{kind} {mid} not on a ticket"
                for reply, original in self.replies.items():
                    assert stored[reply].ticket_id == stored[original].ticket_id, "reply not threaded"
                for mid, (dept, kind, sender) in self.sent.items():
                    if kind == "forward":
                        ticket = s.get(Ticket, stored[mid].ticket_id)
                        assert ticket.requester.email == sender, "a stranger's mail joined a ticket"
        finally:
            app.engine.dispose()

    def _deliver(self, dept: str, kind: str, sender: str, raw: bytes, mid: str) -> None:
        self.sent[mid] = (dept, kind, sender)
        self.raws[mid] = raw
        self.boxes[dept].deliver(raw)

    def _people_mail(self, dept: str | None = None) -> list[str]:
        return sorted(m for m, (d, k, _) in self.sent.items()
                      if k in ("person", "reply") and (dept is None or d == dept))

    # ---- deliveries ------------------------------------------------------------------------

    @rule(dept=st.sampled_from(sorted(DEPTS)), sender=st.sampled_from(PEOPLE))
    def new_mail(self, dept: str, sender: str) -> None:
        mid = f"n{next(_IDS)}@example.test"
        self._deliver(dept, "person", sender, plain(subject=f"Case {mid}", sender=sender, msgid=f"<{mid}>"), mid)

    @precondition(lambda self: bool(self._people_mail()))
    @rule(data=st.data())
    def reply(self, data: st.DataObject) -> None:
        original = data.draw(st.sampled_from(self._people_mail()))
        dept, _kind, sender = self.sent[original]
        mid = f"r{next(_IDS)}@example.test"
        raw = plain(subject="Re: Case", sender=sender, msgid=f"<{mid}>", In_Reply_To=f"<{original}>")
        self.replies[mid] = original
        self._deliver(dept, "reply", sender, raw, mid)

    @rule(dept=st.sampled_from(sorted(DEPTS)), number=st.integers(1, 4))
    def stranger_forward(self, dept: str, number: int) -> None:
        mid = f"f{next(_IDS)}@elsewhere.test"
        raw = plain(subject=f"Fwd: Re: [Ticket #{number}] Case", sender=STRANGER, msgid=f"<{mid}>")
        self._deliver(dept, "forward", STRANGER, raw, mid)

    @precondition(lambda self: bool(self._people_mail()))
    @rule(data=st.data(), threads=st.booleans())
    def auto_reply(self, data: st.DataObject, threads: bool) -> None:
        original = data.draw(st.sampled_from(self._people_mail()))
        dept = self.sent[original][0]
        mid = f"a{next(_IDS)}@example.test"
        headers = {"In_Reply_To": f"<{original}>"} if threads else {}
        raw = plain(subject="Out of office", sender="ooo@example.test", msgid=f"<{mid}>",
                    Auto_Submitted="auto-replied", **headers)
        self._deliver(dept, "auto", "ooo@example.test", raw, mid)

    @rule(dept=st.sampled_from(sorted(DEPTS)), data=st.data())
    def bounce(self, dept: str, data: st.DataObject) -> None:
        with self.app.session() as s:
            ours = list(s.scalars(select(OutboxMessage.message_id)
                                  .where(OutboxMessage.department_id == self.dept_ids[dept])))
        returned = data.draw(st.sampled_from(ours)) if ours and data.draw(st.booleans()) else "x@nowhere.test"
        mid = f"b{next(_IDS)}@mx.example.test"
        self._deliver(dept, "bounce", "mailer-daemon@mx.example.test", _bounce(mid, returned), mid)

    @rule(dept=st.sampled_from(sorted(DEPTS)))
    def own_mail(self, dept: str) -> None:
        mid = f"o{next(_IDS)}@district.test"
        raw = plain(subject="Re: [Ticket #1] Case", sender=DEPTS[dept], msgid=f"<{mid}>",
                    X_Helpdesk_Loop=DEPTS[dept])
        self._deliver(dept, "own", DEPTS[dept], raw, mid)

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data())
    def duplicate(self, data: st.DataObject) -> None:
        mid = data.draw(st.sampled_from(sorted(self.sent)))
        self.boxes[self.sent[mid][0]].deliver(b"Received: from relay.example.test\r\n" + self.raws[mid])

    # ---- cycles and crashes ----------------------------------------------------------------

    @rule(dept=st.sampled_from(sorted(DEPTS)), batch_size=st.integers(1, 5))
    def cycle(self, dept: str, batch_size: int) -> None:
        result = run_cycle(self.app, self.dept_ids[dept], batch_size=batch_size)
        assert result.error is None and result.failed == 0, result

    @rule(dept=st.sampled_from(sorted(DEPTS)), batch_size=st.integers(1, 5))
    def crash_between_commit_and_delete(self, dept: str, batch_size: int) -> None:
        self.boxes[dept].fail_delete = True
        run_cycle(self.app, self.dept_ids[dept], batch_size=batch_size)
        self.boxes[dept].fail_delete = False

    # ---- invariants ------------------------------------------------------------------------

    @invariant()
    def consistent(self) -> None:
        if not hasattr(self, "app"):
            return
        with self.app.session() as s:
            counts = s.execute(select(TicketMessage.message_id, func.count())
                               .group_by(TicketMessage.message_id)).all()
            assert all(n == 1 for _mid, n in counts), "imported twice"
            names = {d.id: d.name for d in s.scalars(select(Department))}
            for tm in s.scalars(select(TicketMessage)):
                dept, kind, _sender = self.sent[tm.message_id]
                assert tm.department_id == tm.ticket.department_id == self.dept_ids[dept], \
                    f"{kind} of {dept} stored in {names[tm.ticket.department_id]}"
                if kind in ("auto", "bounce", "own"):
                    assert tm.direction == "note" and tm.ticket.messages[0].id != tm.id, \
                        f"{kind} mail opened a ticket"
            for row in s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "acknowledgement")):
                assert row.to_email not in AUTOMATED, f"acknowledgement sent to {row.to_email}"


MailMachine.TestCase.settings = settings(settings.default, stateful_step_count=20)
TestMailMachine = MailMachine.TestCase
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
