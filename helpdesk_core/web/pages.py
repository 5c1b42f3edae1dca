"""What every page shares: templates, the signed-in user, the request's database session.

An endpoint is a plain ``def`` run in Starlette's thread pool, wrapped by :func:`page`: the wrapper
reads the form (checking the CSRF token of every unsafe request), opens the request's session,
loads the signed-in user, calls the endpoint with a :class:`Page`, commits when it returns and
rolls back when it raises. A :class:`~helpdesk_core.errors.NotFoundError` becomes a 404 that
says nothing about whether the thing exists; :class:`~helpdesk_core.errors.PermissionDenied` a 403.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from helpdesk_core.app import Helpdesk
from helpdesk_core.errors import NotFoundError, PermissionDenied
from helpdesk_core.services.auth import user_by_id
from helpdesk_core.services.permissions import admin_department_ids, is_global_admin, staff_department_ids
from helpdesk_core.web.security import check_csrf, csrf_token

HERE = Path(__file__).parent
templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                        autoescape=select_autoescape(default=True, default_for_string=True))


@dataclass
class Page:
    """One request as an endpoint sees it."""

    request: Request
    helpdesk: Helpdesk
    session: Session
    user: Any  # helpdesk_core.models.User | None
    form: FormData | None = None
    #: run after the request's transaction committed (e.g. send a reply through the outbox)
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    def render(self, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        user = self.user
        html = templates.get_template(template).render(
            user=user, csrf=csrf_token(self.request), request=self.request,
            is_admin=user is not None and admin_department_ids(user) != set(),
            is_global_admin=user is not None and is_global_admin(user),
            is_staff=user is not None and staff_department_ids(user) != set(), **values)
        return HTMLResponse(html, status_code=status_code)

    def field(self, name: str, default: str = "") -> str:
        value = self.form.get(name) if self.form is not None else None
        return value if isinstance(value, str) else default


Endpoint = Callable[[Page], Response]


def page(*, login: bool = True) -> Callable[[Endpoint], Callable[[Request], Any]]:
    """Turn a plain ``def endpoint(page) -> Response`` into a Starlette endpoint (see module doc)."""

    def wrap(endpoint: Endpoint) -> Callable[[Request], Any]:
        @functools.wraps(endpoint)
        async def asgi_endpoint(request: Request) -> Response:
            refused = await check_csrf(request)
            if refused is not None:
                return refused
            form = await request.form(max_part_size=64 * 1024 * 1024) if request.method == "POST" else None
            try:
                return await run_in_threadpool(_run, endpoint, request, form, login)
            finally:
                if form is not None:
                    await form.close()

        return asgi_endpoint

    return wrap


def _run(endpoint: Endpoint, request: Request, form: FormData | None, login: bool) -> Response:
    helpdesk: Helpdesk = request.app.state.helpdesk
    with helpdesk.session() as session:
        user_id = request.session.get("user_id")
        user = user_by_id(session, user_id) if isinstance(user_id, int) else None
        if login and user is None:
            request.session.pop("user_id", None)
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        p = Page(request=request, helpdesk=helpdesk, session=session, user=user, form=form)
        try:
            response = endpoint(p)
        except NotFoundError:
            session.rollback()
            return p.render("error.html", status_code=404, message="Not found.")
        except PermissionDenied as exc:
            session.rollback()
            return p.render("error.html", status_code=403, message=str(exc))
        except BaseException:
            session.rollback()
            raise
        session.commit()
    for task in p.after_commit:
        task()
    return response


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)
