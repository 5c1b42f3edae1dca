"""The ``microsoft`` mailbox provider: Exchange Online over IMAP or POP3 and SMTP with XOAUTH2.

Connections are the generic plugin's (:func:`helpdesk_mail_generic.provider.connect_imap`,
``connect_pop3``, :func:`helpdesk_mail_generic.smtp.connect_smtp`); only the login differs
(``user=…\\x01auth=Bearer …\\x01\\x01``). When the tenant has SMTP AUTH disabled (``535 5.7.139``)
and ``send_via`` is ``auto`` (or always, with ``graph``), mail goes through Microsoft Graph
``sendMail`` as the exact MIME bytes: the same From, the same outbox results.
"""

from __future__ import annotations

import base64
import poplib
import smtplib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

import requests
from imapclient.exceptions import LoginError

from helpdesk_core.errors import ConfigurationError, DeliveryError, MailboxError
from helpdesk_core.hooktypes import OutgoingMail
from helpdesk_core.providers import ConfigField, MailboxProvider, MailboxSession
from helpdesk_mail_generic.provider import connect_imap, connect_pop3
from helpdesk_mail_generic.smtp import connect_smtp, smtp_settings

from .tokens import AUTHORITY_HOST, GRAPH_SCOPES, Tokens, http_session

__all__ = ["MicrosoftProvider"]
T = TypeVar("T")


def _blob(email: str, token: str) -> str:
    return f"user={email}\x01auth=Bearer {token}\x01\x01"


def _refused(protocol: str, email: str, detail: object) -> MailboxError:
    text = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
    return MailboxError(f"Exchange refused the {protocol} XOAUTH2 login of {email} ({text.strip()}): check that "
                        f"{protocol} is enabled for the mailbox (Set-CASMailbox) and the token is for {email}.",
                        kind="auth_failed", temporary=False)


def mailbox_login(protocol: str, email: str, token: str) -> Callable[[Any], None]:
    """IMAP ``AUTHENTICATE XOAUTH2`` (imapclient) or POP3 ``AUTH XOAUTH2`` with an initial response (RFC 5034)."""
    def login(client: Any) -> None:
        try:
            if protocol == "pop3":  # poplib has no SASL helper
                client._shortcmd("AUTH XOAUTH2 " + base64.b64encode(_blob(email, token).encode()).decode())
            else:
                client.oauth2_login(email, token)
        except (LoginError, poplib.error_proto) as exc:
            raise _refused(protocol.upper(), email, exc.args[0] if exc.args else "") from exc
    return login


def smtp_login(email: str, token: str) -> Callable[[smtplib.SMTP], None]:
    def login(client: smtplib.SMTP) -> None:
        client.ehlo_or_helo_if_needed()
        try:
            client.auth("XOAUTH2", lambda challenge=None: _blob(email, token) if challenge is None else "")
        except smtplib.SMTPAuthenticationError as exc:
            if b"5.7.139" in exc.smtp_error:
                raise MailboxError(f"SMTP AUTH is disabled for {email} (535 5.7.139): set send_via to auto or graph, "
                                   f"or run Set-CASMailbox -Identity {email} -SmtpClientAuthenticationDisabled $false.",
                                   kind="smtp_auth_disabled", temporary=False) from exc
            raise _refused("SMTP", email, exc.smtp_error) from exc
    return login


