"""Issue 10 case 8: secrets never reach a log line, hook tracing (``HELPDESK_TRACE_HOOKS=1``) and
``-vv`` included. A full CLI run — mailbox with SMTP password, import, reply, ``outbox flush``,
listings — is logged at DEBUG, and every line is searched for the test's password and keys."""

from __future__ import annotations

import logging

from click.testing import CliRunner

from helpdesk_core.crypto import generate_key
from helpdesk_core.mail.references import format_reference

from conftest import Cli
from mailfactory import plain


def test_no_secret_in_any_log_line_of_a_traced_run(tmp_path, db_url, dovecot, mail_user, smtp_sink, caplog):
    caplog.set_level(logging.DEBUG)
    home = tmp_path / "home"
    home.mkdir()
    key = generate_key()
    cli = Cli({"HELPDESK_HOME": str(home), "HELPDESK_DATABASE_URL": db_url, "HELPDESK_SECRET_KEY": key,
               "HELPDESK_TRACE_HOOKS": "1"}, CliRunner())
    outputs = [cli("-vv", "init").output]
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    run = [("department", "add", "Tech", "--sender", mail_user.email),
           ("department", "set-mailbox", "Tech", "--protocol", "maildir", "--path", str(maildir),
            "--email", mail_user.email, "--smtp-host", "127.0.0.1", "--smtp-port", str(smtp_sink.port_starttls),
            "--smtp-security", "starttls", "--ca-file", str(dovecot.ca_file), "--password-stdin")]
    for args in run:
        outputs.append(cli("-vv", *args, input=mail_user.password + "\n").output)
    (maildir / "new" / "1.eml").write_bytes(plain(subject="Printer", to=mail_user.email))
    for args in [("import", "--department", "Tech"), ("ticket", "list", "--json"), ("department", "list", "--json"),
                 ("department", "status", "Tech")]:
        outputs.append(cli("-vv", *args).output)
    body = tmp_path / "reply.txt"
    body.write_text("We are on it.\n")
    outputs.append(cli("-vv", "ticket", "reply", "1", "--body-file", str(body)).output)
    outputs.append(cli("-vv", "outbox", "flush").output)
    outputs.append(cli("-vv", "ticket", "show", "1", "--json").output)
    assert format_reference(1) in "".join(outputs)  # the run did what it should
    traced = [r for r in caplog.records if r.name.startswith("helpdesk.hooks")]
    assert traced, "HELPDESK_TRACE_HOOKS=1 traced no hook call"
    assert any("deliver_reply" in r.getMessage() for r in traced)
    lines = [f"{r.name} {r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records] + outputs
    for secret in (mail_user.password, key):
        leaked = [line for line in lines if secret in line]
        assert not leaked, f"a secret is logged: {leaked[:3]}"
