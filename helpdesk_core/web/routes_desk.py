"""The staff desk and the requester portal: ticket list (filters, search, sort and paging as GET
parameters, so a URL is a bookmark), ticket page (conversation, canned replies, history,
attachments through the one safe-download helper, "load remote images" per message), staff reply
and internal note, the requester's answer, and "new ticket"."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import UploadFile
from starlette.responses import Response
from starlette.routing import Route

from helpdesk_core.errors import HelpdeskError, NotFoundError, PermissionDenied
from helpdesk_core.mail.html import allow_remote_images
from helpdesk_core.models import TicketPriority, TicketStatus
from helpdesk_core.services.attachments import get_attachment, ticket_attachments
from helpdesk_core.services.departments import list_departments
from helpdesk_core.services.lifecycle import create_ticket, normalize_tag, queued_for, send_queued, set_ticket
from helpdesk_core.services.outbox import reply_problems
from helpdesk_core.services.permissions import is_global_admin, sees_internal, staff_department_ids
from helpdesk_core.services.replies import reply_to_ticket, requester_reply, send_now
from helpdesk_core.services.reply_templates import list_templates, render_template
from helpdesk_core.services.search import SORTS, count_tickets, search_tickets
from helpdesk_core.services.tickets import get_ticket, ticket_events
from helpdesk_core.services.users import list_users
from helpdesk_core.storage import download_headers
from helpdesk_core.web.pages import Page, page, redirect
from helpdesk_core.web.security import CSP_REMOTE_IMAGES, MAIL_CSP, MAIL_CSP_REMOTE_IMAGES

#: rows per page offered by the ticket list (``per=``); the first is the default
PAGE_SIZES = (25, 10, 50, 100)
#: the list's filters (GET parameters) → ``search_tickets`` keywords; requesters get only the first two
FILTERS = {"q": "query", "status": "status", "department": "department", "assignee": "assignee",
           "priority": "priority", "tag": "tag"}
SORT_LABELS = {"-updated": "last updated", "updated": "least recently updated", "-created": "newest",
               "created": "oldest", "priority": "most urgent", "number": "number"}


@page()
def home(p: Page) -> Response:
    return redirect("/tickets")


def _int(value: str | None, default: int) -> int:
    try:
        return int(value or default)
    except ValueError:
        return default


@page()
def ticket_list(p: Page) -> Response:
    """The desk (staff) or "My tickets" (requesters): ``services.search`` as ``helpdesk ticket
    list`` calls it. ``view=mine|unassigned`` are the short links for ``assignee=me|none``."""
    qp = p.request.query_params
    staff = staff_department_ids(p.user) != set()
    chosen = {k: qp.get(k, "").strip() for k in (FILTERS if staff else ("q", "status"))}
    view = qp.get("view", "")
    if staff and view in ("mine", "unassigned") and not chosen["assignee"]:
        chosen["assignee"] = "me" if view == "mine" else "none"
    sort = qp.get("sort") if qp.get("sort") in SORTS else "-updated"
    per = _int(qp.get("per"), PAGE_SIZES[0])
    per = per if per in PAGE_SIZES else PAGE_SIZES[0]
    filters = {FILTERS[k]: v for k, v in chosen.items() if v}
    error, tickets, total = None, [], 0
    try:
        total = count_tickets(p.session, actor=p.user, **filters)
        pages = max(1, math.ceil(total / per))
        number = min(max(1, _int(qp.get("page"), 1)), pages)
        tickets = search_tickets(p.session, actor=p.user, sort=sort, limit=per, offset=(number - 1) * per, **filters)
    except HelpdeskError as exc:  # an unknown status, priority or department
        error, pages, number = str(exc), 1, 1
    kept = {k: v for k, v in chosen.items() if v}
    if sort != "-updated":
        kept["sort"] = sort
    if per != PAGE_SIZES[0]:
        kept["per"] = str(per)

    def url(page_number: int) -> str:
        params = {**kept, **({"page": str(page_number)} if page_number > 1 else {})}
        return "/tickets" + ("?" + urlencode(params) if params else "")

    values: dict[str, Any] = {}
    if staff:
        values = {"departments": [d.name for d in list_departments(p.session, actor=p.user)
                                  if is_global_admin(p.user) or p.user.role_in(d.id) in ("agent", "admin")],
                  "staff_emails": sorted({u["email"] for u in list_users(p.session, actor=p.user)
                                          if u["global_admin"] or any(m["role"] in ("agent", "admin")
                                                                      for m in u["memberships"])}),
                  "mine_open": count_tickets(p.session, actor=p.user, assignee="me", status="open,pending")}
    first = (number - 1) * per + 1 if total else 0
    return p.render("tickets.html", status_code=400 if error else 200, tickets=tickets, error=error,
                    chosen=chosen, sort=sort, per=per, total=total, page=number, pages=pages,
                    first=first, last=first + len(tickets) - 1 if tickets else 0,
                    prev_url=url(number - 1) if number > 1 else None,
                    next_url=url(number + 1) if number < pages else None,
                    statuses=[s.value for s in TicketStatus], priorities=[v.value for v in TicketPriority],
                    sorts=SORT_LABELS, page_sizes=sorted(PAGE_SIZES), staff=staff,
                    reply_problems=reply_problems(p.session, actor=p.user, ticket_ids=[t["id"] for t in tickets]),
                    **values)


def _mail_srcdoc(html: str, remote_images: bool = False) -> str:
    """A message's sanitised HTML as an ``<iframe sandbox srcdoc>`` document with its own CSP:
    nothing remote, or with ``remote_images`` its ``https:`` images (still no script, no form, no
    other load)."""
    if remote_images:
        html, csp = allow_remote_images(html), MAIL_CSP_REMOTE_IMAGES
    else:
        csp = MAIL_CSP
    return (f'<!doctype html><meta http-equiv="Content-Security-Policy" content="{csp}">'
            f"<base target=\"_blank\">{html}")


def _ticket_page(p: Page, ticket_id: int, error: str | None = None, notice: str | None = None,
                 status_code: int = 200, body: str = "") -> Response:
    """The ticket page. GET parameters: ``template=NAME`` fills the reply with that canned reply
    (the no-JS "Use template"; htmx swaps only the textarea), ``remote=MESSAGE_ID`` shows that
    one message's remote ``https:`` images."""
    ticket = get_ticket(p.session, actor=p.user, ticket_id=ticket_id)
    staff = sees_internal(p.user, ticket)  # staff of this ticket's department
    messages = [m for m in ticket.messages if staff or str(m.direction) != "note"]
    files = ticket_attachments(p.session, actor=p.user, ticket_id=ticket.id)
    index = {a.id: i for i, a in enumerate(files, 1)}
    qp = p.request.query_params
    remote = _int(qp.get("remote"), 0) if p.request.method == "GET" else 0
    assignable: list[str] = []
    templates: list[str] = []
    chosen_template = qp.get("template", "") if p.request.method == "GET" else ""
    if staff:  # whom the form offers; set_ticket decides (active staff of the department)
        assignable = [u["email"] for u in list_users(p.session, actor=p.user) if u["global_admin"] or any(
            m["department"] == ticket.department_id and m["role"] in ("agent", "admin") for m in u["memberships"])]
        templates = [t.name for t in list_templates(p.session, actor=p.user, department=ticket.department.name)]
        if chosen_template:
            try:
                body = render_template(p.session, actor=p.user, ticket=ticket, name=chosen_template)
            except HelpdeskError as exc:
                error, status_code = str(exc), 400
    response = p.render("ticket.html", status_code=status_code, ticket=ticket, messages=messages, staff=staff,
                        attachments=files, attachment_index=index, assignable=assignable,
                        statuses=[str(v) for v in type(ticket.status)],
                        priorities=[str(v) for v in type(ticket.priority)], templates=templates,
                        chosen_template=chosen_template, body=body, remote=remote,
                        history=ticket_events(p.session, ticket) if staff else [],
                        srcdoc=_mail_srcdoc, error=error, notice=notice,
                        reply_problems=reply_problems(p.session, actor=p.user, ticket_ids=[ticket.id]))
    if remote and any(m.id == remote and m.body_html for m in messages):
        # the frame is bound by its page's policy too: allow https images on this response only
        response.headers["Content-Security-Policy"] = CSP_REMOTE_IMAGES
    return response


