"""Issue 10 case 6: a follow-up whose sender the receiving server failed (DMARC, or DKIM with no
pass) never joins the ticket. Only ``Authentication-Results`` of the mailbox's ``authserv_id`` count."""

from __future__ import annotations

import pytest

from helpdesk_core.mail.authentication import sender_verdict
from mailfactory import plain

AR = "Authentication-Results"


@pytest.mark.parametrize(("value", "server", "expected"), [
    ("mx.school.test; dmarc=fail header.from=example.test", "mx.school.test", "fail"),
    ("MX.School.test; dkim=fail header.d=example.test", "mx.school.test", "fail"),
    ("mx.school.test; dkim=fail header.d=a.test; dkim=pass header.d=example.test", "mx.school.test", "pass"),
    ("mx.school.test; dmarc=pass header.from=example.test", "mx.school.test", "pass"),
    ("mx.school.test; spf=fail smtp.mailfrom=example.test", "mx.school.test", "none"),
    ("evil.test; dmarc=pass header.from=example.test", "mx.school.test", "none"),  # someone else's header
    ("mx.school.test; dmarc=fail header.from=example.test", None, "none"),  # no authserv_id: ignored
    ("mx.school.test;;; ===", "mx.school.test", "none"),
])
def test_verdict(value, server, expected):
    assert sender_verdict([(AR, value)], server) == expected


def _setup(cli, tmp_path, monkeypatch, authserv_id="mx.school.test"):
    monkeypatch.setenv("HELPDESK_MAILDIR_ROOT", str(tmp_path))
    for sub in ("cur", "new", "tmp"):
        (tmp_path / "md" / sub).mkdir(parents=True, exist_ok=True)
    cli("department", "add", "Tech", "--sender", "techhelp@district.test")
    args = ["department", "set-mailbox", "Tech", "--protocol", "maildir", "--path", str(tmp_path / "md"),
            "--email", "techhelp@district.test"]
    if authserv_id:
        args += ["--authserv-id", authserv_id]
    cli(*args)
    cli("ingest", "--department", "Tech", input=plain(subject="Printer", msgid="<a1@example.test>"))


def test_dmarc_fail_follow_up_opens_a_flagged_ticket(cli, tmp_path, monkeypatch):
    _setup(cli, tmp_path, monkeypatch)
    spoof = plain(subject="Re: [Ticket #1] Printer", In_Reply_To="<a1@example.test>",
                  Authentication_Results="mx.school.test; dmarc=fail header.from=example.test")
    cli("ingest", "--department", "Tech", input=spoof)
    first = cli.json("ticket", "show", "1", "--json")
    assert len(first["messages"]) == 1 and first["sender_verified"] is True
    second = cli.json("ticket", "show", "2", "--json")
    assert second["sender_verified"] is False and second["mentions"] == "#1"
    # a genuine follow-up (the server passed it) and one with a forged header of another server join
    cli("ingest", "--department", "Tech", input=plain(
        subject="Re: [Ticket #1] Printer", Authentication_Results="mx.school.test; dmarc=pass header.from=example.test"))
    cli("ingest", "--department", "Tech", input=plain(
        subject="Re: [Ticket #1] Printer", Authentication_Results="evil.test; dmarc=fail"))
    assert len(cli.json("ticket", "show", "1", "--json")["messages"]) == 3


def test_without_authserv_id_the_header_is_ignored(cli, tmp_path, monkeypatch):
    _setup(cli, tmp_path, monkeypatch, authserv_id=None)
    cli("ingest", "--department", "Tech", input=plain(
        subject="Re: [Ticket #1] Printer", Authentication_Results="mx.school.test; dmarc=fail"))
    assert len(cli.json("ticket", "show", "1", "--json")["messages"]) == 2


def test_unverified_follow_up_can_be_held(cli, tmp_path, monkeypatch):
    _setup(cli, tmp_path, monkeypatch)
    cli("settings", "set", "mail.unverified_followups", "hold")
    cli("ingest", "--department", "Tech", input=plain(
        subject="Re: [Ticket #1] Printer", Authentication_Results="mx.school.test; dkim=fail header.d=example.test"))
    assert len(cli.json("ticket", "list", "--json")) == 1
    assert "Re: [Ticket #1] Printer" in cli("held", "list").output
    assert cli("settings", "set", "mail.unverified_followups", "drop", ok=False).exit_code != 0
