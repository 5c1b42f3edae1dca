"""Sign-in and sign-out."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from helpdesk_core.services.auth import SignInFailed, authenticate
from helpdesk_core.web.pages import Page, page, redirect


@page(login=False)
def login(p: Page) -> Response:
    nxt = p.request.query_params.get("next", "/")
    if not nxt.startswith("/") or nxt.startswith("//"):
        nxt = "/"
    if p.request.method == "GET":
        return p.render("login.html", next=nxt, email="", error=None)
    email, password = p.field("email").strip(), p.field("password")
    address = p.request.client.host if p.request.client else "?"
    throttle = p.request.app.state.login_throttle
    if throttle.blocked(email, address):
        return p.render("login.html", status_code=429, next=nxt, email=email,
                        error="Too many failed sign-ins: wait 15 minutes, or ask an admin to reset your password.")
    try:
        user = authenticate(p.session, email=email, password=password)
    except SignInFailed as exc:
        throttle.failed(email, address)
        return p.render("login.html", status_code=401, next=nxt, email=email, error=str(exc))
    throttle.succeeded(email)
    p.request.session.clear()  # a new session (and CSRF token) on sign-in
    p.request.session["user_id"] = user.id
    return redirect(nxt)


@page(login=False)
def logout(p: Page) -> Response:
    p.request.session.clear()
    return redirect("/login")


routes = [Route("/login", login, methods=["GET", "POST"]), Route("/logout", logout, methods=["POST"])]
