"""Scale figures, part 2 (``make bench``): fan-out of many mailboxes over Celery workers.

A private PostgreSQL and Redis; M departments (default 1,000) whose mailboxes are local Maildirs
(the generic provider's ``maildir`` protocol: no network, so what is measured is the help desk's
own cost per cycle -- database, lease, cycle log, Celery -- as with a fake provider, but shared by
processes). For 1, 2 and 4 Celery worker processes (``-c 1`` each) and beat dispatching every
second, every mailbox is made due at once, empty and then with 5 mails each, and measured:

* the time until every department has run once, hence mailbox cycles/s and mails/s;
* the schedule lag: from "due" to the start of its cycle, p50 / p95 / max.

Run alone: ``python3 bench/fanout.py [--mailboxes 1000] [--workers 1,2,4]``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

CELERY = [sys.executable, "-m", "celery", "-A", "helpdesk_core.tasks"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _maildir_mail(path: Path, n: int) -> None:
    msg = EmailMessage()
    msg["From"] = f"Parent {n} <p{n}@example.test>"
    msg["To"] = "dept@district.test"
    msg["Subject"] = f"Fan-out case {n}"
    msg["Message-ID"] = f"<fanout-{time.time_ns()}-{n}@example.test>"
    msg.set_content("The heating in the gym is off.\n")
    name = f"{time.time_ns()}.{n}.bench"
    (path / "tmp" / name).write_bytes(msg.as_bytes())
    os.rename(path / "tmp" / name, path / "new" / name)


def setup(root: Path, database_url: str, mailboxes: int) -> tuple[Any, dict[str, str], list[Path]]:
    from helpdesk_core.services.departments import add_department, set_mailbox
    from helpdesk_core.services.permissions import SYSTEM
    from helpdesk_core.testing.apps import environment, make_app

    env = environment(root / "home", database_url)
    app = make_app(env)
    app.upgrade()
    paths = []
    with app.session() as session:
        for n in range(mailboxes):
            path = root / "maildirs" / f"m{n}"
            for sub in ("cur", "new", "tmp"):
                (path / sub).mkdir(parents=True, exist_ok=True)
            name = f"Fan{n:05d}"
            add_department(session, actor=SYSTEM, name=name, sender=f"f{n}@district.test", interval_minutes=600)
            set_mailbox(app, session, actor=SYSTEM, department=name, provider="generic",
                        config={"protocol": "maildir", "path": str(path), "email": f"f{n}@district.test"},
                        secrets={})
            paths.append(path)
        session.commit()
    return app, env, paths


def _park(app: Any) -> None:
    from sqlalchemy import update

    from helpdesk_core.models import Mailbox

    with app.session() as session:
        session.execute(update(Mailbox).values(next_run_at=datetime(2999, 1, 1, tzinfo=UTC)))
        session.commit()


def one_run(app: Any, env: dict[str, str], paths: list[Path], workers: int, mails: int,
            logs: Path) -> dict[str, Any]:
    from sqlalchemy import func, select, update

    from helpdesk_core.models import ImportCycle, Mailbox, TicketMessage

    _park(app)
    for n, path in enumerate(paths):
        for i in range(mails):
            _maildir_mail(path, n * mails + i)
    with app.session() as session:
        last_cycle = session.scalar(select(func.coalesce(func.max(ImportCycle.id), 0)))
        messages_before = session.scalar(select(func.count()).select_from(TicketMessage))
    procs = []
    logs.mkdir(parents=True, exist_ok=True)
    for w in range(workers):
        log = logs / f"w{workers}-{mails}-{w}.log"
        procs.append(subprocess.Popen(
            [*CELERY, "worker", "-n", f"f{w}@%h", "-c", "1", "-l", "WARNING", "--without-gossip",
             "--without-mingle", "--without-heartbeat"], env=env, stdout=open(log, "ab"),
            stderr=subprocess.STDOUT, start_new_session=True))
    procs.append(subprocess.Popen([*CELERY, "beat", "-s", str(logs / f"beat-{workers}-{mails}"),
                                   "-l", "WARNING"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True))
    try:
        time.sleep(6)  # workers and beat up
        due = datetime.now(UTC)
        with app.session() as session:
            session.execute(update(Mailbox).values(next_run_at=due))
            session.commit()
        t0 = time.monotonic()
        total = len(paths)
        while True:
            with app.session() as session:
                done = session.scalar(select(func.count(func.distinct(ImportCycle.department_id))).where(
                    ImportCycle.id > last_cycle, ImportCycle.finished_at.is_not(None),
                    ImportCycle.error.is_(None)))
            if done >= total or time.monotonic() - t0 > 900:
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - t0
        with app.session() as session:
            starts = sorted(session.scalars(
                select(func.min(ImportCycle.started_at)).where(ImportCycle.id > last_cycle)
                .group_by(ImportCycle.department_id)))
            imported = session.scalar(select(func.count()).select_from(TicketMessage)) - messages_before
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
    lags = [(s.replace(tzinfo=s.tzinfo or UTC) - due).total_seconds() for s in starts]

    def pct(p: float) -> float:
        return lags[min(len(lags) - 1, int(p / 100 * len(lags)))] if lags else float("nan")

    return {"workers": workers, "mails_each": mails, "mailboxes": total, "done": done, "seconds": elapsed,
            "cycles_per_second": done / elapsed, "mails_per_second": imported / elapsed if mails else 0.0,
            "imported": imported, "lag_p50": pct(50), "lag_p95": pct(95), "lag_max": max(lags or [0])}


def run(root: Path, *, mailboxes: int = 1000, workers: list[int] | None = None,
        mails: list[int] | None = None) -> list[dict[str, Any]]:
    from helpdesk_core.testing.servers.postgres import PostgresServer
    from helpdesk_core.testing.servers.redis import RedisServer

    workers = workers or [1, 2, 4]
    mails = mails if mails is not None else [0, 5]
    results = []
    pg = PostgresServer(root / "pg", _free_port())
    redis = RedisServer(root, _free_port())
    pg.start()
    redis.start()
    try:
        url = pg.create_database("fanout")
        print(f"\n== fan-out: {mailboxes} Maildir mailboxes, PostgreSQL + Redis, Celery workers -c 1")
        app, env, paths = setup(root, url, mailboxes)
        env = {**os.environ, **env, "HELPDESK_BROKER_URL": redis.url, "HELPDESK_DISPATCH_SECONDS": "1",
               "HELPDESK_REDISPATCH_SECONDS": "900"}
        for m in mails:
            for w in workers:
                res = one_run(app, env, paths, w, m, root / "logs")
                results.append(res)
                print(f"{w} worker(s), {m} mails each: {res['done']}/{mailboxes} departments in "
                      f"{res['seconds']:.1f} s = {res['cycles_per_second']:.1f} cycles/s"
                      + (f", {res['mails_per_second']:.0f} mails/s" if m else "")
                      + f"; schedule lag p50 {res['lag_p50']:.1f} s, p95 {res['lag_p95']:.1f} s, "
                        f"max {res['lag_max']:.1f} s")
        app.engine.dispose()
    finally:
        redis.stop()
        pg.stop()
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mailboxes", type=int, default=1000)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--mails", default="0,5", help="mails per mailbox, comma list")
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hd-fan-", dir="/tmp") as root:
        os.chmod(root, 0o755)
        run(Path(root), mailboxes=opts.mailboxes, workers=[int(w) for w in opts.workers.split(",")],
            mails=[int(m) for m in opts.mails.split(",")])


if __name__ == "__main__":
    main()
