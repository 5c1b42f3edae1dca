"""Unit tests without servers: error translation, configuration, identity, registration, Maildir order."""

from __future__ import annotations

import imaplib
import importlib.metadata
import mailbox
import poplib
import socket
import ssl
from typing import Any

import pytest
from imapclient.exceptions import CapabilityError, LoginError

from helpdesk_core.errors import ConfigurationError, MailboxError
from helpdesk_core.providers.base import MailboxProvider
from helpdesk_mail_generic import helpdesk_register_providers
from helpdesk_mail_generic.errors import translate
from helpdesk_mail_generic.maildir import maildir_sort_key
from helpdesk_mail_generic.provider import GenericProvider, default_port

PROVIDER = GenericProvider()
IMAP = {"protocol": "imap", "host": "mail.example.org", "port": 993, "security": "ssl",
        "username": "help@example.org", "folder": "INBOX", "timeout": 30}
POP3 = {**IMAP, "protocol": "pop3", "port": 995, "folder": None}


def kind_of(exc: BaseException, config: dict[str, Any] = IMAP, step: str = "login") -> MailboxError:
    error = translate(exc, config=config, step=step)
    assert isinstance(error, MailboxError)
    assert error.message and "\n" not in error.message
    return error


# ---- translate -------------------------------------------------------------------------------

def cert_error(verify_message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
                                          f"{verify_message} (_ssl.c:1006)")
    exc.verify_message = verify_message  # type: ignore[attr-defined]
    exc.reason = "CERTIFICATE_VERIFY_FAILED"  # type: ignore[attr-defined]
    return exc


@pytest.mark.parametrize(("exc", "step", "kind", "temporary", "words"), [
    (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "connect", "unknown_host", False,
     ["Unknown host 'mail.example.org'", "check the server name"]),
    (socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"), "connect", "unknown_host", True,
     ["temporarily"]),
    (ConnectionRefusedError(111, "Connection refused"), "connect", "connection_refused", True,
     ["mail.example.org:993", "IMAP service"]),
    (TimeoutError("timed out"), "connect", "timeout", True, ["ssl vs starttls", "30 s"]),
    (TimeoutError("_ssl.c:989: The handshake operation timed out"), "connect", "timeout", True, ["TLS port"]),
    (imaplib.IMAP4.abort("command: FETCH => socket error: timed out"), "fetch", "timeout", True, ["fetching"]),
    (cert_error("self-signed certificate"), "connect", "certificate", False, ["self-signed", "--ca-file"]),
    (cert_error("Hostname mismatch, certificate is not valid for 'mail.example.org'."), "connect",
     "certificate", False, ["Hostname mismatch", "host name"]),
    (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)"), "connect", "tls", False,
     ["TLS handshake", "starttls", "993"]),
    (LoginError("b'[AUTHENTICATIONFAILED] Authentication failed.'"), "login", "auth_failed", False,
     ["Login failed for user 'help@example.org'", "check the username and password"]),
    (LoginError("[AUTHENTICATIONFAILED] Authentication failed."), "login", "auth_failed", False, []),
    (LoginError("[UNAVAILABLE] Temporary authentication failure. [host:2026-11-26]"), "login", "server_error",
     True, ["temporarily unavailable"]),
    (LoginError("b'[PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.'"),
     "login", "protocol_disabled", False, ["ssl or starttls"]),
    (CapabilityError("Server does not support STARTTLS capability"), "tls", "tls", False,
     ["does not offer STARTTLS", "never falls back"]),
    (imaplib.IMAP4.error("select failed: Mailbox doesn't exist: Support (0.001 + 0.000 secs)."), "select",
     "folder_missing", False, ["'INBOX'", "folder name"]),
    (imaplib.IMAP4.readonly("b'\"INBOX\"' is not writable"), "select", "server_error", False, ["read-only"]),
    (imaplib.IMAP4.error("select failed: [SERVERBUG] Internal error occurred."), "select", "server_error", True,
     ["SERVERBUG"]),
    (imaplib.IMAP4.abort("socket error: EOF"), "fetch", "server_error", True, ["next run"]),
    (imaplib.IMAP4.error("UID command error: BAD [b'Error in IMAP command UID EXPUNGE: Unknown command']"),
     "delete", "protocol_disabled", False, ["IMAP is enabled"]),
    (imaplib.IMAP4.error(None), "connect", "protocol_disabled", False, ["does not speak IMAP"]),
    (ConnectionResetError(104, "Connection reset by peer"), "fetch", "server_error", True, ["next run"]),
    (ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), "close", "server_error", True, []),
    (ValueError("odd"), "fetch", "server_error", False, ["Unexpected ValueError"]),
])
def test_translate_imap(exc: BaseException, step: str, kind: str, temporary: bool, words: list[str]) -> None:
    error = kind_of(exc, IMAP, step)
    assert (error.kind, error.temporary) == (kind, temporary), error.message
    for word in words:
        assert word in error.message


