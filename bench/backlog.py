#!/usr/bin/env python3
"""The backlog benchmark (issue 16): a first import of a full mailbox, memory over time.

Fills one Dovecot mailbox with N generated mails (:mod:`bench.mailgen`, default 50,000), written
straight into its Maildir (an IMAP APPEND of 50,000 mails would take longer than the import), lets
Dovecot index them (one SELECT), then runs ``helpdesk import --json`` into a fresh SQLite
``HELPDESK_HOME`` over IMAPS and samples, twice a second from ``/proc``, the resident memory of
the importer and of its parse helper while counting the mail left in the Maildir. It prints the
importer's RSS when 10k, 25k and 50k (N/5, N/2, N) mails are imported, their spread (flat =
within ±10 % of the first), the peak, and the rate. Asserts nothing.

Usage::

    nice python3 bench/backlog.py              # N = 50,000 (several minutes)
    python3 bench/backlog.py --n 2000          # marks at 400, 1,000, 2,000
    python3 bench/run.py --backlog-n 50000     # as part of `make bench` (--skip-backlog skips it)

Needs root (Dovecot switches to the user ``mail``) like bench/run.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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

from children import EMAIL, PASSWORD, _mb  # noqa: E402 - the measuring side's names
from run import fill  # noqa: E402 - the same filling as the throughput runs

#: how often the importer's memory and the mailbox are sampled
SAMPLE_SECONDS = 0.5


def _status_kib(pid: int, field: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return []


def _left(maildir: Path) -> int:
    total = 0
    for sub in ("new", "cur"):
        try:
            with os.scandir(maildir / sub) as it:
                total += sum(1 for _ in it)
        except FileNotFoundError:
            pass
    return total


def run(server: Any, state: Path, n: int = 50_000, seed: int | None = None) -> dict[str, Any]:
    """Fill, import with sampling, print the figures; returns them (for bench/run.py's JSON)."""
    import mailgen
    from run import new_home

    seed = mailgen.DEFAULT_SEED if seed is None else seed
    marks = [n // 5, n // 2, n]
    print(f"\n== backlog: a first import of {n:,} mails (RSS at {', '.join(f'{m:,}' for m in marks)} imported)")
    home = new_home(state, "home-backlog", server)  # configured while empty: the mail is all "new"
    t0 = time.perf_counter()
    messages = mailgen.generate(n, seed)
    st = mailgen.stats()
    generated = time.perf_counter() - t0
    filled = fill(server, messages, timeout=1800)  # a 50,000-mail SELECT indexes for minutes
    del messages
    print(f"mailbox: {st.total_bytes / 1048576:.0f} MB, {st.new_threads:,} new threads, {st.replies:,} replies, "
          f"{st.with_attachment:,} with attachment; generated in {generated:.0f} s, written and indexed in "
          f"{filled:.0f} s")
    maildir = server.maildir(EMAIL)
    env = {**os.environ, "HELPDESK_HOME": str(home)}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", "from helpdesk_core.cli.main import main; main()",
                             "import", "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=str(REPO))
    samples: list[dict[str, Any]] = []
    at: dict[int, dict[str, Any]] = {}
    while proc.poll() is None:
        rss = _status_kib(proc.pid, "VmRSS")
        hwm = _status_kib(proc.pid, "VmHWM")
        helper = sum(_status_kib(c, "VmRSS") or 0 for c in _children(proc.pid))
        imported = n - _left(maildir)
        if rss is not None:
            sample = {"t": round(time.perf_counter() - started, 2), "imported": imported, "rss_kib": rss,
                      "hwm_kib": hwm, "helper_rss_kib": helper}
            samples.append(sample)
            for mark in marks:
                if mark not in at and imported >= mark:
                    at[mark] = sample
        time.sleep(SAMPLE_SECONDS)
    out, err = proc.communicate()
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"helpdesk import failed ({proc.returncode}):\n{err.decode(errors='replace')[-3000:]}")
    counts = json.loads(out)[next(iter(json.loads(out)))]
    if n not in at and samples:  # the last mails went in between the last sample and the exit
        at[n] = samples[-1]
    imported = int(counts.get("created", 0)) + int(counts.get("updated", 0))
    result: dict[str, Any] = {"n": n, "seed": seed, "mailbox_mb": st.total_bytes / 1048576, "seconds": seconds,
                              "rate": imported / seconds, "counts": counts, "left": _left(maildir),
                              "marks": {str(m): at.get(m) for m in marks},
                              "peak_kib": max((s["hwm_kib"] or 0) for s in samples) if samples else None,
                              "samples": samples}
    first = at.get(marks[0])
    print(f"import: {imported:,} mails in {seconds:.0f} s = {result['rate']:.1f} msg/s (process start included), "
          f"left in mailbox {result['left']}, counts {counts}")
    for mark in marks:
        s = at.get(mark)
        if s is None:
            print(f"  RSS at {mark:>7,} imported: (not sampled)")
            continue
        spread = f"{(s['rss_kib'] / first['rss_kib'] - 1) * 100:+.1f} %" if first else "?"
        print(f"  RSS at {mark:>7,} imported: {_mb(s['rss_kib']):.0f} MB ({spread} vs {marks[0]:,}); "
              f"parse helper {_mb(s['helper_rss_kib']):.0f} MB; t = {s['t']:.0f} s")
    got = [at[m]["rss_kib"] for m in marks if at.get(m)]
    if len(got) == len(marks):
        spread = (max(got) - min(got)) / got[0] * 100
        result["spread_percent"] = spread
        print(f"  spread {spread:.1f} % of the RSS at {marks[0]:,} ({'flat' if spread <= 10 else 'NOT flat'}: "
              f"target within ±10 %); peak RSS (VmHWM) {_mb(result['peak_kib']):.0f} MB")
    shutil.rmtree(home, ignore_errors=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=50_000, help="mails in the backlog (default 50,000)")
    ap.add_argument("--seed", type=int, default=None, help="generator seed")
    ap.add_argument("--keep", action="store_true", help="keep the state folder (/tmp/hd-backlog-*)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures (with every sample) as JSON")
    opts = ap.parse_args()

    from helpdesk_core.testing.servers.dovecot import DovecotServer
    from run import free_port_base, machine

    info = machine()
    print(f"machine: {info['nproc']} x {info['cpu']}, {info['ram']} RAM, Linux {info['kernel']}")
    print(f"software: Python {info['python']}, SQLite {info['sqlite']}, SQLAlchemy {info['sqlalchemy']}, "
          f"IMAPClient {info['imapclient']}, Dovecot {info['dovecot']}")
    state = Path(tempfile.mkdtemp(prefix="hd-backlog-", dir="/tmp"))
    os.chmod(state, 0o755)
    server = DovecotServer(state / "dc", free_port_base())
    server.start()
    try:
        server.add_user(EMAIL, PASSWORD)
        result = run(server, state, opts.n, opts.seed)
        if opts.json:
            Path(opts.json).write_text(json.dumps({"machine": info, "backlog": result}, indent=2))
    finally:
        server.stop()
        if not opts.keep:
            shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
