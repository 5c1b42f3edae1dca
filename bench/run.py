#!/usr/bin/env python3
"""Import throughput benchmark (``make bench``): prints figures, asserts nothing.

Starts a private Dovecot on 127.0.0.1 (:class:`helpdesk_core.testing.dovecot.DovecotServer`), fills
one mailbox with N generated messages (:mod:`bench.mailgen`, seeded) and measures, each in its own
subprocess so the peak RSS figures are separate:

(a) the floor: imapclient over IMAPS, ``BODY.PEEK[]`` in batches of 100, stdlib ``email`` parse
    touching the body and attachments like a naive importer, ``\\Deleted`` + UID EXPUNGE per batch;
    no database;
(b) the real import: ``helpdesk import --json`` (the click command, called in-process in the child
    after the interpreter and the core are imported) into a fresh ``HELPDESK_HOME`` with SQLite,
    after refilling the mailbox byte-identically;
(c) the peak RSS of importing one message with a 50 MB attachment (limits raised so it is stored);
(d) the time of one thread lookup (``match_by_message_ids`` / ``match_by_subject``) with 10k and
    1M tickets bulk-loaded into a database made by ``helpdesk init``, with the query plans.

Usage::

    python3 bench/run.py                 # N = 1000 and 5000, plus (c) and (d)
    python3 bench/run.py --quick         # N = 200, lookup with 10k and 100k tickets
    python3 bench/run.py --n 2000 --n 500 --skip-lookup --skip-big
    python3 bench/run.py --profile 1000  # only: profile (b) at N = 1000 with cProfile

Needs root (Dovecot switches to the user ``mail``), the dovecot-imapd package, and helpdesk-core +
helpdesk-mail-generic installed (``pip install -e . -e plugins/mail_generic``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
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


# ============================================================================ helpers (both sides)


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
    """(b)/(c) ``helpdesk import --json``: the click command called in this process."""
    import contextlib
    import io

    os.environ["HELPDESK_HOME"] = args["home"]
    from helpdesk_core import cli  # the core, SQLAlchemy, click ... imported before timing

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
            cli.main(["import", "--json"], standalone_mode=False)
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
        counts = json.loads(text).get(DEPARTMENT, {})
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
    from helpdesk_core.context import Classification
    from helpdesk_core.default_plugins import matching
    from helpdesk_core.message import Address, ParsedMessage
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
         lambda m, d, c: matching.helpdesk_find_ticket(m, d, classification, c)),
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


# ============================================================================ parent


def run_child(kind: str, state: Path, **args: Any) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; return its result plus the kernel's ru_maxrss."""
    result_file = state / f"result-{kind}-{time.time_ns()}.json"
    args["result_file"] = str(result_file)
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "_child", kind, json.dumps(args)],
                            cwd=str(REPO))
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child {kind!r} failed with exit code {proc.returncode}")
    result = json.loads(result_file.read_text())
    result["ru_maxrss_kib"] = usage.ru_maxrss
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime  # whole child, interpreter start included
    return result


