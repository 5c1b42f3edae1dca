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

The same server is the **Microsoft identity platform and Graph** stand-in (paths as Microsoft's,
any tenant segment; MSAL needs HTTPS: :meth:`start_tls` adds a TLS listener, :attr:`https_url`):

* ``GET /{tenant}/v2.0/.well-known/openid-configuration`` and ``GET /{tenant}/discovery/v2.0/keys``
  (JWKS with the test signing key); ``GET /{tenant}/oauth2/v2.0/authorize`` as ``/auth`` (the
  ``nonce`` is echoed into the id token); ``POST /{tenant}/oauth2/v2.0/token`` as ``/token`` plus an
  RS256 ``id_token`` (``preferred_username``, ``oid``, ``tid``), ``client_info`` and the
  ``client_credentials`` grant (app-only, for clients of :meth:`add_app`); errors carry
  ``error_codes`` (``AADSTS7000222`` for :attr:`expired_secrets`).
* ``POST /v1.0/users/{address}/sendMail`` (Graph, base64 MIME body) with a token of Graph's audience
  (scopes ``https://graph.microsoft.com/...``); accepted mails are in :attr:`graph_sent`.
  ``tokeninfo`` refuses such Graph-audience tokens (as Exchange refuses a token of the wrong audience).

App-only tokens log into the mailboxes :meth:`grant_mailbox` gave their client FullAccess to; as
Dovecot's ``tokeninfo`` request carries only the token, it answers the address granted last.

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
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

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
    nonce: str | None = None


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
    #: Microsoft: client id -> mailboxes its service principal has FullAccess to (app-only)
    apps: dict[str, list[str]] = field(default_factory=dict)
    #: Microsoft: client ids whose secret has expired (token endpoint answers AADSTS7000222)
    expired_secrets: set[str] = field(default_factory=set)
    #: Graph sendMail: ``(sender address, raw MIME)`` of every accepted mail
    graph_sent: list[tuple[str, bytes]] = field(default_factory=list)
    _signing_key: Any = field(default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _tls: ThreadingHTTPServer | None = None
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

    def start_tls(self, cert_file: str | Path, key_file: str | Path) -> OAuthServer:
        """Also serve HTTPS on another free port (MSAL accepts only ``https`` authorities); once."""
        if self._tls is not None:
            return self
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert_file), str(key_file))
        self._tls = ThreadingHTTPServer((self.host, 0), type("Handler", (_Handler,), {"oauth": self}))
        self._tls.daemon_threads = True
        self._tls.socket = context.wrap_socket(self._tls.socket, server_side=True)
        threading.Thread(target=self._tls.serve_forever, name="oauth-tls", daemon=True).start()
        return self

    @property
    def https_url(self) -> str:
        """``https://127.0.0.1:PORT`` of the TLS listener (after :meth:`start_tls`)."""
        assert self._tls is not None, "call start_tls() first"
        return f"https://{self.host}:{self._tls.server_address[1]}"

    def stop(self) -> None:
        for httpd in (self._httpd, self._tls):
            if httpd is not None:
                httpd.shutdown()
                httpd.server_close()
        self._httpd = self._tls = None

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
            self.apps.clear()
            self.expired_secrets.clear()
            self.graph_sent.clear()
        self.access_token_ttl, self.rotate_refresh_tokens = 3600, True
        self.consent_user, self.deny = None, False

    def add_client(self, client_id: str | None = None, client_secret: str | None = None) -> tuple[str, str]:
        """Register an OAuth client; returns ``(client_id, client_secret)``."""
        client_id = client_id or f"{secrets.token_hex(6)}.apps.test"
        client_secret = client_secret or secrets.token_urlsafe(18)
        with self._lock:
            self.clients[client_id] = client_secret
        return client_id, client_secret

    def add_app(self, client_id: str | None = None, client_secret: str | None = None) -> tuple[str, str]:
        """Register a Microsoft app that may use the client-credentials grant (app-only)."""
        client_id, client_secret = self.add_client(client_id, client_secret)
        with self._lock:
            self.apps.setdefault(client_id, [])
        return client_id, client_secret

    def grant_mailbox(self, client_id: str, email: str) -> None:
        """``Add-MailboxPermission -User <service principal> -AccessRights FullAccess`` for ``email``."""
        with self._lock:
            self.apps.setdefault(client_id, []).append(email.lower())

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
        status, body = self.tokeninfo(token)
        return str(body["email"]) if status == 200 else None

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
                                          query.get("code_challenge_method", "plain"), time.time() + 600,
                                          nonce=query.get("nonce"))
            params["code"] = code
        sep = "&" if "?" in redirect_uri else "?"
        return 302, {"Location": redirect_uri + sep + urlencode(params)}

    def token(self, form: dict[str, str], basic: tuple[str, str] | None) -> tuple[int, dict[str, Any]]:
        """POST /token: (status, JSON body)."""
        grant_type = form.get("grant_type", "")
        if grant_type == JWT_BEARER:
            return self._jwt_grant(form)
        client_id, client_secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
        if client_id in self.expired_secrets:
            return 401, {"error": "invalid_client", "error_codes": [7000222], "error_description":
                         f"AADSTS7000222: The provided client secret keys for app '{client_id}' are expired."}
        if self.clients.get(client_id) is None or self.clients[client_id] != client_secret:
            return 401, {"error": "invalid_client", "error_description": "The OAuth client was not found."}
        with self._lock:
            if grant_type == "client_credentials" and client_id in self.apps:
                return 200, self._issue("", client_id, form.get("scope", ""), None)
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
        body = {**self._issue(code.email, client_id, code.scope, refresh), "refresh_token": refresh}
        return 200, self._id_token(body, code.email, client_id, code.nonce)

    def _refresh_grant(self, form: dict[str, str], client_id: str) -> tuple[int, dict[str, Any]]:
        old = form.get("refresh_token", "")
        grant = self._refresh.get(old)
        if grant is None or grant.revoked or grant.client_id != client_id:
            return 400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
        refresh = old
        if self.rotate_refresh_tokens:
            grant.revoked = True
            refresh = self._new_refresh(grant.email, client_id, grant.scope)
        body = self._id_token(self._issue(grant.email, client_id, form.get("scope") or grant.scope, refresh),
                              grant.email, client_id, None)
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

    # ------------------------------------------------------------------ Microsoft identity platform

    def _id_token(self, body: dict[str, Any], email: str, client_id: str, nonce: str | None) -> dict[str, Any]:
        """Add an RS256 id token and MSAL's ``client_info`` to a token response of ``email``."""
        oid = hashlib.sha256(email.encode()).hexdigest()[:32]
        now = int(time.time())
        claims = {"iss": f"{self.url}/tenant/v2.0", "aud": client_id, "iat": now, "nbf": now,
                  "exp": now + 3600, "sub": oid, "oid": oid, "tid": "tenant", "preferred_username": email,
                  "name": email.split("@")[0], **({"nonce": nonce} if nonce else {})}
        header = _b64e(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "test"}).encode())
        payload = _b64e(json.dumps(claims).encode())
        signature = self._signing_key.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
        body["id_token"] = f"{header}.{payload}.{_b64e(signature)}"
        body["client_info"] = _b64e(json.dumps({"uid": oid, "utid": "tenant"}).encode())
        return body

    def openid_configuration(self, base: str, tenant: str) -> dict[str, Any]:
        root = f"{base}/{tenant}"
        return {"issuer": f"{root}/v2.0", "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                "token_endpoint": f"{root}/oauth2/v2.0/token", "jwks_uri": f"{root}/discovery/v2.0/keys",
                "response_types_supported": ["code"], "id_token_signing_alg_values_supported": ["RS256"]}

    def jwks(self) -> dict[str, Any]:
        numbers = self._signing_key.public_key().public_numbers()
        return {"keys": [{"kty": "RSA", "use": "sig", "kid": "test", "alg": "RS256",
                          "n": _b64e(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
                          "e": _b64e(numbers.e.to_bytes(3, "big"))}]}

    def send_mail(self, user: str, bearer: str, body: bytes) -> tuple[int, dict[str, Any] | None]:
        """Graph ``POST /v1.0/users/{user}/sendMail`` with a base64 MIME body: 202 or a Graph error."""
        with self._lock:
            access = self._access.get(bearer)
            if access is None or access.revoked or access.expires_at <= time.time():
                return 401, {"error": {"code": "InvalidAuthenticationToken", "message": "Access token is invalid."}}
            if not _for_graph(access.scope):
                return 401, {"error": {"code": "InvalidAuthenticationToken", "message": "Invalid audience."}}
            allowed = self.apps.get(access.client_id, []) if access.email == "" else [access.email]
            if user.lower() not in allowed:
                return 403, {"error": {"code": "ErrorAccessDenied", "message": "Access is denied."}}
            try:
                raw = base64.b64decode(body, validate=True)
            except (binascii.Error, ValueError):
                return 400, {"error": {"code": "ErrorMimeContentInvalidBase64String", "message": "Invalid base64."}}
            self.graph_sent.append((user.lower(), raw))
        return 202, None

    def tokeninfo(self, token: str) -> tuple[int, dict[str, Any]]:
        """GET /tokeninfo: Google's shape; 400 invalid_token for unknown, expired or revoked."""
        with self._lock:
            access = self._access.get(token)
            if access is None or access.revoked or access.expires_at <= time.time() or _for_graph(access.scope):
                return 400, {"error": "invalid_token", "error_description": "Invalid Value"}
            if access.email == "":  # app-only: the mailbox its principal was granted (last)
                granted = self.apps.get(access.client_id) or []
                if not granted:
                    return 400, {"error": "invalid_token", "error_description": "No mailbox permission"}
                return 200, {"email": granted[-1], "scope": access.scope, "aud": access.client_id}
            left = int(access.expires_at - time.time())
            return 200, {"email": access.email, "email_verified": "true", "scope": access.scope,
                         "expires_in": str(left), "exp": str(int(access.expires_at)),
                         "aud": access.client_id, "azp": access.client_id}


def _for_graph(scope: str) -> bool:
    """Whether a token of these scopes has Graph's audience (all its resource scopes are Graph's)."""
    resources = [s for s in scope.split() if "://" in s]
    return bool(resources) and all(s.startswith("https://graph.microsoft.com/") for s in resources)


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


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
        base = ("https://" if self.server is self.oauth._tls else "http://") + str(self.headers.get("Host"))
        tenant, _, rest = path.lstrip("/").partition("/")
        if rest == "v2.0/.well-known/openid-configuration":
            self._send(200, self.oauth.openid_configuration(base, tenant))
        elif rest == "discovery/v2.0/keys":
            self._send(200, self.oauth.jwks())
        elif path == "/auth" or rest == "oauth2/v2.0/authorize":
            status, headers = self.oauth.authorize(query)
            self._send(status, None if status == 302 else {"error": "invalid_request"}, headers)
        elif path == "/tokeninfo":
            self._send(*self.oauth.tokeninfo(query.get("access_token", "")))
        else:
            self._send(404, {"error": "not_found"})

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        path, query = self._query()
        if path.startswith("/v1.0/users/") and path.endswith("/sendMail"):
            length = int(self.headers.get("Content-Length") or 0)
            bearer = self.headers.get("Authorization", "")[7:]
            self._send(*self.oauth.send_mail(unquote(path.split("/")[3]), bearer, self.rfile.read(length)))
            return
        form = {**query, **self._form()}
        if path == "/token" or path.endswith("/oauth2/v2.0/token"):
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
        return unquote(user), unquote(password)
