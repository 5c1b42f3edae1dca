"""``kill -9`` of ``helpdesk import`` at random points: nothing lost, nothing imported twice.

Each round delivers more mail, starts ``helpdesk import`` in a subprocess with small batches
(``HELPDESK_BATCH_SIZE``) and SIGKILLs it after a random delay; one round kills it exactly while a
partial import is committed. The SIGKILLed process leaves its mailbox lease behind: the next run
must take it over at once (the owner "hostname:pid" is a dead process of this host), not wait
``LEASE_SECONDS``. Finally one run to completion: every delivered Message-ID is in exactly one
ticket message and the mailbox is empty.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select, update

from helpdesk_core.inbound.leases import LEASE_SECONDS, acquire_lease, release_lease
from helpdesk_core.models import KeptMail, Mailbox, Ticket, TicketMessage
from helpdesk_core.services.departments import add_department, set_mailbox
from helpdesk_core.services.permissions import SYSTEM

from conftest import make_app
from mailfactory import plain
from test_e2e_import import configure

HELPDESK = [sys.executable, "-c", "from helpdesk_core.cli.main import main; main()"]
ROUNDS = 5
PER_ROUND = 24


def _start(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*HELPDESK, "import", "--json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _kill(proc: subprocess.Popen[bytes]) -> bool:
    """SIGKILL; True when it was still running."""
    running = proc.poll() is None
    if running:
        os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    return running


def _imported(app) -> int:
    with app.session() as session:
        return session.scalar(select(func.count()).select_from(TicketMessage)) or 0


@pytest.mark.parametrize(("protocol", "security"), [("imap", "ssl"), ("pop3", "ssl")])
def test_kill_9_at_random_points_loses_and_duplicates_nothing(cli, hd_env, dovecot, mail_user, protocol, security):
    configure(cli, dovecot, mail_user, protocol, security)
    env = {**os.environ, **hd_env, "HELPDESK_BATCH_SIZE": "3"}
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    app = make_app(hd_env)
    delivered: list[str] = []

    def deliver(n: int) -> None:
        for _ in range(n):
            i = len(delivered)
            mid = f"crash-{i}-{seed}@example.test"
            body = "A longer one.\n" * 2000 if i % 10 == 0 else f"Message {i}\n"
            raw = plain(subject=f"Case {i}", msgid=f"<{mid}>", body=body,
                        sender=f"Parent {i} <parent{i}@example.test>")  # under the rate limit
            delivered.append(mid)
            mail_user.deliver(raw)

    killed_running = 0
    try:
        for rnd in range(ROUNDS):
            deliver(PER_ROUND)
            proc = _start(env)
            if rnd == 0:  # deterministic: die while a partial import is committed
                before = _imported(app)
                deadline = time.monotonic() + 20
                while _imported(app) == before and proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.005)
            else:
                time.sleep(rng.uniform(0.05, 1.5))
            killed_running += _kill(proc)
            assert _imported(app) <= len(delivered)

        final = subprocess.run([*HELPDESK, "import", "--json"], env=env, capture_output=True, timeout=120)
        assert final.returncode == 0, final.stderr.decode()
        result = json.loads(final.stdout)["Tech"]
        assert result["error"] is None, result  # the dead process's lease did not block us
        assert mail_user.count() == 0

        with app.session() as session:
            counts = dict(session.execute(select(TicketMessage.message_id, func.count())
                                          .group_by(TicketMessage.message_id)).all())
            tickets = session.scalar(select(func.count()).select_from(Ticket))
            failed = session.scalar(select(func.count()).select_from(KeptMail))
            lease = session.scalar(select(Mailbox.lease_owner))
        assert counts == {mid: 1 for mid in delivered}, f"seed {seed}"
        assert tickets == len(delivered) and failed == 0 and lease is None
        assert killed_running >= 1, "no kill landed while the import was running"
    finally:
        app.engine.dispose()


# ---- the lease of a dead process ------------------------------------------------------------

@pytest.fixture
def mailbox_id(app, tmp_path) -> int:
    (tmp_path / "md" / "cur").mkdir(parents=True)
    (tmp_path / "md" / "new").mkdir()
    (tmp_path / "md" / "tmp").mkdir()
    with app.session() as session:
        add_department(session, actor=SYSTEM, name="Tech", sender="tech@district.test")
        set_mailbox(app, session, actor=SYSTEM, department="Tech", provider="generic",
                    config={"protocol": "maildir", "path": str(tmp_path / "md"), "email": "t@district.test"},
                    secrets={})
        session.commit()
        return session.scalar(select(Mailbox.id))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lease_of_a_dead_process_on_this_host_is_taken_over(app, mailbox_id):
    host = socket.gethostname()
    dead = f"{host}:{_dead_pid()}"
    with app.session() as session:
        assert acquire_lease(session, mailbox_id, dead)  # as a killed `helpdesk import` left it
        assert acquire_lease(session, mailbox_id, f"{host}:{os.getpid()}")
        assert session.scalar(select(Mailbox.lease_owner)) == f"{host}:{os.getpid()}"
        release_lease(session, mailbox_id, f"{host}:{os.getpid()}")


def test_live_or_foreign_leases_are_respected_until_they_expire(app, mailbox_id):
    host = socket.gethostname()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with app.session() as session:
            for holder in (f"{host}:{sleeper.pid}",           # alive on this host
                           f"other-{host}:{_dead_pid()}",     # another host: cannot check
                           "not a worker id"):
                session.execute(update(Mailbox).values(lease_owner=None, lease_expires_at=None))
                session.commit()
                assert acquire_lease(session, mailbox_id, holder)
                assert not acquire_lease(session, mailbox_id, f"{host}:{os.getpid()}"), holder
            # an expired lease is free whoever holds it
            from datetime import UTC, datetime, timedelta

            session.execute(update(Mailbox).values(
                lease_expires_at=datetime.now(UTC) - timedelta(seconds=1)))
            session.commit()
            assert acquire_lease(session, mailbox_id, f"{host}:{os.getpid()}", LEASE_SECONDS)
    finally:
        sleeper.kill()
        sleeper.wait()