def helpdesk_cli(home: Path, *argv: str, stdin: str | None = None) -> str:
    env = {**os.environ, "HELPDESK_HOME": str(home)}
    proc = subprocess.run([sys.executable, "-c", "from helpdesk_core.cli import main; main()", *argv],
                          input=stdin, capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"helpdesk {' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def new_home(state: Path, name: str, server: Any = None, settings: dict[str, str] | None = None) -> Path:
    """A fresh HELPDESK_HOME: init, one department, optionally its IMAPS mailbox and settings."""
    home = state / name
    shutil.rmtree(home, ignore_errors=True)
    helpdesk_cli(home, "init")
    helpdesk_cli(home, "department", "add", DEPARTMENT, "--sender", EMAIL)
    for key, value in (settings or {}).items():
        helpdesk_cli(home, "settings", "set", key, value)
    if server is not None:
        helpdesk_cli(home, "department", "set-mailbox", DEPARTMENT, "--provider", "generic",
                     "--protocol", "imap", "--host", "127.0.0.1", "--port", str(server.imaps_port),
                     "--security", "ssl", "--email", EMAIL, "--ca-file", str(server.ca_file),
                     "--password-stdin", stdin=PASSWORD + "\n")
    return home


def fill(server: Any, messages: list[bytes]) -> float:
    """Empty the mailbox, deliver ``messages`` in order, and let Dovecot index them (one SELECT)."""
    from imapclient import IMAPClient

    server.reset(EMAIL, kick=True)
    t0 = time.perf_counter()
    for raw in messages:
        server.deliver(EMAIL, raw)
    # Direct Maildir writes are indexed on the next SELECT; do it here, unmeasured, for both runs
    # (with LDA/LMTP delivery the index is kept up to date as mail arrives).
    client = IMAPClient("127.0.0.1", port=server.imap_port, ssl=False, timeout=600)
    client.login(EMAIL, PASSWORD)
    info = client.select_folder("INBOX")
    client.logout()
    if int(info[b"EXISTS"]) != len(messages):
        raise SystemExit(f"mailbox holds {info[b'EXISTS']} messages after delivering {len(messages)}")
    subprocess.run(["sync"], check=False)
    return time.perf_counter() - t0


def free_port_base(start: int = 27000) -> int:
    from helpdesk_core.testing.dovecot import port_is_free

    for base in range(start, 60000, 1000):
        if all(port_is_free(base + off) for off in (110, 143, 993, 995)):
            return base
    raise SystemExit("no free port block for Dovecot")


def machine() -> dict[str, str]:
    cpu = "?"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as fh:
        mem_kib = int(fh.readline().split()[1])
    dovecot = subprocess.run(["dovecot", "--version"], capture_output=True, text=True).stdout.strip()
    import imapclient
    import sqlalchemy

    return {"nproc": str(os.cpu_count()), "cpu": cpu, "ram": f"{mem_kib / 1048576:.1f} GiB",
            "kernel": platform.release(), "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "sqlalchemy": sqlalchemy.__version__,
            "imapclient": imapclient.__version__, "dovecot": dovecot}


def parse_ns(values: list[str] | None, quick: bool) -> list[int]:
    if quick and not values:
        return [200]
    if not values:
        return [1000, 5000]
    out: list[int] = []
    for value in values:
        out += [int(v) for v in value.split(",") if v.strip()]
    return out


def _imported(result: dict[str, Any]) -> int:
    counts = result["counts"]
    return int(counts.get("created", 0) or 0) + int(counts.get("updated", 0) or 0)


def print_import(imp: dict[str, Any], n: int, left: int) -> None:
    imported = _imported(imp)
    print(f"(b) import: {imported} msgs in {imp['seconds']:.2f} s = {imported / imp['seconds']:.1f} msg/s "
          f"(CPU {imp['cpu']:.2f} s), peak RSS {_mb(imp['peak_rss_kib']):.0f} MB "
          f"(baseline {_mb(imp['baseline_rss_kib']):.0f} MB), created {imp['counts'].get('created')}, "
          f"updated {imp['counts'].get('updated')}, failed {imp['counts'].get('failed')}, left in mailbox: {left}")
    if imp["exit"] or imported != n:
        print(f"    WARNING: the import did not store all {n} messages (exit {imp['exit']}): {imp['counts']}")


def print_profile(path: Path, limit: int = 35) -> None:
    import pstats

    for key in ("tottime", "cumulative"):
        print(f"\n--- cProfile of (b), top {limit} by {key} ({path}) ---")
        stats = pstats.Stats(str(path))
        stats.strip_dirs().sort_stats(key).print_stats(limit)


def main() -> None:
    state_holder: list[Path] = []
    try:
        _main(state_holder)
    finally:  # also after a failure: the state folder can hold hundreds of MB
        if state_holder and state_holder[0].exists() and "--keep" not in sys.argv:
            shutil.rmtree(state_holder[0], ignore_errors=True)


def _main(state_holder: list[Path]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", action="append", help="mailbox size(s); repeatable or comma list (default 1000,5000)")
    ap.add_argument("--quick", action="store_true", help="N = 200, lookup with 10k/100k tickets")
    ap.add_argument("--seed", type=int, default=None, help="generator seed")
    ap.add_argument("--skip-throughput", action="store_true", help="skip (a)/(b)")
    ap.add_argument("--skip-big", action="store_true", help="skip (c), the 50 MB attachment")
    ap.add_argument("--big-mb", type=float, default=50, help="attachment size for (c)")
    ap.add_argument("--skip-lookup", action="store_true", help="skip (d), the thread lookup")
    ap.add_argument("--lookup-tickets", default=None, help="ticket counts for (d) (default 10000,1000000)")
    ap.add_argument("--no-index-experiment", action="store_true",
                    help="(d): skip re-measuring with an extra outbox_messages(department_id, message_id) index")
    ap.add_argument("--lookups", type=int, default=2000, help="timed lookups per kind in (d)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of (a) and (b) per N; the best is kept")
    ap.add_argument("--profile", type=int, metavar="N", help="only profile (b) at this N with cProfile")
    ap.add_argument("--profiler", choices=("cprofile", "pyinstrument"), default="cprofile",
                    help="profiler for --profile (pyinstrument: pip install pyinstrument)")
    ap.add_argument("--keep", action="store_true", help="keep the state folder (/tmp/hd-bench-*)")
    ap.add_argument("--json", metavar="FILE", help="also write all figures as JSON")
    opts = ap.parse_args()

    import mailgen
    from helpdesk_core.testing.dovecot import DovecotServer

    seed = opts.seed if opts.seed is not None else mailgen.DEFAULT_SEED
    ns = [opts.profile] if opts.profile else [] if opts.skip_throughput else parse_ns(opts.n, opts.quick)
    ns = [n for n in ns if n > 0]
    lookup_sizes = ([int(x) for x in opts.lookup_tickets.split(",")] if opts.lookup_tickets
                    else [10_000, 100_000] if opts.quick else [10_000, 1_000_000])
    state = Path(tempfile.mkdtemp(prefix="hd-bench-", dir="/tmp"))
    state_holder.append(state)
    figures: dict[str, Any] = {"machine": machine(), "seed": seed, "runs": [], "big": None, "lookup": []}
    info = figures["machine"]
    print(f"machine: {info['nproc']} x {info['cpu']}, {info['ram']} RAM, Linux {info['kernel']}")
    print(f"software: Python {info['python']}, SQLite {info['sqlite']}, SQLAlchemy {info['sqlalchemy']}, "
          f"IMAPClient {info['imapclient']}, Dovecot {info['dovecot']}")
    print(f"state: {state}")
    t_start = time.perf_counter()
    server = DovecotServer(state / "dc", free_port_base())
    server.start()
    try:
        server.add_user(EMAIL, PASSWORD)
        for n in ns:
            messages = mailgen.generate(n, seed)
            st = mailgen.stats()
            print(f"\n== N = {n}: {st.total_bytes / 1048576:.1f} MB, {st.new_threads} new threads, "
                  f"{st.replies} replies, {st.with_attachment} with attachment "
                  f"({st.attachment_bytes / 1048576:.1f} MB), formats {st.formats}, charsets {st.charsets}, "
                  f"encodings {st.encodings}")
            if opts.profile:
                home = new_home(state, f"home-{n}", server)  # mailbox configured while still empty
                suffix = "txt" if opts.profiler == "pyinstrument" else "pstats"
                profile_path = state / f"import-{n}.{suffix}"
                fill(server, messages)
                imp = run_child("import", state, home=str(home), profile=str(profile_path), profiler=opts.profiler)
                print_import(imp, n, server.count(EMAIL))
                if opts.profiler == "pyinstrument":
                    print(profile_path.read_text())
                else:
                    print_profile(profile_path)
                print(f"\nprofile in {profile_path} (kept with --keep)")
                continue
            floors, imports = [], []
            for rep in range(opts.repeat):  # alternate (a) and (b): a busy machine slows both alike
                fill(server, messages)
                floor = run_child("floor", state, port=server.imaps_port, ca_file=str(server.ca_file),
                                  user=EMAIL, password=PASSWORD)
                print(f"(a) floor:  {floor['messages']} msgs in {floor['seconds']:.2f} s = "
                      f"{floor['messages'] / floor['seconds']:.1f} msg/s (CPU {floor['cpu']:.2f} s), peak RSS "
                      f"{_mb(floor['peak_rss_kib']):.0f} MB (baseline {_mb(floor['baseline_rss_kib']):.0f} MB), "
                      f"left in mailbox: {server.count(EMAIL)}")
                floors.append(floor)
                home = new_home(state, f"home-{n}-{rep}", server)  # mailbox configured while still empty
                fill(server, messages)
                imp = run_child("import", state, home=str(home))
                print_import(imp, n, server.count(EMAIL))
                imports.append(imp)
                shutil.rmtree(home, ignore_errors=True)
            floor = max(floors, key=lambda r: r["messages"] / r["seconds"])
            imp = max(imports, key=lambda r: _imported(r) / r["seconds"])
            run = {"n": n, "mailbox_mb": st.total_bytes / 1048576, "floor": floor, "import": imp,
                   "floor_rate": floor["messages"] / floor["seconds"], "import_rate": _imported(imp) / imp["seconds"],
                   "floor_cpu_rate": floor["messages"] / floor["cpu"], "import_cpu_rate": _imported(imp) / imp["cpu"],
                   "floor_peak_kib": max(r["peak_rss_kib"] for r in floors),
                   "import_peak_kib": max(r["peak_rss_kib"] for r in imports)}
            run["ratio"] = run["import_rate"] / run["floor_rate"]
            run["cpu_ratio"] = run["import_cpu_rate"] / run["floor_cpu_rate"]
            print(f"    ratio (b)/(a) = {run['ratio']:.2f} (wall, best of {opts.repeat}); "
                  f"per CPU second of the client: {run['cpu_ratio']:.2f}")
            figures["runs"].append(run)

        if not opts.skip_big and not opts.profile:
            big = mailgen.big_message(opts.big_mb, seed)
            limit = str(int(opts.big_mb * 2 + 10))
            print(f"\n== (c) one message with a {opts.big_mb:g} MB attachment ({len(big) / 1048576:.1f} MB raw)")
            home = new_home(state, "home-big", server, {"attachments.max_size_mb": limit,
                                                        "mail.max_message_size_mb": limit})
            fill(server, [big])
            bfloor = run_child("floor", state, port=server.imaps_port, ca_file=str(server.ca_file),
                               user=EMAIL, password=PASSWORD)
            fill(server, [big])
            bimp = run_child("import", state, home=str(home))
            stored = sum(f.stat().st_size for f in (home / "attachments").rglob("*") if f.is_file())
            print(f"(a) floor:  peak RSS {_mb(bfloor['peak_rss_kib']):.0f} MB in {bfloor['seconds']:.2f} s")
            print(f"(b) import: peak RSS {_mb(bimp['peak_rss_kib']):.0f} MB in {bimp['seconds']:.2f} s, "
                  f"counts {bimp['counts']}, {stored / 1048576:.1f} MB in the attachment store")
            figures["big"] = {"mb": opts.big_mb, "raw_mb": len(big) / 1048576, "floor": bfloor, "import": bimp}
    finally:
        server.stop()

    if not opts.skip_lookup and not opts.profile:
        print("\n== (d) thread lookup (default helpdesk_find_ticket)")
        for size in lookup_sizes:
            home = new_home(state, f"home-lookup-{size}")
            res = run_child("lookup", state, home=str(home), tickets=size, lookups=opts.lookups, department_id=1,
                            try_outbox_index=not opts.no_index_experiment)
            lk = res["lookups"]
            print(f"{size:>9} tickets (+{size} messages, +{res['outbox_rows']} outbox rows): "
                  f"loaded in {res['load_seconds']:.1f} s, "
                  f"DB {res['db_mb']:.0f} MB; median " + ", ".join(
                      f"{k} {v['median_us']:.0f} us (p90 {v['p90_us']:.0f})" for k, v in lk.items()))
            if res.get("with_outbox_index"):
                x = res["with_outbox_index"]
                print(f"          experiment, + index outbox_messages(department_id, message_id): message_ids "
                      f"median {x['median_us']:.0f} us (p90 {x['p90_us']:.0f}); plan: {' | '.join(x['plan'])}")
            figures["lookup"].append(res)
            shutil.rmtree(home, ignore_errors=True)
        for name, plan in figures["lookup"][-1]["plans"].items():
            print(f"  EXPLAIN QUERY PLAN {name}: " + " | ".join(plan))

    if figures["runs"] or figures["big"] or figures["lookup"]:
        summary(figures)
    print(f"\ntotal benchmark time {time.perf_counter() - t_start:.0f} s")
    if opts.json:
        Path(opts.json).write_text(json.dumps(figures, indent=2, default=str))
    if opts.keep:
        print(f"state kept in {state}")
    else:
        shutil.rmtree(state, ignore_errors=True)


def summary(f: dict[str, Any]) -> None:
    print("\n=========================== summary ===========================")
    if f["runs"]:
        print(f"{'N':>6} {'MB':>5} {'(a) msg/s':>10} {'(b) msg/s':>10} {'(b)/(a)':>8} {'CPU ratio':>9} "
              f"{'(a) peak RSS':>13} {'(b) peak RSS':>13}")
        for r in f["runs"]:
            print(f"{r['n']:>6} {r['mailbox_mb']:>5.0f} {r['floor_rate']:>10.1f} {r['import_rate']:>10.1f} "
                  f"{r['ratio']:>8.2f} {r['cpu_ratio']:>9.2f} {_mb(r['floor_peak_kib']):>10.0f} MB "
                  f"{_mb(r['import_peak_kib']):>10.0f} MB")
    if f["big"]:
        b = f["big"]
        print(f"(c) {b['mb']:g} MB attachment ({b['raw_mb']:.0f} MB raw): peak RSS floor "
              f"{_mb(b['floor']['peak_rss_kib']):.0f} MB, import {_mb(b['import']['peak_rss_kib']):.0f} MB")
    if len(f["lookup"]) >= 2:
        lo, hi = f["lookup"][0], f["lookup"][-1]
        for name in lo["lookups"]:
            a, b = lo["lookups"][name]["median_us"], hi["lookups"][name]["median_us"]
            print(f"(d) {name}: {a:.0f} us at {lo['tickets']:,} tickets, {b:.0f} us at {hi['tickets']:,} "
                  f"tickets: ratio {b / a:.2f}")
        if lo.get("with_outbox_index") and hi.get("with_outbox_index"):
            a, b = lo["with_outbox_index"]["median_us"], hi["with_outbox_index"]["median_us"]
            print(f"(d) message_ids with an outbox (department_id, message_id) index: {a:.0f} us -> {b:.0f} us: "
                  f"ratio {b / a:.2f}")
    print("targets (issue): (b)/(a) >= 0.75 at N=5000; peak RSS <= 150 MB at N=5000 and for the 50 MB "
          "attachment; lookup at 1M <= 1.5x at 10k")


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "_child":
        child_main(sys.argv[2], sys.argv[3])
    else:
        main()
