"""Turn what imaplib/imapclient/poplib/ssl/socket/mailbox raise into one :class:`MailboxError`.

Every session of this plugin (and of plugins reusing it, e.g. a Google OAuth provider) wraps
third-party exceptions here, at the plugin boundary, so the importer and the admin only ever see a
:class:`~helpdesk_core.errors.MailboxError` with a stable ``kind``, a ``temporary`` flag and a
one-line message saying what failed and what to check. Messages never contain the password: they
are built from the configuration (host, port, user, folder) and from server replies only.

The exact exceptions and texts mapped here were observed against Dovecot 2.3 and the Python
standard library (imaplib, poplib, ssl, socket); the tests against the real Dovecot pin them.
"""

from __future__ import annotations

import ast
import imaplib
import mailbox
import poplib
import re
import smtplib
import socket
import ssl
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from helpdesk_core.errors import MailboxError

__all__ = ["translate", "translate_smtp", "Opening", "close_quietly", "MAIL_ERRORS"]

#: exception families a session wraps with :func:`translate`; anything else is a bug and propagates
MAIL_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # socket, ssl, timeouts, refused, file errors
    imaplib.IMAP4.error,  # imapclient's LoginError, CapabilityError, abort, readonly
    poplib.error_proto,
    mailbox.Error,
    EOFError,
)

_STEPS = {
    "connect": "connecting",
    "tls": "starting TLS",
    "login": "logging in",
    "select": "opening the folder",
    "count": "counting messages",
    "fetch": "fetching messages",
    "delete": "deleting messages",
    "checkpoint": "committing deletions",
    "close": "closing the connection",
    "send": "sending mail",
}


class Opening:
    """Open a session step by step (``connect``, ``tls``, ``login``, ``select`` …): an exception of
    ``errors`` becomes the :class:`MailboxError` of ``translation`` (:func:`translate` or
    :func:`translate_smtp`) for the step reached, and on any failure ``drop()`` closes what was
    opened so far, without a LOGOUT::

        with Opening(config, translate, MAIL_ERRORS, drop=self._drop) as opening:
            self.client = connect()
            opening.step = "login"
            login(self.client)
    """

    def __init__(self, config: Mapping[str, Any],
                 translation: Callable[..., MailboxError],
                 errors: tuple[type[BaseException], ...], *, drop: Callable[[], object],
                 step: str = "connect") -> None:
        self.config, self.translation, self.errors, self.drop = config, translation, errors, drop
        self.step = step

    def __enter__(self) -> Opening:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is None:
            return
        self.drop()
        if isinstance(exc, self.errors):
            raise self.translation(exc, config=self.config, step=self.step) from exc


def close_quietly(polite: Callable[[], object], abrupt: Callable[[], object],
                  errors: tuple[type[BaseException], ...] = (Exception,)) -> None:
    """End a session that is done: ``polite()`` (LOGOUT, QUIT) or, when that fails, ``abrupt()``
    (drop the socket); a failure of either is swallowed (``errors``), because closing must never
    fail the import or the delivery that came before it."""
    try:
        polite()
    except errors:
        try:
            abrupt()
        except errors:
            pass


