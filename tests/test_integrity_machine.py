"""The import invariant of issue 11, as a state machine on SQLite and PostgreSQL.

Every mail handed to the importer ends in exactly one of: *imported* (a ticket message with its
raw digest), *skipped* with a logged reason, *held*, *failed* (raw kept byte-identical), a logged
*duplicate*, or *left in the mailbox* with a logged reason (``retry``, ``kept``) -- each one a line
of ``helpdesk log`` (except plain imports) and counted in the mailbox's reconciliation counts,
which never show a gap. Deliveries: valid mail, malformed bytes, over-size mail, mail reusing a
Message-ID, duplicates, poison (a plugin raises for it), automated mail; crashes inside the
importer's transaction; changes of ``mail.max_message_size_mb`` and ``mail.rate_limit_per_hour``.
After every cycle that did not crash, valid mail delivered before it is no longer in the mailbox:
later mail is never blocked.

SQLite examples use a migrated in-memory template; PostgreSQL examples share one migrated
database, emptied per example (TRUNCATE), so the machine stays cheap in CI.
"""

from __future__ import annotations

import hashlib
import itertools

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, \
    run_state_machine_as_test
from sqlalchemy import select, text

from helpdesk_core import hookimpl
from helpdesk_core.inbound.cycle import run_cycle
from helpdesk_core.models import Base, KeptMail, ImportEvent, TicketMessage
from helpdesk_core.services.departments import add_department, department_status, set_mailbox
from helpdesk_core.services.permissions import SYSTEM
from helpdesk_core.settings import set_setting
from helpdesk_core.testing.apps import make_app, memory_app
from helpdesk_core.testing.fake import FakePlugin

from mailfactory import plain
from test_ledger_properties import CrashPlugin, SimulatedCrash

_IDS = itertools.count(1)
SMALL_MB, LARGE_MB = 0.05, 1.0
MALFORMED = [b"\xff garbage \r\n\r\n\x80\x81" * 40, b"no headers at all",
             b"Subject: =?x-unknown?B?////?=\r\nContent-Type: multipart/mixed; boundary=\r\n\r\n--\r\n",
             b"From: a@example.test\r\nMessage-ID: <\x00nul@x>\r\nSubject: nul id\r\n\r\nbody\r\n",
             b"Message-ID: <" + b"L" * 1200 + b"@x>\r\nFrom: b@example.test\r\n\r\nlong id\r\n"]
TERMINAL_EVENTS = {"skipped", "held", "failed", "duplicate"}
WAITING_EVENTS = {"retry", "kept"}


class Poison:
    @hookimpl(tryfirst=True)
    def helpdesk_message_to_ticket(self, message):
        if message.subject.startswith("POISON"):
            raise RuntimeError("poisoned by the test plugin")


def _sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


