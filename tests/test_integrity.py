"""Issue 11 (engine parts): no mail is lost in silence and one bad mail never stops a department.

Each test is one numbered case of the issue; those marked PostgreSQL failed there (``db_url`` runs
every test on SQLite and on PostgreSQL).
"""

from __future__ import annotations

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import DataError

from helpdesk_core import hookimpl
from helpdesk_core.inbound.cycle import run_cycle
from helpdesk_core.models import KeptMail, ImportAttempt, LedgerEntry, Mailbox, Ticket, TicketMessage
from helpdesk_core.services.departments import add_department, department_status, set_mailbox
from helpdesk_core.services.held import import_log
from helpdesk_core.services.imports import ingest_raw
from helpdesk_core.services.permissions import SYSTEM
from helpdesk_core.settings import set_setting
from helpdesk_core.testing.fake import FakePlugin

from conftest import make_app
from mailfactory import plain
from test_ingest import ingest

LONG_ID = "<" + "x" * 1500 + "@printer.local>"


@pytest.fixture
def fake_app(hd_env):
    """An initialised installation with department Tech reading the fake mailbox ``tech``."""
    fake = FakePlugin()
    application = make_app(hd_env, extra_plugins=(fake,))
    application.upgrade()
    with application.session() as s:
        add_department(s, actor=SYSTEM, name="Tech", sender="techhelp@district.test")
        set_mailbox(application, s, actor=SYSTEM, department="Tech", provider="fake",
                    config={"mailbox": "tech"}, secrets={})
        set_setting(s, "mail.rate_limit_per_hour", 0)
        s.commit()
    application.box = fake.provider.mailbox("tech")
    application.dept_id = 1
    yield application
    application.engine.dispose()


def _cycle(app):
    result = run_cycle(app, app.dept_id, batch_size=10)
    assert result.error is None, result
    assert result.created + result.updated + result.failed + result.skipped == result.fetched
    return result


def _subjects(app) -> set[str]:
    with app.session() as s:
        return set(s.scalars(select(TicketMessage.subject)))


def _log(app) -> list[dict]:
    with app.session() as s:
        return import_log(s, actor=SYSTEM, limit=500)


# ---- case 1: poison cannot stop a cycle ------------------------------------------------------

@pytest.mark.parametrize("msgid", [LONG_ID.encode(), b"<nul\x00byte@printer.local>", b"<lone\xff\xed\xa0\x80@x.test>"],
                         ids=["1500-chars", "nul", "surrogates"])
def test_poison_message_id_never_blocks_later_mail(fake_app, msgid):
    """PostgreSQL: the 1,000+ character Message-ID overflowed the ledger key on the third attempt
    and every later cycle died; a NUL in it broke the ledger query for the whole batch."""
    raw = plain(subject="poison id", body="first\n").replace(b"Message-ID: <", b"Message-ID: " + msgid + b" <old", 1)
    fake_app.box.deliver(plain(subject="before"))
    fake_app.box.deliver(raw)
    for n in range(4):
        fake_app.box.deliver(plain(subject=f"later {n}"))
        _cycle(fake_app)
        assert f"later {n}" in _subjects(fake_app), "later mail was blocked"
    assert len(fake_app.box) == 0
    with fake_app.session() as s:
        keys = list(s.scalars(select(LedgerEntry.key)))
        assert all(len(k) == 64 for k in keys)
        imported = "poison id" in set(s.scalars(select(TicketMessage.subject)))
        failed = list(s.scalars(select(KeptMail)))
        assert imported != bool(failed), "the poison mail must end imported or kept as failed"
        assert all(f.raw == raw for f in failed)


@pytest.mark.parametrize("msgid", ["<" + "y" * 1500 + "@printer.local>", "z" * 1200 + "@printer.local",
                                   "<nul\x00byte@printer.local>"], ids=["1500-chars", "no-brackets", "nul"])
