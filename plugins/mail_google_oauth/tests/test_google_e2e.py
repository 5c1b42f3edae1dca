"""End to end, with no Google: the local OAuth server (``oauth_server``, which Dovecot's oauth2
passdb asks to validate XOAUTH2 tokens), the test Dovecot as the "Gmail" mailbox and the SMTP sink
checking XOAUTH2 against the same server.

connect-google (consent driven by urllib as the browser) -> import -> reply over SMTP XOAUTH2 ->
access-token expiry (refresh, rotated refresh token stored) -> revocation ("needs
re-authorisation", other departments unaffected); a token of another account refused at connect.
"""

from __future__ import annotations

import http.client
import json
import threading
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from helpdesk_core.hooktypes import OutgoingMail
from helpdesk_core.inbound.cycle import run_cycle
from helpdesk_core.outbound.delivery import deliver
from helpdesk_core.models import Department, Mailbox, Setting
from helpdesk_core.testing.servers.oauth import OAuthServer


def mail(n: int, sender: str = "parent@example.test") -> bytes:
    return (f"From: Parent <{sender}>\r\nTo: help@district.test\r\nSubject: Question {n}\r\n"
            f"Message-ID: <g{n}.{id(sender)}@example.test>\r\n\r\nHello {n}.\r\n").encode()


def browse_in_background(url: str) -> None:
    """The admin's browser: follow the consent URL; the redirect lands on the loopback listener."""

    def run() -> None:
        try:
            urllib.request.urlopen(url, timeout=15).read()
        except urllib.error.URLError:
            pass

    threading.Thread(target=run, daemon=True).start()


def mail_options(dovecot: Any, smtp_sink: Any | None = None) -> list[str]:
    options = ["--imap-host", "127.0.0.1", "--imap-port", str(dovecot.imaps_port), "--ca-file", str(dovecot.ca_file)]
    if smtp_sink is not None:
        options += ["--smtp-host", "127.0.0.1", "--smtp-port", str(smtp_sink.port_ssl)]
    return options


def set_client(cli: Any, oauth: OAuthServer) -> tuple[str, str]:
    client_id, secret = oauth.add_client()
    urls = oauth.endpoints
    cli("google", "set-client", "--client-id", client_id, "--client-secret-stdin", "--auth-url", urls["auth_url"],
        "--token-url", urls["token_url"], "--tokeninfo-url", urls["tokeninfo_url"], "--revoke-url", urls["revoke_url"],
        input=secret + "\n")
    return client_id, secret


def connect(cli: Any, monkeypatch: pytest.MonkeyPatch, name: str, *options: str, ok: bool = True) -> Any:
    monkeypatch.setattr("helpdesk_mail_google_oauth.cli.webbrowser.open", browse_in_background)
    return cli("department", "connect-google", name, "--wait", "20", *options, ok=ok)


def mailbox_row(app: Any, name: str) -> tuple[Mailbox, dict[str, str]]:
    with app.session() as session:
        dept = session.scalar(select(Department).where(Department.name == name))
        assert dept is not None and dept.mailbox is not None
        return dept.mailbox, app.secrets.decrypt(dept.mailbox.secrets_encrypted)


def department_id(app: Any, name: str) -> int:
    with app.session() as session:
        return session.scalar(select(Department.id).where(Department.name == name))


