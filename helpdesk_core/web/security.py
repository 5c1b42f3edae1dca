"""Headers on every response, CSRF tokens on every unsafe request, and the failed-login throttle."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import defaultdict, deque

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: the policy of every page: nothing from another host, no inline script
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")
#: the policy of a mail body shown in ``<iframe sandbox srcdoc>``: no script, no remote load
MAIL_CSP = "default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'"
#: a mail body whose reader chose "load remote images": https images too, still nothing else
MAIL_CSP_REMOTE_IMAGES = "default-src 'none'; img-src https: data: cid:; style-src 'unsafe-inline'; form-action 'none'"
#: the page around such a body (a srcdoc frame is also bound by its page's policy)
CSP_REMOTE_IMAGES = CSP.replace("img-src 'self' data:", "img-src 'self' data: https:")

SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` to every response; a response that set its
    own Content-Security-Policy (a download's ``default-src 'none'; sandbox``, a ticket page with
    remote images allowed) keeps it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.decode().lower() not in SECURITY_HEADERS or k.lower() == b"content-security-policy"]
                own = {k.decode().lower() for k, _v in headers}
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items() if k not in own]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use); every form carries it as ``csrf``."""
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


async def check_csrf(request: Request) -> Response | None:
    """None when the request is safe or carries the session's token, else a 403 response."""
    if request.method in SAFE_METHODS:
        return None
    expected = request.session.get("csrf", "")
    given = request.headers.get("x-csrf-token", "")
    if not given:
        form = await request.form()
        given = str(form.get("csrf", ""))
    if not expected or not hmac.compare_digest(expected, given):
        return PlainTextResponse("The form has expired: reload the page and try again.", status_code=403)
    return None


class LoginThrottle:
    """Failed sign-ins counted per account and per client address in a sliding window.

    In-process memory: one web process (``helpdesk web``) sees every attempt; several processes
    behind a balancer each count their own share.
    """

    def __init__(self, *, per_account: int = 5, per_address: int = 20, window_seconds: float = 900) -> None:
        self.per_account, self.per_address, self.window = per_account, per_address, window_seconds
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures[key]
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def blocked(self, account: str, address: str) -> bool:
        now = time.monotonic()
        with self._lock:
            return (len(self._recent("a:" + account.lower(), now)) >= self.per_account
                    or len(self._recent("ip:" + address, now)) >= self.per_address)

    def failed(self, account: str, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent("a:" + account.lower(), now).append(now)
            self._recent("ip:" + address, now).append(now)

    def succeeded(self, account: str) -> None:
        with self._lock:
            self._failures.pop("a:" + account.lower(), None)
