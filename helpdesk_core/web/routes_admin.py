"""Admin lists: the import log, failed and held mail (filtered by department, status, date range
and text, in pages), the outbox (``/outbox``: filters, the server's answer, "retry now"), users and
roles (with invitations); a kept raw mail (failed or held) viewed as escaped text, downloaded,
retried/released or discarded after a confirmation page."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response
from starlette.routing import Route

from helpdesk_core.errors import ConfigurationError, ConflictError, HelpdeskError, NotFoundError, PermissionDenied
from helpdesk_core.services import account_links, administration, failed, held, outbox, users
from helpdesk_core.services.departments import list_departments
from helpdesk_core.services.permissions import admin_department_ids, require_manage_settings, staff_department_ids
from helpdesk_core.web.pages import Page, page, redirect
from helpdesk_core.web.routes_auth import base_url
from helpdesk_core.web.routes_desk import safe_download

#: a kept raw mail shown on its page up to this size (the download has all of it)
RAW_SHOWN = 512 * 1024

#: rows per page of a filtered list
PAGE_SIZE = 50
#: filtered view → the statuses its filter offers (the import log: outcomes)
STATUSES: dict[str, tuple[str, ...]] = {"log": held.LOG_OUTCOMES, "failed": failed.FAILED_STATUSES,
                                        "held": held.HELD_STATUSES[:2]}


def _filters(p: Page, view: str) -> dict[str, Any]:
    """The list filters of the query string as service keywords (one row more than a page, to
    know whether there is a next one); a value that is not valid raises ConfigurationError."""
    q = p.request.query_params
    out: dict[str, Any] = {"department": q.get("department") or None, "text": q.get("q") or None}
    status = q.get("status") or None
    if status is not None and status not in STATUSES[view]:
        raise ConfigurationError(f"Unknown status {status!r}: choose one of {', '.join(STATUSES[view])}.")
    out["outcome" if view == "log" else "status"] = status
    for key in ("since", "until"):
        try:
            out[key] = date.fromisoformat(q[key]) if q.get(key) else None
        except ValueError:
            raise ConfigurationError(f"{key}: write the date as YYYY-MM-DD (got {q[key]!r}).") from None
    out.update(limit=PAGE_SIZE + 1, offset=(_page_number(p) - 1) * PAGE_SIZE)
    return out


def _page_number(p: Page) -> int:
    number = p.request.query_params.get("page", "1")
    return max(int(number), 1) if number.isdigit() else 1


#: view name → (title, lister)
VIEWS: dict[str, tuple[str, Callable[[Page], list[dict[str, Any]]]]] = {
    "log": ("Import log", lambda p: held.import_log(p.session, actor=p.user, **_filters(p, "log"))),
    "failed": ("Failed mail", lambda p: failed.list_failed(p.session, actor=p.user, **_filters(p, "failed"))),
    "held": ("Held mail", lambda p: held.list_held(p.session, actor=p.user, **_filters(p, "held"))),
}


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items() if v not in (None, "", [], {}))
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return "" if value is None else str(value)


@page()
def admin_list(p: Page) -> Response:
    view = p.request.path_params["view"]
    if view not in STATUSES:  # the import log, failed and held mail: their staff (the services check)
        require_manage_settings(p.user)
    if view not in VIEWS:
        return p.render("error.html", status_code=404, message="Not found.")
    title, lister = VIEWS[view]
    error, status_code = None, 200
    try:
        rows = lister(p)
    except ConfigurationError as exc:
        rows, error, status_code = [], str(exc), 400
    paging: dict[str, Any] = {}
    if view in STATUSES:
        query = {k: v for k, v in p.request.query_params.items() if k != "page" and v}
        number = _page_number(p)
        more = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
        staff = staff_department_ids(p.user)
        paging = {"number": number, "query": query, "statuses": STATUSES[view],
                  "departments": [d.name for d in list_departments(p.session, actor=p.user)
                                  if staff is None or d.id in staff],
                  "prev": f"?{urlencode({**query, 'page': number - 1})}" if number > 1 else None,
                  "next": f"?{urlencode({**query, 'page': number + 1})}" if more else None}
    columns = list(rows[0]) if rows else []
    return p.render("admin_list.html", status_code=status_code, title=title, view=view, views=VIEWS,
                    columns=columns, rows=[[_cell(r.get(c)) for c in columns] for r in rows],
                    ids=[r.get("id") for r in rows], paging=paging, error=error)


#: the statuses the outbox page filters by
OUTBOX_STATUSES = ("queued", "sending", "sent", "failed")


@page()
def outbox_page(p: Page) -> Response:
    """Outgoing mail of the departments where the user has Manage Settings (``outbox.list_outbox``,
    as ``helpdesk outbox list``), newest first, by status and department, with the server's answer."""
    query = p.request.query_params
    status = query.get("status") if query.get("status") in OUTBOX_STATUSES else None
    department = query.get("department") or None
    rows = outbox.list_outbox(p.session, actor=p.user, status=status, department=department, limit=200)
    managed = admin_department_ids(p.user)
    departments = [d.name for d in list_departments(p.session, actor=p.user) if managed is None or d.id in managed]
    notice = None
    retried = query.get("retried", "")
    if retried.isdigit():
        row = next((r for r in rows if r["id"] == int(retried)), None)
        if row is not None:
            notice = f"Message {row['id']}: {row['status']}" + (
                f" ({row['last_error']})" if row["status"] != "sent" and row["last_error"] else ".")
    return p.render("outbox.html", rows=rows, statuses=OUTBOX_STATUSES, departments=departments,
                    status=status or "", department=department or "", notice=notice)


