"""Ledger properties: whatever interleaving of deliveries, duplicates, cycles and crashes, once the
mailbox is drained every distinct Message-ID is in exactly one ticket message, and never in two.

Runs against :class:`helpdesk_core.testing.fake.FakeProvider` (no server) on a fresh in-memory
SQLite database per example (copied from a migrated template: an Alembic upgrade per example would
cost more than the example). Example counts come from the repo's Hypothesis profile.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import func, select

from helpdesk_core import hookimpl
from helpdesk_core.inbound.cycle import run_cycle
from helpdesk_core.models import KeptMail, LedgerEntry, Mailbox, TicketMessage
from helpdesk_core.services.departments import add_department, set_mailbox
from helpdesk_core.services.permissions import SYSTEM
from helpdesk_core.testing.apps import memory_app
from helpdesk_core.testing.fake import FakePlugin

from mailfactory import plain

_IDS = itertools.count(1)


class SimulatedCrash(BaseException):
    """The process dies: not an Exception, so nothing in the importer may swallow it."""


class CrashPlugin:
    """Dies inside the importer's transaction, after ``crash_after`` more messages were stored."""

    def __init__(self) -> None:
        self.crash_after: int | None = None

    @hookimpl
    def helpdesk_message_imported(self) -> None:
        if self.crash_after is None:
            return
        if self.crash_after == 0:
            self.crash_after = None
            raise SimulatedCrash("killed before commit")
        self.crash_after -= 1


fresh_app = memory_app  # a migrated in-memory installation per example


def test_make_engine_in_memory_static_pool_works():
    app = fresh_app(FakePlugin())
    with app.session() as session:
        add_department(session, actor=SYSTEM, name="Tech", sender="tech@district.test")
        session.commit()
    with app.session() as session:  # another session sees it: one shared connection
        assert session.scalar(select(func.count()).select_from(Mailbox)) == 0
        assert [d for d in session.execute(select(LedgerEntry)).all()] == []
    app.engine.dispose()


class LedgerMachine(RuleBasedStateMachine):
    @initialize(transactional=st.booleans())
    def setup(self, transactional: bool) -> None:
        self.fake = FakePlugin()
        self.crash = CrashPlugin()
        self.app = fresh_app(self.fake, self.crash)
        self.box = self.fake.provider.mailbox("tech", transactional=transactional)
        with self.app.session() as session:
            dept = add_department(session, actor=SYSTEM, name="Tech", sender="tech@district.test")
            set_mailbox(self.app, session, actor=SYSTEM, department="Tech", provider="fake",
                        config={"mailbox": "tech"}, secrets={})
            session.commit()
            self.dept_id = dept.id
        self.delivered: dict[str, bytes] = {}  # Message-ID (no brackets) -> first raw

    def teardown(self) -> None:
        app = getattr(self, "app", None)
        if app is None:
            return
        try:
            for _ in range(3):  # drain with a healthy mailbox
                result = run_cycle(app, self.dept_id, batch_size=7)
                assert result.error is None, result.error
                if len(self.box) == 0:
                    break
            assert len(self.box) == 0, "mailbox not drained"
            counts = self._counts()
            assert counts == {mid: 1 for mid in self.delivered}, "lost or duplicated messages"
            with app.session() as session:
                assert session.scalar(select(func.count()).select_from(KeptMail)) == 0
        finally:
            app.engine.dispose()

    def _counts(self) -> dict[str, int]:
        with self.app.session() as session:
            rows = session.execute(select(TicketMessage.message_id, func.count())
                                   .group_by(TicketMessage.message_id)).all()
        return {mid: n for mid, n in rows}

    # ---- deliveries ------------------------------------------------------------------------

    @rule(reply=st.booleans())
    def deliver_new(self, reply: bool) -> None:
        n = next(_IDS)
        mid = f"m{n}.{id(self)}@example.test"
        headers = {}
        if reply and self.delivered:
            headers["In_Reply_To"] = f"<{next(iter(self.delivered))}>"
        raw = plain(subject=f"Case {n}", body=f"Message {n}\n", msgid=f"<{mid}>", **headers)
        self.delivered[mid] = raw
        self.box.deliver(raw)

    @precondition(lambda self: bool(self.delivered))
    @rule(data=st.data(), same_bytes=st.booleans())
    def deliver_duplicate(self, data: st.DataObject, same_bytes: bool) -> None:
        mid = data.draw(st.sampled_from(sorted(self.delivered)))
        raw = self.delivered[mid]
        # a copy via another route: the same Message-ID with an extra trace header
        self.box.deliver(raw if same_bytes else b"Received: from relay.example.test\r\n" + raw)

    # ---- cycles and crashes ----------------------------------------------------------------

    @rule(batch_size=st.integers(1, 5))
    def cycle(self, batch_size: int) -> None:
        result = run_cycle(self.app, self.dept_id, batch_size=batch_size)
        assert result.error is None, result.error
        assert result.failed == 0
        assert result.created + result.updated + result.skipped == result.fetched

    @rule(batch_size=st.integers(1, 5))
    def crash_between_commit_and_delete(self, batch_size: int) -> None:
        self.box.fail_delete = True
        result = run_cycle(self.app, self.dept_id, batch_size=batch_size)
        if result.fetched:
            assert result.error_kind == "server_error"
        self.box.fail_delete = False

    @rule(batch_size=st.integers(1, 5))
    def crash_after_mailbox_deleted(self, batch_size: int) -> None:
        self.box.crash_after_checkpoint = SimulatedCrash("killed right after the mailbox deleted")
        try:
            run_cycle(self.app, self.dept_id, batch_size=batch_size)
        except SimulatedCrash:
            pass
        self.box.crash_after_checkpoint = None

    @rule(after=st.integers(0, 6), batch_size=st.integers(1, 5))
    def connection_lost_while_fetching(self, after: int, batch_size: int) -> None:
        self.box.fail_fetch_after = after
        result = run_cycle(self.app, self.dept_id, batch_size=batch_size)
        if self.box.fail_fetch_after is None:
            assert result.error_kind == "server_error"
        self.box.fail_fetch_after = None

    @rule(after=st.integers(0, 4), batch_size=st.integers(1, 5))
    def crash_before_commit(self, after: int, batch_size: int) -> None:
        self.crash.crash_after = after
        try:
            run_cycle(self.app, self.dept_id, batch_size=batch_size)
        except SimulatedCrash:
            pass
        self.crash.crash_after = None

    # ---- invariants ------------------------------------------------------------------------

    @invariant()
    def never_twice(self) -> None:
        if not hasattr(self, "app"):
            return
        counts = self._counts()
        assert all(n == 1 for n in counts.values()), counts
        assert set(counts) <= set(self.delivered)

    @invariant()
    def lease_released(self) -> None:
        if not hasattr(self, "app"):
            return
        with self.app.session() as session:
            assert session.scalar(select(Mailbox.lease_owner)) is None


LedgerMachine.TestCase.settings = settings(settings.default, stateful_step_count=20)
TestLedger = LedgerMachine.TestCase
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