def test_an_overlong_or_nul_message_id_is_imported_and_threads(fake_app, msgid):
    """PostgreSQL: a Message-ID longer than ``ticket_messages.message_id`` (998) -- or holding a
    NUL -- failed the store step three times and ended as a failed import. The store step keeps a
    normalised id; a reply naming the original id (In-Reply-To / References) finds the ticket by
    the same normalisation, and the same mail again is a duplicate."""
    first = plain(subject="scanner job", body="first\n", msgid="<placeholder@x>").replace(
        b"<placeholder@x>", msgid.encode(), 1)
    fake_app.box.deliver(first)
    assert _cycle(fake_app).created == 1
    bare = msgid.strip("<>")
    reply = plain(subject="Re: scanner job", body="second\n", In_Reply_To="<placeholder@x>",
                  References="<other@x.test> <placeholder@x>").replace(b"<placeholder@x>", b"<" + bare.encode() + b">")
    fake_app.box.deliver(reply)
    fake_app.box.deliver(first)
    result = _cycle(fake_app)
    assert (result.updated, result.duplicates, result.failed) == (1, 1, 0)
    with fake_app.session() as s:
        assert list(s.scalars(select(KeptMail))) == []
        assert len(list(s.scalars(select(Ticket)))) == 1
        stored = [m.message_id for m in s.scalars(select(TicketMessage).order_by(TicketMessage.id))]
    assert len(stored) == 2 and len(stored[0]) <= 998 and "\x00" not in stored[0]


class Poison:
    @hookimpl(tryfirst=True)
    def helpdesk_message_to_ticket(self, message):
        if message.subject == "POISON":
            raise RuntimeError("poisoned")


@pytest.mark.parametrize("broken", [(ImportAttempt,), (ImportAttempt, KeptMail)], ids=["attempt", "all"])
def test_failure_path_with_the_database_failing_inside_it(hd_env, broken):
    """Every write about a failure has its own savepoint: when recording the attempt fails, the raw
    mail is kept in a minimal record; when that fails too, it stays in the mailbox (logged)."""
    fake = FakePlugin()
    app = make_app(hd_env, extra_plugins=(fake, Poison()))
    app.upgrade()
    with app.session() as s:
        add_department(s, actor=SYSTEM, name="Tech", sender="techhelp@district.test")
        set_mailbox(app, s, actor=SYSTEM, department="Tech", provider="fake", config={"mailbox": "tech"}, secrets={})
        s.commit()
    box = fake.provider.mailbox("tech")

    def refuse(_mapper, _conn, _target):
        raise DataError("INSERT", {}, Exception("value too long (simulated)"))

    for model in broken:
        event.listen(model, "before_insert", refuse)
    try:
        poison = plain(subject="POISON")
        box.deliver(poison)
        box.deliver(plain(subject="good"))
        result = run_cycle(app, 1)
        assert result.error is None and result.created == 1 and result.failed == 1
        assert "good" in _subjects(app)
        with app.session() as s:
            kept = list(s.scalars(select(KeptMail)))
        if len(broken) == 1:
            assert len(box) == 0 and [f.raw for f in kept] == [poison]
            assert [e["outcome"] for e in _log(app)] == ["failed"]
        else:
            assert len(box) == 1 and kept == []
            assert [e["outcome"] for e in _log(app)] == ["retry"]
            assert "could not record the failure" in _log(app)[0]["reason"]
    finally:
        for model in broken:
            event.remove(model, "before_insert", refuse)
        app.engine.dispose()


def test_status_shows_the_error_of_a_cycle_that_broke_its_session(fake_app, monkeypatch):
    """The cycle's error handler read ``department.name`` after the failed flush and failed
    itself: ``department status`` then said "ok" with no error."""
    import helpdesk_core.inbound.cycle as cycle

    def broken_batch(ctx, department, raws, **kwargs):
        ctx.session.add(LedgerEntry(department_id=None, key="k", raw_sha256="r", outcome="x"))
        ctx.session.flush()

    monkeypatch.setattr(cycle, "import_batch", broken_batch)
    fake_app.box.deliver(plain())
    result = run_cycle(fake_app, fake_app.dept_id)
    assert result.error and "IntegrityError" in result.error
    with fake_app.session() as s:
        status = department_status(s, actor=SYSTEM, department="Tech")
    assert status["state"] == "failing" and "IntegrityError" in status["last_error"]


