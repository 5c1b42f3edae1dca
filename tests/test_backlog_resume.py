"""A first import of a full mailbox resumes where it stopped (issue 16), against the real Dovecot.

A mailbox of a few hundred mails; ``helpdesk import`` in a subprocess is killed with SIGKILL once
some tickets exist; the next run is stopped by Ctrl-C (SIGINT to the process group, as a terminal
sends it), which ends it cleanly: no traceback, the lease released, what was committed kept. A
last run imports the rest: every mail is exactly one ticket, no acknowledgement was queued twice,
the mailbox ends empty and the ledger accounts for every mail. SQLite only: the PostgreSQL side of
the same guarantees is in test_crash_safety.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select

from helpdesk_core.models import LedgerEntry, Mailbox, OutboxMessage, Ticket, TicketMessage
from helpdesk_core.testing.apps import Cli, environment
from mailfactory import plain

HELPDESK = [sys.executable, "-c", "from helpdesk_core.cli.main import main; main()"]
MAILS = 200


@pytest.fixture
def backlog(tmp_path, sqlite_url, dovecot, mail_user):
    """Tech acknowledging new tickets, its IMAPS mailbox holding :data:`MAILS` mails (one sender
    each: no rate limit, no acknowledgement limit applies)."""
    cli = Cli(environment(tmp_path / "home", sqlite_url))
    cli("init")
    cli("department", "add", "Tech", "--sender", mail_user.email)
    cli("department", "set-mailbox", "Tech", "--protocol", "imap", "--host", "127.0.0.1",
        "--port", str(dovecot.imaps_port), "--security", "ssl", "--email", mail_user.email,
        "--ca-file", str(dovecot.ca_file), "--password-stdin", input=mail_user.password + "\n")
    cli("department", "set", "Tech", "--acknowledge")
    mids = [f"backlog-{i}@example.test" for i in range(MAILS)]
    for i, mid in enumerate(mids):
        mail_user.deliver(plain(subject=f"Case {i}", msgid=f"<{mid}>", sender=f"Parent {i} <p{i}@example.test>"))
    app = cli.app()
    yield cli, app, mids
    app.engine.dispose()


def _start(cli: Cli) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*HELPDESK, "import", "--json"], start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, **cli.env, "HELPDESK_BATCH_SIZE": "20"})


def _tickets(app) -> int:
    with app.session() as session:
        return session.scalar(select(func.count()).select_from(Ticket)) or 0


def _wait_for_tickets(app, proc: subprocess.Popen[bytes], at_least: int) -> int:
    deadline = time.monotonic() + 60
    while (n := _tickets(app)) < at_least and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the import ended before it could be stopped"
    return n


def _assert_all_imported_once(app, mids: list[str], mail_user) -> None:
    assert mail_user.count() == 0
    with app.session() as session:
        per_mid = dict(session.execute(select(TicketMessage.message_id, func.count())
                                       .group_by(TicketMessage.message_id)).all())
        acks = session.execute(select(OutboxMessage.ticket_id, func.count())
                               .where(OutboxMessage.kind == "acknowledgement")
                               .group_by(OutboxMessage.ticket_id)).all()
        ledger = dict(session.execute(select(LedgerEntry.outcome, func.count()).group_by(LedgerEntry.outcome)).all())
        tickets = session.scalar(select(func.count()).select_from(Ticket))
        lease = session.scalar(select(Mailbox.lease_owner))
    assert per_mid == {mid: 1 for mid in mids}  # every mail exactly one ticket message
    assert tickets == len(mids)
    assert len(acks) == len(mids) and all(n == 1 for _, n in acks)  # one acknowledgement per ticket
    assert ledger == {"imported": len(mids)}  # the ledger accounts for every mail, nothing else
    assert lease is None


def _finish(cli: Cli) -> dict:
    final = subprocess.run([*HELPDESK, "import", "--json"], env={**os.environ, **cli.env},
                           capture_output=True, timeout=120)
    assert final.returncode == 0, final.stderr.decode()
    result = json.loads(final.stdout)["Tech"]
    assert result["error"] is None, result  # the killed process's lease did not block this run
    return result


def test_kill_9_and_ctrl_c_mid_backlog_resume_without_loss_or_second_acknowledgement(backlog, mail_user):
    cli, app, mids = backlog
    proc = _start(cli)
    seen = _wait_for_tickets(app, proc, 40)
    os.killpg(proc.pid, signal.SIGKILL)  # the importer and its parse helper
    proc.communicate(timeout=30)
    killed = _tickets(app)
    assert 40 <= seen <= killed < MAILS, "killed after the end"

    proc = _start(cli)  # takes the dead process's lease over at once
    _wait_for_tickets(app, proc, killed + 40)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends to the foreground group on Ctrl-C
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and b"Traceback" not in err, err.decode()
    kept = _tickets(app)
    with app.session() as session:
        mailbox = session.scalar(select(Mailbox))
        assert mailbox.lease_owner is None and mailbox.last_error_kind == "interrupted"  # released, and said so
    assert killed + 40 <= kept < MAILS
    assert kept + mail_user.count() >= MAILS  # nothing lost: every mail is a ticket or still waiting

    result = _finish(cli)
    # the rest is imported; a batch committed but not yet deleted when a stop fell is a duplicate
    assert result["created"] == MAILS - kept and result["fetched"] == result["created"] + result["duplicates"]
    _assert_all_imported_once(app, mids, mail_user)