def translate(exc: BaseException, *, config: Mapping[str, Any], step: str) -> MailboxError:
    """Map ``exc``, raised while doing ``step`` with ``config``, to a :class:`MailboxError`.

    ``step`` is one of ``connect``, ``tls``, ``login``, ``select``, ``count``, ``fetch``,
    ``delete``, ``checkpoint``, ``close``. A :class:`MailboxError` is returned unchanged (a login
    callable of another plugin may raise its own, e.g. ``needs_reauthorization``).

    Kinds and ``temporary``: ``unknown_host`` (no; yes for a temporary DNS failure),
    ``connection_refused`` (yes), ``timeout`` (yes), ``tls`` (no), ``certificate`` (no),
    ``auth_failed`` (no), ``folder_missing`` (no), ``protocol_disabled`` (no),
    ``server_error`` (yes, except permanent server conditions such as a read-only mailbox).
    """
    if isinstance(exc, MailboxError):
        return exc
    where = _where(config)
    doing = _STEPS.get(step, step)
    proto = _proto(config)
    text = _server_text(exc)
    upper = text.upper()

    # ---- network and TLS (all OSError subclasses; order matters) --------------------------
    if isinstance(exc, socket.gaierror):
        host = config.get("host")
        if exc.errno == getattr(socket, "EAI_AGAIN", None):
            return _err(f"DNS lookup for {host!r} failed temporarily ({exc.strerror}): "
                        "check the network and DNS server; the next run may work.", "unknown_host", True)
        return _err(f"Unknown host {host!r}: check the server name (DNS lookup failed).", "unknown_host", False)
    if isinstance(exc, ConnectionRefusedError):
        return _err(f"Connection refused by {where}: check the port and that the {proto} service "
                    "is running and enabled on the server.", "connection_refused", True)
    if isinstance(exc, TimeoutError) or _is_timeout_text(exc, text):
        return _timeout(config, doing)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _certificate(exc, where)
    if isinstance(exc, ssl.SSLError) and step in ("connect", "tls"):
        reason = getattr(exc, "reason", None) or text
        return _err(f"TLS handshake with {where} failed ({reason}): the port may not speak TLS: try "
                    f"security starttls or the TLS port ({_tls_port(config)} for {proto}).", "tls", False)
    if isinstance(exc, (FileNotFoundError, NotADirectoryError)) and config.get("protocol") == "maildir":
        return _err(f"Maildir {config.get('path')!r} does not exist: check the path.", "folder_missing", False)
    if isinstance(exc, PermissionError):
        return _err(f"Permission denied while {doing} ({exc.filename or where}): check that the importer's "
                    "user may read and delete the mail files.", "server_error", False)

    # ---- server replies (imaplib/imapclient/poplib) ----------------------------------------
    if step == "tls" and ("STARTTLS" in upper or "STLS" in upper) and (
            "CAPABILITY" in upper or "NOT SUPPORTED" in upper):
        return _no_starttls(config)
    if step == "connect" and _wrong_greeting(exc, text):
        return _err(f"The server at {where} does not speak {proto} (greeting: {_short(text) or 'none'}): "
                    f"check the port and that {proto} is enabled on the server.", "protocol_disabled", False)
    if "[UNAVAILABLE]" in upper or "[SYS/TEMP]" in upper or "[IN-USE]" in upper or "[INUSE]" in upper:
        return _err(f"{proto} server {where} is temporarily unavailable while {doing} ({text}): "
                    "the next run may work; check the server if it persists.", "server_error", True)
    if "[SYS/PERM]" in upper:
        return _err(f"{proto} server {where} reports a permanent error while {doing} ({text}): "
                    "ask the mail server admin to check the mailbox.", "server_error", False)
    if "PLAINTEXT AUTHENTICATION DISALLOWED" in upper or "[PRIVACYREQUIRED]" in upper or (
            "LOGINDISABLED" in upper):
        return _err(f"The {proto} server at {where} refuses password logins on an unencrypted connection ({text}): "
                    "use security ssl or starttls.", "protocol_disabled", False)
    if ("AUTHENTICATIONFAILED" in upper or "[AUTH]" in upper
            or exc.__class__.__name__ == "LoginError"
            or (step == "login" and isinstance(exc, poplib.error_proto) and upper.startswith("-ERR"))):
        return _err(f"Login failed for user {_user(config)!r} on {where}: check the username and password.",
                    "auth_failed", False)
    if isinstance(exc, imaplib.IMAP4.readonly):
        return _err(f"Folder {config.get('folder')!r} on {where} is read-only ({text}): the importer must "
                    "delete imported mail; check the mailbox permissions.", "server_error", False)
    if step == "select" and ("DOESN'T EXIST" in upper or "[NONEXISTENT]" in upper
                             or "NO SUCH" in upper or "UNKNOWN MAILBOX" in upper):
        return _err(f"Folder {config.get('folder')!r} does not exist for user {_user(config)!r} on {where}: "
                    "check the folder name (names other than INBOX are case-sensitive).",
                    "folder_missing", False)
    if exc.__class__.__name__ == "CapabilityError" or any(
            s in upper for s in ("UNKNOWN COMMAND", "NOT SUPPORTED", "UNSUPPORTED", "NOT ENABLED",
                                 "DISABLED")):
        return _err(f"{where} does not support what the importer needs while {doing} ({text}): "
                    f"check that {proto} is enabled on the server.", "protocol_disabled", False)
    if isinstance(exc, mailbox.NoSuchMailboxError):
        return _err(f"Maildir {config.get('path')!r} does not exist: check the path.", "folder_missing", False)
    if isinstance(exc, mailbox.Error):
        return _err(f"Maildir {config.get('path')!r} could not be read ({text}): check that it is a Maildir "
                    "(with cur/, new/ and tmp/ folders).", "server_error", False)
    if isinstance(exc, (OSError, EOFError, imaplib.IMAP4.error, poplib.error_proto)):
        return _err(f"{proto} error with {where} while {doing} ({text or type(exc).__name__}): the next run "
                    "may work; check the server if it persists.", "server_error", True)
    return _err(f"Unexpected {type(exc).__name__} with {where} while {doing} ({text}).", "server_error", False)


