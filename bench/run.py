#!/usr/bin/env python3
"""Import throughput benchmark (``make bench``): prints figures, asserts nothing.

Starts a private Dovecot on 127.0.0.1 (:class:`helpdesk_core.testing.servers.dovecot.DovecotServer`), fills
one mailbox with N generated messages (:mod:`bench.mailgen`, seeded) and measures, each in its own
subprocess so the peak RSS figures are separate:

(a) the floor: imapclient over IMAPS, ``BODY.PEEK[]`` in batches of 100, stdlib ``email`` parse
    touching the body and attachments like a naive importer, ``\\Deleted`` + UID EXPUNGE per batch;
    no database;
(b) the real import: ``helpdesk import --json`` (the click command, called in-process in the child
    after the interpreter and the core are imported) into a fresh ``HELPDESK_HOME`` with SQLite,
    or a fresh database on a private PostgreSQL (``--db``; each database with its own floor run),
    after refilling the mailbox byte-identically;
(c) the peak RSS of importing one message with a 50 MB attachment (limits raised so it is stored);
(d) the time of one thread lookup (``match_by_message_ids`` / ``match_by_subject``) with 10k and
    1M tickets bulk-loaded into a database made by ``helpdesk init``, with the query plans;
(e) scale: delivery-to-ticket latency with push and with 1-minute polling, per-mailbox and
    per-message cycle costs against Dovecot (:mod:`bench.latency`), and the fan-out of 1,000
    mailboxes over 1, 2 and 4 Celery workers (:mod:`bench.fanout`; PostgreSQL + Redis).

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

from children import DEPARTMENT, EMAIL, PASSWORD, _mb  # noqa: E402 - the measuring side's names

# ============================================================================ parent


def run_child(kind: str, state: Path, **args: Any) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; return its result plus the kernel's ru_maxrss."""
    result_file = state / f"result-{kind}-{time.time_ns()}.json"
    args["result_file"] = str(result_file)
    proc = subprocess.Popen([sys.executable, str(HERE / "children.py"), kind, json.dumps(args)],
                            cwd=str(REPO))
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child {kind!r} failed with exit code {proc.returncode}")
    result = json.loads(result_file.read_text())
    result["ru_maxrss_kib"] = usage.ru_maxrss
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime  # whole child, interpreter start included
    return result


def helpdesk_cli(home: Path, *argv: str, stdin: str | None = None, database_url: str | None = None) -> str:
    env = {**os.environ, "HELPDESK_HOME": str(home)}
    if database_url:
        env["HELPDESK_DATABASE_URL"] = database_url
    proc = subprocess.run([sys.executable, "-c", "from helpdesk_core.cli.main import main; main()", *argv],
                          input=stdin, capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"helpdesk {' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def new_home(state: Path, name: str, server: Any = None, settings: dict[str, str] | None = None,
             protocol: str = "imap", database_url: str | None = None) -> Path:
    """A fresh HELPDESK_HOME: init, one department, optionally its IMAPS (or POP3S) mailbox and settings.
    ``database_url``: a fresh PostgreSQL database instead of SQLite in the home folder."""
    home = state / name
    shutil.rmtree(home, ignore_errors=True)
    helpdesk_cli(home, "init", database_url=database_url)
    helpdesk_cli(home, "department", "add", DEPARTMENT, "--sender", EMAIL, database_url=database_url)
    for key, value in (settings or {}).items():
        helpdesk_cli(home, "settings", "set", key, value, database_url=database_url)
    if server is not None:
        helpdesk_cli(home, "department", "set-mailbox", DEPARTMENT, "--provider", "generic",
                     "--protocol", protocol, "--host", "127.0.0.1",
                     "--port", str(server.imaps_port if protocol == "imap" else server.pop3s_port),
                     "--security", "ssl", "--email", EMAIL, "--ca-file", str(server.ca_file),
                     "--password-stdin", stdin=PASSWORD + "\n", database_url=database_url)
    return home