@pytest.mark.parametrize(("exc", "step", "kind", "temporary"), [
    (poplib.error_proto(b"-ERR [AUTH] Authentication failed."), "login", "auth_failed", False),
    (poplib.error_proto(b"-ERR [SYS/TEMP] Temporary authentication failure. [host:date]"), "login",
     "server_error", True),
    (poplib.error_proto(b"-ERR [IN-USE] Mailbox is locked by another POP3 session."), "login", "server_error", True),
    (poplib.error_proto(b"-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections."),
     "login", "protocol_disabled", False),
    (poplib.error_proto("-ERR STLS not supported by server"), "tls", "tls", False),
    (poplib.error_proto(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] Dovecot ready."), "connect",
     "protocol_disabled", False),
    (poplib.error_proto(b"-ERR There's no message 999."), "fetch", "server_error", True),
    (poplib.error_proto(b"-ERR [SYS/PERM] Mailbox is broken."), "login", "server_error", False),
    (ConnectionRefusedError(111, "Connection refused"), "connect", "connection_refused", True),
])
def test_translate_pop3(exc: BaseException, step: str, kind: str, temporary: bool) -> None:
    error = kind_of(exc, POP3, step)
    assert (error.kind, error.temporary) == (kind, temporary), error.message
    assert "POP3" in error.message or "Login failed" in error.message or "STARTTLS" in error.message


def test_translate_maildir_and_passthrough() -> None:
    config = {"protocol": "maildir", "path": "/srv/mail/help"}
    assert kind_of(mailbox.NoSuchMailboxError("/srv/mail/help"), config, "connect").kind == "folder_missing"
    denied = kind_of(PermissionError(13, "Permission denied", "/srv/mail/help/cur/1"), config, "delete")
    assert (denied.kind, denied.temporary) == ("server_error", False) and "/srv/mail/help/cur/1" in denied.message
    own = MailboxError("Authorize again.", kind="needs_reauthorization")
    assert translate(own, config=IMAP, step="login") is own


# ---- configuration ---------------------------------------------------------------------------

def test_fields_describe() -> None:
    described = PROVIDER.describe()
    assert described["name"] == "generic" and described["label"] == "IMAP / POP3 / Maildir (password)"
    names = [f["name"] for f in described["fields"]]
    assert names == ["protocol", "host", "port", "security", "email", "username", "folder", "after_import",
                     "move_to_folder", "ca_file",
                     "path", "authserv_id", "timeout", "password", "smtp_host", "smtp_port", "smtp_security", "smtp_username",
                     "smtp_password"]
    assert [f["name"] for f in described["fields"] if f["secret"]] == ["password", "smtp_password"]


@pytest.mark.parametrize(("protocol", "security", "port"), [
    ("imap", "ssl", 993), ("imap", "starttls", 143), ("imap", "none", 143),
    ("pop3", "ssl", 995), ("pop3", "starttls", 110), ("pop3", "none", 110)])
def test_defaults(protocol: str, security: str, port: int) -> None:
    out = PROVIDER.normalize_config({"protocol": protocol, "host": "Mail.Example.org", "security": security,
                                     "email": "Help@Example.org"})
    assert out["port"] == port == default_port(protocol, security)
    assert out["username"] == "Help@Example.org" and out["timeout"] == 30
    assert out["folder"] == ("INBOX" if protocol == "imap" else None) and out["path"] is None
    assert PROVIDER.normalize_config(out) == out  # idempotent


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_security_has_no_default(protocol: str) -> None:
    with pytest.raises(ConfigurationError, match="'security' is required.*none"):
        PROVIDER.normalize_config({"protocol": protocol, "host": "h", "email": "a@b.test"})


