"""Many mailboxes on many workers: Celery + Redis + PostgreSQL, and the lease's fencing token.

* ``kill -9`` of Celery workers (twice, at random moments) and a restart of Redis (every queued
  task lost) while 20 mailboxes × 50 mails are imported: afterwards every mail is in exactly one
  ticket message and every mailbox is empty;
* a ``helpdesk import`` paused (SIGSTOP) past its lease while another takes over commits nothing
  after it is resumed (the fencing token);
* a failing mailbox backs off exponentially, capped; the embedded default never imports Celery.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from helpdesk_core.inbound.cycle import backoff
from helpdesk_core.models import ImportCycle, Mailbox, TicketMessage
from helpdesk_core.testing.apps import Cli, environment, make_app
from helpdesk_core.testing.pytest_plugin import skip_or_fail
from helpdesk_core.testing.servers.ports import ServerUnavailable
from helpdesk_core.testing.servers.redis import RedisServer

from mailfactory import plain
from test_idle import add_imap

HELPDESK = [sys.executable, "-c", "from helpdesk_core.cli.main import main; main()"]
CELERY = [sys.executable, "-m", "celery", "-A", "helpdesk_core.tasks"]
MAILBOXES, PER_MAILBOX = 20, 50


@pytest.fixture
def redis_server(hd_state_root: Path, tmp_path: Path):
    """A fresh redis-server on a free loopback port (fails, never skips, under CI=true)."""
    from helpdesk_core.testing.pytest_plugin import _free_port

    server = RedisServer(tmp_path, _free_port())
    try:
        server.start()
    except ServerUnavailable as exc:
        skip_or_fail(f"{exc}; install it with: apt-get install redis-server (or run `make deps`)")
    try:
        yield server
    finally:
        server.stop()


def _installation(tmp_path: Path, postgres_url: str, dovecot, users, interval: int = 1) -> Cli:
    cli = Cli(environment(tmp_path / "home", postgres_url))
    cli("init")
    cli("settings", "set", "mail.rate_limit_per_hour", "0")
    for n, user in enumerate(users):
        add_imap(cli, dovecot, f"Dept{n:02d}", user, interval)
    return cli


def _deliver(users, per_mailbox: int, tag: str) -> list[str]:
    ids = []
    for n, user in enumerate(users):
        for i in range(per_mailbox):
            mid = f"{tag}-{n}-{i}@example.test"
            user.deliver(plain(subject=f"Case {n}/{i}", msgid=f"<{mid}>",
                               sender=f"Parent {i} <p{n}x{i}@example.test>"))
            ids.append(mid)
    return ids


def _message_counts(app) -> dict[str, int]:
    with app.session() as session:
        return dict(session.execute(select(TicketMessage.message_id, func.count())
                                    .group_by(TicketMessage.message_id)).all())


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


class Fleet:
    """Celery worker processes and beat, each in a session of its own (``killpg`` kills a whole
    worker: main process and pool child, as when its machine dies)."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        logs.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, *args: str) -> None:
        log = open(self.logs / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen([*CELERY, *args], env=self.env, stdout=log, stderr=log,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()

    def worker(self, name: str) -> None:
        self.start(name, "worker", "-n", f"{name}@%h", "-c", "1", "-P", "prefork", "-l", "INFO",
                   "--without-gossip", "--without-mingle", "--without-heartbeat")

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop(self) -> None:
        for proc in self.procs.values():
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)

    def log_tail(self) -> str:
        return "\n".join(f"--- {p.name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-25:])
                         for p in sorted(self.logs.glob("*.log")))


def _wait(predicate, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def test_killed_workers_and_a_restarted_redis_lose_and_duplicate_nothing(
        tmp_path, postgres_url, dovecot, redis_server):
    pool = dovecot._hd_pool
    users = [pool.take() for _ in range(MAILBOXES)]
    cli = _installation(tmp_path, postgres_url, dovecot, users)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    delivered = _deliver(users, PER_MAILBOX, f"celery{seed}")
    env = {**os.environ, **cli.env, "HELPDESK_BROKER_URL": redis_server.url,
           "HELPDESK_BATCH_SIZE": "10", "HELPDESK_DISPATCH_SECONDS": "1",
           "HELPDESK_REDISPATCH_SECONDS": "6", "HELPDESK_VISIBILITY_TIMEOUT": "15",
           "HELPDESK_LEASE_SECONDS": "30"}
    app = make_app(cli.env)
    fleet = Fleet(env, tmp_path / "logs")

    def imported() -> int:
        return sum(_message_counts(app).values())

    try:
        for n in range(3):
            fleet.worker(f"w{n}")
        fleet.start("beat", "beat", "-s", str(tmp_path / "beat-schedule"), "-l", "INFO")
        assert _wait(lambda: imported() > 0, 60), "no import started\n" + fleet.log_tail()

        progress = []  # mails imported when each blow fell
        # 1: the pool child of w0 dies mid-task (reject_on_worker_lost puts its task back)
        time.sleep(rng.uniform(0.2, 1.5))
        children = _children(fleet.procs["w0"].pid)
        assert children, "w0 has no pool process"
        for child in children:
            os.kill(child, signal.SIGKILL)
        progress.append(imported())
        # 2: Redis restarts empty: every queued task is gone, the dispatcher sends them again
        time.sleep(rng.uniform(0.5, 2.0))
        redis_server.restart()
        progress.append(imported())
        # 3: the whole of w1 dies (its machine), a new worker takes its place
        time.sleep(rng.uniform(0.5, 2.0))
        fleet.kill("w1")
        progress.append(imported())
        fleet.worker("w3")

        def done() -> bool:
            return imported() >= len(delivered) and all(u.count() == 0 for u in users)

        assert _wait(done, 75, step=0.5), (
            f"seed {seed}: {imported()} of {len(delivered)} imported, "
            f"{sum(u.count() for u in users)} left\n{fleet.log_tail()}")
        counts = _message_counts(app)
        assert counts == {mid: 1 for mid in delivered}, f"seed {seed}"
        print("celery chaos: imported when the blows fell:", progress, "seed", seed)
        # the chaos meant something: the first blow fell while mail was still being imported (the
        # later ones may come after the end now that a fast import can finish within seconds)
        assert progress[0] < len(delivered), f"every blow fell after the import was done: {progress}"
        with app.session() as session:
            assert session.scalar(select(func.count()).select_from(Mailbox)) == MAILBOXES
    finally:
        fleet.stop()
        app.engine.dispose()


def test_a_worker_paused_past_its_lease_commits_nothing(tmp_path, postgres_url, dovecot):
    """A is SIGSTOPped inside its cycle (before its batch commit) until its 2 s lease has expired;
    B takes the mailbox over and imports everything; A, resumed, finds its fencing token stale
    and rolls its batch back: no ticket message is A's, none is duplicated."""
    user = dovecot._hd_pool.take()
    cli = _installation(tmp_path, postgres_url, dovecot, [user])
    delivered = _deliver([user], 300, "fence")
    env = {**os.environ, **cli.env, "HELPDESK_LEASE_SECONDS": "2", "HELPDESK_BATCH_SIZE": "1000"}
    app = make_app(cli.env)
    try:
        a = subprocess.Popen([*HELPDESK, "import", "--json"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)

        def a_cycle_started() -> bool:
            with app.session() as session:
                return session.scalar(select(func.count()).select_from(ImportCycle)
                                      .where(ImportCycle.worker.like(f"%:{a.pid}"))) == 1

        assert _wait(a_cycle_started, 30, step=0.005)
        os.kill(a.pid, signal.SIGSTOP)
        assert _message_counts(app) == {}, "A committed before it was paused: too few messages"
        time.sleep(3)  # A's lease expires
        b = subprocess.Popen([*HELPDESK, "import", "--json"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        time.sleep(3)   # B has taken over (it may wait on A's uncommitted rows meanwhile)
        os.kill(a.pid, signal.SIGCONT)
        out_a, err_a = a.communicate(timeout=120)
        out_b, err_b = b.communicate(timeout=120)
        result_a = json.loads(out_a)["Dept00"]
        result_b = json.loads(out_b)["Dept00"]
        assert result_a["error_kind"] == "lease_lost", (result_a, err_a.decode()[-2000:])
        assert result_a["created"] == 0 and result_a["deleted"] == 0
        assert result_b["error"] is None and result_b["created"] == len(delivered), err_b.decode()[-2000:]
        assert _message_counts(app) == {mid: 1 for mid in delivered}
        assert user.count() == 0
        with app.session() as session:
            created = dict(session.execute(select(ImportCycle.worker, ImportCycle.created)).all())
        assert created[next(w for w in created if w.endswith(f":{a.pid}"))] == 0
    finally:
        for proc in (a, locals().get("b")):
            if proc is not None and proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
                proc.wait()
        app.engine.dispose()


def test_failing_mailboxes_back_off_exponentially_up_to_a_cap():
    assert [backoff(5, n) for n in (0, 1, 2, 3, 4)] == [timedelta(minutes=m) for m in (5, 5, 10, 20, 40)]
    assert backoff(5, 5) == timedelta(hours=1) and backoff(5, 500) == timedelta(hours=1)
    assert backoff(120, 3) == timedelta(hours=2)  # an interval longer than the cap is kept


def test_the_embedded_default_never_imports_celery():
    code = ("import sys; import helpdesk_core.cli.main, helpdesk_core.inbound.worker; "
            "sys.exit(1 if 'celery' in sys.modules or 'helpdesk_core.tasks' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_helpdesk_watch_sends_an_import_to_celery_when_mail_arrives(tmp_path, postgres_url, dovecot,
                                                                    redis_server):
    """No beat: only ``helpdesk watch`` (IDLE) makes the Celery worker import, within seconds."""
    user = dovecot._hd_pool.take()
    cli = _installation(tmp_path, postgres_url, dovecot, [user], interval=60)
    env = {**os.environ, **cli.env, "HELPDESK_BROKER_URL": redis_server.url}
    app = make_app(cli.env)
    fleet = Fleet(env, tmp_path / "logs")
    log = open(tmp_path / "logs" / "watch.log", "ab")
    watch = subprocess.Popen([*HELPDESK, "watch"], env=env, stdout=log, stderr=log,
                             start_new_session=True)
    log.close()
    try:
        fleet.worker("w0")
        user.deliver(plain(subject="Before", msgid="<before@example.test>"))
        # the watcher's catch-up import on connect
        assert _wait(lambda: _message_counts(app).get("before@example.test") == 1, 60), fleet.log_tail()
        status = Cli({**cli.env, "HELPDESK_BROKER_URL": redis_server.url}).json("status", "--json")
        assert status["departments"][0]["watcher"] is not None
        assert status["celery"]["queues"] == {"helpdesk": 0}
        time.sleep(0.5)
        started = time.monotonic()
        dovecot.append(user.email, plain(subject="Pushed", msgid="<pushed@example.test>"))
        assert _wait(lambda: _message_counts(app).get("pushed@example.test") == 1, 20, step=0.05), \
            fleet.log_tail()
        assert time.monotonic() - started < 5
    finally:
        os.killpg(watch.pid, signal.SIGTERM)
        assert watch.wait(timeout=20) == 0
        fleet.stop()
        app.engine.dispose()
    with app.session() as session:
        assert session.scalar(select(Mailbox.watch_owner)) is None  # released on SIGTERM
    app.engine.dispose()


def _fake_department(plugin):
    from helpdesk_core.services.departments import add_department, set_mailbox
    from helpdesk_core.services.permissions import SYSTEM
    from helpdesk_core.testing.apps import memory_app

    app = memory_app(plugin)
    with app.session() as session:
        dept = add_department(session, actor=SYSTEM, name="Tech", sender="tech@district.test",
                              interval_minutes=5)
        set_mailbox(app, session, actor=SYSTEM, department="Tech", provider="fake",
                    config={"mailbox": "tech"}, secrets={})
        session.commit()
        return app, dept.id


def test_a_failing_mailbox_backs_off_and_each_cycle_logs_one_structured_line(caplog):
    from datetime import UTC, datetime

    from helpdesk_core.errors import MailboxError
    from helpdesk_core.inbound.cycle import run_cycle
    from helpdesk_core.testing.fake import FakePlugin

    plugin = FakePlugin()
    app, dept_id = _fake_department(plugin)
    box = plugin.provider.mailbox("tech")
    waits = []
    caplog.set_level("INFO", logger="helpdesk.cycle")
    for _ in range(3):
        box.fail_open = MailboxError("server down", kind="connection_refused", temporary=True)
        before = datetime.now(UTC)
        assert run_cycle(app, dept_id).error_kind == "connection_refused"
        with app.session() as session:
            mailbox = session.scalar(select(Mailbox))
            waits.append((mailbox.next_run_at.replace(tzinfo=UTC) - before, mailbox.consecutive_failures))
    assert [f for _, f in waits] == [1, 2, 3]
    for (wait, _), minutes in zip(waits, (5, 10, 20)):
        assert timedelta(minutes=minutes) <= wait < timedelta(minutes=minutes, seconds=30)
    box.deliver(plain(subject="Back", msgid="<back@example.test>"))
    assert run_cycle(app, dept_id).created == 1
    with app.session() as session:
        assert session.scalar(select(Mailbox.consecutive_failures)) == 0

    lines = [json.loads(r.getMessage().split(" ", 1)[1]) for r in caplog.records
             if r.name == "helpdesk.cycle" and r.getMessage().startswith("cycle {")]
    assert len(lines) == 4
    assert lines[0]["error_kind"] == "connection_refused" and lines[0]["department"] == "Tech"
    assert {k: lines[-1][k] for k in ("event", "department_id", "fetched", "created", "error")} == {
        "event": "cycle", "department_id": dept_id, "fetched": 1, "created": 1, "error": None}
    assert lines[-1]["seconds"] >= 0 and lines[-1]["worker"]
    app.engine.dispose()
