"""A local OAuth 2.0 authorization server for tests: a stand-in for Google's endpoints.

One :class:`OAuthServer` (``ThreadingHTTPServer``, HTTP/1.1 with ``Content-Length``, keep-alive as
Dovecot expects) on ``127.0.0.1`` offers:

* ``GET /auth`` -- authorization endpoint: approves at once as :attr:`OAuthServer.consent_user`
  (or ``login_hint``) and redirects (302) to ``redirect_uri`` with ``code`` and ``state``;
  :attr:`OAuthServer.deny` makes it redirect with ``error=access_denied``.
* ``POST /token`` -- token endpoint: ``authorization_code`` (PKCE S256 or plain verified, client
  authenticated by HTTP Basic or form fields), ``refresh_token`` (rotation when
  :attr:`OAuthServer.rotate_refresh_tokens`), RFC 7523 ``jwt-bearer`` (RS256 assertion checked with
  the service account's public key; ``sub`` becomes the user). Errors are RFC 6749 JSON
  (``invalid_grant`` for unknown, used, expired or revoked codes and tokens).
* ``GET /tokeninfo?access_token=T`` -- exactly what Dovecot's oauth2 passdb (``tokeninfo_url``, which
  appends the token to the URL) expects: ``200 {"email": ...}`` for a valid token,
  ``400 {"error": "invalid_token"}`` otherwise.
* ``POST /revoke`` (``token=``) -- revokes a refresh token (and its access tokens) or an access token.

Test controls: :meth:`expire_access_tokens`, :meth:`revoke`, :meth:`reset`,
:meth:`add_client`, :meth:`add_service_account` / :meth:`make_service_account_key`,
:meth:`token_owner` (for :class:`~helpdesk_core.testing.servers.smtp.SmtpSink`), :attr:`requests` (a log of
``(method, path)``). Only uses the standard library and ``cryptography``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = ["OAuthServer", "JWT_BEARER"]

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPE = "https://mail.google.com/"


@dataclass
class _Grant:
    """A refresh token (or, for codes, the pending grant) of one user and client."""

    email: str
    client_id: str
    scope: str
    revoked: bool = False


@dataclass
class _Code:
    email: str
    client_id: str
    redirect_uri: str
    scope: str
    challenge: str | None
    method: str
    expires_at: float
    used: bool = False


@dataclass
class _Access:
    email: str
    client_id: str
    scope: str
    expires_at: float
    refresh_token: str | None = None
    revoked: bool = False


@dataclass(repr=False)
class OAuthServer:
    """The server; :meth:`start` binds ``127.0.0.1:port`` (0 = any free port)."""

    port: int = 0
    host: str = "127.0.0.1"
    #: seconds an access token lives
    access_token_ttl: int = 3600
    #: hand out a new refresh token on every refresh (the old one becomes invalid)
    rotate_refresh_tokens: bool = True
    #: who approves the consent screen; None = the ``login_hint`` of the request
    consent_user: str | None = None
    #: make the authorization endpoint answer ``error=access_denied``
    deny: bool = False
    requests: list[tuple[str, str]] = field(default_factory=list)
    clients: dict[str, str] = field(default_factory=dict)
    service_accounts: dict[str, Any] = field(default_factory=dict)
    _codes: dict[str, _Code] = field(default_factory=dict)
    _refresh: dict[str, _Grant] = field(default_factory=dict)
    _access: dict[str, _Access] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _httpd: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def endpoints(self) -> dict[str, str]:
        """``auth_url``, ``token_url``, ``tokeninfo_url``, ``revoke_url`` of this server."""
        return {"auth_url": f"{self.url}/auth", "token_url": f"{self.url}/token",
                "tokeninfo_url": f"{self.url}/tokeninfo", "revoke_url": f"{self.url}/revoke"}

    def start(self) -> OAuthServer:
        handler = type("Handler", (_Handler,), {"oauth": self})
        self._httpd = ThreadingHTTPServer((self.host, self.port), handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="oauth-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()

    def __enter__(self) -> OAuthServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ test controls

    def reset(self) -> None:
        """Forget all codes, tokens, clients, service accounts and the request log; defaults back."""
        with self._lock:
            self._codes.clear()
            self._refresh.clear()
            self._access.clear()
            self.clients.clear()
            self.service_accounts.clear()
            self.requests.clear()
        self.access_token_ttl, self.rotate_refresh_tokens = 3600, True
        self.consent_user, self.deny = None, False

    def add_client(self, client_id: str | None = None, client_secret: str | None = None) -> tuple[str, str]:
        """Register an OAuth client; returns ``(client_id, client_secret)``."""
        client_id = client_id or f"{secrets.token_hex(6)}.apps.test"
        client_secret = client_secret or secrets.token_urlsafe(18)
        with self._lock:
            self.clients[client_id] = client_secret
        return client_id, client_secret

    def add_service_account(self, client_email: str, public_key_pem: bytes) -> None:
        """Accept JWT bearer assertions signed by this key with ``iss=client_email``."""
        with self._lock:
            self.service_accounts[client_email] = serialization.load_pem_public_key(public_key_pem)

    def make_service_account_key(self, path: Path, client_email: str = "helpdesk@project.iam.test") -> Path:
        """Write a Google-style service account key file (JSON) and register its public key."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
        self.add_service_account(client_email, public)
        path.write_text(json.dumps({
            "type": "service_account", "project_id": "project", "private_key_id": secrets.token_hex(20),
            "private_key": pem, "client_email": client_email, "client_id": str(secrets.randbelow(10**20)),
            "token_uri": f"{self.url}/token"}))
        path.chmod(0o600)
        return path

    def expire_access_tokens(self) -> int:
        """Make every access token expired now; returns how many."""
        with self._lock:
            for token in self._access.values():
                token.expires_at = min(token.expires_at, time.time() - 1)
            return len(self._access)

    def revoke(self, token: str) -> bool:
        """Revoke a refresh token (with its access tokens) or an access token (as Google's /revoke)."""
        with self._lock:
            grant = self._refresh.get(token)
            if grant is not None:
                grant.revoked = True
                for access in self._access.values():
                    if access.refresh_token == token:
                        access.revoked = True
                return True
            access = self._access.get(token)
            if access is not None:
                access.revoked = True
                return True
            return False

    def revoke_user(self, email: str) -> int:
        """Revoke every refresh and access token of ``email`` (the user removed the app's access)."""
        with self._lock:
            tokens = [t for t, g in self._refresh.items() if g.email == email.lower()]
        for token in tokens:
            self.revoke(token)
        return len(tokens)

    def refresh_tokens_of(self, email: str) -> list[str]:
        """Valid (unrevoked) refresh tokens of ``email``, oldest first."""
        with self._lock:
            return [t for t, g in self._refresh.items() if g.email == email.lower() and not g.revoked]

    def token_owner(self, token: str) -> str | None:
        """The e-mail of a valid access token, else None (``SmtpSink.token_owner``)."""
        with self._lock:
            access = self._access.get(token)
            if access is None or access.revoked or access.expires_at <= time.time():
                return None
            return access.email

    def count(self, method: str, path: str) -> int:
        """How many requests ``method path`` (path without query) were served."""
        with self._lock:
            return sum(1 for m, p in self.requests if m == method and p == path)

    # ------------------------------------------------------------------ endpoint logic

    def _issue(self, email: str, client_id: str, scope: str, refresh_token: str | None) -> dict[str, Any]:
        token = "ya29.test-" + secrets.token_urlsafe(24)
        self._access[token] = _Access(email, client_id, scope, time.time() + self.access_token_ttl,
                                      refresh_token)
        return {"access_token": token, "expires_in": self.access_token_ttl, "scope": scope,
                "token_type": "Bearer"}

    def _new_refresh(self, email: str, client_id: str, scope: str) -> str:
        token = "1//test-" + secrets.token_urlsafe(32)
        self._refresh[token] = _Grant(email, client_id, scope)
        return token

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str]]:
        """GET /auth: returns (status, headers) -- a redirect or a 400."""
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") not in self.clients or not redirect_uri:
            return 400, {}
        params: dict[str, str] = {}
        if query.get("state"):
            params["state"] = query["state"]
        email = (self.consent_user or query.get("login_hint") or "").lower()
        if self.deny or not email:
            params["error"] = "access_denied"
        elif query.get("response_type") != "code":
            params["error"] = "unsupported_response_type"
        else:
            code = "4/test-" + secrets.token_urlsafe(24)
            with self._lock:
                self._codes[code] = _Code(email, query["client_id"], redirect_uri, query.get("scope", ""),
                                          query.get("code_challenge"),
                                          query.get("code_challenge_method", "plain"), time.time() + 600)
            params["code"] = code
        sep = "&" if "?" in redirect_uri else "?"
        return 302, {"Location": redirect_uri + sep + urlencode(params)}

    def token(self, form: dict[str, str], basic: tuple[str, str] | None) -> tuple[int, dict[str, Any]]:
        """POST /token: (status, JSON body)."""
        grant_type = form.get("grant_type", "")
        if grant_type == JWT_BEARER:
            return self._jwt_grant(form)
        client_id, client_secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
        if self.clients.get(client_id) is None or self.clients[client_id] != client_secret:
            return 401, {"error": "invalid_client", "error_description": "The OAuth client was not found."}
        with self._lock:
            if grant_type == "authorization_code":
                return self._code_grant(form, client_id)
            if grant_type == "refresh_token":
                return self._refresh_grant(form, client_id)
        return 400, {"error": "unsupported_grant_type", "error_description": grant_type}

    def _code_grant(self, form: dict[str, str], client_id: str) -> tuple[int, dict[str, Any]]:
        code = self._codes.get(form.get("code", ""))
        if code is None or code.used or code.expires_at < time.time() or code.client_id != client_id:
            return 400, {"error": "invalid_grant", "error_description": "Malformed auth code."}
        code.used = True
        if form.get("redirect_uri") != code.redirect_uri:
            return 400, {"error": "redirect_uri_mismatch", "error_description": "Bad Request"}
        if code.challenge is not None:
            verifier = form.get("code_verifier", "")
            if code.method == "S256":
                digest = hashlib.sha256(verifier.encode()).digest()
                computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            else:
                computed = verifier
            if not verifier or computed != code.challenge:
                return 400, {"error": "invalid_grant", "error_description": "Invalid code verifier."}
        refresh = self._new_refresh(code.email, client_id, code.scope)
        return 200, {**self._issue(code.email, client_id, code.scope, refresh), "refresh_token": refresh}

    def _refresh_grant(self, form: dict[str, str], client_id: str) -> tuple[int, dict[str, Any]]:
        old = form.get("refresh_token", "")
        grant = self._refresh.get(old)
        if grant is None or grant.revoked or grant.client_id != client_id:
            return 400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
        refresh = old
        if self.rotate_refresh_tokens:
            grant.revoked = True
            refresh = self._new_refresh(grant.email, client_id, grant.scope)
        body = self._issue(grant.email, client_id, grant.scope, refresh)
        if refresh != old:
            body["refresh_token"] = refresh
        return 200, body

    def _jwt_grant(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        try:
            header_b64, payload_b64, sig_b64 = form.get("assertion", "").split(".")
            header = json.loads(_b64d(header_b64))
            claims = json.loads(_b64d(payload_b64))
            signature = _b64d(sig_b64)
        except (ValueError, binascii.Error):
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT."}
        key = self.service_accounts.get(claims.get("iss", ""))
        if header.get("alg") != "RS256" or key is None:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        try:
            key.verify(signature, f"{header_b64}.{payload_b64}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        now = time.time()
        if claims.get("aud") != f"{self.url}/token" or not claims.get("exp") or claims["exp"] < now \
                or claims.get("iat", now) > now + 60:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT: bad aud, iat or exp."}
        subject = str(claims.get("sub") or claims["iss"]).lower()
        with self._lock:
            return 200, self._issue(subject, claims["iss"], str(claims.get("scope", "")), None)

    def tokeninfo(self, token: str) -> tuple[int, dict[str, Any]]:
        """GET /tokeninfo: Google's shape; 400 invalid_token for unknown, expired or revoked."""
        with self._lock:
            access = self._access.get(token)
            if access is None or access.revoked or access.expires_at <= time.time():
                return 400, {"error": "invalid_token", "error_description": "Invalid Value"}
            left = int(access.expires_at - time.time())
            return 200, {"email": access.email, "email_verified": "true", "scope": access.scope,
                         "expires_in": str(left), "exp": str(int(access.expires_at)),
                         "aud": access.client_id, "azp": access.client_id}


def _b64d(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    oauth: OAuthServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def _send(self, status: int, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _query(self) -> tuple[str, dict[str, str]]:
        parts = urlsplit(self.path)
        with self.oauth._lock:
            self.oauth.requests.append((self.command, parts.path))
        return parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        return {k: v[-1] for k, v in parse_qs(body).items()}

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        path, query = self._query()
        if path == "/auth":
            status, headers = self.oauth.authorize(query)
            self._send(status, None if status == 302 else {"error": "invalid_request"}, headers)
        elif path == "/tokeninfo":
            self._send(*self.oauth.tokeninfo(query.get("access_token", "")))
        else:
            self._send(404, {"error": "not_found"})

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        path, query = self._query()
        form = {**query, **self._form()}
        if path == "/token":
            self._send(*self.oauth.token(form, self._basic()))
        elif path == "/revoke":
            ok = self.oauth.revoke(form.get("token", ""))
            self._send(200 if ok else 400, {} if ok else {"error": "invalid_token"})
        elif path == "/tokeninfo":
            self._send(*self.oauth.tokeninfo(form.get("access_token", "")))
        else:
            self._send(404, {"error": "not_found"})

    def _basic(self) -> tuple[str, str] | None:
        value = self.headers.get("Authorization", "")
        if not value.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(value[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        from urllib.parse import unquote

        return unquote(user), unquote(password)