@page()
def ticket_page(p: Page) -> Response:
    return _ticket_page(p, int(p.request.path_params["ticket_id"]))


def _uploads(p: Page) -> list[tuple[str, bytes]]:
    assert p.form is not None
    return [(u.filename, u.file.read()) for u in p.form.getlist("attachment")
            if isinstance(u, UploadFile) and u.filename]


@page()
def ticket_answer(p: Page) -> Response:
    """The requester's (or a participant's) answer in the portal, with attachments
    (``replies.requester_reply``); the staff notification goes through the outbox after the commit."""
    ticket_id = int(p.request.path_params["ticket_id"])
    files = _uploads(p)
    try:
        requester_reply(p.helpdesk, p.session, actor=p.user, ticket_id=ticket_id, body=p.field("body"),
                        attachments=files)
    except (NotFoundError, PermissionDenied):
        raise
    except HelpdeskError as exc:
        p.session.rollback()
        return _ticket_page(p, ticket_id, error=str(exc), status_code=400, body=p.field("body"))
    queued, helpdesk = queued_for(p.session, ticket_id), p.helpdesk
    p.after_commit.append(lambda: send_queued(helpdesk, queued))
    return redirect(f"/tickets/{ticket_id}")


@page()
def ticket_reply(p: Page) -> Response:
    """A reply is committed, then sent through the outbox exactly as ``helpdesk ticket reply`` does."""
    ticket_id = int(p.request.path_params["ticket_id"])
    internal = p.field("kind") == "note"
    files = _uploads(p)
    body = p.field("body")
    if not body.strip():
        return _ticket_page(p, ticket_id, error="Write the reply's text first.", status_code=400)
    try:
        result = reply_to_ticket(p.helpdesk, p.session, actor=p.user, ticket_id=ticket_id, body=body,
                                 attachments=files, internal=internal)
    except (NotFoundError, PermissionDenied):
        raise
    except HelpdeskError as exc:
        p.session.rollback()
        return _ticket_page(p, ticket_id, error=str(exc), status_code=400, body=body)
    if result.outbox is not None:
        outbox_id, helpdesk, actor = result.outbox.id, p.helpdesk, p.user
        p.after_commit.append(lambda: send_now(helpdesk, actor=actor, outbox_id=outbox_id))
    return redirect(f"/tickets/{ticket_id}")


