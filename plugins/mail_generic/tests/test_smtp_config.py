"""SMTP settings, error translation and the provider's "sends no mail" case (no servers)."""

from __future__ import annotations

import smtplib
import ssl

import pytest

from helpdesk_core.hooktypes import OutgoingMail
from helpdesk_core.errors import ConfigurationError
from helpdesk_mail_generic.errors import translate_smtp
from helpdesk_mail_generic.provider import GenericProvider
from helpdesk_mail_generic.smtp import smtp_settings

PROVIDER = GenericProvider()
BASE = {"protocol": "imap", "host": "imap.example.org", "security": "ssl", "email": "help@example.org"}
SMTP = {"protocol": "smtp", "host": "smtp.example.org", "port": 587, "security": "starttls",
        "username": "help@example.org", "timeout": 30}


@pytest.mark.parametrize(("security", "port"), [("ssl", 465), ("starttls", 587), ("none", 25)])
def test_smtp_defaults(security, port):
    out = PROVIDER.normalize_config({**BASE, "smtp_host": "smtp.example.org", "smtp_security": security})
    assert (out["smtp_port"], out["smtp_username"]) == (port, "help@example.org")
    assert smtp_settings(out)["port"] == port


def test_smtp_settings_need_host_and_security():
    with pytest.raises(ConfigurationError, match="need smtp_host"):
        PROVIDER.normalize_config({**BASE, "smtp_port": 587})
    with pytest.raises(ConfigurationError, match="'smtp_security' is required"):
        PROVIDER.normalize_config({**BASE, "smtp_host": "smtp.example.org"})
    assert smtp_settings(PROVIDER.normalize_config(BASE)) is None
    maildir = PROVIDER.normalize_config({"protocol": "maildir", "path": "/tmp/x", "email": "help@example.org",
                                         "smtp_host": "smtp.example.org", "smtp_security": "ssl", "timeout": 7})
    assert smtp_settings(maildir)["timeout"] == 7  # server settings apply to SMTP with a Maildir


@pytest.mark.parametrize(("exc", "step", "kind", "temporary", "words"), [
    (smtplib.SMTPAuthenticationError(535, b"5.7.8 Authentication credentials invalid"), "login", "auth_failed",
     False, ["Login failed for user 'help@example.org'", "535 5.7.8"]),
    (smtplib.SMTPNotSupportedError("SMTP AUTH extension not supported by server."), "login", "tls", False,
     ["unencrypted", "starttls"]),
    (smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server."), "tls", "tls", False,
     ["does not offer STARTTLS", "never falls back"]),
    (smtplib.SMTPServerDisconnected("Connection unexpectedly closed: timed out"), "connect", "timeout", True,
     ["Timed out after 30 s"]),
    (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), "connect", "server_error", True,
     ["closed the connection"]),
    (smtplib.SMTPConnectError(554, b"5.3.2 go away"), "connect", "protocol_disabled", False, ["554 5.3.2"]),
    (ConnectionRefusedError(111, "Connection refused"), "connect", "connection_refused", True, ["SMTP service"]),
    (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)"), "connect", "tls", False,
     ["TLS port (465 for SMTP)"]),
])
def test_translate_smtp(exc, step, kind, temporary, words):
    config = {**SMTP, "security": "none"} if "unencrypted" in words else SMTP
    error = translate_smtp(exc, config=config, step=step)
    assert (error.kind, error.temporary) == (kind, temporary)
    assert error.message.startswith("Outgoing mail (SMTP): ") and "\n" not in error.message
    for word in words:
        assert word in error.message


def test_provider_without_smtp_host_sends_no_mail():
    """Without ``smtp_host`` the provider's outgoing side declines (None): the core then says how
    to configure outgoing mail. The plugin no longer implements the override hook itself."""
    import helpdesk_mail_generic

    mail = OutgoingMail(id=1, mail_from="help@example.org", recipients=["a@example.test"], raw=b"x",
                        message_id="m@example.org")
    assert PROVIDER.deliver(BASE, {"password": "x"}, [mail]) is None
    assert not hasattr(helpdesk_mail_generic, "helpdesk_deliver_reply")
    with pytest.raises(ConfigurationError, match="'smtp_security' is required"):
        PROVIDER.deliver({**BASE, "smtp_host": "smtp.example.org"}, {"password": "x"}, [mail])
