"""OAuth 2.0 with Google (or any endpoint-compatible server) through Authlib.

* :func:`consent_request` -- the authorization URL with state, PKCE S256, ``access_type=offline``,
  ``prompt=consent`` and ``login_hint``;
* :func:`exchange_code`, :func:`refresh_access_token`, :func:`service_account_token` (RFC 7523 JWT
  bearer grant, ``sub`` = the mailbox) -- the token endpoint;
* :func:`token_email` -- whose token is it (token-info endpoint, else the ``id_token``);
* :func:`revoke` -- the revocation endpoint (best effort);
* :class:`AccessTokens` -- a valid access token for a saved mailbox, refreshed 60 s ahead of
  expiry, with a rotated refresh token and the cached access token stored encrypted at once.

Errors become :class:`~helpdesk_core.errors.MailboxError`: ``invalid_grant`` (revoked, expired,
password changed) and a refused client are ``needs_reauthorization`` (an admin must run
``helpdesk department connect-google`` again); network trouble and 5xx are temporary.
Tokens are never logged or put into messages.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from helpdesk_core.errors import MailboxError
from helpdesk_core.providers.base import StoredSecrets, update_secrets

if TYPE_CHECKING:  # requests, authlib and joserfc load on first use: a command that reaches no
    # Google mailbox (an IMAP import, ``helpdesk ingest``) does not pay their ~8 MB
    import requests
    from authlib.integrations.requests_client import OAuth2Session, OAuthError

__all__ = ["GOOGLE_ENDPOINTS", "MAIL_SCOPE", "CONSENT_SCOPES", "REFRESH_AHEAD", "Consent", "ServiceAccountKey",
           "AccessTokens", "consent_request", "exchange_code", "refresh_access_token",
           "service_account_token", "token_email", "revoke"]

#: Google's endpoints; every one can be overridden (tests use a local stand-in)
GOOGLE_ENDPOINTS: dict[str, str] = {
    "auth_url": "https://accounts.google.com/o/oauth2/v2/auth",
    "token_url": "https://oauth2.googleapis.com/token",
    "tokeninfo_url": "https://oauth2.googleapis.com/tokeninfo",
    "revoke_url": "https://oauth2.googleapis.com/revoke",
}
#: full IMAP/SMTP access to Gmail (XOAUTH2 needs this scope)
MAIL_SCOPE = "https://mail.google.com/"
#: asked in the consent screen: mail, plus ``openid email`` so the token says whose it is
CONSENT_SCOPES = f"{MAIL_SCOPE} openid email"
#: refresh an access token this many seconds before it expires
REFRESH_AHEAD = 60
#: seconds to wait for an OAuth endpoint
HTTP_TIMEOUT = 20
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"

T = TypeVar("T")


@dataclass(frozen=True)
class Consent:
    """One started consent: open ``url``; the redirect to ``redirect_uri`` carries ``state`` and a code."""

    url: str
    state: str
    code_verifier: str
    redirect_uri: str


@dataclass(frozen=True)
class ServiceAccountKey:
    """The parts of a Google service account key file (JSON) that sign JWT bearer assertions."""

    client_email: str
    private_key: str
    private_key_id: str = ""
    token_uri: str = GOOGLE_ENDPOINTS["token_url"]

    @classmethod
    def from_json(cls, text: str | bytes) -> ServiceAccountKey:
        """Parse a key file; raise ValueError naming what is missing."""
        from joserfc.jwk import RSAKey

        data = json.loads(text)
        if not isinstance(data, dict) or data.get("type") != "service_account":
            raise ValueError("it is not a service account key file (\"type\": \"service_account\" missing)")
        missing = [k for k in ("client_email", "private_key") if not data.get(k)]
        if missing:
            raise ValueError(f"it lacks {', '.join(missing)}")
        RSAKey.import_key(data["private_key"])  # raises ValueError for a broken key
        return cls(client_email=data["client_email"], private_key=data["private_key"],
                   private_key_id=data.get("private_key_id", ""),
                   token_uri=data.get("token_uri") or GOOGLE_ENDPOINTS["token_url"])


def consent_request(client_id: str, redirect_uri: str, *, auth_url: str, login_hint: str | None) -> Consent:
    """Build the authorization URL (state, PKCE S256, offline access, consent prompt, login hint)."""
    from authlib.common.security import generate_token
    from authlib.integrations.requests_client import OAuth2Session

    verifier = generate_token(64)
    session = OAuth2Session(client_id, scope=CONSENT_SCOPES, redirect_uri=redirect_uri,
                            code_challenge_method="S256")
    extra: dict[str, str] = {"access_type": "offline", "prompt": "consent"}
    if login_hint:
        extra["login_hint"] = login_hint
    url, state = session.create_authorization_url(auth_url, code_verifier=verifier, **extra)
    return Consent(url=url, state=state, code_verifier=verifier, redirect_uri=redirect_uri)


def _client(client_id: str, client_secret: str | None, **kwargs: Any) -> OAuth2Session:
    from authlib.integrations.requests_client import OAuth2Session

    return OAuth2Session(client_id, client_secret, token_endpoint_auth_method="client_secret_post",
                         default_timeout=HTTP_TIMEOUT, **kwargs)


def _call(what: str, url: str, fn: Callable[[], T]) -> T:
    """Run one request against an OAuth endpoint; network trouble becomes a temporary MailboxError."""
    import requests

    try:
        return fn()
    except requests.Timeout as exc:
        raise MailboxError(f"{what}: {url} did not answer within {HTTP_TIMEOUT} s; the next run retries.",
                           kind="timeout", temporary=True) from exc
    except requests.ConnectionError as exc:
        raise MailboxError(f"{what}: cannot reach {url} ({type(exc).__name__}); check the network "
                           "and the endpoint setting; the next run retries.",
                           kind="connection_refused", temporary=True) from exc
    except ValueError as exc:  # a non-JSON answer, e.g. an HTML 502 page
        raise MailboxError(f"{what}: {url} gave an answer that is not OAuth JSON; the next run retries.",
                           kind="server_error", temporary=True) from exc


def _oauth_error(exc: OAuthError, *, what: str, email: str, fix: str) -> MailboxError:
    error = exc.error or "error"
    detail = f"{error}: {exc.description}" if exc.description else error
    if error in ("invalid_grant", "invalid_client", "unauthorized_client", "access_denied"):
        return MailboxError(f"Google no longer accepts the authorisation of {email} ({detail}): {fix}",
                            kind="needs_reauthorization", temporary=False)
    return MailboxError(f"{what} for {email} failed ({detail}); the next run retries.",
                        kind="server_error", temporary=True)


def _with_expiry(token: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(token)
    if not out.get("expires_at"):
        out["expires_at"] = int(time.time()) + int(out.get("expires_in") or 3600)
    return out


def exchange_code(client_id: str, client_secret: str, *, token_url: str, code: str, redirect_uri: str,
                  code_verifier: str) -> dict[str, Any]:
    """Trade an authorization code for tokens (``access_token``, ``refresh_token``, ``expires_at``)."""
    from authlib.integrations.requests_client import OAuthError

    session = _client(client_id, client_secret, redirect_uri=redirect_uri)
    try:
        token = _call("Exchanging the authorization code", token_url, lambda: session.fetch_token(
            token_url, grant_type="authorization_code", code=code, code_verifier=code_verifier))
    except OAuthError as exc:
        raise MailboxError(f"The token endpoint refused the authorization code ({exc.error}"
                           f"{': ' + exc.description if exc.description else ''}); codes work once and "
                           "for a few minutes: run 'helpdesk department connect-google' again.",
                           kind="auth_failed", temporary=False) from exc
    return _with_expiry(token)


def refresh_access_token(client_id: str, client_secret: str, *, token_url: str, refresh_token: str,
                         email: str) -> dict[str, Any]:
    """A new access token (and maybe a rotated ``refresh_token``) from the refresh-token grant."""
    from authlib.integrations.requests_client import OAuthError

    session = _client(client_id, client_secret)
    try:
        token = _call("Refreshing the access token", token_url,
                      lambda: session.refresh_token(token_url, refresh_token=refresh_token))
    except OAuthError as exc:
        raise _oauth_error(exc, what="Refreshing the access token", email=email,
                           fix="an admin must run 'helpdesk department connect-google <department>' "
                               "again to re-authorise this mailbox.") from exc
    return _with_expiry(token)


def service_account_token(key: ServiceAccountKey, *, subject: str, token_url: str) -> dict[str, Any]:
    """An access token acting as ``subject`` via domain-wide delegation (RFC 7523, RS256)."""
    from authlib.integrations.requests_client import OAuth2Session, OAuthError
    from authlib.oauth2.rfc7523 import JWTBearerGrant
    from joserfc.jwk import RSAKey

    header = {"alg": "RS256", "typ": "JWT"}
    if key.private_key_id:
        header["kid"] = key.private_key_id
    assertion = JWTBearerGrant.sign(RSAKey.import_key(key.private_key), issuer=key.client_email,
                                    audience=token_url, subject=subject, claims={"scope": MAIL_SCOPE},
                                    header=header)
    if isinstance(assertion, bytes):
        assertion = assertion.decode()
    session = OAuth2Session(default_timeout=HTTP_TIMEOUT, token_endpoint_auth_method="none")
    try:
        token = _call("Getting a service-account token", token_url, lambda: session.fetch_token(
            token_url, grant_type=JWT_BEARER, assertion=assertion))
    except OAuthError as exc:
        raise _oauth_error(exc, what="Getting a service-account token", email=subject,
                           fix=f"check that service account {key.client_email} has domain-wide "
                               f"delegation for scope {MAIL_SCOPE} and that the mailbox exists, then run "
                               "'helpdesk department connect-google <department> --service-account' "
                               "again.") from exc
    return _with_expiry(token)


def token_email(token: Mapping[str, Any], *, tokeninfo_url: str) -> str | None:
    """The lower-cased address a token belongs to: token-info endpoint, else the ``id_token``."""
    import requests

    access_token = str(token["access_token"])

    def ask() -> requests.Response:
        return requests.get(tokeninfo_url, params={"access_token": access_token}, timeout=HTTP_TIMEOUT)

    response = _call("Asking whose token it is", tokeninfo_url, ask)
    if response.ok:
        try:
            email = response.json().get("email")
        except ValueError:
            email = None
        if email:
            return str(email).lower()
    id_token = token.get("id_token")
    if id_token:  # straight from the token endpoint over TLS: its claims can be read as they are
        try:
            payload = str(id_token).split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            if claims.get("email"):
                return str(claims["email"]).lower()
        except (IndexError, ValueError):
            pass
    return None


def revoke(token: str, *, revoke_url: str) -> bool:
    """Ask the revocation endpoint to revoke ``token``; False when that did not work (best effort)."""
    import requests

    try:
        response = requests.post(revoke_url, data={"token": token}, timeout=HTTP_TIMEOUT)
    except requests.RequestException:
        return False
    return response.ok


class AccessTokens:
    """A valid access token for one saved mailbox.

    ``config`` is the normalised configuration of a ``google`` mailbox (``email``, ``auth``,
    ``client_id``, ``token_url``, ...); ``secrets`` holds ``refresh_token`` and ``client_secret``
    (consent mode) or ``service_account_key`` (service-account mode), plus the cached
    ``access_token`` and ``access_token_expires_at``. New tokens are recorded with
    :func:`~helpdesk_core.providers.base.update_secrets` (stored at once by the core's StoredSecrets).
    """

    def __init__(self, config: Mapping[str, Any], secrets: Mapping[str, str]) -> None:
        self.config = config
        self.secrets = secrets
        #: True when the last :meth:`get` returned a cached token (may be revoked early)
        self.from_cache = False

    def _cached(self) -> str | None:
        token = self.secrets.get("access_token")
        try:
            expires = float(self.secrets.get("access_token_expires_at") or 0)
        except ValueError:
            expires = 0
        return token if token and expires - REFRESH_AHEAD > time.time() else None

    def get(self, *, force: bool = False) -> str:
        """The cached token when it is valid for 60 s more, else a new one (saved). ``force`` skips the cache."""
        if not force:
            cached = self._cached()
            if cached is None and isinstance(self.secrets, StoredSecrets):
                self.secrets.reload()  # another process may have refreshed it meanwhile
                cached = self._cached()
            if cached is not None:
                self.from_cache = True
                return cached
        self.from_cache = False
        token = self._fetch()
        updates = {"access_token": str(token["access_token"]),
                   "access_token_expires_at": str(int(token["expires_at"]))}
        if token.get("refresh_token") and token["refresh_token"] != self.secrets.get("refresh_token"):
            updates["refresh_token"] = str(token["refresh_token"])  # rotated: keep the new one
        update_secrets(self.secrets, updates)
        return updates["access_token"]

    def _fetch(self) -> dict[str, Any]:
        cfg, email = self.config, str(self.config["email"])
        token_url = str(cfg.get("token_url") or GOOGLE_ENDPOINTS["token_url"])
        if cfg.get("auth") == "service_account":
            raw = self.secrets.get("service_account_key")
            if not raw:
                raise MailboxError(f"No service account key is stored for {email}: run 'helpdesk department "
                                   "connect-google <department> --service-account' again.",
                                   kind="needs_reauthorization", temporary=False)
            return service_account_token(ServiceAccountKey.from_json(raw), subject=email, token_url=token_url)
        refresh_token = self.secrets.get("refresh_token")
        if not refresh_token or not cfg.get("client_id"):
            raise MailboxError(f"No Google authorisation is stored for {email}: run 'helpdesk department "
                               "connect-google <department>'.", kind="needs_reauthorization", temporary=False)
        try:
            return refresh_access_token(str(cfg["client_id"]), self.secrets.get("client_secret", ""),
                                        token_url=token_url, refresh_token=refresh_token, email=email)
        except MailboxError as exc:
            if exc.kind != "needs_reauthorization" or not isinstance(self.secrets, StoredSecrets):
                raise
            self.secrets.reload()  # another process may have rotated the refresh token meanwhile
            newer = self.secrets.get("refresh_token")
            if not newer or newer == refresh_token:
                raise
            return refresh_access_token(str(cfg["client_id"]), self.secrets.get("client_secret", ""),
                                        token_url=token_url, refresh_token=newer, email=email)
