"""The ``google`` mailbox provider: Gmail / Google Workspace over IMAP and SMTP with XOAUTH2.

The connection code is the generic plugin's (:func:`helpdesk_mail_generic.provider.connect_imap`,
:func:`helpdesk_mail_generic.smtp.connect_smtp`); only the login differs: ``AUTHENTICATE XOAUTH2``
with an access token from :class:`~helpdesk_mail_google_oauth.oauth.AccessTokens`. A cached
token that the server refuses (revoked early) is replaced by a fresh one once.

Mailboxes are connected with ``helpdesk department connect-google`` (see :mod:`.service`), which
fills the configuration and the secrets; ``set-mailbox --provider google`` is possible too, with
the secrets on standard input (``--refresh-token-stdin``, ``--client-secret-stdin``, ...).
The same provider object sends the department's mail (:meth:`GoogleProvider.deliver`).
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from helpdesk_core.hooktypes import OutgoingMail
from helpdesk_core.errors import ConfigurationError, DeliveryError, MailboxError
from helpdesk_core.providers.base import ConfigField, MailboxProvider, MailboxSession
from helpdesk_mail_generic.provider import account_identity, connect_imap
from helpdesk_mail_generic.smtp import SmtpConnection, connect_smtp, smtp_settings

from .oauth import GOOGLE_ENDPOINTS, AccessTokens

__all__ = ["GoogleProvider", "xoauth2_imap", "xoauth2_smtp", "imap_settings"]

_FIX = "if it persists, run 'helpdesk department connect-google <department>' again"


def xoauth2_imap(email: str, token: str) -> Callable[[IMAPClient], None]:
    """IMAP ``AUTHENTICATE XOAUTH2`` as ``email`` with ``token`` (imapclient builds the string)."""

    def login(client: IMAPClient) -> None:
        try:
            client.oauth2_login(email, token)
        except LoginError as exc:
            raise MailboxError(f"The IMAP server refused the XOAUTH2 login of {email} ({_text(exc)}): check "
                               f"that IMAP is enabled for the account and the token is for {email}; {_FIX}.",
                               kind="auth_failed", temporary=False) from exc

    return login


def xoauth2_smtp(email: str, token: str) -> Callable[[smtplib.SMTP], None]:
    """SMTP ``AUTH XOAUTH2`` as ``email`` (EHLO first: ``smtplib.auth`` does not send it)."""

    def login(client: smtplib.SMTP) -> None:
        client.ehlo_or_helo_if_needed()
        blob = f"user={email}\x01auth=Bearer {token}\x01\x01"
        try:
            client.auth("XOAUTH2", lambda challenge=None: blob if challenge is None else "")
        except smtplib.SMTPAuthenticationError as exc:
            raise MailboxError(f"The SMTP server refused the XOAUTH2 login of {email} ({exc.smtp_code} "
                               f"{_text(exc.smtp_error)}); {_FIX}.", kind="auth_failed", temporary=False) from exc

    return login


def _text(value: object) -> str:
    if isinstance(value, LoginError):
        value = value.args[0] if value.args else ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).strip()


def imap_settings(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration :func:`~helpdesk_mail_generic.provider.connect_imap` takes."""
    return {"protocol": "imap", "host": cfg["imap_host"], "port": cfg["imap_port"],
            "security": cfg["imap_security"], "folder": cfg["folder"], "ca_file": cfg.get("ca_file"),
            "timeout": cfg.get("timeout"), "username": cfg["email"], "email": cfg["email"]}