def fill(server: Any, messages: list[bytes], timeout: float = 600) -> float:
    """Empty the mailbox, deliver ``messages`` in order, and let Dovecot index them (one SELECT)."""
    from imapclient import IMAPClient

    server.reset(EMAIL, kick=True)
    t0 = time.perf_counter()
    for raw in messages:
        server.deliver(EMAIL, raw)
    # Direct Maildir writes are indexed on the next SELECT; do it here, unmeasured, for both runs
    # (with LDA/LMTP delivery the index is kept up to date as mail arrives).
    client = IMAPClient("127.0.0.1", port=server.imap_port, ssl=False, timeout=timeout)
    client.login(EMAIL, PASSWORD)
    info = client.select_folder("INBOX")
    client.logout()
    if int(info[b"EXISTS"]) != len(messages):
        raise SystemExit(f"mailbox holds {info[b'EXISTS']} messages after delivering {len(messages)}")
    subprocess.run(["sync"], check=False)
    return time.perf_counter() - t0


def free_port_base(start: int = 27000) -> int:
    from helpdesk_core.testing.servers.dovecot import port_is_free

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


def start_postgres(state: Path) -> Any:
    """A private PostgreSQL server on 127.0.0.1, as the tests start it."""
    from helpdesk_core.testing.servers.ports import port_is_free
    from helpdesk_core.testing.servers.postgres import PostgresServer

    port = next(p for p in range(25432, 26432) if port_is_free(p))
    server = PostgresServer(state / "pg", port)
    server.start()
    print(f"PostgreSQL on 127.0.0.1:{port} ({server.bindir})")
    return server


