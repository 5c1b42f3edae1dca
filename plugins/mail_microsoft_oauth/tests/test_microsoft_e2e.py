"""End to end against the local Microsoft identity platform + Graph stand-in (``identity``), the test
Dovecot as Exchange Online (its oauth2 passdb asks the same server) and the SMTP sink.

Delegated: connect -> import -> reply over SMTP -> SMTP AUTH disabled -> reply via Graph -> token
rotation stored -> revocation isolated to that department. App-only: a shared mailbox.
"""

from __future__ import annotations

import json
from typing import Any

import requests
from sqlalchemy import select

from helpdesk_core.hooktypes import OutgoingMail
from helpdesk_core.inbound.cycle import run_cycle
from helpdesk_core.models import Department, Setting
from helpdesk_core.outbound.delivery import deliver
from ms_helpers import identity, mail_options, set_client, sign_in, sqlite_cli  # noqa: F401 - fixtures

DISABLED = "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant."


def mail(n: int) -> bytes:
    return (f"From: Parent <parent@example.test>\r\nTo: help@district.test\r\nSubject: Question {n}\r\n"
            f"Message-ID: <ms{n}.{n * 7}@example.test>\r\n\r\nHello {n}.\r\n").encode()


def reply(app: Any, name: str, sender: str, n: int) -> list[Any]:
    raw = (f"From: {sender}\r\nTo: parent@example.test\r\nSubject: Re: Question {n}\r\n"
           f"Message-ID: <reply{n}@district.test>\r\n\r\nWe are on it ({n}).\r\n").encode()
    with app.session() as session:
        dept = session.scalar(select(Department).where(Department.name == name))
        return deliver(app, dept, [OutgoingMail(id=n, mail_from=sender, recipients=["parent@example.test"], raw=raw,
                                                message_id=f"<reply{n}@district.test>")])


def stored(app: Any, name: str) -> dict[str, str]:
    with app.session() as session:
        dept = session.scalar(select(Department).where(Department.name == name))
        return app.secrets.decrypt(dept.mailbox.secrets_encrypted)


def refresh_tokens(cache_json: str) -> set[str]:
    return {rt["secret"] for rt in json.loads(cache_json).get("RefreshToken", {}).values()}


def test_delegated_connect_import_reply_graph_rotation_revocation(cli, dovecot, mail_user, identity, smtp_sink):
    smtp_sink.accept_tokens(identity.token_owner)
    client_id, client_secret = set_client(cli, identity)
    cli("settings", "set", "mail.rate_limit_per_hour", "0")
    cli("department", "add", "Support", "--sender", mail_user.email)
    options = mail_options(dovecot, smtp_sink)
    result = sign_in(cli, dovecot, "Support", *options)
    assert f"Mailbox {mail_user.email} connected to 'Support' (delegated)" in result.output

    app = cli.app()
    secrets = stored(app, "Support")
    [refresh_1] = identity.refresh_tokens_of(mail_user.email)
    assert refresh_tokens(secrets["token_cache"]) == {refresh_1} and secrets["client_secret"] == client_secret
    with app.session() as session:
        assert client_secret not in json.dumps(session.get(Setting, "microsoft.client").value)
        box = session.scalar(select(Department).where(Department.name == "Support")).mailbox
        assert refresh_1.encode() not in box.secrets_encrypted and box.config["client_id"] == client_id

    mail_user.deliver(mail(1))
    mail_user.deliver(mail(2))
    counts = cli.json("import", "--json")["Support"]
    assert (counts["created"], counts["deleted"]) == (2, 2) and mail_user.count() == 0

    assert reply(app, "Support", mail_user.email, 1) == [None]  # SMTP XOAUTH2 with STARTTLS
    [sent] = smtp_sink.wait_for(1)
    assert sent.auth_login == mail_user.email and sent.tls and b"We are on it (1)." in sent.raw

    smtp_sink.token_owner = lambda token: None  # the tenant switches SMTP AUTH off
    smtp_sink.xoauth2_refusal = DISABLED
    assert reply(app, "Support", mail_user.email, 2) == [None]  # via Graph sendMail
    [(sender, raw)] = identity.graph_sent
    assert sender == mail_user.email and raw.startswith(f"From: {mail_user.email}".encode())
    assert len(smtp_sink.messages) == 1

    identity.expire_access_tokens()  # the next cycle refreshes; the rotated refresh token is stored
    mail_user.deliver(mail(3))
    assert cli.json("import", "--json")["Support"]["created"] == 1
    [refresh_n] = identity.refresh_tokens_of(mail_user.email)
    assert refresh_n != refresh_1 and refresh_tokens(stored(app, "Support")["token_cache"]) == {refresh_n}

    other = dovecot._hd_pool.take()
    other.add_department(cli, "Facilities")
    identity.revoke_user(mail_user.email)
    identity.expire_access_tokens()
    mail_user.deliver(mail(4))
    other.deliver(mail(5))
    with app.session() as session:
        ids = dict(session.execute(select(Department.name, Department.id)).all())
    cycle = run_cycle(app, ids["Support"])
    assert cycle.error_kind == "needs_reauthorization" and refresh_n not in (cycle.error or "")
    assert run_cycle(app, ids["Facilities"]).created == 1
    status = cli.json("department", "status", "Support", "--json")
    assert status["needs_reauthorization"] is True and "connect-microsoft" in status["last_error"]
    [waiting] = reply(app, "Support", mail_user.email, 3)
    assert waiting is not None and waiting.kind == "needs_reauthorization" and not waiting.permanent
    app.engine.dispose()