def translate_smtp(exc: BaseException, *, config: Mapping[str, Any], step: str) -> MailboxError:
    """Map ``exc`` raised by smtplib while doing ``step`` (``connect``, ``tls``, ``login``, ``send``)
    to a :class:`MailboxError` whose message starts with "Outgoing mail (SMTP)".

    Kinds as for :func:`translate`, plus: ``auth_failed`` for a refused login
    (``SMTPAuthenticationError``); ``tls`` when the server offers no STARTTLS, or offers AUTH only
    over TLS while ``security`` is ``none`` (``SMTPNotSupportedError``); ``protocol_disabled`` when
    the server does not greet like an SMTP server or offers no AUTH at all.
    """
    if isinstance(exc, MailboxError):
        return exc
    cfg = {**config, "protocol": "smtp"}
    where = _where(cfg)
    security = cfg.get("security")
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        reply = f"{exc.smtp_code} {_server_text_of(exc.smtp_error)}"
        error = _err(f"Login failed for user {_user(cfg)!r} on {where} ({reply}): check the SMTP username and "
                     "password (by default the mailbox's).", "auth_failed", False)
    elif isinstance(exc, smtplib.SMTPNotSupportedError) and step == "tls":
        error = _err(f"{where} does not offer STARTTLS: use security ssl with the TLS port (465); the help "
                     "desk never falls back to an unencrypted connection.", "tls", False)
    elif isinstance(exc, smtplib.SMTPNotSupportedError) and security == "none":
        error = _err(f"{where} offers no login (AUTH) on an unencrypted connection: use security starttls "
                     "(port 587 or 25) or ssl (port 465).", "tls", False)
    elif isinstance(exc, smtplib.SMTPNotSupportedError):
        error = _err(f"{where} does not offer login (AUTH) ({exc}): check the port (587 or 465 for "
                     "submission) and that authenticated submission is enabled.", "protocol_disabled", False)
    elif isinstance(exc, smtplib.SMTPConnectError):
        reply = f"{exc.smtp_code} {_server_text_of(exc.smtp_error)}"
        temporary = 400 <= exc.smtp_code < 500
        error = _err(f"{where} did not accept the connection ({reply}): check the host and port (SMTP "
                     "submission is usually 587 or 465).", "server_error" if temporary else "protocol_disabled",
                     temporary)
    elif isinstance(exc, smtplib.SMTPServerDisconnected) and "timed out" in str(exc).lower():
        error = _timeout(cfg, _STEPS.get(step, step))
    elif isinstance(exc, smtplib.SMTPServerDisconnected):
        error = _err(f"{where} closed the connection while {_STEPS.get(step, 'sending')} ({exc}): check the "
                     "port and security (ssl on 465, starttls on 587); the next try may work.",
                     "server_error", True)
    elif isinstance(exc, smtplib.SMTPResponseException):
        reply = f"{exc.smtp_code} {_server_text_of(exc.smtp_error)}"
        temporary = exc.smtp_code < 500
        error = _err(f"{where} answered {reply} while {_STEPS.get(step, step)}"
                     + ("; the next try may work." if temporary else ": check the server's reply."),
                     "server_error", temporary)
    else:
        error = translate(exc, config=cfg, step=step)
    return MailboxError(f"Outgoing mail (SMTP): {error.message}", kind=error.kind, temporary=error.temporary)


