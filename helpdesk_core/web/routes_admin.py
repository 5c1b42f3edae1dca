"""Admin lists: the import log, failed and held mail, the outbox (with "retry"), users and roles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from helpdesk_core.services import failed, held, outbox, users
from helpdesk_core.services.permissions import require_manage_settings
from helpdesk_core.web.pages import Page, page, redirect

#: view name → (title, lister)
VIEWS: dict[str, tuple[str, Callable[[Page], list[dict[str, Any]]]]] = {
    "log": ("Import log", lambda p: held.import_log(p.session, actor=p.user, limit=200)),
    "failed": ("Failed mail", lambda p: failed.list_failed(p.session, actor=p.user)),
    "held": ("Held mail", lambda p: held.list_held(p.session, actor=p.user)),
    "outbox": ("Outbox", lambda p: outbox.list_outbox(p.session, actor=p.user,
                                                      status=p.request.query_params.get("status") or None)),
    "users": ("Users and roles", lambda p: users.list_users(p.session, actor=p.user)),
}


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items() if v not in (None, "", [], {}))
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return "" if value is None else str(value)


@page()
def admin_list(p: Page) -> Response:
    require_manage_settings(p.user)
    view = p.request.path_params["view"]
    if view not in VIEWS:
        return p.render("error.html", status_code=404, message="Not found.")
    title, lister = VIEWS[view]
    rows = lister(p)
    columns = list(rows[0]) if rows else []
    return p.render("admin_list.html", title=title, view=view, views=VIEWS, columns=columns,
                    rows=[[_cell(r.get(c)) for c in columns] for r in rows], ids=[r.get("id") for r in rows])


@page()
def outbox_retry(p: Page) -> Response:
    outbox.retry(p.session, actor=p.user, outbox_id=int(p.request.path_params["outbox_id"]))
    return redirect("/admin/outbox")


routes = [
    Route("/admin/{view}", admin_list),
    Route("/admin/outbox/{outbox_id:int}/retry", outbox_retry, methods=["POST"]),
]
