#!/usr/bin/env python3
"""The measuring side of the benchmark: each measurement runs here, in a fresh interpreter started
by ``bench/run.py`` (``python3 bench/children.py KIND JSON``), so that its peak RSS is its own."""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

EMAIL = "support@bench.test"
PASSWORD = "bench-pass"
DEPARTMENT = "Bench"
BATCH = 100


# ============================================================================ helpers (run.py imports them too)


def _vm_status() -> dict[str, int]:
    """VmHWM / VmRSS of this process in KiB."""
    out: dict[str, int] = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("VmHWM:", "VmRSS:")):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0])
    return out


def _mb(kib: float) -> float:
    return kib / 1024


# ============================================================================ children


def child_floor(args: dict[str, Any]) -> dict[str, Any]:
    """(a) imapclient + stdlib email, no database."""
    import logging
    import ssl
    from email import policy
    from email.parser import BytesParser

    from imapclient import IMAPClient, SocketTimeout

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("imapclient").setLevel(logging.INFO)  # as the CLI: protocol debug off
    baseline = _vm_status()["VmRSS"]
    parser = BytesParser(policy=policy.default)
    c0 = time.process_time()
    t0 = time.perf_counter()
    client = IMAPClient("127.0.0.1", port=args["port"], ssl=True,
                        ssl_context=ssl.create_default_context(cafile=args["ca_file"]),
                        timeout=SocketTimeout(connect=10, read=60))
    client.login(args["user"], args["password"])
    client.select_folder("INBOX")
    uids = sorted(int(u) for u in client.search(["ALL"]))
    done = body_chars = attachment_bytes = 0
    for start in range(0, len(uids), BATCH):
        batch = uids[start:start + BATCH]
        data = client.fetch(batch, [b"BODY.PEEK[]"])
        for uid in batch:
            raw = bytes(data[uid][b"BODY[]"])
            msg = parser.parsebytes(raw)
            body = msg.get_body(("plain", "html"))
            if body is not None:
                body_chars += len(body.get_content())
            for att in msg.iter_attachments():
                content = att.get_content()
                attachment_bytes += len(content)
            done += 1
        del data
        client.add_flags(batch, [b"\\Deleted"], silent=True)
        client.uid_expunge(batch)
    client.logout()
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    vm = _vm_status()
    return {"messages": done, "seconds": elapsed, "cpu": cpu, "peak_rss_kib": vm["VmHWM"], "baseline_rss_kib": baseline,
            "body_chars": body_chars, "attachment_bytes": attachment_bytes}


def child_import(args: dict[str, Any]) -> dict[str, Any]:
    """(b)/(c) ``helpdesk import --json`` (or ``argv``, e.g. ``ingest``): the click command called
    in this process."""
    import contextlib
    import io

    os.environ["HELPDESK_HOME"] = args["home"]
    if args.get("database_url"):  # PostgreSQL (else SQLite in the home folder)
        os.environ["HELPDESK_DATABASE_URL"] = args["database_url"]
    from helpdesk_core.cli import main as cli  # the core, SQLAlchemy, click ... imported before timing

    baseline = _vm_status()["VmRSS"]
    out = io.StringIO()
    profiler: Any = None
    if args.get("profile") and args.get("profiler") == "pyinstrument":
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.enable, profiler.disable = profiler.start, profiler.stop  # type: ignore[method-assign]
    elif args.get("profile"):
        import cProfile

        profiler = cProfile.Profile()
    c0 = time.process_time()
    t0 = time.perf_counter()
    code = 0
    with contextlib.redirect_stdout(out):
        if profiler:
            profiler.enable()
        try:
            cli.main(args.get("argv") or ["import", "--json"], standalone_mode=False)
        except SystemExit as exc:
            code = int(exc.code or 0)
        finally:
            if profiler:
                profiler.disable()
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    vm = _vm_status()
    if profiler and args.get("profiler") == "pyinstrument":
        Path(args["profile"]).write_text(profiler.output_text(unicode=True, color=False, show_all=False))
    elif profiler:
        profiler.dump_stats(args["profile"])
    text = out.getvalue()
    try:
        counts = json.loads(text).get(DEPARTMENT, {}) if not args.get("argv") else {"exit": code}
    except ValueError:
        counts = {"error": text[-2000:]}
    return {"seconds": elapsed, "cpu": cpu, "peak_rss_kib": vm["VmHWM"], "baseline_rss_kib": baseline,
            "exit": code, "counts": counts}