class GoogleProvider(MailboxProvider):
    """Gmail / Google Workspace: IMAP (import) and SMTP (replies) with OAuth 2.0 (XOAUTH2)."""

    name = "google"
    label = "Gmail / Google Workspace (OAuth 2.0)"
    web_connect = "Connect Google Workspace"
    fields = (
        ConfigField("email", "Department address", type="email", required=True,
                    help="The Gmail or Workspace address; the token must belong to it."),
        ConfigField("auth", "Authorisation", type="choice", default="consent",
                    choices=("consent", "service_account"),
                    help="consent = an admin approved access for this mailbox; service_account = "
                         "domain-wide delegation of a Workspace service account."),
        ConfigField("client_id", "OAuth client ID", help="Consent mode: the client the refresh token belongs to."),
        ConfigField("service_account", "Service account", type="email",
                    help="Service-account mode: the client_email of the key."),
        ConfigField("imap_host", "IMAP server", default="imap.gmail.com"),
        ConfigField("imap_port", "IMAP port", type="int", default=993),
        ConfigField("imap_security", "IMAP security", type="choice", default="ssl", choices=("ssl", "starttls")),
        ConfigField("folder", "IMAP folder", default="INBOX"),
        ConfigField("smtp_host", "SMTP server", default="smtp.gmail.com"),
        ConfigField("smtp_port", "SMTP port", type="int", default=465),
        ConfigField("smtp_security", "SMTP security", type="choice", default="ssl", choices=("ssl", "starttls"),
                    help="ssl for port 465, starttls for port 587."),
        ConfigField("ca_file", "CA certificate (PEM)", type="path",
                    help="Trust this CA for IMAP and SMTP instead of the system store (tests)."),
        ConfigField("timeout", "Network timeout (seconds)", type="int", default=30),
        ConfigField("auth_url", "Authorization endpoint", default=GOOGLE_ENDPOINTS["auth_url"]),
        ConfigField("token_url", "Token endpoint", default=GOOGLE_ENDPOINTS["token_url"]),
        ConfigField("tokeninfo_url", "Token-info endpoint", default=GOOGLE_ENDPOINTS["tokeninfo_url"]),
        ConfigField("revoke_url", "Revocation endpoint", default=GOOGLE_ENDPOINTS["revoke_url"]),
        ConfigField("refresh_token", "Refresh token", secret=True),
        ConfigField("client_secret", "OAuth client secret", secret=True),
        ConfigField("service_account_key", "Service account key (JSON)", secret=True),
        ConfigField("access_token", "Cached access token", secret=True),
        ConfigField("access_token_expires_at", "Cached access token expiry (Unix time)", secret=True),
    )

    def normalize_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Fill defaults, lower-case the address and check the settings of the chosen ``auth``."""
        given = {k: (None if isinstance(v, str) and not v.strip() else v) for k, v in config.items()}
        out = super().normalize_config(given)
        email = str(out["email"]).strip().lower()
        if "@" not in email.strip("@"):
            raise ConfigurationError(f"Setting 'email' must be an email address (got {out['email']!r}).")
        out["email"] = email
        if out["auth"] == "consent" and not out["client_id"]:
            raise ConfigurationError("Setting 'client_id' is required for auth 'consent': connect the mailbox "
                                     "with 'helpdesk department connect-google'.")
        if out["auth"] == "service_account" and not out["service_account"]:
            raise ConfigurationError("Setting 'service_account' is required for auth 'service_account': "
                                     "connect with 'helpdesk department connect-google --service-account'.")
        for port in ("imap_port", "smtp_port"):
            if not 0 < int(out[port]) < 65536:
                raise ConfigurationError(f"Setting {port!r} must be between 1 and 65535 (got {out[port]}).")
        folder = str(out["folder"] or "INBOX")
        out["folder"] = "INBOX" if folder.upper() == "INBOX" else folder
        return out

    def identity(self, config: Mapping[str, Any]) -> str:
        """``address@host/folder`` -- the generic provider's account identity, so one Gmail
        account cannot be configured for two departments through the two providers."""
        cfg = self.normalize_config(config)
        return account_identity(str(cfg["email"]), str(cfg["imap_host"]), cfg["folder"])

    def open(self, config: Mapping[str, Any], secrets: Mapping[str, str]) -> MailboxSession:
        """Get an access token (refreshing and storing it when needed) and log in with XOAUTH2."""
        cfg = self.normalize_config(config)
        tokens = AccessTokens(cfg, secrets)
        token = tokens.get()
        try:
            return connect_imap(imap_settings(cfg), xoauth2_imap(cfg["email"], token))
        except MailboxError as exc:
            if exc.kind != "auth_failed" or not tokens.from_cache:
                raise
        return connect_imap(imap_settings(cfg), xoauth2_imap(cfg["email"], tokens.get(force=True)))

    def deliver(self, config: Mapping[str, Any], secrets: Mapping[str, str],
                mails: Sequence[OutgoingMail]) -> list[DeliveryError | None]:
        """Send ``mails`` over one SMTP connection with XOAUTH2; one result per mail (None = sent).

        A token or connection problem raises (``needs_reauthorization`` keeps its kind): the core
        keeps every mail queued with that error, so nothing is lost while an admin re-authorises.
        """
        cfg = self.normalize_config(config)
        with _connect_smtp(cfg, AccessTokens(cfg, secrets)) as conn:
            return conn.send_all(mails)


def _connect_smtp(cfg: Mapping[str, Any], tokens: AccessTokens) -> SmtpConnection:
    settings = smtp_settings(cfg)
    if settings is None:
        raise MailboxError(f"No SMTP server is configured for {cfg['email']}.", kind="configuration")
    try:
        return connect_smtp(settings, xoauth2_smtp(cfg["email"], tokens.get()))
    except MailboxError as exc:
        if exc.kind != "auth_failed" or not tokens.from_cache:
            raise
    return connect_smtp(settings, xoauth2_smtp(cfg["email"], tokens.get(force=True)))