def measure_throughput(opts: Any, state: Path, server: Any, pg: Any, messages: list[bytes], n: int, db: str,
                       st: Any) -> dict[str, Any]:
    """(a) the floor and (b) the import of the same N messages into ``db`` (sqlite or postgresql),
    alternated ``opts.repeat`` times; the best of each is kept."""
    print(f"-- {db}")
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
        database_url = pg.create_database(f"bench_{n}_{rep}") if db == "postgresql" else None
        home = new_home(state, f"home-{n}-{rep}", server, database_url=database_url)  # configured while empty
        fill(server, messages)
        imp = run_child("import", state, home=str(home), database_url=database_url)
        print_import(imp, n, server.count(EMAIL))
        imports.append(imp)
        shutil.rmtree(home, ignore_errors=True)
        if database_url:
            pg.drop_database(f"bench_{n}_{rep}")
    floor = max(floors, key=lambda r: r["messages"] / r["seconds"])
    imp = max(imports, key=lambda r: _imported(r) / r["seconds"])
    run = {"n": n, "db": db, "mailbox_mb": st.total_bytes / 1048576, "floor": floor, "import": imp,
           "floor_rate": floor["messages"] / floor["seconds"], "import_rate": _imported(imp) / imp["seconds"],
           "floor_cpu_rate": floor["messages"] / floor["cpu"], "import_cpu_rate": _imported(imp) / imp["cpu"],
           "floor_peak_kib": max(r["peak_rss_kib"] for r in floors),
           "import_peak_kib": max(r["peak_rss_kib"] for r in imports)}
    run["ratio"] = run["import_rate"] / run["floor_rate"]
    run["cpu_ratio"] = run["import_cpu_rate"] / run["floor_cpu_rate"]
    # the whole child from wait4, with the parsing helper it reaped (and interpreter start-up)
    run["cpu_ratio_all"] = (_imported(imp) / imp["cpu_seconds"]) / (floor["messages"] / floor["cpu_seconds"])
    print(f"    ratio (b)/(a) = {run['ratio']:.2f} (wall, best of {opts.repeat}); "
          f"per CPU second of the client: {run['cpu_ratio']:.2f}, of all its processes: {run['cpu_ratio_all']:.2f}")
    return run


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
    ap.add_argument("--db", default="sqlite,postgresql",
                    help="databases of (a)/(b), comma list of sqlite, postgresql (default both; PostgreSQL: "
                         "a private server, helpdesk_core.testing.servers.postgres.PostgresServer)")
    ap.add_argument("--profile", type=int, metavar="N", help="only profile (b) at this N with cProfile")
    ap.add_argument("--profiler", choices=("cprofile", "pyinstrument"), default="cprofile",
                    help="profiler for --profile (pyinstrument: pip install pyinstrument)")
    ap.add_argument("--skip-scale", action="store_true", help="skip the latency and fan-out figures (bench/latency.py, bench/fanout.py)")
    ap.add_argument("--scale-mailboxes", type=int, default=None, help="mailboxes of the fan-out (default 1000; --quick 200)")
    ap.add_argument("--backlog-n", type=int, default=None,
                    help="mails of the backlog run, bench/backlog.py (default 50000, --quick 2000; 0 skips it)")
    ap.add_argument("--keep", action="store_true", help="keep the state folder (/tmp/hd-bench-*)")
    ap.add_argument("--json", metavar="FILE", help="also write all figures as JSON")
    opts = ap.parse_args()

    import mailgen
    from helpdesk_core.testing.servers.dovecot import DovecotServer

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
    dbs = [d.strip() for d in opts.db.split(",") if d.strip()]
    pg = start_postgres(state) if "postgresql" in dbs and ns and not opts.profile else None
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
            for db in dbs:
                run = measure_throughput(opts, state, server, pg, messages, n, db, st)
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
            # the same message over POP3 (RETR spooled to a temporary file) and piped to `helpdesk ingest`
            home = new_home(state, "home-big-pop3", server, {"attachments.max_size_mb": limit,
                                                             "mail.max_message_size_mb": limit}, protocol="pop3")
            fill(server, [big])
            bpop = run_child("import", state, home=str(home))
            home = new_home(state, "home-big-ingest", None, {"attachments.max_size_mb": limit,
                                                             "mail.max_message_size_mb": limit})
            eml = state / "big.eml"
            eml.write_bytes(big)
            bing = run_child("import", state, home=str(home), argv=["ingest", "--department", DEPARTMENT, str(eml)])
            eml.unlink()
            figures["big"].update(import_pop3=bpop, ingest=bing)
            for label, r in (("IMAP import", bimp), ("POP3 import", bpop), ("ingest", bing)):
                print(f"    {label:<12} peak RSS {_mb(r['peak_rss_kib']):.0f} MB = baseline "
                      f"{_mb(r['baseline_rss_kib']):.0f} MB + {_mb(r['peak_rss_kib'] - r['baseline_rss_kib']):.0f} MB "
                      f"({(r['peak_rss_kib'] - r['baseline_rss_kib']) / 1024 / (len(big) / 1048576):.2f} x the raw "
                      f"message) in {r['seconds']:.2f} s, counts {r['counts']}")

        backlog_n = opts.backlog_n if opts.backlog_n is not None else 2000 if opts.quick else 50_000
        if backlog_n > 0 and not opts.profile:  # RSS at 10k, 25k, 50k imported (bench/backlog.py)
            import backlog

            figures["backlog"] = backlog.run(server, state, backlog_n, seed)
    finally:
        server.stop()
        if pg is not None:
            pg.stop()

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

    if not opts.skip_scale and not opts.profile:
        import fanout
        import latency

        figures["scale"] = {"latency": latency.run(state, skip_poll=opts.quick),
                            "fanout": fanout.run(state, mailboxes=opts.scale_mailboxes or (200 if opts.quick else 1000))}

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
        print(f"{'N':>6} {'db':>10} {'MB':>5} {'(a) msg/s':>10} {'(b) msg/s':>10} {'(b)/(a)':>8} {'CPU ratio':>9} "
              f"{'all CPU':>8} {'(a) peak RSS':>13} {'(b) peak RSS':>13}")
        for r in f["runs"]:
            print(f"{r['n']:>6} {r.get('db', 'sqlite'):>10} {r['mailbox_mb']:>5.0f} {r['floor_rate']:>10.1f} {r['import_rate']:>10.1f} "
                  f"{r['ratio']:>8.2f} {r['cpu_ratio']:>9.2f} {r.get('cpu_ratio_all', 0):>8.2f} {_mb(r['floor_peak_kib']):>10.0f} MB "
                  f"{_mb(r['import_peak_kib']):>10.0f} MB")
    if f["big"]:
        b = f["big"]
        print(f"(c) {b['mb']:g} MB attachment ({b['raw_mb']:.0f} MB raw): peak RSS floor "
              f"{_mb(b['floor']['peak_rss_kib']):.0f} MB, import IMAP {_mb(b['import']['peak_rss_kib']):.0f} MB"
              + (f", POP3 {_mb(b['import_pop3']['peak_rss_kib']):.0f} MB, ingest "
                 f"{_mb(b['ingest']['peak_rss_kib']):.0f} MB" if "ingest" in b else ""))
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
    print("targets (issue 16): (b)/(a) >= 0.8 at N=5000 on SQLite (and the PostgreSQL figure); peak RSS <= 150 MB at N=5000 and for the 50 MB "
          "attachment; lookup at 1M <= 1.5x at 10k")


if __name__ == "__main__":
    main()