def test_poison_through_ingest_is_stored_not_retried_forever(cli, hd_env):
    """PostgreSQL: through ``ingest`` the poison mail exited 75 on every delivery."""
    cli("department", "add", "Tech", "--sender", "techhelp@district.test")
    for msgid in (LONG_ID, "<nul\x00@printer.local>"):
        raw = plain(subject="poison").replace(b"Message-ID: <", b"Message-ID: " + msgid.encode() + b" <x", 1)
        done = ingest(hd_env, "--department", "Tech", stdin=raw)
        assert done.returncode == 0, done.stderr.decode()
    assert ingest(hd_env, "--department", "Tech", stdin=plain(subject="later")).returncode == 0
    assert "later" in {t["subject"] for t in cli.json("ticket", "list", "--json")}


# ---- case 2: a different mail reusing a Message-ID -------------------------------------------

def test_reused_message_id_is_a_new_message_and_duplicates_are_logged(cli, hd_env):
    cli("department", "add", "Tech", "--sender", "techhelp@district.test")
    cli("settings", "set", "mail.rate_limit_per_hour", "0")
    bob = plain(subject="Scanner job 1", sender="bob@example.test", msgid="<scan@printer.local>")
    carol = plain(subject="URGENT server down", sender="carol@example.test", msgid="<scan@printer.local>",
                  body="The server is down.\n")
    for raw in (bob, carol):
        done = ingest(hd_env, "--department", "Tech", stdin=raw)
        assert done.returncode == 0 and b"created" in done.stderr, done.stderr.decode()
    assert {t["subject"] for t in cli.json("ticket", "list", "--json")} == {"Scanner job 1", "URGENT server down"}
    again = ingest(hd_env, "--department", "Tech", stdin=b"Received: from relay.example.test\r\n" + carol)
    assert again.returncode == 0 and b"duplicate" in again.stderr
    assert len(cli.json("ticket", "list", "--json")) == 2
    log = cli.json("log", "--json")
    assert [e["outcome"] for e in log] == ["duplicate", "reused"]
    assert "Message-ID reused" in log[1]["reason"] and log[1]["subject"] == "URGENT server down"
    assert log[0]["key"] == "scan@printer.local"


# ---- case 3: over-size mail -------------------------------------------------------------------

def test_oversize_mail_through_ingest_is_refused_with_65(cli, hd_env):
    cli("department", "add", "Tech", "--sender", "techhelp@district.test")
    cli("settings", "set", "mail.max_message_size_mb", "1")
    big = plain(subject="big", body="x" * 76 + "\n").replace(b"x" * 76, (b"x" * 76 + b"\n") * 28000)
    done = ingest(hd_env, "--department", "Tech", stdin=big)
    assert done.returncode == 65, done.stderr.decode()
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "larger than mail.max_message_size_mb" in lines[0]
    assert cli.json("ticket", "list", "--json") == []
    assert [e["outcome"] for e in cli.json("log", "--json")] == ["refused"]


def test_oversize_mail_stays_in_the_mailbox_until_the_limit_allows_it(fake_app):
    with fake_app.session() as s:
        set_setting(s, "mail.max_message_size_mb", 0.5)
        s.commit()
    fake_app.box.deliver(plain(subject="big", body="y" * 700_000))
    fake_app.box.deliver(plain(subject="small"))
    for _ in range(2):
        result = _cycle(fake_app)
        assert result.kept == 1 and len(fake_app.box) == 1
    with fake_app.session() as s:
        status = department_status(s, actor=SYSTEM, department="Tech")
    assert status["left_in_mailbox"] == 1 and "larger than" in status["left_in_mailbox_reasons"][0]
    assert [e["outcome"] for e in _log(fake_app)] == ["kept"]  # reported once, not every cycle
    with fake_app.session() as s:
        set_setting(s, "mail.max_message_size_mb", 5)
        s.commit()
    result = _cycle(fake_app)
    assert result.created == 1 and len(fake_app.box) == 0 and "big" in _subjects(fake_app)
    with fake_app.session() as s:
        assert department_status(s, actor=SYSTEM, department="Tech")["left_in_mailbox"] == 0


# ---- case 7: the engine's smaller ones ---------------------------------------------------------