# ---- helpers ------------------------------------------------------------------------------------

def _server_text_of(value: bytes | str) -> str:
    return (value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value)).strip()


def _err(message: str, kind: str, temporary: bool) -> MailboxError:
    return MailboxError(_one_line(message), kind=kind, temporary=temporary)


def _timeout(config: Mapping[str, Any], doing: str) -> MailboxError:
    seconds = config.get("timeout")
    after = f" after {seconds} s" if seconds else ""
    return _err(f"Timed out{after} on {_where(config)} while {doing}: check the host, port and firewall, "
                "and the security setting (ssl vs starttls): a plain connection to a TLS port also hangs.",
                "timeout", True)


def _certificate(exc: ssl.SSLCertVerificationError, where: str) -> MailboxError:
    verify = str(getattr(exc, "verify_message", "") or exc.reason or exc)
    low = verify.lower()
    if "self-signed" in low or "self signed" in low:
        hint = "the server uses a self-signed certificate: give that certificate with --ca-file"
    elif "hostname mismatch" in low or "doesn't match" in low or "not valid for" in low:
        hint = ("hostname mismatch: connect with the host name the certificate was issued for, "
                "or ask the server admin to fix the certificate")
    elif "expired" in low:
        hint = "the server certificate has expired: ask the server admin to renew it"
    elif "local issuer" in low or "unknown ca" in low:
        hint = "the certificate is signed by an untrusted CA: give that CA's certificate with --ca-file"
    else:
        hint = "check the server certificate, or give the CA certificate to trust with --ca-file"
    return _err(f"Certificate of {where} not accepted ({verify}): {hint}.", "certificate", False)


def _no_starttls(config: Mapping[str, Any]) -> MailboxError:
    return _err(f"{_where(config)} does not offer STARTTLS: use security ssl with the TLS port "
                f"({_tls_port(config)}); the importer never falls back to an unencrypted connection.",
                "tls", False)


def _wrong_greeting(exc: BaseException, text: str) -> bool:
    """An IMAP client greeted by a POP3 server or the other way round (or no greeting at all)."""
    if isinstance(exc, poplib.error_proto):
        return not text.upper().startswith(("-ERR", "+OK"))
    if isinstance(exc, imaplib.IMAP4.error) and not isinstance(exc, imaplib.IMAP4.abort):
        return not text or text.upper().startswith(("+OK", "-ERR"))
    return False


def _is_timeout_text(exc: BaseException, text: str) -> bool:
    """imaplib wraps socket timeouts during a command as ``abort('... timed out')``."""
    return isinstance(exc, (imaplib.IMAP4.abort, poplib.error_proto, OSError)) and "timed out" in text.lower()


def _proto(config: Mapping[str, Any]) -> str:
    return {"imap": "IMAP", "pop3": "POP3", "maildir": "Maildir", "smtp": "SMTP"}.get(
        str(config.get("protocol")), "IMAP/POP3")


def _tls_port(config: Mapping[str, Any]) -> int:
    return {"pop3": 995, "smtp": 465}.get(str(config.get("protocol")), 993)


def _where(config: Mapping[str, Any]) -> str:
    if config.get("protocol") == "maildir":
        return f"Maildir {config.get('path')!r}"
    host, port = config.get("host"), config.get("port")
    return f"{host}:{port}" if port else str(host)


def _user(config: Mapping[str, Any]) -> str:
    return str(config.get("username") or config.get("email") or "?")


def _server_text(exc: BaseException) -> str:
    """The server's text without ``b'...'`` wrappers (imapclient's LoginError is ``"b'[...] ...'"``)."""
    if not exc.args:
        return ""
    arg = exc.args[0]
    if arg is None:
        return ""
    if isinstance(exc, OSError) and exc.strerror:
        arg = exc.strerror
    if isinstance(arg, (bytes, bytearray)):
        return bytes(arg).decode("utf-8", "replace").strip()
    text = str(arg) if len(exc.args) == 1 else str(exc)
    if re.fullmatch(r"b(['\"]).*\1", text, flags=re.S):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace").strip()
    return text.strip()


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _one_line(message: str, limit: int = 400) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 1] + "…"