def test_connect_import_reply_refresh_revoke(cli, dovecot, mail_user, oauth_server, smtp_sink, monkeypatch):
    smtp_sink.accept_tokens(oauth_server.token_owner)  # XOAUTH2 checked against the same server
    client_id, client_secret = set_client(cli, oauth_server)
    cli("settings", "set", "mail.rate_limit_per_hour", "0")
    cli("department", "add", "Support", "--sender", mail_user.email)

    result = connect(cli, monkeypatch, "Support", *mail_options(dovecot, smtp_sink))
    assert f"Mailbox {mail_user.email} connected to 'Support'" in result.output
    url = next(line for line in result.output.splitlines() if line.startswith("http"))
    query = dict(p.split("=", 1) for p in urlsplit(url).query.split("&"))
    assert query["code_challenge_method"] == "S256" and query["access_type"] == "offline"
    assert query["prompt"] == "consent" and query["login_hint"] == mail_user.email.replace("@", "%40")
    assert "https%3A%2F%2Fmail.google.com%2F" in query["scope"] and query["state"]

    app = cli.app()
    box, secrets = mailbox_row(app, "Support")
    refresh_1 = secrets["refresh_token"]
    assert box.provider == "google" and box.config["email"] == mail_user.email
    assert box.config["client_id"] == client_id and secrets["client_secret"] == client_secret
    assert oauth_server.refresh_tokens_of(mail_user.email) == [refresh_1]
    assert refresh_1.encode() not in box.secrets_encrypted and refresh_1 not in result.output
    with app.session() as session:  # the client secret is encrypted in the settings table too
        stored = json.dumps(session.get(Setting, "google.client").value)
        assert client_secret not in stored and session.get(Setting, f"google.pending.{box.department_id}") is None

    # import over IMAP XOAUTH2 (Dovecot validates the token at the local token-info endpoint)
    mail_user.deliver(mail(1))
    mail_user.deliver(mail(2))
    counts = cli.json("import", "--json")["Support"]
    assert (counts["created"], counts["deleted"]) == (2, 2)
    assert mail_user.count() == 0
    assert {t["subject"] for t in cli.json("ticket", "list", "--json")} == {"Question 1", "Question 2"}
    assert oauth_server.count("POST", "/token") == 1  # the cached access token was used

    # a staff reply goes out over SMTP with XOAUTH2
    with app.session() as session:
        dept = session.scalar(select(Department).where(Department.name == "Support"))
        raw = (f"From: {mail_user.email}\r\nTo: parent@example.test\r\nSubject: Re: Question 1\r\n"
               "Message-ID: <reply1@district.test>\r\n\r\nWe are on it.\r\n").encode()
        results = deliver(app, dept, [OutgoingMail(id=1, mail_from=mail_user.email,
                                                   recipients=["parent@example.test"], raw=raw,
                                                   message_id="<reply1@district.test>")])
    assert results == [None]
    [sent] = smtp_sink.wait_for(1)
    assert sent.auth_login == mail_user.email and sent.tls and b"We are on it." in sent.raw

    # every access token expires: the next cycle refreshes; the rotated refresh token is stored
    oauth_server.expire_access_tokens()
    mail_user.deliver(mail(3))
    counts = cli.json("import", "--json")["Support"]
    assert counts["created"] == 1
    assert oauth_server.count("POST", "/token") == 2
    _box, secrets = mailbox_row(app, "Support")
    [refresh_2] = oauth_server.refresh_tokens_of(mail_user.email)
    assert refresh_2 != refresh_1 and secrets["refresh_token"] == refresh_2

    # a second department on a password mailbox
    other = dovecot._hd_pool.take()
    other.add_department(cli, "Facilities")

    # the user revokes the access: needs re-authorisation, other departments go on importing
    oauth_server.revoke_user(mail_user.email)
    mail_user.deliver(mail(4))
    other.deliver(mail(5))
    result = run_cycle(app, department_id(app, "Support"))
    assert result.error_kind == "needs_reauthorization"
    assert result.error is not None and refresh_2 not in result.error
    assert run_cycle(app, department_id(app, "Facilities")).created == 1
    status = cli.json("department", "status", "Support", "--json")
    assert status["state"] == "needs re-authorisation" and status["needs_reauthorization"] is True
    assert "helpdesk department connect-google" in status["last_error"]
    assert mail_user.count() == 1  # left in the mailbox until re-authorised
    text = cli("department", "status", "Support").output
    assert "needs re-authorisation" in text and "connect-google" in text
    # replies wait (temporary error) instead of being lost
    with app.session() as session:
        dept = session.scalar(select(Department).where(Department.name == "Support"))
        [error] = deliver(app, dept, [OutgoingMail(id=2, mail_from=mail_user.email, recipients=["p@example.test"],
                                                   raw=raw, message_id="<reply2@district.test>")])
    assert error is not None and error.kind == "needs_reauthorization" and not error.permanent

    # connecting again clears the state and imports what waited
    connect(cli, monkeypatch, "Support", *mail_options(dovecot, smtp_sink))
    assert cli.json("department", "status", "Support", "--json")["needs_reauthorization"] is False
    assert cli.json("import", "--json")["Support"]["created"] == 1
    app.engine.dispose()


