"""Chunks written in bulk (``importer._Chunk``) store exactly what the per-message path stores, a
bad message in a chunk costs only itself, and fetching the next batch ahead (``cycle.FetchAhead``)
loses and duplicates nothing when the process dies between that fetch and the commit."""

from __future__ import annotations

import functools
import threading

import pytest
from sqlalchemy import func, select

from helpdesk_core import hookimpl
from helpdesk_core.defaults import store
from helpdesk_core.inbound import importer
from helpdesk_core.inbound.cycle import run_cycle
from helpdesk_core.models import ImportEvent, LedgerEntry, Ticket, TicketMessage, User
from helpdesk_core.services.departments import add_department, set_mailbox
from helpdesk_core.services.permissions import SYSTEM
from helpdesk_core.testing.fake import FakePlugin, FakeSession

from conftest import make_app, memory_app
from mailfactory import plain


@functools.cache
def _mails() -> tuple[bytes, ...]:
    """New threads, replies and a subject reference to tickets of the same chunk, one sender
    twice, a duplicate, an empty mail, a Message-ID reused with other content, an auto-reply.
    Built once: ``plain()`` dates a mail when it is built, and both paths must get the same bytes."""
    new = [plain(subject=f"Case {i}", sender=f"P{i} <p{i}@example.test>", msgid=f"<n{i}@example.test>",
                 body=f"Message {i}\n") for i in range(8)]
    return (
        *new[:4],
        plain(subject="Re: Case 1", sender="P1 <p1@example.test>", msgid="<r1@example.test>",
              In_Reply_To="<n1@example.test>", body="Thanks\n"),
        new[4],
        plain(subject="Re: [Ticket #3] still broken", sender="P2 <p2@example.test>", msgid="<r3@example.test>",
              body="Still broken\n"),
        new[1],  # the same mail again
        b"",
        plain(subject="Another thing", sender="P5 <p5@example.test>", msgid="<n5@example.test>",
              body="Other content\n"),
        plain(subject="Out of office", sender="P6 <p6@example.test>", msgid="<ooo@example.test>",
              Auto_Submitted="auto-replied", body="I am away\n"),
        *new[5:],
        plain(subject="Case 9", sender="P1 <p1@example.test>", msgid="<n9@example.test>", body="Again\n"),
    )


def _setup(app, fake: FakePlugin) -> int:
    with app.session() as session:
        dept = add_department(session, actor=SYSTEM, name="Tech", sender="tech@district.test")
        set_mailbox(app, session, actor=SYSTEM, department="Tech", provider="fake",
                    config={"mailbox": "tech"}, secrets={})
        session.commit()
        return dept.id


def _snapshot(app) -> dict[str, object]:
    with app.session() as session:
        tickets = [(t.number, t.subject, str(t.status), t.requester.email if t.requester else None,
                    sorted(t.participants), t.mentions)
                   for t in session.scalars(select(Ticket).order_by(Ticket.number))]
        messages = [(m.ticket.number, m.message_id, str(m.direction), m.kind, m.body_text, m.raw_sha256)
                    for m in session.scalars(select(TicketMessage).order_by(TicketMessage.id))]
        ledger = sorted((e.key, e.outcome, e.reason or "") for e in session.scalars(select(LedgerEntry)))
        events = sorted((e.key, e.outcome, e.kind) for e in session.scalars(select(ImportEvent)))
        users = sorted(session.scalars(select(User.email)))
    return {"tickets": tickets, "messages": messages, "ledger": ledger, "events": events, "users": users}


@pytest.fixture
def chunks(monkeypatch) -> list[int]:
    """The size of every run written by ``store_chunk`` (in process parsing: one chunk a batch)."""
    monkeypatch.setenv("HELPDESK_PARSE_WORKERS", "0")
    sizes: list[int] = []
    real = store.store_chunk

    def spy(context, department, built, ledger):
        sizes.append(len(built))
        return real(context, department, built, ledger)

    monkeypatch.setattr(importer, "store_chunk", spy)
    return sizes


def _import(app, fake: FakePlugin, batch_size: int = 50):
    dept_id = _setup(app, fake)
    box = fake.provider.mailbox("tech")
    for raw in _mails():
        box.deliver(raw)
    result = run_cycle(app, dept_id, batch_size=batch_size)
    assert result.error is None, result.error
    return result, box