def test_other_account_is_refused_naming_both(sqlite_cli, dovecot, mail_user, identity):
    set_client(sqlite_cli, identity)
    stranger = dovecot._hd_pool.take()
    identity.consent_user = stranger.email
    sqlite_cli("department", "add", "Support", "--sender", mail_user.email)
    result = sign_in(sqlite_cli, dovecot, "Support", *mail_options(dovecot), ok=False)
    assert stranger.email in result.output and mail_user.email in result.output and "Nothing was saved" in result.output
    assert sqlite_cli.json("department", "list", "--json")[0]["mailbox"] is None


def test_app_only_shared_mailbox(sqlite_cli, dovecot, mail_user, identity):
    cli = sqlite_cli
    client_id, _secret = set_client(cli, identity, app_only=True)
    cli("department", "add", "Shared", "--sender", mail_user.email)
    refused = cli("department", "connect-microsoft", "Shared", "--app-only", *mail_options(dovecot), ok=False)
    assert "Add-MailboxPermission" in refused.output and "New-ServicePrincipal" in refused.output
    assert "Nothing was saved" in refused.output
    identity.grant_mailbox(client_id, mail_user.email)
    cli("department", "connect-microsoft", "Shared", "--app-only", *mail_options(dovecot))
    mail_user.deliver(mail(1))
    assert cli.json("import", "--json")["Shared"]["created"] == 1


def test_expired_client_secret_says_so(sqlite_cli, dovecot, mail_user, identity):
    client_id, _secret = set_client(sqlite_cli, identity, app_only=True, expires="2026-01-01")
    identity.expired_secrets.add(client_id)
    sqlite_cli("department", "add", "Shared", "--sender", mail_user.email)
    result = sqlite_cli("department", "connect-microsoft", "Shared", "--app-only", *mail_options(dovecot), ok=False)
    assert "has expired on 2026-01-01" in result.output and "days ago" in result.output
    assert "AADSTS7000222" in result.output


def test_app_only_over_pop3_and_send_via_smtp_reports_disabled_smtp_auth(sqlite_cli, dovecot, mail_user, identity,
                                                                         smtp_sink):
    cli = sqlite_cli
    smtp_sink.xoauth2_refusal = DISABLED
    smtp_sink.accept_tokens(lambda token: None)
    client_id, _secret = set_client(cli, identity, app_only=True)
    identity.grant_mailbox(client_id, mail_user.email)
    cli("department", "add", "Shared", "--sender", mail_user.email)
    cli("department", "connect-microsoft", "Shared", "--app-only", "--send-via", "smtp",
        *mail_options(dovecot, smtp_sink, pop3=True))
    mail_user.deliver(mail(1))
    assert cli.json("import", "--json")["Shared"]["created"] == 1 and mail_user.count() == 0
    app = cli.app()
    [error] = reply(app, "Shared", mail_user.email, 1)  # send_via smtp: no Graph fallback, a clear reason
    assert error is not None and error.kind == "smtp_auth_disabled"
    assert "SmtpClientAuthenticationDisabled" in error.message
    assert identity.graph_sent == []
    app.engine.dispose()


def test_forged_or_reused_redirect_is_refused(sqlite_cli, dovecot, mail_user, identity):
    cli = sqlite_cli
    set_client(cli, identity)
    cli("department", "add", "Support", "--sender", mail_user.email)
    started = cli("department", "connect-microsoft", "Support", *mail_options(dovecot))
    url = next(line for line in started.output.splitlines() if line.startswith("https://"))
    redirect = requests.get(url, allow_redirects=False, verify=str(dovecot.ca_file), timeout=10).headers["Location"]
    forged = cli("department", "connect-microsoft", "Support", "--code", redirect.replace("state=", "state=x"),
                 *mail_options(dovecot), ok=False)
    assert forged.exit_code == 1 and "state mismatch" in forged.output
    cli("department", "connect-microsoft", "Support", "--code", redirect, *mail_options(dovecot))
    again = cli("department", "connect-microsoft", "Support", "--code", redirect, *mail_options(dovecot), ok=False)
    assert again.exit_code == 1 and "No sign-in was started" in again.output