def _new_ticket_form(p: Page, error: str | None = None, status_code: int = 200) -> Response:
    """The departments offered: those the user belongs to (every one for a global admin); the
    service decides whether the user may open a ticket there."""
    departments = [d for d in list_departments(p.session, actor=p.user)
                   if is_global_admin(p.user) or p.user.role_in(d.id) is not None]
    return p.render("new_ticket.html", status_code=status_code, departments=departments, error=error,
                    chosen=p.field("department"), subject=p.field("subject"), body=p.field("body"))


@page()
def new_ticket(p: Page) -> Response:
    """Portal "New ticket": a requester opens a ticket for themselves in a department they belong
    to (with or without a mailbox), as ``helpdesk ticket create`` does; the department's staff are
    notified through the outbox after the commit."""
    if p.request.method != "POST":
        return _new_ticket_form(p)
    if not p.field("subject").strip() or not p.field("body").strip():
        return _new_ticket_form(p, error="Write a subject and a description first.", status_code=400)
    try:
        ticket, _row = create_ticket(p.helpdesk, p.session, actor=p.user, department=p.field("department"),
                                     requester=p.user.email, subject=p.field("subject"), body=p.field("body"))
    except (NotFoundError, PermissionDenied):
        raise
    except HelpdeskError as exc:
        p.session.rollback()
        return _new_ticket_form(p, error=str(exc), status_code=400)
    queued, helpdesk = queued_for(p.session, ticket.id), p.helpdesk
    p.after_commit.append(lambda: send_queued(helpdesk, queued))
    return redirect(f"/tickets/{ticket.id}")


@page()
def ticket_set(p: Page) -> Response:
    """Status, assignee, priority and tags (``lifecycle.set_ticket``, as ``helpdesk ticket set``): the
    form carries the whole wanted state; only what differs is changed and recorded in the history.
    An assignment's notification goes through the outbox after the commit."""
    ticket_id = int(p.request.path_params["ticket_id"])
    ticket = get_ticket(p.session, actor=p.user, ticket_id=ticket_id)
    current = list(ticket.tags)
    assignee = p.field("assignee").strip()
    try:
        wanted = [normalize_tag(t) for t in p.field("tags").split(",") if t.strip()]
        set_ticket(p.helpdesk, p.session, actor=p.user, ticket_id=ticket_id,
                   status=p.field("status") or None, priority=p.field("priority") or None,
                   assign=assignee or None, unassign=not assignee and ticket.assignee is not None,
                   add_tags=[t for t in wanted if t not in current],
                   remove_tags=[c for c in current if c not in wanted])
    except (NotFoundError, PermissionDenied):
        raise
    except HelpdeskError as exc:
        p.session.rollback()
        return _ticket_page(p, ticket_id, error=str(exc), status_code=400)
    queued, helpdesk = queued_for(p.session, ticket_id), p.helpdesk
    p.after_commit.append(lambda: send_queued(helpdesk, queued))
    return redirect(f"/tickets/{ticket_id}")


@page()
def attachment(p: Page) -> Response:
    """An attachment (1-based index in message order, as ``helpdesk ticket attachment``), served
    by :func:`safe_download`."""
    found = get_attachment(p.helpdesk, p.session, actor=p.user, ticket_id=int(p.request.path_params["ticket_id"]),
                           name_or_index=str(int(p.request.path_params["index"])))
    return safe_download(found.data, found.attachment.filename or "attachment")


def safe_download(data: bytes, filename: str) -> Response:
    """Serve bytes only as a download, never rendered by the browser: the core's
    :func:`~helpdesk_core.storage.download_headers`, with a type no browser renders."""
    headers = download_headers(filename, "application/octet-stream")
    headers["Content-Type"] = "application/octet-stream"
    headers["Cache-Control"] = "private, no-store"
    return Response(data, headers=headers)


routes = [
    Route("/", home),
    Route("/tickets", ticket_list),
    Route("/tickets/new", new_ticket, methods=["GET", "POST"]),
    Route("/tickets/{ticket_id:int}", ticket_page),
    Route("/tickets/{ticket_id:int}/reply", ticket_reply, methods=["POST"]),
    Route("/tickets/{ticket_id:int}/answer", ticket_answer, methods=["POST"]),
    Route("/tickets/{ticket_id:int}/set", ticket_set, methods=["POST"]),
    Route("/tickets/{ticket_id:int}/attachments/{index:int}", attachment),
]
