"""SMTP delivery of outgoing mail (staff replies, acknowledgements) with smtplib.

How to log in is a parameter, like for IMAP, so another provider reuses this module and only
supplies its login step, e.g. Gmail with XOAUTH2::

    from helpdesk_mail_generic.smtp import connect_smtp

    def xoauth2(client):
        client.ehlo_or_helo_if_needed()          # smtplib.auth() does not send EHLO itself
        blob = f"user={user}\\x01auth=Bearer {token}\\x01\\x01"
        client.auth("XOAUTH2", lambda challenge=None: blob if challenge is None else "")

    with connect_smtp(config, xoauth2) as conn:
        results = conn.send_all(mails)

``config`` (see :func:`smtp_settings`): ``host``, ``port``, ``security`` (``ssl`` = implicit TLS,
465; ``starttls`` = upgrade a plain connection, 587 or 25; ``none`` = unencrypted, only when chosen
explicitly), ``ca_file``, ``timeout`` and ``username`` (for messages). Guarantees: certificates are
verified; ``starttls`` never falls back to plain text (a server without STARTTLS is an error);
every socket operation has a timeout. Connection problems raise
:class:`~helpdesk_core.errors.MailboxError` (:func:`helpdesk_mail_generic.errors.translate_smtp`);
problems with one mail become a :class:`~helpdesk_core.errors.DeliveryError` for that mail.
"""

from __future__ import annotations

import logging
import smtplib
import socket
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from types import TracebackType
from typing import Any

from helpdesk_core.hooktypes import OutgoingMail
from helpdesk_core.errors import DeliveryError, MailboxError

from .errors import Opening, close_quietly, translate_smtp
from .imap import tls_context

__all__ = ["SmtpLogin", "SmtpConnection", "connect_smtp", "password_login", "smtp_settings",
           "check_smtp", "DEFAULT_SMTP_PORTS"]

log = logging.getLogger("helpdesk.smtp")

#: logs a connected (and secured) client in; raise smtplib.SMTPException / MailboxError on failure
SmtpLogin = Callable[[smtplib.SMTP], None]

DEFAULT_SMTP_PORTS = {"ssl": 465, "starttls": 587, "none": 25}
DEFAULT_TIMEOUT = 30.0
_SMTP_ERRORS: tuple[type[BaseException], ...] = (OSError, smtplib.SMTPException, EOFError)


@lru_cache(maxsize=1)
def _local_hostname() -> str:
    return socket.getfqdn() or "localhost"


def password_login(username: str, password: str) -> SmtpLogin:
    """The login of the generic provider: AUTH (PLAIN/LOGIN) with username and password."""

    def login(client: smtplib.SMTP) -> None:
        client.login(username, password)  # login() sends EHLO first if needed

    return login


