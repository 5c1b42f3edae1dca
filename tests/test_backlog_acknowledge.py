"""A first import must not answer a term's worth of old mail (issue 16).

Mail dated before the mailbox was configured (``mailboxes.configured_at``), or older than
``mail.acknowledge_max_age_days``, still becomes a ticket but gets no acknowledgement and no staff
notification, with the reason in the log. When its Date is missing or implausible (in the future,
or a year before it arrived), its arrival (the newest ``Received:`` header) counts instead.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from sqlalchemy import select, text

from helpdesk_core.db import make_engine, upgrade
from helpdesk_core.errors import ConfigurationError
from helpdesk_core.models import Mailbox, OutboxMessage
from helpdesk_core.services.departments import set_department_options
from helpdesk_core.services.permissions import SYSTEM
from helpdesk_core.settings import GeneralSettings, set_setting
from helpdesk_core.testing.apps import ingest as ingest_into
from helpdesk_core.testing.apps import installation, make_app
from mailfactory import plain

DEPT = "Tech"


def dated(when: datetime | None, *, received: datetime | None = None, **kw) -> bytes:
    raw = plain(**kw)
    if when is None:
        lines = raw.split(b"\r\n")
        raw = b"\r\n".join(line for line in lines if not line.startswith(b"Date:"))
    else:
        raw = raw.replace(raw[raw.index(b"Date: "):raw.index(b"\r\n", raw.index(b"Date: "))],
                          b"Date: " + format_datetime(when).encode(), 1)
    if received is not None:
        raw = (b"Received: from mx.example.test by imap.district.test; "
               + format_datetime(received).encode() + b"\r\n" + raw)
    return raw


def acks(app) -> list[OutboxMessage]:
    with app.session() as s:
        return list(s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "acknowledgement")))


@pytest.fixture
def desk(hd_env):
    """Department Tech acknowledging new tickets, without a mailbox (only the age rule applies)."""
    app = installation(hd_env, departments={DEPT: "techhelp@district.test"})
    with app.session() as s:
        set_department_options(s, actor=SYSTEM, department=DEPT, acknowledge=True)
        s.commit()
    yield app
    app.engine.dispose()


NOW = datetime.now(UTC)


def test_mail_older_than_the_setting_gets_no_acknowledgement_but_a_ticket(desk, caplog):
    caplog.set_level(logging.INFO, logger="helpdesk.acknowledge")
    old = ingest_into(desk, dated(NOW - timedelta(days=30), subject="Old request", sender="a@example.test"),
                      department=DEPT)
    assert old.status == "created"  # the import still makes the ticket
    assert acks(desk) == []
    assert "mail.acknowledge_max_age_days" in caplog.text and "no acknowledgement" in caplog.text
    ingest_into(desk, dated(NOW - timedelta(days=2), subject="Recent", sender="b@example.test"), department=DEPT)
    assert [a.to_email for a in acks(desk)] == ["b@example.test"]


def test_the_age_limit_is_a_validated_general_setting(desk):
    assert GeneralSettings.load(desk.session()).get("mail.acknowledge_max_age_days") == 7
    with desk.session() as s:
        for bad in ("-1", "soon", "1.5"):
            with pytest.raises(ConfigurationError, match="mail.acknowledge_max_age_days"):
                set_setting(s, "mail.acknowledge_max_age_days", bad)
        assert set_setting(s, "mail.acknowledge_max_age_days", "0") == 0  # 0: no age limit
        s.commit()
    ingest_into(desk, dated(NOW - timedelta(days=300), sender="c@example.test"), department=DEPT)
    assert [a.to_email for a in acks(desk)] == ["c@example.test"]


def test_missing_or_implausible_date_falls_back_to_the_arrival(desk):
    future_but_old = dated(NOW + timedelta(days=400), received=NOW - timedelta(days=20), sender="d@example.test")
    no_date_old = dated(None, received=NOW - timedelta(days=20), sender="e@example.test")
    no_date_new = dated(None, received=NOW - timedelta(hours=1), sender="f@example.test")
    ancient_date_new = dated(datetime(1970, 1, 1, tzinfo=UTC), received=NOW - timedelta(minutes=5),
                             sender="g@example.test")
    for raw in (future_but_old, no_date_old, no_date_new, ancient_date_new):
        assert ingest_into(desk, raw, department=DEPT).status == "created"
    assert sorted(a.to_email for a in acks(desk)) == ["f@example.test", "g@example.test"]


def test_mail_dated_before_the_mailbox_was_configured(cli, tmp_path, caplog):
    maildir = tmp_path / "Maildir"
    cli("department", "add", DEPT, "--sender", "techhelp@district.test")
    before = datetime.now(UTC)
    cli("department", "set-mailbox", DEPT, "--protocol", "maildir", "--path", str(maildir),
        "--email", "techhelp@district.test", "--no-validate")
    cli("department", "set", DEPT, "--acknowledge")
    app = cli.app()
    with app.session() as s:
        configured = s.scalar(select(Mailbox.configured_at))
    assert before - timedelta(seconds=1) <= configured <= datetime.now(UTC)
    caplog.set_level(logging.INFO, logger="helpdesk.acknowledge")
    cli("ingest", "--department", DEPT, input=dated(configured - timedelta(hours=3), sender="h@example.test"))
    assert acks(app) == [] and "before the mailbox was configured" in caplog.text
    cli("ingest", "--department", DEPT, input=dated(datetime.now(UTC), sender="i@example.test"))
    assert [a.to_email for a in acks(app)] == ["i@example.test"]
    # saving the same mailbox again keeps the date; another mailbox is configured anew
    cli("department", "set-mailbox", DEPT, "--protocol", "maildir", "--path", str(maildir),
        "--email", "techhelp@district.test", "--no-validate")
    with app.session() as s:
        assert s.scalar(select(Mailbox.configured_at)) == configured
    cli("department", "set-mailbox", DEPT, "--protocol", "maildir", "--path", str(tmp_path / "Other"),
        "--email", "techhelp@district.test", "--no-validate")
    with app.session() as s:
        assert s.scalar(select(Mailbox.configured_at)) > configured
    app.engine.dispose()


def test_old_mail_notifies_no_staff(cli, tmp_path):
    cli("department", "add", DEPT, "--sender", "techhelp@district.test")
    cli("department", "set-mailbox", DEPT, "--protocol", "maildir", "--path", str(tmp_path / "Maildir"),
        "--email", "techhelp@district.test", "--no-validate")
    cli("department", "set", DEPT, "--notify-staff")
    cli("user", "add", "ann@district.test", "--role", "agent", "--department", DEPT)
    cli("ingest", "--department", DEPT, input=dated(datetime.now(UTC) - timedelta(days=40), sender="j@example.test"))
    app = cli.app()
    with app.session() as s:
        assert s.scalars(select(OutboxMessage.kind)).all() == []
    cli("ingest", "--department", DEPT, input=dated(datetime.now(UTC), sender="k@example.test"))
    with app.session() as s:
        assert s.scalars(select(OutboxMessage.kind)).all() == ["notification"]
    app.engine.dispose()


def test_upgrade_gives_existing_mailboxes_their_creation_time(hd_env):
    engine = make_engine(hd_env["HELPDESK_DATABASE_URL"])
    upgrade(engine, "0009")
    created = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO departments (id, name, sender_address, interval_minutes, last_ticket_number, "
                          "options, created_at) VALUES (1, 'IT', 'x@d.test', 5, 0, '{}', CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO mailboxes (id, department_id, provider, identity, config, state, "
                          "needs_reauthorization, lease_generation, consecutive_failures, updated_at) "
                          "VALUES (1, 1, 'generic', 'imap:x', '{}', '{}', false, 0, 0, :t)"), {"t": created})
    upgrade(engine)
    engine.dispose()
    app = make_app(hd_env)
    with app.session() as s:
        assert s.scalar(select(Mailbox.configured_at)) == created
    app.engine.dispose()
