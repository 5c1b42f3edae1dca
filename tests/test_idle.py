"""IMAP IDLE push in ``helpdesk worker``: mail becomes a ticket within seconds, not on the next
poll; after the server drops the connection (``doveadm kick``) the watcher reconnects and mail
that arrived meanwhile is imported too. A department can turn push off."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select

from helpdesk_core.inbound.idle import push_departments
from helpdesk_core.inbound.worker import Worker
from helpdesk_core.models import Department, TicketMessage
from helpdesk_core.testing.apps import Cli, environment, make_app

from mailfactory import plain


def add_imap(cli, dovecot, name: str, user=None, interval: int = 60):
    """A department on an IMAPS mailbox of ``user`` (default: a fresh Dovecot user), polled hourly
    by default: within these tests only a push can import anything after the first cycle."""
    user = user or dovecot._hd_pool.take()
    cli("department", "add", name, "--sender", user.email, "--interval", str(interval))
    cli("department", "set-mailbox", name, "--protocol", "imap", "--host", "127.0.0.1",
        "--port", str(dovecot.imaps_port), "--security", "ssl", "--email", user.email,
        "--ca-file", str(dovecot.ca_file), "--no-validate", "--password-stdin", input=user.password + "\n")
    return user


@pytest.fixture
def installation(tmp_path, dovecot):
    cli = Cli(environment(tmp_path / "home", f"sqlite:///{tmp_path / 'helpdesk.db'}"))
    cli("init")
    cli("settings", "set", "mail.rate_limit_per_hour", "0")
    user = add_imap(cli, dovecot, "Tech")
    app = make_app(cli.env)
    yield cli, app, user
    app.engine.dispose()


def _imported(app, message_id: str) -> bool:
    with app.session() as session:
        return session.scalar(select(func.count()).select_from(TicketMessage)
                              .where(TicketMessage.message_id == message_id)) == 1


def _wait(predicate, timeout: float) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.02)
    return None


def test_pushed_mail_becomes_a_ticket_in_seconds_and_survives_a_dropped_connection(installation, dovecot):
    _cli, app, user = installation
    worker = Worker(app, threads=2, tick_seconds=30, tasks=[],
                    idle_options={"reconnect_max_seconds": 1.0})
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        assert _wait(lambda: worker.watchers.watchers and all(
            w.connects >= 1 for w in worker.watchers.watchers.values()), 15) is not None
        watcher = next(iter(worker.watchers.watchers.values()))
        assert watcher.capable is True
        time.sleep(0.5)  # the catch-up import of the first connect is done

        dovecot.append(user.email, plain(subject="Pushed", msgid="<pushed-1@example.test>"))
        took = _wait(lambda: _imported(app, "pushed-1@example.test"), 10)
        assert took is not None and took < 3, f"pushed mail took {took} s (polling is hourly)"

        dovecot.doveadm("kick", user.email)  # the server drops every session of the user ...
        user.deliver(plain(subject="Meanwhile", msgid="<meanwhile-1@example.test>"))  # ... mail arrives
        took = _wait(lambda: _imported(app, "meanwhile-1@example.test"), 15)
        assert took is not None, "mail that arrived while the IDLE connection was down was not imported"
        assert _wait(lambda: watcher.connects >= 2, 5) is not None, "the watcher did not reconnect"

        dovecot.append(user.email, plain(subject="After", msgid="<after-1@example.test>"))
        assert _wait(lambda: _imported(app, "after-1@example.test"), 5) is not None
        assert _wait(lambda: user.count() == 0, 5) is not None
    finally:
        worker.stopping.set()
        worker._wake.set()
        thread.join(timeout=20)
    assert not thread.is_alive()
    assert not any(w.is_alive() for w in worker.watchers.watchers.values())


def test_push_is_on_by_default_and_a_department_option_turns_it_off(installation):
    cli, app, _user = installation
    assert len(push_departments(app)) == 1
    cli("department", "push", "Tech", "off")
    assert push_departments(app) == []
    with app.session() as session:
        assert session.scalar(select(Department.options))["push"] is False
    cli("department", "push", "Tech", "on")
    assert len(push_departments(app)) == 1


def test_maildir_and_pop3_mailboxes_are_polled_only(tmp_path):
    from helpdesk_core.inbound.idle import push_enabled

    assert push_enabled({}, {"protocol": "imap"}) and push_enabled(None, {})  # e.g. Google: IMAP
    assert not push_enabled({}, {"protocol": "pop3"}) and not push_enabled({}, {"protocol": "maildir"})
    assert not push_enabled({"push": False}, {"protocol": "imap"})


def test_watch_processes_share_the_mailboxes_by_lease_and_trigger_on_new_mail(installation, dovecot):
    """Two ``helpdesk watch`` services of one mailbox each cover both mailboxes exactly once; when
    one stops, the other takes its mailbox over; ``helpdesk status --json`` shows who watches what."""
    from helpdesk_core.inbound.idle import WatchService

    cli, app, tech = installation
    add_imap(cli, dovecot, "Facilities")
    calls: list[tuple[str, int]] = []
    a = WatchService(app, lambda d: calls.append(("a", d)), owner="watch-a:1", limit=1, lease_seconds=30)
    b = WatchService(app, lambda d: calls.append(("b", d)), owner="watch-b:1", limit=1, lease_seconds=30)
    try:
        watched_a, watched_b = a.step(), b.step()
        assert len(watched_a) == len(watched_b) == 1 and watched_a != watched_b
        assert b.step() == watched_b and a.step() == watched_a  # renewing changes nothing
        status = cli.json("status", "--json")
        assert sorted(w["owner"] for w in status["watchers"]) == ["watch-a:1", "watch-b:1"]
        watcher_of = {d["department"]: d["watcher"] for d in status["departments"]}
        assert sorted(watcher_of) == ["Facilities", "Tech"]
        assert sorted(watcher_of.values()) == ["watch-a:1", "watch-b:1"]
        assert all("lag_seconds" in d and "consecutive_failures" in d for d in status["departments"])

        assert _wait(lambda: len(calls) >= 2, 10) is not None  # catch-up trigger of each connect
        with app.session() as session:
            tech_id = session.scalar(select(Department.id).where(Department.name == "Tech"))
        owner_of_tech = "a" if watched_a == [tech_id] else "b"
        calls.clear()
        dovecot.append(tech.email, plain(subject="Pushed", msgid="<watch-1@example.test>"))
        assert _wait(lambda: (owner_of_tech, tech_id) in calls, 5) is not None, calls

        gone, stays = (a, b) if owner_of_tech == "a" else (b, a)
        gone.stopping.set()
        gone.run()                       # returns at once: stops its watchers, releases its leases
        stays.limit = 2
        assert sorted(stays.step()) == sorted(watched_a + watched_b)
        calls.clear()
        dovecot.append(tech.email, plain(subject="Pushed again", msgid="<watch-2@example.test>"))
        who = "a" if stays is a else "b"
        assert _wait(lambda: (who, tech_id) in calls, 5) is not None, calls
    finally:
        for service in (a, b):
            service.watchers.stop()