def smtp_settings(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The SMTP part of a normalised generic mailbox config, or None when no ``smtp_host`` is set."""
    host = config.get("smtp_host")
    if not host:
        return None
    security = config.get("smtp_security") or "starttls"
    return {
        "protocol": "smtp", "host": host, "port": int(config.get("smtp_port") or DEFAULT_SMTP_PORTS[security]),
        "security": security, "ca_file": config.get("ca_file"),
        "timeout": config.get("timeout") or DEFAULT_TIMEOUT,
        "username": config.get("smtp_username") or config.get("username") or config.get("email"),
    }


class SmtpConnection:
    """One SMTP connection, secured and logged in; sends any number of mails. A context manager."""

    def __init__(self, config: Mapping[str, Any], authenticate: SmtpLogin) -> None:
        self.config = dict(config)
        self.client: smtplib.SMTP | None = None
        security = self.config.get("security")
        if security not in ("ssl", "starttls", "none"):
            raise MailboxError(f"SMTP security must be ssl, starttls or none (got {security!r}).",
                               kind="configuration", temporary=False)
        timeout = float(self.config.get("timeout") or DEFAULT_TIMEOUT)
        with Opening(self.config, translate_smtp, _SMTP_ERRORS, drop=self.close) as opening:
            host, port = str(self.config["host"]), int(self.config["port"])
            if security == "ssl":  # connects (and checks the 220 greeting) in the constructor
                client: smtplib.SMTP = smtplib.SMTP_SSL(host, port, local_hostname=_local_hostname(),
                                                        timeout=timeout, context=tls_context(self.config))
            else:
                client = smtplib.SMTP(host, port, local_hostname=_local_hostname(), timeout=timeout)
            self.client = client
            client.ehlo()
            if security == "starttls":
                opening.step = "tls"
                if not client.has_extn("starttls"):
                    raise smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server.")
                client.starttls(context=tls_context(self.config))
                client.ehlo()
            opening.step = "login"
            authenticate(client)

    def send(self, mail: OutgoingMail) -> DeliveryError | None:
        """Send one mail; None when the server accepted it (for at least one recipient)."""
        if self.client is None:
            return DeliveryError("The SMTP connection is closed; will retry.", kind="server_error")
        try:
            refused = self.client.sendmail(mail.mail_from, list(mail.recipients), mail.raw)
        except smtplib.SMTPRecipientsRefused as exc:
            return _refused(exc.recipients, self.config)
        except smtplib.SMTPResponseException as exc:  # sender refused, data refused, other replies
            return _response_error(exc.smtp_code, exc.smtp_error, self.config, mail)
        except _SMTP_ERRORS as exc:
            self.close()
            error = translate_smtp(exc, config=self.config, step="send")
            return DeliveryError(error.message, kind=error.kind, temporary=True)
        if refused:
            log.warning("mail %s: %s refused %s; sent to the other recipients", mail.message_id,
                        _where(self.config), _describe(refused))
        return None

    def send_all(self, mails: Sequence[OutgoingMail]) -> list[DeliveryError | None]:
        """Send ``mails`` over this connection; after the connection breaks, the rest get that error."""
        results: list[DeliveryError | None] = []
        broken: DeliveryError | None = None
        for mail in mails:
            if broken is not None:
                results.append(broken)
                continue
            result = self.send(mail)
            if result is not None and self.client is None:
                broken = result
            results.append(result)
        return results

    def close(self) -> None:
        """``QUIT``, or drop the socket when that fails; never raises."""
        client, self.client = self.client, None
        if client is not None:
            close_quietly(client.quit, client.close, _SMTP_ERRORS)

    def __enter__(self) -> SmtpConnection:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def connect_smtp(config: Mapping[str, Any], authenticate: SmtpLogin) -> SmtpConnection:
    """Connect and secure as ``config`` says, then call ``authenticate(client)``."""
    return SmtpConnection(config, authenticate)


def check_smtp(config: Mapping[str, Any], authenticate: SmtpLogin) -> None:
    """Connect, secure, EHLO and log in without sending anything. Raises MailboxError."""
    with connect_smtp(config, authenticate):
        pass


# ---- helpers ------------------------------------------------------------------------------------

def _where(config: Mapping[str, Any]) -> str:
    return f"SMTP server {config.get('host')}:{config.get('port')}"


def _text(value: bytes | str) -> str:
    return (value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)).strip()


def _describe(refused: Mapping[str, tuple[int, bytes]]) -> str:
    return "; ".join(f"{rcpt}: {code} {_text(msg)}" for rcpt, (code, msg) in refused.items())


def _refused(refused: Mapping[str, tuple[int, bytes]], config: Mapping[str, Any]) -> DeliveryError:
    permanent = all(code >= 500 for code, _ in refused.values())
    what = "refused" if permanent else "temporarily refused"
    hint = "check the addresses" if permanent else "will retry"
    return DeliveryError(f"{_where(config)} {what} every recipient ({_describe(refused)}): {hint}.",
                         kind="recipients_refused", temporary=not permanent)


def _response_error(code: int, text: bytes | str, config: Mapping[str, Any], mail: OutgoingMail) -> DeliveryError:
    reply = f"{code} {_text(text)}"
    if code >= 500:
        return DeliveryError(f"{_where(config)} refused the mail from {mail.mail_from} ({reply}); it will not "
                             "be retried: check the reply, fix the cause and retry it with "
                             "'helpdesk outbox retry ID'.", kind="refused", temporary=False)
    return DeliveryError(f"{_where(config)} temporarily refused the mail ({reply}); will retry.",
                         kind="temporary", temporary=True)