def child_lookup(args: dict[str, Any]) -> dict[str, Any]:
    """(d) bulk-load tickets, then time the default thread lookup."""
    import random

    from sqlalchemy import create_engine, event, insert, select, text

    os.environ["HELPDESK_HOME"] = args["home"]
    from helpdesk_core.app import Helpdesk
    from helpdesk_core.config import Config
    from helpdesk_core.hooktypes import Classification
    from helpdesk_core.defaults import threading as matching
    from helpdesk_core.mail.message import Address, ParsedMessage
    from helpdesk_core.models import Department, Ticket, TicketMessage

    try:  # outgoing mail (acknowledgements, replies) is matched by Message-ID too, when the core has it
        from helpdesk_core.models import OutboxMessage
    except ImportError:
        OutboxMessage = None  # noqa: N806
    import inspect

    n = int(args["tickets"])
    db = Path(args["home"]) / "helpdesk.db"
    dept_id = args["department_id"]

    def mid(i: int) -> str:  # random-looking, like real Message-IDs (random B-tree inserts)
        return f"{(i * 2654435761) % 4294967296:08x}.{i}@mail.customers.test"

    # ---- bulk load: SQLAlchemy Core insert() executemany, chunks, one transaction
    loader = create_engine(f"sqlite:///{db}")

    @event.listens_for(loader, "connect")
    def _pragmas(conn: Any, _rec: Any) -> None:
        cur = conn.cursor()
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "foreign_keys=OFF", "cache_size=-524288",
                       "temp_store=MEMORY", "locking_mode=EXCLUSIVE"):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    from datetime import UTC, datetime

    now = datetime(2024, 6, 1, tzinfo=UTC)
    chunk = 20_000
    t0 = time.perf_counter()
    with loader.begin() as conn:
        for start in range(1, n + 1, chunk):
            ids = range(start, min(n, start + chunk - 1) + 1)
            conn.execute(insert(Ticket.__table__), [
                {"id": i, "department_id": dept_id, "number": i, "subject": f"Printer {i} jammed",
                 "status": "OPEN", "requester_id": None, "participants": [f"c{i}@customers.test"],
                 "mentions": None,
                 "linked_ticket_id": None, "created_at": now, "updated_at": now} for i in ids])
            conn.execute(insert(TicketMessage.__table__), [
                {"id": i, "ticket_id": i, "department_id": dept_id, "direction": "INBOUND", "kind": "message",
                 "message_id": mid(i), "in_reply_to": [], "references": [], "from_email": f"c{i}@customers.test",
                 "from_name": "", "to": [], "cc": [], "subject": f"Printer {i} jammed", "date": now,
                 "body_text": "", "body_html": None, "body_display": "", "removed_attachments": [],
                 "defects": [], "raw_sha256": None, "raw_storage_key": None, "author_id": None,
                 "created_at": now} for i in ids])
            if OutboxMessage is not None:  # one sent acknowledgement per ticket
                conn.execute(insert(OutboxMessage.__table__), [
                    {"id": i, "department_id": dept_id, "ticket_id": i, "ticket_message_id": i,
                     "kind": "acknowledgement", "mail_from": "support@bench.test",
                     "recipients": [f"c{i}@customers.test"], "to_email": f"c{i}@customers.test",
                     "subject": f"[Ticket #{i}] Printer {i} jammed", "raw": b"", "message_id": f"ack.{mid(i)}",
                     "status": "sent", "attempts": 1, "created_at": now, "sent_at": now} for i in ids])
        conn.execute(text("UPDATE departments SET last_ticket_number = :n WHERE id = :d"), {"n": n, "d": dept_id})
    load_seconds = time.perf_counter() - t0
    loader.dispose()
    with sqlite3.connect(db) as c:
        c.execute("ANALYZE")
        c.execute("PRAGMA journal_mode=WAL")
    db_mb = db.stat().st_size / 1048576

    # ---- lookups through the app's own engine (WAL, foreign keys, as the importer)
    app = Helpdesk.from_config(Config.from_env())
    session = app.session()
    department = session.get(Department, dept_id)
    ctx = app.context(session)
    classification = Classification()
    rng = random.Random(7)
    count = int(args["lookups"])
    targets = rng.sample(range(1, n + 1), min(n, count + 200))

    def by_reply(i: int) -> ParsedMessage:
        refs = [mid(max(1, i - 1)) if i > 1 else mid(i), mid(i)]
        return ParsedMessage(raw=b"", message_id=f"new.{i}@mail.customers.test", in_reply_to=[mid(i)],
                             references=refs, subject=f"Re: Printer {i} jammed",
                             from_=Address(f"c{i}@customers.test"))

    def by_subject(i: int) -> ParsedMessage:
        return ParsedMessage(raw=b"", message_id=f"new.{i}@mail.customers.test",
                             subject=f"Re: [Ticket #{i}] Printer {i} jammed", from_=Address(f"c{i}@customers.test"))

    def matcher(fn: Any) -> Any:
        if "classification" in inspect.signature(fn).parameters:
            return lambda m, d, c: fn(m, d, classification=classification, context=c)
        return fn

    results: dict[str, Any] = {}
    kinds = (
        ("message_ids", by_reply, matcher(matching.match_by_message_ids)),
        ("subject", by_subject, matcher(matching.match_by_subject)),
        ("find_ticket(subject only)", by_subject,
         lambda m, d, c: matching.helpdesk_find_ticket(m, d, classification, c).ticket),
    )

    def measure(name: str, build: Any, fn: Any) -> dict[str, Any]:
        times: list[float] = []
        deadline = time.perf_counter() + float(args.get("seconds_per_kind", 15))
        for k, i in enumerate(targets):
            if k >= 70 and time.perf_counter() > deadline:  # scan-bound lookups: 50 samples are enough
                break
            message = build(i)
            session.expunge_all()  # no identity-map hits: every lookup goes to the database
            session.add(department)
            t = time.perf_counter_ns()
            ticket = fn(message, department, ctx)
            dt = time.perf_counter_ns() - t
            ticket = getattr(ticket, "ticket", ticket)  # message_id returns a ThreadMatch
            if ticket is None or ticket.id != i:
                raise SystemExit(f"lookup {name} of ticket {i} returned {ticket!r}")
            if k >= 20:  # warm-up
                times.append(dt / 1000)
        times.sort()
        return {"median_us": statistics.median(times), "p90_us": times[int(len(times) * 0.9)], "lookups": len(times)}

    for name, build, fn in kinds:
        results[name] = measure(name, build, fn)
    session.rollback()

    # ---- query plans of the statements the lookup runs
    sample = targets[0]
    stmts = {
        "match_by_message_ids": select(TicketMessage.ticket_id, TicketMessage.message_id).where(
            TicketMessage.department_id == dept_id, TicketMessage.message_id.in_([mid(sample), mid(sample + 1)])),
        "match_by_subject": select(Ticket).where(Ticket.department_id == dept_id, Ticket.number == sample),
        "session.get(Ticket)": select(Ticket).where(Ticket.id == sample),
    }
    if OutboxMessage is not None:
        stmts["match_by_message_ids (outbox)"] = select(OutboxMessage.ticket_id, OutboxMessage.message_id).where(
            OutboxMessage.department_id == dept_id, OutboxMessage.message_id.in_([mid(sample), mid(sample + 1)]))
    plans: dict[str, list[str]] = {}
    with app.engine.connect() as conn:
        for name, stmt in stmts.items():
            sql = str(stmt.compile(dialect=app.engine.dialect, compile_kwargs={"literal_binds": True}))
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql).all()
            plans[name] = [r[-1] for r in rows]
    # ---- experiment: what an index on outbox_messages (department_id, message_id) would change
    experiment = None
    if OutboxMessage is not None and args.get("try_outbox_index"):
        with app.engine.begin() as conn:
            conn.exec_driver_sql("CREATE INDEX ix_bench_outbox_department_id_message_id "
                                 "ON outbox_messages (department_id, message_id)")
            conn.exec_driver_sql("ANALYZE")
        experiment = measure("message_ids", by_reply, kinds[0][2])
        session.rollback()
        with app.engine.connect() as conn:
            sql = str(stmts["match_by_message_ids (outbox)"].compile(
                dialect=app.engine.dialect, compile_kwargs={"literal_binds": True}))
            experiment["plan"] = [r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql).all()]
    session.close()
    return {"tickets": n, "load_seconds": load_seconds, "db_mb": db_mb, "lookups": results, "plans": plans,
            "outbox_rows": n if OutboxMessage is not None else 0, "with_outbox_index": experiment}


CHILDREN = {"floor": child_floor, "import": child_import, "lookup": child_lookup}


def child_main(kind: str, payload: str) -> None:
    result = CHILDREN[kind](json.loads(payload))
    with open(json.loads(payload)["result_file"], "w") as fh:
        json.dump(result, fh)




if __name__ == "__main__":
    child_main(sys.argv[1], sys.argv[2])
