"""Staff replies of a Google department through the real path: ``helpdesk ticket reply`` (commit,
then one immediate flush of the outbox) -> the google provider's ``deliver()`` -> SMTP with XOAUTH2 at the
sink, which checks the token against the local OAuth server.

connect-google -> import -> reply sent (``outbox list`` says sent) -> every access token expires:
the flush refreshes, sends and stores the rotated refresh token -> the user revokes access: the
reply stays queued with a ``needs_reauthorization`` error (not failed), the next import marks the
department "needs re-authorisation" -> connecting again makes it due: the next flush sends it.
"""

from __future__ import annotations

import json

from test_google_e2e import connect, mail, mail_options, mailbox_row, set_client


def test_reply_through_outbox_refresh_and_revocation(cli, dovecot, mail_user, oauth_server, smtp_sink,
                                                     monkeypatch, tmp_path):
    smtp_sink.accept_tokens(oauth_server.token_owner)  # XOAUTH2 checked against the same server
    set_client(cli, oauth_server)
    cli("settings", "set", "mail.rate_limit_per_hour", "0")
    cli("department", "add", "Support", "--sender", mail_user.email)
    connect(cli, monkeypatch, "Support", *mail_options(dovecot, smtp_sink))
    app = cli.app()
    _box, secrets = mailbox_row(app, "Support")
    refresh_1 = secrets["refresh_token"]

    mail_user.deliver(mail(1))
    assert cli.json("import", "--json")["Support"]["created"] == 1
    [ticket] = cli.json("ticket", "list", "--json")
    body = tmp_path / "reply.txt"

    def reply(text: str) -> str:
        body.write_text(text + "\n")
        # --no-cc: the imported mail's To (help@district.test) is not the department's address
        return cli("ticket", "reply", str(ticket["id"]), "--body-file", str(body), "--no-cc").output

    def outbox() -> list[dict]:
        return [r for r in cli.json("outbox", "list", "--json") if r["kind"] == "reply"]  # newest first

    # 1. the reply goes out at once, authenticated as the department's address over XOAUTH2
    assert "sent to parent@example.test" in reply("We are on it.")
    [sent] = smtp_sink.wait_for(1)
    assert sent.auth_login == mail_user.email and sent.mail_from == mail_user.email and sent.tls
    assert sent.rcpt_tos == ("parent@example.test",) and b"We are on it." in sent.raw
    [row] = outbox()
    assert (row["status"], row["attempts"], row["last_error"]) == ("sent", 1, None)
    tokens_before = oauth_server.count("POST", "/token")  # the cached access token was used

    # 2. every access token expires: the cached one is refused, the flush refreshes and sends;
    #    the rotated refresh token is stored (encrypted)
    oauth_server.expire_access_tokens()
    assert "sent to parent@example.test" in reply("Still on it.")
    second = smtp_sink.wait_for(2)[1]
    assert second.auth_login == mail_user.email and b"Still on it." in second.raw
    assert oauth_server.count("POST", "/token") == tokens_before + 1
    [refresh_2] = oauth_server.refresh_tokens_of(mail_user.email)
    _box, secrets = mailbox_row(app, "Support")
    assert refresh_2 != refresh_1 and secrets["refresh_token"] == refresh_2
    assert [r["status"] for r in outbox()] == ["sent", "sent"]

    # 3. the user revokes the access: the reply is kept, queued, with a clear reason
    oauth_server.revoke_user(mail_user.email)
    output = reply("Done soon.")  # exit 0: stored on the ticket, queued
    assert "stored and queued" in output and "connect-google" in output and refresh_2 not in output
    assert len(smtp_sink.messages) == 2
    waiting = outbox()[0]
    assert (waiting["status"], waiting["attempts"]) == ("queued", 1)
    assert waiting["last_error_kind"] == "needs_reauthorization"
    assert "helpdesk department connect-google" in waiting["last_error"]
    assert refresh_2 not in waiting["last_error"]
    # a forced retry before re-authorising changes nothing but the attempt count
    assert cli.json("outbox", "flush", "--retry-now", "--json") == {"sent": 0, "retry": 1, "failed": 0,
                                                                   "requeued": 0}
    waiting = outbox()[0]
    assert (waiting["status"], waiting["last_error_kind"]) == ("queued", "needs_reauthorization")
    # the next import marks the department
    mail_user.deliver(mail(2))
    imported = cli("import", "--json", ok=False)
    assert imported.exit_code == 1
    assert json.loads(imported.stdout)["Support"]["error_kind"] == "needs_reauthorization"
    status = cli.json("department", "status", "Support", "--json")
    assert status["state"] == "needs re-authorisation" and status["needs_reauthorization"] is True

    # 4. connecting again makes the waiting reply due at once: a plain flush (the worker's) sends it
    connect(cli, monkeypatch, "Support", *mail_options(dovecot, smtp_sink))
    assert cli.json("outbox", "flush", "--json")["sent"] == 1
    third = smtp_sink.wait_for(3)[2]
    assert third.auth_login == mail_user.email and b"Done soon." in third.raw
    assert [r["status"] for r in outbox()] == ["sent", "sent", "sent"]
    assert cli.json("import", "--json")["Support"]["created"] == 1  # the mail that waited
    app.engine.dispose()