@page()
def outbox_retry(p: Page) -> Response:
    """"Retry now": queue the mail again (``outbox.retry``, as ``helpdesk outbox retry``) and, after
    the commit, flush its department (``outbox.flush``); the page then shows where it stands."""
    outbox_id = int(p.request.path_params["outbox_id"])
    row = outbox.retry(p.session, actor=p.user, outbox_id=outbox_id)
    helpdesk, actor, department_id = p.helpdesk, p.user, row.department_id
    p.after_commit.append(lambda: outbox.flush(helpdesk, actor=actor, department=department_id))
    return redirect(f"/outbox?retried={outbox_id}")


ROLES = ("requester", "agent", "admin")


def _users_page(p: Page, *, error: str | None = None, notice: str | None = None,
                status_code: int = 200) -> Response:
    """Users with their role per department (whom the actor may see: ``users.list_users``), and the
    role form with the departments where the actor has Manage Settings."""
    rows = users.list_users(p.session, actor=p.user)
    departments = list_departments(p.session, actor=p.user)
    names = {d.id: d.name for d in departments}
    managed = admin_department_ids(p.user)
    choices = [d.name for d in departments if managed is None or d.id in managed]
    return p.render("users.html", status_code=status_code, users=rows, names=names, departments=choices,
                    roles=ROLES, error=error, notice=notice, chosen={k: p.field(k) for k in ("email", "department",
                                                                                            "role", "name")})


@page()
def users_page(p: Page) -> Response:
    return _users_page(p)


@page()
def users_role(p: Page) -> Response:
    """Set a user's role in a department (``users.add_user``, as ``helpdesk user add --department``)
    or take them out of it (``administration.remove_membership``); a refusal shows the service's
    message and changes nothing."""
    email, department, role = p.field("email").strip(), p.field("department"), p.field("role")
    try:
        if not department:
            raise HelpdeskError("Choose a department.", kind="invalid")
        if role == "remove":
            n = administration.remove_membership(p.session, actor=p.user, email=email, department=department)
            notice = f"{email} removed from {department!r}" + (f"; {n} tickets unassigned." if n else ".")
        else:
            users.add_user(p.session, actor=p.user, email=email, role=role, department=department)
            notice = f"{email.lower()} is {role} of {department!r}."
    except HelpdeskError as exc:
        p.session.rollback()
        status = 403 if isinstance(exc, PermissionDenied) else 404 if isinstance(exc, NotFoundError) else 400
        return _users_page(p, error=str(exc), status_code=status)
    return _users_page(p, notice=notice)


@page()
def users_invite(p: Page) -> Response:
    """Invite a user: the role as the role form gives it (``account_links.invite_user``, with the
    rules of ``users.add_user``), and a mail with a link to choose a password (7 days, once),
    sent after the commit. Someone who has a password already only gets the role."""
    email, department, role, name = (p.field("email").strip(), p.field("department"), p.field("role"),
                                     p.field("name").strip())
    try:
        if not department:
            raise HelpdeskError("Choose a department.", kind="invalid")
        invitation = account_links.invite_user(p.helpdesk, p.session, actor=p.user, email=email, role=role,
                                               name=name, department=department, base_url=base_url(p))
    except HelpdeskError as exc:
        p.session.rollback()
        status = 403 if isinstance(exc, PermissionDenied) else 404 if isinstance(exc, NotFoundError) else 400
        return _users_page(p, error=str(exc), status_code=status)
    who = invitation.user.email
    if invitation.outbox_id is None:
        return _users_page(p, notice=f"{who} is {role} of {department!r}; they have a password already, so no "
                                     "invitation was mailed.")
    helpdesk, outbox_id = p.helpdesk, invitation.outbox_id
    p.after_commit.append(lambda: account_links.deliver_link_mail(helpdesk, outbox_id=outbox_id))
    return _users_page(p, notice=f"{who} is {role} of {department!r}; an invitation to choose a password is on "
                                 "its way (the link works once, within 7 days).")


