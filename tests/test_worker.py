"""``helpdesk worker``: a hanging or misconfigured mailbox never delays the other departments;
SIGTERM stops it cleanly (exit 0)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from sqlalchemy import func, select

from helpdesk_core.models import Department, Ticket
from helpdesk_core.inbound.worker import Worker

from conftest import make_app
from mailfactory import plain
from test_e2e_import import configure

HELPDESK = [sys.executable, "-c", "from helpdesk_core.cli.main import main; main()"]


def _tickets(app, department: str) -> int:
    with app.session() as session:
        return session.scalar(select(func.count()).select_from(Ticket).join(Department)
                              .where(Department.name == department)) or 0


def _wait_for(predicate, timeout: float) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.05)
    return None


def _add_broken(cli, dovecot, silent_port: int, mail_user) -> None:
    """"Stuck": a server that accepts and never greets (5 s timeout); "Locked": a wrong password."""
    cli("department", "add", "Stuck", "--sender", "stuck@district.test")
    cli("department", "set-mailbox", "Stuck", "--protocol", "imap", "--host", "127.0.0.1",
        "--port", str(silent_port), "--security", "ssl", "--email", "stuck@district.test",
        "--timeout", "5", "--no-validate", "--password-stdin", input="whatever\n")
    other = dovecot._hd_pool.take()
    cli("department", "add", "Locked", "--sender", other.email)
    cli("department", "set-mailbox", "Locked", "--protocol", "imap", "--host", "127.0.0.1",
        "--port", str(dovecot.imaps_port), "--security", "ssl", "--email", other.email,
        "--ca-file", str(dovecot.ca_file), "--no-validate", "--password-stdin", input="wrong-password\n")


def test_hanging_and_failing_mailboxes_do_not_delay_others(cli, hd_env, dovecot, mail_user, silent_port):
    _add_broken(cli, dovecot, silent_port, mail_user)
    configure(cli, dovecot, mail_user, "imap", "ssl", department="Tech")
    for i in range(3):
        mail_user.deliver(plain(subject=f"Case {i}"))
    app = make_app(hd_env)
    worker = Worker(app, threads=4, tick_seconds=0.2, tasks=[])
    thread = threading.Thread(target=worker.run, daemon=True)
    started = time.monotonic()
    thread.start()
    try:
        took = _wait_for(lambda: _tickets(app, "Tech") == 3, timeout=10)
        assert took is not None and took < 3, f"Tech's mail took {took} s while Stuck hangs"
        # the tickets commit first, then the batch is deleted from the mailbox: wait for that too
        assert _wait_for(lambda: mail_user.count() == 0, timeout=2) is not None
        assert time.monotonic() - started < 5, "the stuck cycle should still be hanging now"
        assert _wait_for(lambda: cli.json("department", "status", "Locked", "--json")["state"] == "failing",
                         timeout=5) is not None
        assert cli.json("department", "status", "Locked", "--json")["last_error_kind"] == "auth_failed"
        assert cli.json("department", "status", "Tech", "--json")["state"] == "ok"
        # mail arriving later is picked up on Tech's next run (interval) -- not blocked either
    finally:
        worker.stopping.set()
        thread.join(timeout=20)
    assert not thread.is_alive()
    stuck = cli.json("department", "status", "Stuck", "--json")
    assert stuck["last_error_kind"] == "timeout" and stuck["state"] == "failing"
    assert _tickets(app, "Stuck") == 0
    app.engine.dispose()


def test_sigterm_stops_the_worker_cleanly(cli, hd_env, dovecot, mail_user):
    configure(cli, dovecot, mail_user, "pop3", "ssl", department="Tech")
    for i in range(3):
        mail_user.deliver(plain(subject=f"Case {i}"))
    app = make_app(hd_env)
    proc = subprocess.Popen([*HELPDESK, "worker"], env={**os.environ, **hd_env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert _wait_for(lambda: _tickets(app, "Tech") == 3, timeout=15) is not None
        assert proc.poll() is None, "the worker exited on its own"
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        assert time.monotonic() - start < 5
        assert proc.returncode == 0, err.decode()
        assert b"Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with app.session() as session:
        from helpdesk_core.models import Mailbox

        assert session.scalar(select(Mailbox.lease_owner)) is None  # nothing left leased
    app.engine.dispose()


def test_a_hanging_worker_task_does_not_delay_imports(cli, hd_env, dovecot, mail_user):
    """The outbox flush (a worker task) may hang on a dead SMTP server: imports still run."""
    configure(cli, dovecot, mail_user, "imap", "ssl", department="Tech")
    mail_user.deliver(plain(subject="Printer"))
    release = threading.Event()
    runs: list[float] = []

    def hanging_task(_app) -> None:
        runs.append(time.monotonic())
        release.wait(10)

    app = make_app(hd_env)
    worker = Worker(app, threads=2, tick_seconds=0.2, tasks=[hanging_task])
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        assert _wait_for(lambda: _tickets(app, "Tech") == 1, timeout=5) is not None
        assert len(runs) == 1  # still hanging: never started twice
    finally:
        release.set()
        worker.stopping.set()
        thread.join(timeout=20)
    assert not thread.is_alive()
    app.engine.dispose()