class MicrosoftProvider(MailboxProvider):
    """Microsoft 365 / Exchange Online: delegated (a user consented) or app-only (shared mailboxes)."""

    name = "microsoft"
    label = "Microsoft 365 / Exchange Online (OAuth 2.0)"
    fields = (
        ConfigField("email", "Mailbox address", type="email", required=True, help="A delegated token must be its."),
        ConfigField("mode", "Authorisation", type="choice", choices=("delegated", "app_only"), default="delegated",
                    help="delegated = a user consented (auth code + PKCE); app_only = client credentials, "
                         "for shared mailboxes (admin consent and Exchange mailbox permission)."),
        ConfigField("client_id", "Application (client) ID", required=True, help="From the Entra ID app registration."),
        ConfigField("tenant", "Directory (tenant) ID", default="organizations", help="Id or domain (app-only)."),
        ConfigField("client_secret_expires", "Client secret expiry (YYYY-MM-DD)", help="Named when it has expired."),
        ConfigField("protocol", "Protocol", type="choice", choices=("imap", "pop3"), default="imap"),
        ConfigField("host", "IMAP/POP3 server", default="outlook.office365.com"),
        ConfigField("port", "IMAP/POP3 port", type="int", help="Default: 993 (IMAP) or 995 (POP3)."),
        ConfigField("folder", "IMAP folder", default="INBOX"),
        ConfigField("smtp_host", "SMTP server", default="smtp.office365.com"),
        ConfigField("smtp_port", "SMTP port", type="int", default=587),
        ConfigField("smtp_security", "SMTP security", type="choice", choices=("starttls", "ssl"), default="starttls"),
        ConfigField("send_via", "Send replies via", type="choice", choices=("auto", "smtp", "graph"), default="auto",
                    help="auto = SMTP, and Graph sendMail when the tenant has SMTP AUTH disabled (535 5.7.139)."),
        ConfigField("authority_host", "Identity platform", default=AUTHORITY_HOST, help="National clouds, tests."),
        ConfigField("graph_url", "Microsoft Graph", default="https://graph.microsoft.com"),
        ConfigField("ca_file", "CA certificate (PEM)", type="path", help="Trust this CA, not the system's (tests)."),
        ConfigField("timeout", "Network timeout (seconds)", type="int", default=30),
        ConfigField("client_secret", "Client secret", secret=True, help="Needed for app-only mode."),
        ConfigField("token_cache", "MSAL token cache", secret=True, help="Written by connect-microsoft."),
    )

    def normalize_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        out = super().normalize_config({k: v for k, v in config.items() if v not in (None, "")})
        out["email"] = str(out["email"]).strip().lower()
        if "@" not in out["email"].strip("@"):
            raise ConfigurationError(f"Setting 'email' must be an email address (got {out['email']!r}).")
        if out["mode"] == "app_only" and out["tenant"] in ("organizations", "common"):
            raise ConfigurationError("App-only mode needs the tenant id or domain (setting 'tenant'), not "
                                     f"{out['tenant']!r}: the client-credentials grant is per tenant.")
        out["port"] = out["port"] or (993 if out["protocol"] == "imap" else 995)
        return out

    def identity(self, config: Mapping[str, Any]) -> str:
        cfg = self.normalize_config(config)
        return f"{cfg['protocol']}://{cfg['email']}@{str(cfg['host']).lower()}:{cfg['port']}/{cfg['folder']}"

    def open(self, config: Mapping[str, Any], secrets: Mapping[str, str]) -> MailboxSession:
        cfg = self.normalize_config(config)
        settings = {**cfg, "security": "ssl", "username": cfg["email"]}
        connect = connect_pop3 if cfg["protocol"] == "pop3" else connect_imap
        return _with_token(cfg, Tokens(cfg, secrets),
                           lambda t: connect(settings, mailbox_login(cfg["protocol"], cfg["email"], t)))

    def deliver(self, config: Mapping[str, Any], secrets: Mapping[str, str],
                mails: Sequence[OutgoingMail]) -> list[DeliveryError | None]:
        """SMTP XOAUTH2 on one connection, or Graph ``sendMail`` (see ``send_via``); one result per mail."""
        cfg = self.normalize_config(config)
        tokens = Tokens(cfg, secrets)
        if cfg["send_via"] != "graph":
            try:
                login = lambda t: connect_smtp(smtp_settings(cfg), smtp_login(cfg["email"], t))  # noqa: E731
                with _with_token(cfg, tokens, login) as smtp:
                    return smtp.send_all(mails)
            except MailboxError as exc:
                if exc.kind != "smtp_auth_disabled" or cfg["send_via"] == "smtp":
                    raise
        with http_session(cfg) as http:
            return _with_token(cfg, tokens, lambda t: _graph_batch(http, cfg, t, mails), GRAPH_SCOPES[cfg["mode"]])


def _with_token(cfg: Mapping[str, Any], tokens: Tokens, connect: Callable[[str], T],
                scopes: list[str] | None = None) -> T:
    """``connect(token)``; a refused cached token is replaced once; app-only says what grants access."""
    try:
        return connect(tokens.get(scopes))
    except MailboxError as exc:
        refused = exc
    if refused.kind == "auth_failed" and tokens.from_cache and cfg["mode"] != "app_only":
        return connect(tokens.get(scopes, force=True))
    if refused.kind != "auth_failed" or cfg["mode"] != "app_only":
        raise refused
    raise MailboxError(
        f"The service principal of app {cfg['client_id']} may not open {cfg['email']} ({refused.message}) In Exchange "
        f"Online PowerShell run: New-ServicePrincipal -AppId {cfg['client_id']} -ObjectId <object id of the "
        f"enterprise application>; Add-MailboxPermission -Identity {cfg['email']} -User <that service principal> "
        "-AccessRights FullAccess.", kind="auth_failed", temporary=False) from refused


def _graph_batch(http: requests.Session, cfg: Mapping[str, Any], token: str,
                 mails: Sequence[OutgoingMail]) -> list[DeliveryError | None]:
    results = [_graph_send(http, cfg, token, mail) for mail in mails[:1]]
    if results and results[0] is not None and results[0].kind == "auth_failed":  # nothing sent yet: a new token
        raise MailboxError(results[0].message, kind="auth_failed", temporary=True)
    return results + [_graph_send(http, cfg, token, mail) for mail in mails[1:]]


def _graph_send(http: requests.Session, cfg: Mapping[str, Any], token: str, mail: OutgoingMail) -> DeliveryError | None:
    url = f"{str(cfg['graph_url']).rstrip('/')}/v1.0/users/{quote(cfg['email'])}/sendMail"
    try:
        answer = http.post(url, data=base64.b64encode(mail.raw),
                           headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"})
    except requests.RequestException as exc:
        return DeliveryError(f"Cannot reach Graph ({type(exc).__name__}); will retry.", kind="connection_refused")
    if answer.status_code == 202:
        return None
    json_body = answer.headers.get("Content-Type", "").startswith("application/json")
    error = (answer.json().get("error") or {}) if json_body else {}
    detail = f"{answer.status_code} {error.get('code', '')}: {error.get('message', '')}".strip()
    if answer.status_code == 401:
        return DeliveryError(f"Graph refused the access token ({detail}); will retry.", kind="auth_failed")
    if answer.status_code == 403:
        return DeliveryError(f"Graph refused to send as {cfg['email']} ({detail}): grant the app Mail.Send "
                             "(admin consent) and the mailbox permission, then retry the mail.", kind="refused",
                             temporary=False)
    if answer.status_code in (400, 404, 413):
        return DeliveryError(f"Graph refused the mail ({detail}).", kind="refused", temporary=False)
    return DeliveryError(f"Graph could not send the mail now ({detail}); will retry.", kind="server_error")
