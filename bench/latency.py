"""Scale figures, part 1 (``make bench``): delivery-to-ticket latency, and per-mailbox costs.

* **latency**: ``helpdesk worker`` runs against a private Dovecot; mails are APPENDed one by one,
  spread over the run, and for each the time from the end of its APPEND to the moment its ticket
  message is committed is measured (the database is polled every 10 ms). Once with push (IMAP IDLE,
  the default) and once with polling only (``push off``) at a 1-minute interval; p50/p95 of each.
* **per-mailbox and per-message cost** against the real Dovecot: ``helpdesk import`` of M empty
  IMAP mailboxes (seconds per empty mailbox cycle), then of M mailboxes with K mails each (seconds
  per message beyond the empty cycle). docs/scaling.md turns these into worker counts.

Run alone: ``python3 bench/latency.py [--mails 50] [--skip-poll]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

HELPDESK = [sys.executable, "-c", "from helpdesk_core.cli.main import main; main()"]


def mail(n: int, tag: str) -> tuple[str, bytes]:
    msg = EmailMessage()
    msg["From"] = f"Parent {n} <parent{n}@example.test>"
    msg["To"] = "bench@district.test"
    msg["Subject"] = f"Latency case {n}"
    msg["Message-ID"] = mid = make_msgid(idstring=f"{tag}{n}", domain="example.test")
    msg.set_content(f"The projector in room {n} is broken.\n")
    return mid.strip("<>"), msg.as_bytes()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


class Installation:
    """A HELPDESK_HOME on SQLite with departments on IMAPS mailboxes of ``server``."""

    def __init__(self, root: Path, server: Any, name: str) -> None:
        self.home = root / name
        self.env = {**os.environ, "HELPDESK_HOME": str(self.home)}
        self.env.pop("HELPDESK_DATABASE_URL", None)
        self.server = server
        self.cli("init")
        self.cli("settings", "set", "mail.rate_limit_per_hour", "0")

    def cli(self, *argv: str, stdin: str | None = None) -> str:
        proc = subprocess.run([*HELPDESK, *argv], input=stdin, capture_output=True, text=True,
                              env=self.env, timeout=600)
        if proc.returncode != 0:
            raise SystemExit(f"helpdesk {' '.join(argv)} failed:\n{proc.stdout}{proc.stderr}")
        return proc.stdout

    def add(self, department: str, email: str, password: str, interval: int = 1) -> None:
        self.cli("department", "add", department, "--sender", email, "--interval", str(interval))
        self.cli("department", "set-mailbox", department, "--protocol", "imap", "--host", "127.0.0.1",
                 "--port", str(self.server.imaps_port), "--security", "ssl", "--email", email,
                 "--ca-file", str(self.server.ca_file), "--no-validate", "--password-stdin",
                 stdin=password + "\n")

    def cycle_seconds(self, action: Any) -> float:
        """Run ``action``; the summed duration of the import cycles it ran (from the cycle log, so
        the start of the ``helpdesk`` process is not counted)."""
        import sqlite3

        query = ("SELECT COALESCE(MAX(id), 0) FROM import_cycles",
                 "SELECT started_at, finished_at FROM import_cycles WHERE id > ?")
        with sqlite3.connect(self.home / "helpdesk.db", timeout=30) as conn:
            last = conn.execute(query[0]).fetchone()[0]
        action()
        from datetime import datetime

        with sqlite3.connect(self.home / "helpdesk.db", timeout=30) as conn:
            rows = conn.execute(query[1], (last,)).fetchall()
        return sum((datetime.fromisoformat(f) - datetime.fromisoformat(s)).total_seconds() for s, f in rows)

    def committed(self) -> set[str]:
        import sqlite3

        with sqlite3.connect(self.home / "helpdesk.db", timeout=30) as conn:
            return {r[0] for r in conn.execute("SELECT message_id FROM ticket_messages")}


def measure_latency(root: Path, server: Any, *, push: bool, mails: int, spread_seconds: float) -> dict[str, Any]:
    """Start ``helpdesk worker``, APPEND ``mails`` mails spread over ``spread_seconds``, return the
    latencies (seconds from APPEND to committed ticket message)."""
    email, password = f"lat{'push' if push else 'poll'}@district.test", "latpass"
    server.add_user(email, password)
    inst = Installation(root, server, f"latency-{'push' if push else 'poll'}")
    inst.add("Latency", email, password, interval=1)
    if not push:
        inst.cli("department", "push", "Latency", "off")
    worker = subprocess.Popen([*HELPDESK, "worker", "--threads", "2"], env=inst.env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    appended: dict[str, float] = {}
    seen: dict[str, float] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            now = time.monotonic()
            for mid in inst.committed() - set(seen):
                seen[mid] = now
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    try:
        time.sleep(3)  # the worker's first (empty) cycle and its IDLE connection
        watcher.start()
        gap = spread_seconds / mails
        for n in range(mails):
            mid, raw = mail(n, "push" if push else "poll")
            server.append(email, raw)
            appended[mid] = time.monotonic()
            time.sleep(gap)
        deadline = time.monotonic() + (10 if push else 90)
        while set(appended) - set(seen) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        worker.terminate()
        worker.wait(timeout=30)
    latencies = [seen[m] - appended[m] for m in appended if m in seen]
    return {"push": push, "mails": mails, "imported": len(latencies),
            "p50": percentile(latencies, 50) if latencies else None,
            "p95": percentile(latencies, 95) if latencies else None,
            "max": max(latencies) if latencies else None}


def measure_costs(root: Path, server: Any, *, mailboxes: int, per_mailbox: int) -> dict[str, Any]:
    """Seconds of one ``helpdesk import`` process per empty mailbox and per message (IMAPS, SQLite)."""
    inst = Installation(root, server, "costs")
    users = []
    for n in range(mailboxes):
        email = f"cost{n}@district.test"
        server.add_user(email, "costpass")
        inst.add(f"Cost{n:03d}", email, "costpass", interval=60)
        users.append(email)
    inst.cli("import", "--json")  # warm: UIDVALIDITY, Dovecot indexes
    empty = inst.cycle_seconds(lambda: inst.cli("import", "--json"))
    for n, email in enumerate(users):
        for i in range(per_mailbox):
            server.deliver(email, mail(n * per_mailbox + i, "cost")[1])
    full = inst.cycle_seconds(lambda: inst.cli("import", "--json"))
    messages = mailboxes * per_mailbox
    return {"mailboxes": mailboxes, "per_mailbox": per_mailbox, "empty_seconds": empty,
            "full_seconds": full, "per_empty_mailbox": empty / mailboxes,
            "per_message": max(0.0, full - empty) / messages}


def run(root: Path, *, mails: int = 50, skip_poll: bool = False, cost_mailboxes: int = 20,
        cost_messages: int = 10) -> dict[str, Any]:
    """All figures of this part, with a Dovecot of its own; prints them as it goes."""
    from helpdesk_core.testing.servers.dovecot import DovecotServer

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run import free_port_base  # noqa: PLC0415 - the benchmark's helper

    server = DovecotServer(root / "dc-scale", free_port_base(31000))
    server.start()
    figures: dict[str, Any] = {}
    try:
        print("\n== latency: APPEND -> committed ticket, helpdesk worker")
        for push in (True, False) if not skip_poll else (True,):
            res = measure_latency(root, server, push=push, mails=mails,
                                  spread_seconds=mails * 0.25 if push else 60.0)
            figures["push" if push else "poll"] = res
            label = "push (IMAP IDLE)" if push else "polling, 1-minute interval"
            print(f"{label}: {res['imported']}/{mails} mails, p50 {res['p50']:.2f} s, p95 {res['p95']:.2f} s, "
                  f"max {res['max']:.2f} s" if res["p50"] is not None else f"{label}: nothing imported")
        print(f"\n== cost per mailbox cycle against Dovecot (one helpdesk import, {cost_mailboxes} mailboxes)")
        costs = measure_costs(root, server, mailboxes=cost_mailboxes, per_mailbox=cost_messages)
        figures["costs"] = costs
        print(f"empty mailbox: {costs['per_empty_mailbox'] * 1000:.1f} ms per cycle; "
              f"per message: {costs['per_message'] * 1000:.1f} ms "
              f"({cost_mailboxes} x {cost_messages} mails in {costs['full_seconds']:.2f} s)")
    finally:
        server.stop()
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mails", type=int, default=50)
    ap.add_argument("--skip-poll", action="store_true", help="only the push latency (saves ~2 min)")
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hd-lat-", dir="/tmp") as root:
        os.chmod(root, 0o755)
        run(Path(root), mails=opts.mails, skip_poll=opts.skip_poll)


if __name__ == "__main__":
    main()