class IntegrityMachine(RuleBasedStateMachine):
    #: builds an application with the given plugins on an empty migrated database (set per test)
    make = staticmethod(lambda *plugins: memory_app(*plugins))

    @initialize()
    def setup(self) -> None:
        self.fake, self.crash = FakePlugin(), CrashPlugin()
        self.app = self.make(self.fake, self.crash, Poison())
        self.box = self.fake.provider.mailbox("tech")
        with self.app.session() as s:
            dept = add_department(s, actor=SYSTEM, name="Tech", sender="techhelp@district.test")
            set_mailbox(self.app, s, actor=SYSTEM, department="Tech", provider="fake",
                        config={"mailbox": "tech"}, secrets={})
            set_setting(s, "mail.rate_limit_per_hour", 0)
            set_setting(s, "mail.max_message_size_mb", LARGE_MB)
            s.commit()
            self.dept_id = dept.id
        #: raw digest -> (kind, raw); every delivery is unique bytes
        self.mails: dict[str, tuple[str, bytes]] = {}
        self.ids: list[str] = []
        self.limit = LARGE_MB

    def teardown(self) -> None:
        app = getattr(self, "app", None)
        if app is None:
            return
        try:
            self.set_limit(LARGE_MB)
            for _ in range(4):  # poison needs three attempts
                self.cycle(batch_size=10)
            assert len(self.box) == 0, "mailbox not drained"
            self.accounted(final=True)
        finally:
            app.engine.dispose()

    def _deliver(self, kind: str, raw: bytes) -> None:
        assert _sha(raw) not in self.mails
        self.mails[_sha(raw)] = (kind, raw)
        self.box.deliver(raw)

    # ---- deliveries ------------------------------------------------------------------------

    @rule(sender=st.sampled_from(["alice@example.test", "bob@example.test"]))
    def valid(self, sender: str) -> None:
        n = next(_IDS)
        mid = f"v{n}@example.test"
        self.ids.append(mid)
        self._deliver("valid", plain(subject=f"Case {n}", sender=sender, msgid=f"<{mid}>", body=f"n{n}\n"))

    @precondition(lambda self: bool(self.ids))
    @rule(data=st.data())
    def reusing_an_id(self, data: st.DataObject) -> None:
        mid = data.draw(st.sampled_from(self.ids))
        n = next(_IDS)
        self._deliver("valid", plain(subject=f"Reused {n}", msgid=f"<{mid}>", body=f"other {n}\n"))

    @precondition(lambda self: bool(self.mails))
    @rule(data=st.data())
    def duplicate(self, data: st.DataObject) -> None:
        digest = data.draw(st.sampled_from(sorted(self.mails)))
        kind, raw = self.mails[digest]
        self._deliver("duplicate" if kind == "valid" else f"copy of {kind}",
                      f"Received: from relay{next(_IDS)}.example.test\r\n".encode() + raw)

    @rule(which=st.integers(0, len(MALFORMED) - 1))
    def malformed(self, which: int) -> None:
        self._deliver("malformed", MALFORMED[which] + f"\r\nX-N: {next(_IDS)}\r\n".encode())

    @rule()
    def oversize(self) -> None:
        n = next(_IDS)
        self._deliver("oversize", plain(subject=f"Big {n}", msgid=f"<big{n}@example.test>",
                                        body=("z" * 70 + "\n") * 1200))

    @rule()
    def poison(self) -> None:
        n = next(_IDS)
        self._deliver("poison", plain(subject=f"POISON {n}", msgid=f"<p{n}@example.test>"))

    @rule()
    def automated(self) -> None:
        n = next(_IDS)
        self._deliver("automated", plain(subject="Out of office", sender="ooo@example.test",
                                         msgid=f"<a{n}@example.test>", Auto_Submitted="auto-replied"))

    # ---- cycles, crashes and settings --------------------------------------------------------

    @rule(batch_size=st.integers(1, 6))
    def cycle(self, batch_size: int) -> None:
        before = {key for key, raw in self.box.snapshot()
                  if self.mails.get(_sha(raw), ("",))[0] == "valid"}
        result = run_cycle(self.app, self.dept_id, batch_size=batch_size)
        assert result.error is None, result
        assert result.created + result.updated + result.failed + result.skipped == result.fetched
        still = {key for key, _raw in self.box.snapshot()}
        assert not (before & still), "valid mail was left behind: later mail blocked"

    @rule(after=st.integers(0, 3), batch_size=st.integers(1, 6))
    def crash(self, after: int, batch_size: int) -> None:
        self.crash.crash_after = after
        try:
            run_cycle(self.app, self.dept_id, batch_size=batch_size)
        except SimulatedCrash:
            pass
        self.crash.crash_after = None

    @rule(small=st.booleans())
    def size_limit(self, small: bool) -> None:
        self.set_limit(SMALL_MB if small else LARGE_MB)

    @rule(limit=st.sampled_from([0, 1, 20]))
    def rate_limit(self, limit: int) -> None:
        with self.app.session() as s:
            set_setting(s, "mail.rate_limit_per_hour", limit)
            s.commit()

    def set_limit(self, mb: float) -> None:
        with self.app.session() as s:
            set_setting(s, "mail.max_message_size_mb", mb)
            s.commit()
        self.limit = mb

    # ---- the invariant -------------------------------------------------------------------------

    @invariant()
    def accounted(self, final: bool = False) -> None:
        if not hasattr(self, "app"):
            return
        in_box = {_sha(raw) for _key, raw in self.box.snapshot()}
        with self.app.session() as s:
            imported = [tm.raw_sha256 for tm in s.scalars(select(TicketMessage))]
            failed = {f.raw_sha256: f for f in s.scalars(select(KeptMail))}
            events: dict[str, set[str]] = {}
            for e in s.scalars(select(ImportEvent)):
                events.setdefault(e.raw_sha256, set()).add(e.outcome)
            counts = department_status(s, actor=SYSTEM, department="Tech")["counts"]
        assert len(imported) == len(set(imported)), "a mail imported twice"
        assert counts["gap"] == 0, counts
        for digest, (kind, raw) in self.mails.items():
            logged = events.get(digest, set())
            endings = [digest in imported, bool(logged & TERMINAL_EVENTS - {"held", "failed"}),
                       digest in failed]
            if digest in in_box:
                assert not any(endings), f"{kind} mail both handled and still in the mailbox"
                if final:
                    raise AssertionError(f"{kind} mail still in the mailbox")
                continue
            assert sum(endings) == 1, f"{kind} mail: not exactly one outcome ({endings}, {logged})"
            if digest in failed:
                row = failed[digest]
                assert row.raw == raw, "kept raw mail is not byte-identical"
                assert logged & {"failed", "held"}, "failed or held mail not in the log"
            elif digest not in imported:
                assert logged & TERMINAL_EVENTS, "skipped mail without a logged reason"
            if kind == "duplicate":
                assert digest not in imported and "duplicate" in logged
            if kind == "poison":  # failed -- or, when a copy of it got there first, its duplicate
                assert digest in failed or "duplicate" in logged, logged
        for digest in in_box:
            logged = events.get(digest, set())
            assert not logged or logged <= WAITING_EVENTS | {"reused"}, (self.mails[digest][0], logged)


def _run(make) -> None:
    machine = type("Machine", (IntegrityMachine,), {"make": staticmethod(make)})
    run_state_machine_as_test(machine, settings=settings(
        settings.default, max_examples=min(settings.default.max_examples, 50), stateful_step_count=10))


def test_invariant_on_sqlite():
    _run(memory_app)


def test_invariant_on_postgresql(postgres_url, tmp_path):
    from helpdesk_core.testing.apps import environment

    env = environment(tmp_path / "home", postgres_url)
    template = make_app(env)
    template.upgrade()
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    template.engine.dispose()

    def fresh(*plugins):
        app = make_app(env, extra_plugins=plugins)
        with app.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        return app

    _run(fresh)


pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