def test_token_of_another_account_is_refused(sqlite_cli, dovecot, mail_user, oauth_server, monkeypatch):
    cli = sqlite_cli
    set_client(cli, oauth_server)
    stranger = dovecot._hd_pool.take()
    oauth_server.consent_user = stranger.email  # the admin signed in with the wrong account
    cli("department", "add", "Support", "--sender", mail_user.email)
    result = connect(cli, monkeypatch, "Support", *mail_options(dovecot), ok=False)
    assert result.exit_code == 1
    assert stranger.email in result.output and mail_user.email in result.output
    assert "Nothing was saved" in result.output
    assert cli.json("department", "list", "--json")[0]["mailbox"] is None
    assert oauth_server.refresh_tokens_of(stranger.email) == []  # the stray token was revoked


def test_pasted_code_after_timeout(sqlite_cli, dovecot, mail_user, oauth_server):
    cli = sqlite_cli
    set_client(cli, oauth_server)
    cli("department", "add", "Support", "--sender", mail_user.email)
    result = cli("department", "connect-google", "Support", "--no-browser", "--wait", "1",
                 *mail_options(dovecot), ok=False)
    assert result.exit_code != 0 and "--code" in result.output
    url = next(line for line in result.output.splitlines() if line.startswith("http"))
    parts = urlsplit(url)  # the browser: its redirect goes nowhere, the admin copies the address
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("GET", f"{parts.path}?{parts.query}")
    response = conn.getresponse()
    assert response.status == 302
    redirect = response.getheader("Location")
    conn.close()
    forged = redirect.replace("state=", "state=x")
    bad = cli("department", "connect-google", "Support", "--code", forged, *mail_options(dovecot), ok=False)
    assert bad.exit_code == 1 and "state" in bad.output
    cli("department", "connect-google", "Support", "--code", redirect, *mail_options(dovecot))
    mail_user.deliver(mail(1))
    assert cli.json("import", "--json")["Support"]["created"] == 1
    again = cli("department", "connect-google", "Support", "--code", redirect, *mail_options(dovecot), ok=False)
    assert again.exit_code == 1 and "No sign-in" in again.output


def test_service_account_delegation(cli, dovecot, mail_user, oauth_server, tmp_path):
    key = oauth_server.make_service_account_key(tmp_path / "key.json")
    cli("google", "set-service-account", "--key-file", str(key))
    with cli.app().session() as session:
        assert "PRIVATE KEY" not in json.dumps(session.get(Setting, "google.service_account").value)
    cli("department", "add", "Support", "--sender", mail_user.email)
    urls = oauth_server.endpoints
    cli("department", "connect-google", "Support", "--service-account", *mail_options(dovecot),
        "--tokeninfo-url", urls["tokeninfo_url"], "--revoke-url", urls["revoke_url"])
    mail_user.deliver(mail(1))
    assert cli.json("import", "--json")["Support"]["created"] == 1
    # the access token expires: a new JWT assertion is signed (no refresh token in this mode)
    oauth_server.expire_access_tokens()
    mail_user.deliver(mail(2))
    assert cli.json("import", "--json")["Support"]["created"] == 1
    assert oauth_server.count("POST", "/token") == 2  # connect + one new assertion after expiry


def test_service_account_with_unknown_key_is_refused(sqlite_cli, dovecot, mail_user, oauth_server, tmp_path):
    cli = sqlite_cli
    # a key whose public half the token endpoint does not know: the JWT signature check fails
    stranger = OAuthServer(port=0)
    key = stranger.make_service_account_key(tmp_path / "key.json", client_email="helpdesk@project.iam.test")
    data = json.loads(key.read_text())
    data["token_uri"] = oauth_server.endpoints["token_url"]
    key.write_text(json.dumps(data))
    oauth_server.make_service_account_key(tmp_path / "registered.json")  # same iss, other key
    cli("google", "set-service-account", "--key-file", str(key))
    cli("department", "add", "Support", "--sender", mail_user.email)
    result = cli("department", "connect-google", "Support", "--service-account", *mail_options(dovecot),
                 "--tokeninfo-url", oauth_server.endpoints["tokeninfo_url"], ok=False)
    assert result.exit_code == 1 and "invalid_grant" in result.output and "Nothing was saved" in result.output
