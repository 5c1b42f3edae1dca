"""``helpdesk ingest`` (a mail server pipe): real exit codes from a subprocess.

0 stored (a ticket exists, or the message is kept as a failed import), 67 unknown department
(EX_NOUSER: the mail server bounces), 75 database unavailable (EX_TEMPFAIL: it retries later).
"""

from __future__ import annotations

import os
import subprocess
import sys

from mailfactory import latin1_8bit, plain

HELPDESK = [sys.executable, "-c", "from helpdesk_core.cli.main import main; main()"]


def ingest(env: dict[str, str], *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*HELPDESK, "ingest", *args], env={**os.environ, **env}, input=stdin,
                          capture_output=True, timeout=60)


def test_files_and_stdin_are_stored(cli, hd_env, tmp_path):
    cli("department", "add", "Tech", "--sender", "techhelp@district.test")
    one, two = tmp_path / "one.eml", tmp_path / "two.eml"
    one.write_bytes(plain(subject="From a file"))
    two.write_bytes(latin1_8bit())
    done = ingest(hd_env, "--department", "Tech", str(one), str(two))
    assert done.returncode == 0, done.stderr.decode()
    piped = ingest(hd_env, "--department", "Tech", stdin=plain(subject="From a pipe", sender="bob@example.test"))
    assert piped.returncode == 0, piped.stderr.decode()
    assert b"created" in piped.stderr
    subjects = sorted(t["subject"] for t in cli.json("ticket", "list", "--json"))
    assert subjects == ["From a file", "From a pipe", "Problème d'écran"]
    again = ingest(hd_env, "--department", "Tech", stdin=one.read_bytes())  # the MTA retried: no duplicate
    assert again.returncode == 0 and b"duplicate" in again.stderr
    assert len(cli.json("ticket", "list", "--json")) == 3


def test_unknown_department_is_67(cli, hd_env):
    cli("department", "add", "Tech", "--sender", "techhelp@district.test")
    result = ingest(hd_env, "--department", "Nope", stdin=plain())
    assert result.returncode == 67
    assert b"No department named 'Nope'" in result.stderr
    assert cli.json("ticket", "list", "--json") == []


def test_database_unavailable_is_75(tmp_path):
    from helpdesk_core.crypto import generate_key

    (tmp_path / "home").mkdir()
    hd_env = {"HELPDESK_HOME": str(tmp_path / "home"), "HELPDESK_SECRET_KEY": generate_key()}
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for url in ("postgresql+psycopg://postgres@127.0.0.1:1/x",      # nothing listens
                f"sqlite:///{blocker}/helpdesk.db",                # parent is a file
                "sqlite:////proc/helpdesk-cannot-be-here/helpdesk.db"):  # unwritable even as root
        result = ingest({**hd_env, "HELPDESK_DATABASE_URL": url}, "--department", "Tech", stdin=plain())
        assert result.returncode == 75, (url, result.stderr.decode())
        assert result.stderr.decode().startswith("Error: ") and b"Traceback" not in result.stderr
