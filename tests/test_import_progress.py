"""``helpdesk import`` on a terminal shows a progress bar (count of waiting, rate, ETA); piped, or
with ``--json``, it prints exactly what it printed before (issue 16). The terminal is a real
pseudo-terminal: the command runs in a child process whose standard output is its slave side."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

from helpdesk_core.testing.apps import Cli, environment
from mailfactory import plain

N = 60


def _maildir_department(tmp_path: Path, sqlite_url: str) -> tuple[Cli, Path]:
    cli = Cli(environment(tmp_path / "home", sqlite_url))
    cli("init")
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    cli("department", "add", "Tech", "--sender", "techhelp@district.test")
    cli("department", "set-mailbox", "Tech", "--protocol", "maildir", "--path", str(maildir),
        "--email", "techhelp@district.test", "--no-validate")
    return cli, maildir


def _fill(maildir: Path, n: int) -> None:
    for i in range(n):
        (maildir / "new" / f"{1700000000 + i}.M{i}P1.host").write_bytes(
            plain(subject=f"Request {i}", sender=f"user{i}@example.test"))


def _on_a_terminal(env: dict[str, str], *args: str) -> str:
    """Run ``helpdesk ARGS`` with standard output (and error) on a pseudo-terminal; its output."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", "from helpdesk_core.cli.main import main; main()", *args],
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, close_fds=True,
                            env={**os.environ, **env, "TERM": "xterm-256color", "COLUMNS": "140",
                                 "HELPDESK_BATCH_SIZE": "10"})
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            proc.kill()
            raise AssertionError(f"helpdesk {' '.join(args)} printed nothing for 60 s: {b''.join(chunks)!r}")
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=60) == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")


def test_progress_bar_on_a_terminal_with_count_rate_and_eta(tmp_path, sqlite_url):
    cli, maildir = _maildir_department(tmp_path, sqlite_url)
    _fill(maildir, N)
    out = _on_a_terminal(cli.env, "import")
    assert "\x1b[" in out  # drawn live, its own sequences not stripped by the terminal-safe output
    assert f"{N}/{N}" in out and "msg/s" in out and "ETA" in out
    assert f"Tech: fetched {N}, created {N}" in out

    _fill(maildir, 3)
    shown = _on_a_terminal(cli.env, "import", "--json")
    assert "\x1b" not in shown and "msg/s" not in shown  # --json: the JSON only, shape unchanged
    counts = json.loads(shown)["Tech"]
    assert (counts["fetched"], counts["created"], counts["deleted"]) == (3, 3, 3)


def test_no_progress_bar_when_not_a_terminal(tmp_path, sqlite_url):
    cli, maildir = _maildir_department(tmp_path, sqlite_url)
    _fill(maildir, 3)
    assert cli("import").output == "Tech: fetched 3, created 3, updated 0, skipped 0, failed 0, deleted 3\n"
