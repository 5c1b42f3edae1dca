"""Access tokens from the Microsoft identity platform through MSAL, for one mailbox.

MSAL keeps its token cache (refresh and access tokens, accounts) as JSON; :class:`Tokens` stores it
encrypted in the mailbox's ``token_cache`` secret whenever it changed (a refreshed access token, a
rotated refresh token) through :func:`helpdesk_core.providers.update_secrets`. MSAL refreshes 5
minutes ahead of expiry. Token-endpoint errors become :class:`~helpdesk_core.errors.MailboxError`.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import msal
import requests

from helpdesk_core.errors import MailboxError
from helpdesk_core.providers import StoredSecrets, update_secrets

__all__ = ["AUTHORITY_HOST", "DELEGATED_SCOPES", "GRAPH_SCOPES", "Tokens", "call", "http_session", "msal_app",
           "token_error"]

AUTHORITY_HOST = "https://login.microsoftonline.com"
OUTLOOK = "https://outlook.office.com/"
DELEGATED_SCOPES = [f"{OUTLOOK}IMAP.AccessAsUser.All", f"{OUTLOOK}POP.AccessAsUser.All", f"{OUTLOOK}SMTP.Send"]
APP_SCOPES = ["https://outlook.office365.com/.default"]
GRAPH = "https://graph.microsoft.com/"
GRAPH_SCOPES = {"delegated": [f"{GRAPH}Mail.Send"], "app_only": [f"{GRAPH}.default"]}
T = TypeVar("T")


def call(what: str, fn: Callable[[], T]) -> T:
    """Run an MSAL call; network trouble becomes a temporary MailboxError (never with a token in it)."""
    try:
        return fn()
    except requests.exceptions.SSLError as exc:
        raise MailboxError(f"{what}: the TLS certificate of the identity platform is not trusted; check the "
                           "authority_host and ca_file settings.", kind="certificate", temporary=False) from exc
    except requests.RequestException as exc:
        raise MailboxError(f"{what}: cannot reach the Microsoft identity platform ({type(exc).__name__}); "
                           "check the network and the authority setting; the next run retries.",
                           kind="connection_refused", temporary=True) from exc
    except ValueError as exc:  # MSAL: authority discovery failed (unknown tenant, not https)
        raise MailboxError(f"{what}: the authority is not usable ({str(exc).splitlines()[0]}): check the tenant "
                           "and authority_host settings.", kind="configuration", temporary=False) from exc


def http_session(cfg: Mapping[str, Any]) -> requests.Session:
    """HTTP for MSAL and Graph: ``ca_file`` (when set) wins over ``REQUESTS_CA_BUNDLE``; ``timeout`` applies."""
    http = requests.Session()
    if cfg.get("ca_file"):
        http.verify, http.trust_env = str(cfg["ca_file"]), False
    http.request = functools.partial(http.request, timeout=cfg.get("timeout") or 30)  # type: ignore[method-assign]
    return http


def msal_app(cfg: Mapping[str, Any], secret: str | None, cache: msal.TokenCache | None = None) -> Any:
    """A confidential client (with the client secret) or a public client of the app in ``cfg``.

    MSAL adds ``offline_access openid profile`` to the scopes of every request."""
    host = str(cfg.get("authority_host") or AUTHORITY_HOST).rstrip("/")
    kwargs: dict[str, Any] = {"authority": f"{host}/{cfg.get('tenant') or 'organizations'}", "token_cache": cache,
                              "http_client": http_session(cfg)}
    if host != AUTHORITY_HOST:  # a national cloud or a local stand-in: no instance discovery
        kwargs.update(instance_discovery=False, validate_authority=False)
    if secret:
        return call("Loading the Microsoft app", lambda: msal.ConfidentialClientApplication(
            cfg["client_id"], client_credential=secret, **kwargs))
    return call("Loading the Microsoft app", lambda: msal.PublicClientApplication(cfg["client_id"], **kwargs))


def token_error(result: Mapping[str, Any], cfg: Mapping[str, Any]) -> MailboxError:
    """The MailboxError for an MSAL error result (``error``, ``error_description``, ``error_codes``)."""
    error, codes = str(result.get("error") or "error"), list(result.get("error_codes") or [])
    first = str(result.get("error_description") or "").splitlines()[0] if result.get("error_description") else ""
    where = f"'helpdesk department connect-microsoft <department>' for {cfg['email']}"
    if 7000222 in codes or "AADSTS7000222" in first:
        when = cfg.get("client_secret_expires")
        ago = f" on {when} ({(dt.date.today() - dt.date.fromisoformat(when)).days} days ago)" if when else ""
        return MailboxError(f"The client secret of app {cfg['client_id']} has expired{ago} (AADSTS7000222): create a "
                            "new one in Entra ID > App registrations > Certificates & secrets, store it with "
                            f"'helpdesk microsoft set-client' and run {where} again.",
                            kind="needs_reauthorization", temporary=False)
    if error in ("invalid_grant", "interaction_required", "consent_required", "invalid_client",
                 "unauthorized_client", "access_denied"):
        return MailboxError(f"Microsoft no longer accepts the authorisation of {cfg['email']} ({error}: {first}): "
                            f"an admin must run {where} again.", kind="needs_reauthorization", temporary=False)
    return MailboxError(f"The Microsoft token endpoint refused a token for {cfg['email']} ({error}: {first}); "
                        "the next run retries.", kind="server_error", temporary=True)


class Tokens:
    """Access tokens of one mailbox (``cfg``: normalised ``microsoft`` config; ``secrets``: its secrets)."""

    def __init__(self, cfg: Mapping[str, Any], secrets: Mapping[str, str]) -> None:
        if isinstance(secrets, StoredSecrets):
            secrets.reload()  # another process may have rotated the refresh token meanwhile
        self.cfg, self.secrets = cfg, secrets
        self.cache = msal.SerializableTokenCache()
        if secrets.get("token_cache"):
            self.cache.deserialize(secrets["token_cache"])
        self.app = msal_app(cfg, secrets.get("client_secret"), self.cache)
        self.from_cache = False  # whether the last token came from the cache (may be revoked early)

    def get(self, scopes: list[str] | None = None, *, force: bool = False) -> str:
        """An access token for ``scopes`` (default: IMAP/POP/SMTP), refreshed when due; saves the cache."""
        app_only = self.cfg["mode"] == "app_only"
        scopes = scopes or (APP_SCOPES if app_only else DELEGATED_SCOPES)
        if app_only:
            result = call("Getting an app-only token", lambda: self.app.acquire_token_for_client(scopes))
        else:
            accounts = self.app.get_accounts(username=self.cfg["email"])
            result = accounts and call("Refreshing the access token", lambda: self.app.acquire_token_silent_with_error(
                scopes, accounts[0], force_refresh=force))
            if not result:
                result = {"error": "invalid_grant", "error_description": "no refresh token is stored"}
        if self.cache.has_state_changed:
            update_secrets(self.secrets, {"token_cache": self.cache.serialize()})
            self.cache.has_state_changed = False
        if "access_token" not in result:
            raise token_error(result, self.cfg)
        self.from_cache = result.get("token_source") == "cache"
        return str(result["access_token"])
