"""The web admin's "Connect Google Workspace": the consent redirect and its callback.

``POST /plugins/google/connect/<department id>`` (the department page's button, with its CSRF
token) starts a consent (:func:`.service.start_consent`) and redirects the browser to Google's
consent screen; Google redirects back to ``GET /plugins/google/callback?state=…&code=…``, which
exchanges the code and saves the mailbox (:func:`.service.finish_consent`: the token must be the
department address's and log into IMAP, else nothing is saved), then shows the department page
with the connected account. Which department a callback belongs to is kept in the signed-in
user's session; the ``state`` must also match the consent started last for it.

The form may carry the mailbox overrides of :data:`.service.MAIL_OPTIONS` (``imap_host`` …),
as ``connect-google --imap-host`` does, for tests and proxies.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import RedirectResponse, Response

from helpdesk_core.errors import HelpdeskError, NotFoundError
from helpdesk_core.services.departments import list_departments
from helpdesk_core.web.pages import Page, page, redirect

from . import service as svc

CONNECT_PATH = "/plugins/google/connect/{dept_id:int}"
CALLBACK_PATH = "/plugins/google/callback"
#: the request session's key of the started consent
SESSION_KEY = "google_consent"


def _department(p: Page, dept_id: int) -> Any:
    for d in list_departments(p.session, actor=p.user):
        if d.id == dept_id:
            return d
    raise NotFoundError("No such department.")


def _failed(p: Page, dept_id: int, exc: HelpdeskError) -> Response:
    p.session.rollback()
    return p.render("error.html", status_code=400,
                    message=f"Google Workspace was not connected: {exc} (back to /settings/departments/{dept_id})")


@page()
def connect(p: Page) -> Response:
    """Start the consent for the department of the URL and send the browser to it."""
    dept = _department(p, int(p.request.path_params["dept_id"]))
    redirect_uri = str(p.request.base_url).rstrip("/") + CALLBACK_PATH
    mail = {k: p.field(k) for k in svc.MAIL_OPTIONS if p.field(k)}
    try:
        consent = svc.start_consent(p.helpdesk, p.session, actor=p.user, department=dept.name,
                                    redirect_uri=redirect_uri)
    except HelpdeskError as exc:
        return _failed(p, dept.id, exc)
    p.request.session[SESSION_KEY] = {"department_id": dept.id, "mail": mail}
    return RedirectResponse(consent.url, status_code=303)


@page()
def callback(p: Page) -> Response:
    """Google's redirect: exchange the code, verify and save; then the department page."""
    started = p.request.session.pop(SESSION_KEY, None)
    if not isinstance(started, dict):
        return p.render("error.html", status_code=400, message="No Google sign-in was started from this browser: "
                        "press Connect Google Workspace on the department page again.")
    dept = _department(p, int(started["department_id"]))
    query = p.request.query_params
    if query.get("error") or not query.get("code"):
        return p.render("error.html", status_code=400,
                        message=f"Google says access was not granted ({query.get('error') or 'no code'}): press "
                                "Connect Google Workspace again and approve access.")
    try:
        svc.finish_consent(p.helpdesk, p.session, actor=p.user, department=dept.name, code=query["code"],
                           state=query.get("state"), mail=started.get("mail") or {})
    except HelpdeskError as exc:
        return _failed(p, dept.id, exc)
    return redirect(f"/settings/departments/{dept.id}?provider=google")


def register_routes(register: Any) -> None:
    register(CONNECT_PATH, connect, methods=("POST",), name="google_connect")
    register(CALLBACK_PATH, callback, name="google_callback")