def test_empty_ingest_is_refused_with_65(cli, hd_env):
    cli("department", "add", "Tech", "--sender", "techhelp@district.test")
    for empty in (b"", b"\r\n \n"):
        done = ingest(hd_env, "--department", "Tech", stdin=empty)
        assert done.returncode == 65 and b"empty message" in done.stderr, done.stderr.decode()
    assert cli.json("ticket", "list", "--json") == []


@pytest.mark.parametrize(("key", "value"), [
    ("mail.max_message_size_mb", "nan"), ("mail.max_message_size_mb", "inf"),
    ("mail.max_message_size_mb", "-1"), ("attachments.max_size_mb", "1e400"),
    ("mail.ticket_reference_format", "{foo}"), ("mail.ticket_reference_format", "[Ticket]"),
    ("mail.ticket_reference_format", "[#{number} {foo}]"), ("mail.ticket_reference_format", "{number"),
    ("mail.rate_limit_per_hour", "2.5"), ("mail.max_parts", "-1"), ("mail.max_parts", "2.5"),
    ("mail.max_parts", "many"),
])
def test_settings_are_validated_by_meaning(cli, key, value):
    result = cli("settings", "set", "--", key, value, ok=False)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.startswith("Error: Setting " + key)


def test_a_bad_value_stored_before_validation_does_not_break_imports(fake_app):
    from helpdesk_core.models import Setting

    with fake_app.session() as s:
        s.add(Setting(key="mail.max_message_size_mb", value="nan"))
        s.commit()
    fake_app.box.deliver(plain(subject="still imported"))
    assert _cycle(fake_app).created == 1


def test_malformed_database_url_is_one_line(tmp_path):
    from helpdesk_core.testing.apps import Cli, environment

    env = environment(tmp_path / "home", "sqlite:///unused.db")
    for url in ("not a url", "mysql://u@localhost/db"):
        result = Cli({**env, "HELPDESK_DATABASE_URL": url})("department", "list", ok=False)
        assert result.exit_code != 0 and "Traceback" not in result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: Cannot use the database URL"), result.output


def test_set_mailbox_without_validation_says_so(cli):
    cli("department", "add", "Tech", "--sender", "techhelp@district.test")
    out = cli("department", "set-mailbox", "Tech", "--protocol", "imap", "--host", "mail.example.test",
              "--security", "ssl", "--email", "techhelp@district.test", "--password-stdin", "--no-validate",
              input="pw\n").output
    assert "checked" not in out and "without checking" in out


# ---- case 8: one mailbox, one department --------------------------------------------------------

@pytest.mark.parametrize(("protocol", "host", "port", "security"), [
    ("imap", "127.0.0.1", "143", "starttls"), ("imap", "LOCALHOST", "993", "ssl"),
    ("pop3", "localhost", "995", "ssl"), ("imap", "[::1]", "1993", "none"),
])
def test_one_mailbox_serves_one_department(cli, protocol, host, port, security):
    for name in ("Tech", "Library"):
        cli("department", "add", name, "--sender", f"{name.lower()}@district.test")
    cli("department", "set-mailbox", "Tech", "--protocol", "imap", "--host", "localhost", "--security", "ssl",
        "--email", "Help@District.test", "--password-stdin", "--no-validate", input="pw\n")
    result = cli("department", "set-mailbox", "Library", "--protocol", protocol, "--host", host, "--port", port,
                 "--security", security, "--email", "library@district.test", "--username", "HELP@district.test",
                 "--password-stdin", "--no-validate", input="pw\n", ok=False)
    assert result.exit_code != 0 and "already configured for department 'Tech'" in result.output
    other = cli("department", "set-mailbox", "Library", "--protocol", "imap", "--host", "localhost",
                "--security", "ssl", "--email", "library@district.test", "--password-stdin", "--no-validate",
                input="pw\n")
    assert other.exit_code == 0


