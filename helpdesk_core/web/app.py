"""Build the web app: :func:`create_app` (``helpdesk web`` serves it with uvicorn)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from helpdesk_core.app import Helpdesk
from helpdesk_core.web import routes_admin, routes_auth, routes_desk, routes_settings
from helpdesk_core.web.pages import HERE
from helpdesk_core.web.security import LoginThrottle, SecurityHeaders


def healthz(request: Request) -> Response:
    """200 ``ok`` when the database answers, 503 otherwise."""
    helpdesk: Helpdesk = request.app.state.helpdesk
    try:
        with helpdesk.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any database failure is "not healthy"
        return PlainTextResponse("database unreachable", status_code=503)
    return PlainTextResponse("ok")


def create_app(helpdesk: Helpdesk, *, https: bool = False,
               login_throttle: LoginThrottle | None = None, public_url: str | None = None,
               link_throttle: LoginThrottle | None = None) -> Starlette:
    """The ASGI app over ``helpdesk``: the core's pages plus those plugins add through
    ``helpdesk_register_routes``. ``https=True`` marks the session cookie Secure. ``public_url``
    is the address users reach the app at, used in mailed links (default: the address each
    request came to, i.e. its Host header). ``link_throttle`` limits requests for mailed links
    (password reset, sign-in link): 3 per address and 10 per client in 15 minutes by default."""
    routes: list[BaseRoute] = [Route("/healthz", healthz), *routes_auth.routes, *routes_settings.routes,
                               *routes_desk.routes, *routes_admin.routes]

    def register(path: str, endpoint: Callable[..., Any], *, methods: Sequence[str] = ("GET",),
                 name: str | None = None) -> None:
        if any(isinstance(r, Route) and r.path == path for r in routes):
            raise ValueError(f"The web route {path!r} exists already: choose another path.")
        routes.append(Route(path, endpoint, methods=list(methods), name=name))

    helpdesk.hooks.register_routes(register=register)
    routes.append(Mount("/static", StaticFiles(directory=HERE / "static"), name="static"))
    session_key = hashlib.sha256(b"helpdesk-web-session:" + helpdesk.secrets.sign("web-session", 32).encode())
    app = Starlette(routes=routes, middleware=[
        Middleware(SecurityHeaders),
        Middleware(SessionMiddleware, secret_key=session_key.hexdigest(), session_cookie="helpdesk_session",
                   same_site="lax", https_only=https, max_age=14 * 24 * 3600),
    ])
    app.state.helpdesk = helpdesk
    app.state.login_throttle = login_throttle or LoginThrottle()
    app.state.link_throttle = link_throttle or LoginThrottle(per_account=3, per_address=10)
    app.state.public_url = public_url.rstrip("/") if public_url else None
    return app