#: kind → (get, act on it ("Retry"/"Release"), discard); every permission is the service's
KEPT: dict[str, dict[str, Any]] = {
    "failed": {"title": "Failed mail", "action": "retry", "label": "Retry import",
               "get": lambda p, i: failed.get_failed(p.session, actor=p.user, failed_id=i),
               "act": lambda p, i: failed.retry_failed(p.helpdesk, p.session, actor=p.user, failed_id=i),
               "discard": lambda p, i: failed.discard_failed(p.session, actor=p.user, failed_id=i)},
    "held": {"title": "Held mail", "action": "release", "label": "Release (import now)",
             "get": lambda p, i: held.get_held(p.session, actor=p.user, held_id=i),
             "act": lambda p, i: held.release_held(p.helpdesk, p.session, actor=p.user, held_id=i),
             "discard": lambda p, i: held.discard_held(p.session, actor=p.user, held_id=i)},
}


def _kept(p: Page) -> tuple[str, dict[str, Any], int, Any]:
    kind = p.request.path_params["kind"]
    if kind not in KEPT:
        raise NotFoundError("Not found.")
    kept_id = int(p.request.path_params["kept_id"])
    return kind, KEPT[kind], kept_id, KEPT[kind]["get"](p, kept_id)


def _kept_page(p: Page, kind: str, spec: dict[str, Any], row: Any, *, notice: str | None = None,
               error: str | None = None, status_code: int = 200) -> Response:
    text = row.raw[:RAW_SHOWN].decode("utf-8", "replace")
    return p.render("kept_mail.html", status_code=status_code, kind=kind, spec=spec, row=row, raw_text=text,
                    truncated=len(row.raw) > RAW_SHOWN, notice=notice, error=error)


@page()
def kept_mail(p: Page) -> Response:
    """A failed or held mail: its details and raw source as escaped text (staff of its department)."""
    kind, spec, _, row = _kept(p)
    return _kept_page(p, kind, spec, row)


@page()
def kept_raw(p: Page) -> Response:
    """The raw mail through the one safe-download helper (never rendered by the browser)."""
    kind, _, kept_id, row = _kept(p)
    return safe_download(row.raw, f"{kind}-{kept_id}.eml")


@page()
def kept_act(p: Page) -> Response:
    """Retry (failed) or release (held): import the kept mail again now; the outcome is shown."""
    kind, spec, kept_id, row = _kept(p)
    if p.request.path_params["action"] != spec["action"]:
        raise NotFoundError("Not found.")
    outcome = spec["act"](p, kept_id)
    if outcome.status in ("created", "updated", "duplicate"):
        notice = f"Imported ({outcome.status}, ticket {outcome.ticket_id})."
        return _kept_page(p, kind, spec, row, notice=notice)
    return _kept_page(p, kind, spec, row, error=f"Still not imported ({outcome.status}): {outcome.reason}",
                      status_code=409)


@page()
def kept_discard(p: Page) -> Response:
    """GET: the confirmation page; POST (with the CSRF token): discard, back to the list."""
    kind, spec, kept_id, row = _kept(p)
    if p.request.method != "POST":
        return p.render("confirm.html", title=f"Discard {spec['title'].lower()} {kept_id}?",
                        question=f"Discard {row.subject or '(no subject)'} from {row.sender or 'unknown'}? "
                                 "It will not be imported; its raw copy is kept for the record.",
                        action=f"/admin/{kind}/{kept_id}/discard", button="Discard", back=f"/admin/{kind}/{kept_id}")
    try:
        spec["discard"](p, kept_id)
    except ConflictError as exc:
        p.session.rollback()
        return _kept_page(p, kind, spec, row, error=str(exc), status_code=409)
    return redirect(f"/admin/{kind}")


routes = [
    Route("/admin/users", users_page),
    Route("/admin/users/role", users_role, methods=["POST"]),
    Route("/admin/users/invite", users_invite, methods=["POST"]),
    Route("/outbox", outbox_page),
    Route("/admin/outbox", outbox_page),  # the page's former address
    Route("/outbox/{outbox_id:int}/retry", outbox_retry, methods=["POST"]),
    Route("/admin/{kind}/{kept_id:int}", kept_mail),
    Route("/admin/{kind}/{kept_id:int}/raw", kept_raw),
    Route("/admin/{kind}/{kept_id:int}/discard", kept_discard, methods=["GET", "POST"]),
    Route("/admin/{kind}/{kept_id:int}/{action}", kept_act, methods=["POST"]),
    Route("/admin/{view}", admin_list),
]