@pytest.mark.parametrize(("config", "match"), [
    ({"protocol": "imap", "security": "ssl", "email": "a@b.test"}, "'host' is required"),
    ({"protocol": "maildir", "email": "a@b.test"}, "'path' is required"),
    ({"protocol": "maildir", "path": "/m", "host": "h", "email": "a@b.test"}, "'host' does not apply"),
    ({"protocol": "pop3", "host": "h", "security": "ssl", "folder": "Sent", "email": "a@b.test"},
     "'folder' does not apply"),
    ({"protocol": "imap", "host": "h", "security": "tls", "email": "a@b.test"}, "must be one of"),
    ({"protocol": "imap", "host": "h", "security": "ssl", "port": 70000, "email": "a@b.test"}, "between 1"),
    ({"protocol": "imap", "host": "h", "security": "ssl", "email": "nobody"}, "email address"),
    ({"protocol": "imap", "host": "h", "security": "ssl", "email": "a@b.test", "ca_file": "/no/such.pem"},
     "no file"),
    ({"protocol": "imap", "host": "h", "security": "ssl", "email": "a@b.test", "password": "x"}, "is a secret"),
    ({"protocol": "imap", "host": "h", "security": "ssl", "email": "a@b.test", "colour": "x"}, "Unknown setting"),
    ({"host": "h", "security": "ssl", "email": "a@b.test"}, "'protocol' is required"),
])
def test_rejected(config: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        PROVIDER.normalize_config(config)


def test_maildir_ignores_form_defaults(tmp_path: Any) -> None:
    out = PROVIDER.normalize_config({"protocol": "maildir", "path": str(tmp_path), "email": "a@b.test",
                                     "folder": "INBOX", "timeout": 30, "host": ""})
    assert out["path"] == str(tmp_path) and out["host"] is None and out["folder"] is None


def test_identity() -> None:
    base = {"host": "Mail.Example.ORG", "security": "ssl", "email": "Help@Example.org"}
    assert PROVIDER.identity({"protocol": "imap", **base}) == "help@example.org@mail.example.org/INBOX"
    assert PROVIDER.identity({"protocol": "imap", **base, "folder": "inbox", "username": "X"}) == \
        "x@mail.example.org/INBOX"
    # one account, whatever the protocol, port and security (issue 11, case 8)
    assert PROVIDER.identity({"protocol": "pop3", **base, "security": "none"}) == \
        PROVIDER.identity({"protocol": "imap", **base, "port": 143, "security": "starttls"}) == \
        PROVIDER.identity({"protocol": "imap", **base, "host": "mail.example.org."})
    local = {"security": "ssl", "email": "help@example.org", "protocol": "imap"}
    assert len({PROVIDER.identity({**local, "host": host})
                for host in ("localhost", "127.0.0.1", "LOCALHOST", "::1", "[::1]", "127.0.0.2")}) == 1
    assert PROVIDER.identity({**local, "host": "10.0.0.1"}) != PROVIDER.identity({**local, "host": "10.0.0.2"})
    assert PROVIDER.identity({"protocol": "maildir", "path": "/srv/../srv/help", "email": "a@b.test"}) == \
        "maildir:/srv/help"


# ---- registration and helpers ----------------------------------------------------------------

def test_hook_registers_the_provider() -> None:
    registered: list[MailboxProvider] = []
    helpdesk_register_providers(registered.append)
    assert [p.name for p in registered] == ["generic"] and isinstance(registered[0], GenericProvider)


def test_entry_point_installed() -> None:
    points = importlib.metadata.entry_points(group="helpdesk")
    assert any(ep.name == "generic" and ep.value == "helpdesk_mail_generic" for ep in points)


def test_maildir_sort_key_follows_dovecot() -> None:
    names = ["1700000001.M1P9Q1.h", "1700000000.M10P9Q2.h", "1700000000.M5P9Q3.h", "junk"]
    assert sorted(names, key=maildir_sort_key) == [
        "1700000000.M5P9Q3.h", "1700000000.M10P9Q2.h", "1700000001.M1P9Q1.h", "junk"]