def test_a_chunk_in_bulk_stores_what_the_per_message_path_stores(hd_env, chunks, monkeypatch):
    fake = FakePlugin()
    app = make_app(hd_env, (fake,))
    app.upgrade()
    try:
        result, box = _import(app, fake)
        bulk = _snapshot(app)
    finally:
        app.engine.dispose()
    assert max(chunks) >= 3, chunks  # runs of several messages were written in bulk
    monkeypatch.setenv("HELPDESK_BULK", "0")
    written = len(chunks)
    ref_fake = FakePlugin()
    ref = memory_app(ref_fake)
    try:
        ref_result, _ = _import(ref, ref_fake)
        per_message = _snapshot(ref)
    finally:
        ref.engine.dispose()
    assert len(chunks) == written  # the reference ran message by message
    assert result.as_json() == ref_result.as_json()
    assert bulk == per_message
    assert (result.created, result.updated, result.duplicates) == (10, 2, 1)
    assert len(box) == 0


class Poison:
    """``helpdesk_message_imported`` fails for one mail: its run is redone one by one."""

    @hookimpl
    def helpdesk_message_imported(self, message) -> None:
        if message.subject == "poison":
            raise ValueError("this one is bad")


def test_one_bad_message_in_a_bulk_chunk_costs_only_itself(hd_env, chunks):
    fake = FakePlugin()
    app = make_app(hd_env, (fake, Poison()))
    app.upgrade()
    try:
        dept_id = _setup(app, fake)
        box = fake.provider.mailbox("tech")
        for i in range(6):
            box.deliver(plain(subject="poison" if i == 3 else f"Case {i}", sender=f"p{i}@example.test",
                              msgid=f"<p{i}@example.test>"))
        result = run_cycle(app, dept_id, batch_size=50)
        assert result.error is None
        assert (result.created, result.failed, result.retried, result.deleted) == (5, 1, 1, 5)
        assert chunks and chunks[0] >= 4  # tried in bulk first
        assert len(box) == 1  # the bad one stays for another attempt
        with app.session() as session:
            assert sorted(session.scalars(select(TicketMessage.subject))) == [f"Case {i}" for i in (0, 1, 2, 4, 5)]
            assert session.scalar(select(func.count()).select_from(Ticket)) == 5
    finally:
        app.engine.dispose()


class SimulatedCrash(BaseException):
    """The process dies (not an Exception: nothing may swallow it)."""


class CrashInBatch:
    """Dies while the second batch is being stored, once the third was fetched ahead."""

    def __init__(self) -> None:
        self.armed, self.fetched, self.all_fetched = True, 0, threading.Event()

    @hookimpl
    def helpdesk_message_imported(self, message) -> None:
        if self.armed and message.subject == "Case 4":
            self.armed = False
            assert self.all_fetched.wait(10), "the third batch was not fetched ahead"
            raise SimulatedCrash("killed between fetch-ahead and commit")


def test_kill_between_fetch_ahead_and_commit_loses_and_duplicates_nothing(hd_env, monkeypatch):
    monkeypatch.setenv("HELPDESK_PARSE_WORKERS", "0")
    fake, crash = FakePlugin(), CrashInBatch()
    real_fetch = FakeSession.fetch

    def fetch(self, *, batch_size=100):
        for batch in real_fetch(self, batch_size=batch_size):
            crash.fetched += len(batch)
            if crash.fetched == 9:
                crash.all_fetched.set()
            yield batch

    monkeypatch.setattr(FakeSession, "fetch", fetch)
    app = make_app(hd_env, (fake, crash))
    app.upgrade()
    try:
        dept_id = _setup(app, fake)
        box = fake.provider.mailbox("tech")
        for i in range(9):
            box.deliver(plain(subject=f"Case {i}", sender=f"p{i}@example.test", msgid=f"<k{i}@example.test>"))
        with pytest.raises(SimulatedCrash):
            run_cycle(app, dept_id, batch_size=3)
        assert len(box) == 6  # only the committed batch 1 was deleted; batch 3 was fetched, kept
        result = run_cycle(app, dept_id, batch_size=3)
        assert result.error is None and len(box) == 0
        assert (result.created, result.duplicates) == (6, 0)
        with app.session() as session:
            counts = dict(session.execute(select(TicketMessage.message_id, func.count())
                                          .group_by(TicketMessage.message_id)).all())
        assert counts == {f"k{i}@example.test": 1 for i in range(9)}
    finally:
        app.engine.dispose()