def test_mailbox_saved_with_an_old_identity_is_recognised(cli):
    for name in ("Tech", "Library"):
        cli("department", "add", name, "--sender", f"{name.lower()}@district.test")
    cli("department", "set-mailbox", "Tech", "--protocol", "imap", "--host", "127.0.0.1", "--security", "ssl",
        "--email", "help@district.test", "--password-stdin", "--no-validate", input="pw\n")
    app = cli.app()
    try:
        with app.session() as s:  # as main stored it
            s.scalar(select(Mailbox)).identity = "imap://help@district.test@127.0.0.1:993/INBOX"
            s.commit()
    finally:
        app.engine.dispose()
    result = cli("department", "set-mailbox", "Library", "--protocol", "pop3", "--host", "localhost",
                 "--security", "ssl", "--email", "help@district.test", "--password-stdin", "--no-validate",
                 input="pw\n", ok=False)
    assert result.exit_code != 0 and "'Tech'" in result.output


# ---- reconciliation -------------------------------------------------------------------------------

def test_status_counts_every_outcome_since_configuration(fake_app):
    box = fake_app.box
    first = plain(subject="one")
    box.deliver(first)
    box.deliver(plain(subject="auto", Auto_Submitted="auto-replied"))
    _cycle(fake_app)
    box.deliver(first)  # delivered twice
    box.deliver(b"")
    _cycle(fake_app)
    with fake_app.session() as s:
        counts = department_status(s, actor=SYSTEM, department="Tech")["counts"]
    assert counts["fetched"] == 4 and counts["created"] == 1 and counts["duplicates"] == 1
    assert sum(counts["skipped"].values()) == 2 and counts["gap"] == 0 and counts["balanced"]
    assert counts["server"] == 2


def test_refused_attachment_bytes_are_not_left_in_storage(app):
    """A large message's attachments are streamed into the storage while parsing; a refused one
    (type not allowed) must not stay there."""
    import hashlib
    from email.message import EmailMessage
    from email.policy import SMTP

    blob = hashlib.sha256(b"seed").digest() * (5 * 1024 * 1024 // 32)
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "alice@example.test", "techhelp@district.test", "tool"
    msg["Message-ID"] = "<tool@example.test>"
    msg.set_content("Here is the tool.\n")
    msg.add_attachment(blob, maintype="application", subtype="octet-stream", filename="tool.exe")
    with app.session() as s:
        add_department(s, actor=SYSTEM, name="Tech", sender="techhelp@district.test")
        outcome = ingest_raw(app, s, actor=SYSTEM, department="Tech", raw=msg.as_bytes(policy=SMTP))
        s.commit()
        tm = s.get(TicketMessage, outcome.ticket_message_id)
        assert [r["filename"] for r in tm.removed_attachments] == ["tool.exe"]
    assert not app.storage.exists(hashlib.sha256(blob).hexdigest())


def test_migration_converts_ledger_keys_to_digests(db_url):
    """0006: ``mid:<id>`` becomes the digest of the id, ``sha256:<hex>`` the hex; two spellings of
    one id keep the first entry; logged outcomes are copied into the import log."""
    from sqlalchemy import text

    from helpdesk_core.db import make_engine, upgrade
    from helpdesk_core.models.imports import ledger_key

    engine = make_engine(db_url)
    upgrade(engine, "0003")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO departments (id, name, sender_address, interval_minutes, last_ticket_number, options, "
                          "created_at) "
                          "VALUES (1, 'Tech', 'tech@district.test', 5, 0, '{}', CURRENT_TIMESTAMP)"))
        for n, (key, outcome) in enumerate([("mid:scan@printer.local", "imported"), ("sha256:" + "ab" * 32, "skipped"),
                                            ("mid: <scan@printer.local> ", "skipped")], start=1):
            conn.execute(text("INSERT INTO import_ledger (id, department_id, key, raw_sha256, outcome, reason, "
                              "created_at) VALUES (:id, 1, :key, :sha, :outcome, 'why', CURRENT_TIMESTAMP)"),
                         {"id": n, "key": key, "sha": "cd" * 32, "outcome": outcome})
    upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT key, content_sha256, outcome FROM import_ledger ORDER BY id")).all()
        logged = conn.execute(text("SELECT key, outcome, reason FROM import_events")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [(ledger_key("<scan@printer.local>", ""), None, "imported"),
                                        ("ab" * 32, None, "skipped")]
    assert [tuple(r) for r in logged] == [("ab" * 32, "skipped", "why")]
