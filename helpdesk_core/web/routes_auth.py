"""Sign-in and sign-out; the self-service password reset, the sign-in link for requesters without
a password, and the page an invitation links to (:mod:`helpdesk_core.services.account_links`).

Asking for a reset or a sign-in link gets the same answer whether or not the address has an
account, and the mail is delivered after the answer went out (a background task), so neither the
page nor its timing tells. Requests are throttled per address and per client like failed
sign-ins. A mailed link only shows a form on GET (mail scanners open links); it is used by the
POST of that form, once.
"""

from __future__ import annotations

from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.routing import Route

from helpdesk_core.errors import ConfigurationError
from helpdesk_core.services import account_links
from helpdesk_core.services.account_links import LinkInvalid, TokenPurpose
from helpdesk_core.services.auth import MIN_PASSWORD_LENGTH, SignInFailed, authenticate
from helpdesk_core.services.permissions import ANONYMOUS
from helpdesk_core.web.pages import Page, page, redirect

#: what a link request answers, whatever the address
LINK_SENT = {
    "reset": "If {email} has an account, a mail with a link to choose a new password is on its way. "
             "The link works once, within 1 hour.",
    "sign_in": "If {email} may sign in by link (a requester without a password), a mail with a sign-in link "
               "is on its way. The link works once, within 30 minutes. Have a password? Sign in with it, or "
               "reset it.",
}


def _sign_in(p: Page, user_id: int) -> None:
    p.request.session.clear()  # a new session (and CSRF token) on sign-in
    p.request.session["user_id"] = user_id


def _address(p: Page) -> str:
    return p.request.client.host if p.request.client else "?"


def base_url(p: Page) -> str:
    """The web app's address in mailed links: ``create_app(public_url=)`` (``helpdesk web
    --public-url``), else the address this request came to."""
    return p.request.app.state.public_url or str(p.request.base_url)


@page(login=False)
def login(p: Page) -> Response:
    nxt = p.request.query_params.get("next", "/")
    if not nxt.startswith("/") or nxt.startswith("//"):
        nxt = "/"
    if p.request.method == "GET":
        return p.render("login.html", next=nxt, email="", error=None)
    email, password = p.field("email").strip(), p.field("password")
    address = _address(p)
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
    _sign_in(p, user.id)
    return redirect(nxt)


@page(login=False)
def logout(p: Page) -> Response:
    p.request.session.clear()
    return redirect("/login")


def _request_link(p: Page, what: str) -> Response:
    """The form asking for a reset or sign-in link, and its one answer."""
    template = "password_reset.html" if what == "reset" else "login.html"
    if p.request.method == "GET":
        return p.render(template, email="", error=None, notice=None, next="/")
    email = p.field("email").strip()
    throttle = p.request.app.state.link_throttle
    address = _address(p)
    if throttle.blocked(email, address):
        return p.render(template, status_code=429, email=email, notice=None, next="/",
                        error="Too many requests for mailed links: wait 15 minutes and try again.")
    throttle.failed(email, address)  # every request counts
    ask = account_links.request_password_reset if what == "reset" else account_links.request_sign_in_link
    outbox_id = ask(p.helpdesk, p.session, actor=ANONYMOUS, email=email, base_url=base_url(p)) if "@" in email \
        else None
    response = p.render(template, email=email if what == "sign_in" else "", error=None, next="/",
                        notice=LINK_SENT[what].format(email=email or "that address"))
    if outbox_id is not None:
        helpdesk = p.helpdesk
        response.background = BackgroundTask(account_links.deliver_link_mail, helpdesk, outbox_id=outbox_id)
    return response


@page(login=False)
def password_reset_request(p: Page) -> Response:
    return _request_link(p, "reset")


@page(login=False)
def sign_in_link_request(p: Page) -> Response:
    return _request_link(p, "sign_in")


def _set_password_page(p: Page, purpose: TokenPurpose) -> Response:
    """GET: the new-password form of a reset or invitation link that still works; POST: set the
    password (the link is used), sign in, and go to the desk."""
    token = p.request.path_params["token"]
    title = "Choose your password" if purpose == TokenPurpose.INVITE else "Choose a new password"
    try:
        user = account_links.check_link(p.session, token=token, purposes=(purpose,))
    except LinkInvalid as exc:
        return p.render("link_invalid.html", status_code=410 if exc.kind != "link_invalid" else 404,
                        message=str(exc))
    if p.request.method == "GET":
        return p.render("set_password.html", title=title, email=user.email, error=None,
                        min_length=MIN_PASSWORD_LENGTH)
    password = p.field("password")
    if password != p.field("password_again"):
        return p.render("set_password.html", status_code=400, title=title, email=user.email,
                        min_length=MIN_PASSWORD_LENGTH, error="The two passwords differ: type the same twice.")
    try:
        user = account_links.set_password_with_link(p.session, token=token, password=password, purposes=(purpose,))
    except LinkInvalid as exc:
        p.session.rollback()
        return p.render("link_invalid.html", status_code=410, message=str(exc))
    except ConfigurationError as exc:
        p.session.rollback()
        return p.render("set_password.html", status_code=400, title=title, email=user.email,
                        min_length=MIN_PASSWORD_LENGTH, error=str(exc))
    _sign_in(p, user.id)
    return redirect("/")


@page(login=False)
def password_reset(p: Page) -> Response:
    return _set_password_page(p, TokenPurpose.RESET)


@page(login=False)
def invitation(p: Page) -> Response:
    return _set_password_page(p, TokenPurpose.INVITE)


@page(login=False)
def sign_in_link(p: Page) -> Response:
    """GET: a "Sign in" button for a sign-in link that still works; POST: use it and sign in."""
    token = p.request.path_params["token"]
    try:
        if p.request.method == "GET":
            user = account_links.check_link(p.session, token=token, purposes=(TokenPurpose.SIGN_IN,))
            return p.render("sign_in_link.html", email=user.email)
        user = account_links.sign_in_with_link(p.session, token=token)
    except LinkInvalid as exc:
        p.session.rollback()
        return p.render("link_invalid.html", status_code=410 if exc.kind != "link_invalid" else 404,
                        message=str(exc))
    _sign_in(p, user.id)
    return redirect("/")


routes = [
    Route("/login", login, methods=["GET", "POST"]), Route("/logout", logout, methods=["POST"]),
    Route("/login/link", sign_in_link_request, methods=["GET", "POST"]),
    Route("/login/link/{token}", sign_in_link, methods=["GET", "POST"]),
    Route("/password-reset", password_reset_request, methods=["GET", "POST"]),
    Route("/password-reset/{token}", password_reset, methods=["GET", "POST"]),
    Route("/invite/{token}", invitation, methods=["GET", "POST"]),
]
