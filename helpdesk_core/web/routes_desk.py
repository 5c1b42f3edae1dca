"""The staff desk and the requester portal: ticket list, ticket page, reply, internal note, and
attachments through the one safe-download helper."""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.responses import Response
from starlette.routing import Route

from helpdesk_core.errors import HelpdeskError, NotFoundError, PermissionDenied
from helpdesk_core.services.attachments import get_attachment, ticket_attachments
from helpdesk_core.services.departments import list_departments
from helpdesk_core.services.lifecycle import create_ticket, normalize_tag, queued_for, send_queued, set_ticket
from helpdesk_core.services.outbox import reply_problems
from helpdesk_core.services.permissions import is_global_admin, sees_internal
from helpdesk_core.services.replies import reply_to_ticket, send_now
from helpdesk_core.services.tickets import get_ticket, list_tickets
from helpdesk_core.services.users import list_users
from helpdesk_core.storage import download_headers
from helpdesk_core.web.pages import Page, page, redirect
from helpdesk_core.web.security import MAIL_CSP


@page()
def home(p: Page) -> Response:
    return redirect("/tickets")


@page()
def ticket_list(p: Page) -> Response:
    tickets = list_tickets(p.session, actor=p.user)
    mine = p.request.query_params.get("view")
    if mine == "mine":
        tickets = [t for t in tickets if t["assignee"] == p.user.email]
    elif mine == "unassigned":
        tickets = [t for t in tickets if t["assignee"] is None]
    tickets.sort(key=lambda t: t["updated_at"], reverse=True)
    return p.render("tickets.html", tickets=tickets, view=mine,
                    reply_problems=reply_problems(p.session, actor=p.user, ticket_ids=[t["id"] for t in tickets]))


def _mail_srcdoc(html: str) -> str:
    """A message's sanitised HTML as an ``<iframe sandbox srcdoc>`` document with its own CSP."""
    return (f'<!doctype html><meta http-equiv="Content-Security-Policy" content="{MAIL_CSP}">'
            f"<base target=\"_blank\">{html}")


def _ticket_page(p: Page, ticket_id: int, error: str | None = None, notice: str | None = None,
                 status_code: int = 200) -> Response:
    ticket = get_ticket(p.session, actor=p.user, ticket_id=ticket_id)
    staff = sees_internal(p.user, ticket)  # staff of this ticket's department
    messages = [m for m in ticket.messages if staff or str(m.direction) != "note"]
    index = {a.id: i for i, a in enumerate(ticket_attachments(p.session, actor=p.user, ticket_id=ticket.id), 1)}
    assignable: list[str] = []
    if staff:  # whom the form offers; set_ticket decides (active staff of the department)
        assignable = [u["email"] for u in list_users(p.session, actor=p.user) if u["global_admin"] or any(
            m["department"] == ticket.department_id and m["role"] in ("agent", "admin") for m in u["memberships"])]
    return p.render("ticket.html", status_code=status_code, ticket=ticket, messages=messages, staff=staff,
                    attachment_index=index, assignable=assignable, statuses=[str(v) for v in type(ticket.status)],
                    priorities=[str(v) for v in type(ticket.priority)],
                    srcdoc=_mail_srcdoc, error=error, notice=notice,
                    reply_problems=reply_problems(p.session, actor=p.user, ticket_ids=[ticket.id]))


@page()
def ticket_page(p: Page) -> Response:
    return _ticket_page(p, int(p.request.path_params["ticket_id"]))


@page()
def ticket_reply(p: Page) -> Response:
    """A reply is committed, then sent through the outbox exactly as ``helpdesk ticket reply`` does."""
    ticket_id = int(p.request.path_params["ticket_id"])
    internal = p.field("kind") == "note"
    files: list[tuple[str, bytes]] = []
    assert p.form is not None
    for upload in p.form.getlist("attachment"):
        if isinstance(upload, UploadFile) and upload.filename:
            files.append((upload.filename, upload.file.read()))
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
        return _ticket_page(p, ticket_id, error=str(exc), status_code=400)
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
    Route("/tickets/{ticket_id:int}/set", ticket_set, methods=["POST"]),
    Route("/tickets/{ticket_id:int}/attachments/{index:int}", attachment),
]
