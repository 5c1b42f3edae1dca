"""A message that cannot be imported never blocks the others: retried over cycles, then kept raw.

Counting contract (CycleResult / ``helpdesk import --json``): a message left in the mailbox for
another attempt (outcome ``retry``) counts as ``failed`` for that cycle, and so does the attempt
that finally keeps it as a failed import (then it is also ``deleted``).
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from helpdesk_core import hookimpl
from helpdesk_core.inbound.cycle import run_cycle
from helpdesk_core.models import Department, ImportAttempt, TicketMessage
from helpdesk_core.testing.fake import FakePlugin

from conftest import make_app
from mailfactory import html_and_text, latin1_8bit, plain, utf8_nonascii
from test_e2e_import import configure

POISON = "POISON: please crash"


class PoisonPlugin:
    """Stores nothing and raises for one subject; the core default stores everything else."""

    def __init__(self) -> None:
        self.active = True

    @hookimpl(tryfirst=True)
    def helpdesk_message_to_ticket(self, message):
        if self.active and message.subject == POISON:
            raise RuntimeError("poisoned by the test plugin")
        return None


def _dept_id(app, name: str = "Tech") -> int:
    with app.session() as session:
        return session.scalar(select(Department.id).where(Department.name == name))


def _balanced(result) -> bool:
    return result.created + result.updated + result.failed + result.skipped == result.fetched


@pytest.mark.parametrize(("protocol", "security"), [("imap", "ssl"), ("pop3", "starttls")])
def test_poison_message_retried_then_kept_and_retryable(cli, hd_env, dovecot, mail_user, protocol, security):
    configure(cli, dovecot, mail_user, protocol, security)
    poison_raw = plain(subject=POISON, body="This one breaks the plugin.\n")
    good = [plain(), html_and_text(), utf8_nonascii(), latin1_8bit()]
    mail_user.deliver(good[0])
    mail_user.deliver(poison_raw)
    for raw in good[1:]:
        mail_user.deliver(raw)
    plugin = PoisonPlugin()
    app = make_app(hd_env, extra_plugins=(plugin,))
    dept = _dept_id(app)
    try:
        first = run_cycle(app, dept)
        assert (first.fetched, first.created, first.failed, first.deleted) == (5, 4, 1, 4)
        assert first.error is None and _balanced(first)
        assert mail_user.count() == 1  # only the poison stays, the rest is imported at once
        second = run_cycle(app, dept)
        assert (second.fetched, second.created, second.failed, second.deleted) == (1, 0, 1, 0)
        assert mail_user.count() == 1
        with app.session() as session:
            assert session.scalar(select(ImportAttempt.attempts)) == 2
        third = run_cycle(app, dept)
        assert (third.fetched, third.failed, third.deleted) == (1, 1, 1)
        assert mail_user.count() == 0
        assert run_cycle(app, dept).fetched == 0
        with app.session() as session:  # attempts are folded into the failed import
            assert session.scalar(select(ImportAttempt.id)) is None
    finally:
        app.engine.dispose()

    status = cli.json("department", "status", "Tech", "--json")
    assert status["failed_imports"] == 1 and status["last_cycle"]["failed"] == 0
    listed = cli.json("failed", "list", "--json")
    assert len(listed) == 1
    entry = listed[0]
    assert entry["department"] == "Tech" and entry["subject"] == POISON and entry["attempts"] == 3
    assert "poisoned by the test plugin" in entry["error"] and entry["status"] == "failed"
    assert entry["sender"] == "alice@example.test"

    exported = cli("failed", "export", str(entry["id"])).stdout_bytes
    assert exported == poison_raw

    # the CLI's app has no poison plugin: the retry imports it
    out = cli("failed", "retry", str(entry["id"]))
    assert "Imported (created" in out.stdout
    assert cli.json("failed", "list", "--json") == []
    assert [f["status"] for f in cli.json("failed", "list", "--all", "--json")] == ["retried"]
    subjects = sorted(t["subject"] for t in cli.json("ticket", "list", "--json"))
    assert len(subjects) == 5 and POISON in subjects
    assert cli.json("department", "status", "Tech", "--json")["failed_imports"] == 0
    # retrying again is harmless: it is already imported
    cli("failed", "retry", str(entry["id"]))
    assert len(cli.json("ticket", "list", "--json")) == 5


def test_retry_that_still_fails_keeps_one_failed_import(cli, hd_env, tmp_path):
    """``failed retry`` while the bug is still there: still one failed import, exit non-zero."""
    fake = FakePlugin()
    plugin = PoisonPlugin()
    app = make_app(hd_env, extra_plugins=(fake, plugin))
    box = fake.provider.mailbox("tech")
    try:
        with app.session() as session:
            from helpdesk_core.services.departments import add_department, set_mailbox
            from helpdesk_core.services.failed import list_failed, retry_failed
            from helpdesk_core.services.permissions import SYSTEM

            add_department(session, actor=SYSTEM, name="Tech", sender="tech@district.test")
            set_mailbox(app, session, actor=SYSTEM, department="Tech", provider="fake",
                        config={"mailbox": "tech"}, secrets={})
            session.commit()
        box.deliver(plain(subject=POISON))
        dept = _dept_id(app)
        for _ in range(3):
            run_cycle(app, dept)
        assert len(box) == 0
        with app.session() as session:
            failed_id = list_failed(session, actor=SYSTEM)[0]["id"]
            outcome = retry_failed(app, session, actor=SYSTEM, failed_id=failed_id)
            session.commit()
            assert outcome.status == "failed"
            rows = list_failed(session, actor=SYSTEM, include_retried=True)
            assert [(r["id"], r["status"], r["attempts"]) for r in rows] == [(failed_id, "failed", 4)]
    finally:
        app.engine.dispose()


def test_parser_crash_and_garbage_do_not_block_the_mailbox(hd_env, app, monkeypatch):
    """parse_message promises never to raise; if it ever does, that message is retried and kept like
    any other failure while the rest of the batch is imported."""
    import helpdesk_core.inbound.parsepool as parsing_entry  # where the importer's parsing happens

    real_parse = parsing_entry.parse_message

    def choking_parse(raw: bytes, **kwargs):
        if b"CHOKE" in raw:
            raise RecursionError("maximum recursion depth exceeded while parsing")
        return real_parse(raw, **kwargs)

    monkeypatch.setattr(parsing_entry, "parse_message", choking_parse)
    fake = FakePlugin()
    fake_app = make_app(hd_env, extra_plugins=(fake,))
    box = fake.provider.mailbox("tech")
    try:
        with fake_app.session() as session:
            from helpdesk_core.services.departments import add_department, set_mailbox
            from helpdesk_core.services.permissions import SYSTEM

            add_department(session, actor=SYSTEM, name="Tech", sender="tech@district.test")
            set_mailbox(fake_app, session, actor=SYSTEM, department="Tech", provider="fake",
                        config={"mailbox": "tech"}, secrets={})
            session.commit()
        box.deliver(plain(subject="before"))
        box.deliver(plain(subject="CHOKE the parser"))
        box.deliver(b"\xff garbage \r\n\r\n\x80\x81" * 50)  # not mail at all: real parser copes
        box.deliver(b"Subject: =?x-unknown?B?////?=\r\nContent-Type: multipart/mixed; boundary=\r\n\r\n--\r\n")
        box.deliver(plain(subject="after"))
        dept = _dept_id(fake_app)
        result = run_cycle(fake_app, dept, batch_size=2)
        assert result.error is None
        assert (result.fetched, result.failed) == (5, 1) and _balanced(result)
        assert len(box) == 1
        with fake_app.session() as session:
            subjects = set(session.scalars(select(TicketMessage.subject)))
        assert {"before", "after"} <= subjects
        run_cycle(fake_app, dept)
        run_cycle(fake_app, dept)
        assert len(box) == 0
        with fake_app.session() as session:
            from helpdesk_core.services.failed import list_failed

            failed = list_failed(session, actor=SYSTEM)
        assert len(failed) == 1 and "RecursionError" in failed[0]["error"] and failed[0]["attempts"] == 3
    finally:
        fake_app.engine.dispose()


def test_nul_bytes_in_a_body_are_importable(hd_env, app):
    """A NUL byte in a text body (seen in broken real-world mail) must not make the message
    unimportable: PostgreSQL text columns refuse NUL, so the stored text must not contain it."""
    from helpdesk_core.services.departments import add_department
    from helpdesk_core.services.imports import ingest_raw
    from helpdesk_core.services.permissions import SYSTEM

    raw = (b"From: a@example.test\r\nSubject: nul\r\nMessage-ID: <nul@example.test>\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n\r\nbefore\x00after\r\n")
    with app.session() as session:
        add_department(session, actor=SYSTEM, name="Tech", sender="tech@district.test")
        outcome = ingest_raw(app, session, actor=SYSTEM, department="Tech", raw=raw)
        session.commit()
    assert outcome.status == "created", outcome.reason
