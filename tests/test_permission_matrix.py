"""The permission matrix: every public service function, run as every role, against the ONE table
in docs/permissions.md (SQLite and PostgreSQL).

The world: departments IT ("this") and HR ("another"); ticket 1 in IT requested by alice, with pat
in Cc (a participant), an attachment and an internal note; a failed and a held import, an import
log entry, a reply template, an outbox row and a Maildir mailbox, all in IT. A cell is ``yes`` when
the call succeeds and (for reads) its answer contains IT's object; ``no`` when it raises
PermissionDenied/NotFoundError or leaves IT's object out. Every cell runs in its own session that
is rolled back.
"""

from __future__ import annotations

import hashlib
import inspect
import pkgutil
import re
from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import helpdesk_core.services as services_pkg
from helpdesk_core.errors import NotFoundError, PermissionDenied
from helpdesk_core.models import KeptMail, ImportEvent, OutboxMessage, Ticket, User
from helpdesk_core.services import administration, attachments, departments, failed, held, imports
from helpdesk_core.services import lifecycle, outbox, reply_templates, replies, scale, search, settings
from helpdesk_core.services import account_links, auth, tickets, users, verify
from helpdesk_core.services.permissions import ANONYMOUS, SYSTEM

from mailfactory import plain, with_attachments

DOC = Path(__file__).resolve().parents[1] / "docs" / "permissions.md"
ROLES = {  # column -> who acts
    "anonymous": None, "requester": "alice@example.test", "participant": "pat@example.test",
    "agent": "agent@school.test", "other agent": "hragent@school.test",
    "dept admin": "itadmin@school.test", "other dept admin": "hradmin@school.test",
    "global admin": "root@school.test", "system": None,
}
NOTE = "internal: stolen laptop"


def read_matrix() -> dict[str, dict[str, bool]]:
    """``{"module.function[: aspect]": {role: allowed}}`` from the table under "## The matrix"."""
    text = DOC.read_text(encoding="utf-8").split("## The matrix", 1)[1]
    rows = [line for line in text.splitlines() if line.startswith("|")]
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    assert header[1:] == list(ROLES), header
    matrix: dict[str, dict[str, bool]] = {}
    for line in rows[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        name = cells[0].strip("`")
        assert set(cells[1:]) <= {"yes", "no"}, line
        matrix[name] = {role: cell == "yes" for role, cell in zip(ROLES, cells[1:], strict=True)}
    return matrix


def _keyword_actor(fn: Callable[..., Any]) -> bool:
    param = inspect.signature(fn).parameters.get("actor")
    return param is not None and param.kind is inspect.Parameter.KEYWORD_ONLY


def public_service_functions() -> set[str]:
    """``module.function`` of every public function in helpdesk_core.services taking ``actor=``
    (the API; helpers such as ``lifecycle.record(session, ticket, actor, ...)`` take it positionally)."""
    names = set()
    for info in pkgutil.iter_modules(services_pkg.__path__):
        module = import_module(f"helpdesk_core.services.{info.name}")
        for name, fn in vars(module).items():
            if (inspect.isfunction(fn) and not name.startswith("_") and fn.__module__ == module.__name__
                    and _keyword_actor(fn)):
                names.add(f"{info.name}.{name}")
    return names


@pytest.fixture
def world(app, tmp_path, monkeypatch):
    # department admins may name Maildir paths only under the operator's root (issue 10, case 7)
    monkeypatch.setenv("HELPDESK_MAILDIR_ROOT", str(tmp_path))
    maildir = tmp_path / "it-mail"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    with app.session() as s:
        for name in ("IT", "HR"):
            departments.add_department(s, actor=SYSTEM, name=name, sender=f"{name.lower()}@school.test")
        departments.set_mailbox(app, s, actor=SYSTEM, department="IT", provider="generic", secrets={},
                                config={"protocol": "maildir", "path": str(maildir), "email": "it@school.test"})
        for email, role, dept in [("alice@example.test", "requester", None), ("pat@example.test", "requester", None),
                                  ("agent@school.test", "agent", "IT"), ("hragent@school.test", "agent", "HR"),
                                  ("itadmin@school.test", "admin", "IT"), ("hradmin@school.test", "admin", "HR"),
                                  ("root@school.test", "admin", None), ("x@school.test", "agent", "IT")]:
            users.add_user(s, actor=SYSTEM, email=email, role=role, department=dept)
        raw = with_attachments(subject="laptop", sender="alice@example.test")
        raw = raw.replace(b"To: techhelp@district.test", b"To: it@school.test\r\nCc: pat@example.test", 1)
        assert imports.ingest_raw(app, s, actor=SYSTEM, department="IT", raw=raw).status == "created"
        replies.reply_to_ticket(app, s, actor=SYSTEM, ticket_id=1, body=NOTE, internal=True)
        it = departments.get_department(s, "IT")
        bad = b"From: carol@example.test\r\nSubject: carol private\r\n\r\nhunter2\r\n"
        for status in ("failed", "held"):
            s.add(KeptMail(department_id=it.id, raw=bad, raw_sha256=hashlib.sha256(bad).hexdigest(),
                               subject="carol private", sender="carol@example.test", error="boom", status=status))
        s.add(ImportEvent(department_id=it.id, key="k" * 64, raw_sha256="0" * 64, outcome="failed", reason="boom",
                          subject="carol private", sender="carol@example.test"))
        s.add(OutboxMessage(department_id=it.id, ticket_id=1, kind="reply", mail_from="it@school.test", recipients=["a@b.test"],
                            raw=b"Subject: x\r\n\r\nx\r\n", message_id="<x@school.test>", status="failed"))
        reply_templates.add_template(s, actor=SYSTEM, department="IT", name="greet", body="Hello {{ requester_name }}")
        s.commit()
    return {"maildir": str(maildir)}


def _ticket(s) -> Ticket:
    return s.get(Ticket, 1)


def _ids(rows: list[dict[str, Any]]) -> set[Any]:
    return {r.get("id") for r in rows}


def _failed_id(s, status: str) -> int:
    return s.scalar(select(KeptMail.id).where(KeptMail.status == status))


def _remove_it(app, s, actor) -> int:
    """Remove IT once its tickets are gone (moving them needs staff of the receiving department)."""
    for ticket in s.scalars(select(Ticket)):
        s.delete(ticket)
    s.flush()
    return administration.remove_department(app, s, actor=actor, department="IT")


#: ``module.function[: aspect]`` -> (app, session, actor, world) -> seen (False: IT's object left out)
RUNNERS: dict[str, Callable[..., Any]] = {
    "tickets.list_tickets": lambda a, s, u, w: 1 in _ids(tickets.list_tickets(s, actor=u)),
    "tickets.get_ticket": lambda a, s, u, w: tickets.get_ticket(s, actor=u, ticket_id=1),
    "tickets.show_ticket": lambda a, s, u, w: tickets.show_ticket(s, actor=u, ticket_id=1),
    "tickets.show_ticket: internal notes": lambda a, s, u, w: NOTE in str(tickets.show_ticket(s, actor=u, ticket_id=1)),
    "tickets.find_ticket_by_number": lambda a, s, u, w: tickets.find_ticket_by_number(s, actor=u, department="IT", number=1),
    "tickets.export_tickets": lambda a, s, u, w: 1 in _ids(list(tickets.export_tickets(s, actor=u))),
    "tickets.export_tickets: internal notes": lambda a, s, u, w: NOTE in str(list(tickets.export_tickets(s, actor=u))),
    "search.search_tickets": lambda a, s, u, w: 1 in _ids(search.search_tickets(s, actor=u)),
    "search.search_tickets: internal notes": lambda a, s, u, w: 1 in _ids(search.search_tickets(s, actor=u, query="stolen")),
    "search.count_tickets": lambda a, s, u, w: search.count_tickets(s, actor=u, department="IT") == 1,
    "replies.reply_to_ticket": lambda a, s, u, w: replies.reply_to_ticket(a, s, actor=u, ticket_id=1, body="n", internal=True),
    "replies.requester_reply": lambda a, s, u, w: replies.requester_reply(a, s, actor=u, ticket_id=1, body="thanks"),
    "replies.send_now": lambda a, s, u, w: replies.send_now(a, actor=u, outbox_id=s.scalar(select(OutboxMessage.id))),
    "attachments.ticket_attachments": lambda a, s, u, w: attachments.ticket_attachments(s, actor=u, ticket_id=1),
    "attachments.get_attachment": lambda a, s, u, w: attachments.get_attachment(a, s, actor=u, ticket_id=1, name_or_index="1"),
    "lifecycle.set_ticket": lambda a, s, u, w: lifecycle.set_ticket(a, s, actor=u, ticket_id=1, priority="high"),
    "lifecycle.move_ticket": lambda a, s, u, w: lifecycle.move_ticket(a, s, actor=u, ticket_id=1, department="HR"),
    "lifecycle.create_ticket": lambda a, s, u, w: lifecycle.create_ticket(
        a, s, actor=u, department="IT", requester="new@example.test", subject="s", body="b"),
    "users.add_user": lambda a, s, u, w: users.add_user(s, actor=u, email="new@school.test", role="agent", department="IT"),
    "users.add_user: admin of its department": lambda a, s, u, w: users.add_user(
        s, actor=u, email="x@school.test", role="admin", department="IT"),
    "users.add_user: change a global admin": lambda a, s, u, w: users.add_user(
        s, actor=u, email="root@school.test", role="requester", department="IT"),
    "auth.set_password": lambda a, s, u, w: auth.set_password(s, actor=u, email="x@school.test",
                                                              password="a long new password"),
    "auth.set_password: own": lambda a, s, u, w: auth.set_password(
        s, actor=u, email=u.email if isinstance(u, User) else "x@school.test", password="a long new password"),
    "users.list_users": lambda a, s, u, w: "agent@school.test" in {r["email"] for r in users.list_users(s, actor=u)},
    "administration.update_department": lambda a, s, u, w: administration.update_department(
        s, actor=u, department="IT", interval_minutes=7),
    "administration.remove_department": lambda a, s, u, w: _remove_it(a, s, u),
    "administration.set_user": lambda a, s, u, w: administration.set_user(s, actor=u, email="x@school.test", name="X"),
    "administration.remove_membership": lambda a, s, u, w: administration.remove_membership(
        s, actor=u, email="x@school.test", department="IT"),
    "departments.add_department": lambda a, s, u, w: departments.add_department(s, actor=u, name="New", sender="n@school.test"),
    "departments.list_departments": lambda a, s, u, w: departments.list_departments(s, actor=u),
    "departments.department_summaries": lambda a, s, u, w: departments.department_summaries(s, actor=u),
    "departments.department_summaries: mailbox configuration": lambda a, s, u, w: "mailbox" in next(
        d for d in departments.department_summaries(s, actor=u) if d["name"] == "IT"),
    "departments.set_mailbox": lambda a, s, u, w: departments.set_mailbox(
        a, s, actor=u, department="IT", provider="generic", secrets={},
        config={"protocol": "maildir", "path": w["maildir"], "email": "it@school.test"}),
    "departments.set_department_options": lambda a, s, u, w: departments.set_department_options(
        s, actor=u, department="IT", acknowledge=True),
    "departments.clear_mailbox": lambda a, s, u, w: departments.clear_mailbox(s, actor=u, department="IT"),
    "departments.department_status": lambda a, s, u, w: departments.department_status(s, actor=u, department="IT"),
    "departments.import_activity": lambda a, s, u, w: departments.import_activity(s, actor=u, department="IT"),
    "failed.list_failed": lambda a, s, u, w: _failed_id(s, "failed") in _ids(failed.list_failed(s, actor=u)),
    "failed.get_failed": lambda a, s, u, w: failed.get_failed(s, actor=u, failed_id=_failed_id(s, "failed")),
    "failed.retry_failed": lambda a, s, u, w: failed.retry_failed(a, s, actor=u, failed_id=_failed_id(s, "failed")),
    "held.list_held": lambda a, s, u, w: _failed_id(s, "held") in _ids(held.list_held(s, actor=u)),
    "failed.discard_failed": lambda a, s, u, w: failed.discard_failed(s, actor=u, failed_id=_failed_id(s, "failed")),
    "held.get_held": lambda a, s, u, w: held.get_held(s, actor=u, held_id=_failed_id(s, "held")),
    "held.release_held": lambda a, s, u, w: held.release_held(a, s, actor=u, held_id=_failed_id(s, "held")),
    "held.discard_held": lambda a, s, u, w: held.discard_held(s, actor=u, held_id=_failed_id(s, "held")),
    "held.import_log": lambda a, s, u, w: bool(held.import_log(s, actor=u)),
    "outbox.list_outbox": lambda a, s, u, w: bool(outbox.list_outbox(s, actor=u)),
    "outbox.flush": lambda a, s, u, w: outbox.flush(a, actor=u, department="IT"),
    "outbox.retry": lambda a, s, u, w: outbox.retry(s, actor=u, outbox_id=s.scalar(select(OutboxMessage.id))),
    "outbox.reply_problems": lambda a, s, u, w: 1 in outbox.reply_problems(s, actor=u, ticket_ids=[1]),
    "account_links.request_password_reset": lambda a, s, u, w: account_links.request_password_reset(
        a, s, actor=u, email="x@school.test", base_url="https://helpdesk.school.test"),
    "account_links.request_sign_in_link": lambda a, s, u, w: account_links.request_sign_in_link(
        a, s, actor=u, email="alice@example.test", base_url="https://helpdesk.school.test"),
    "account_links.invite_user": lambda a, s, u, w: account_links.invite_user(
        a, s, actor=u, email="new@school.test", role="agent", department="IT",
        base_url="https://helpdesk.school.test"),
    "settings.show_settings": lambda a, s, u, w: settings.show_settings(s, actor=u),
    "settings.change_setting": lambda a, s, u, w: settings.change_setting(
        a, s, actor=u, key="mail.max_message_size_mb", value="30"),
    "reply_templates.add_template": lambda a, s, u, w: reply_templates.add_template(
        s, actor=u, department="IT", name="bye", body="Bye"),
    "reply_templates.list_templates": lambda a, s, u, w: reply_templates.list_templates(s, actor=u, department="IT"),
    "reply_templates.remove_template": lambda a, s, u, w: reply_templates.remove_template(
        s, actor=u, department="IT", name="greet"),
    "reply_templates.render_template": lambda a, s, u, w: reply_templates.render_template(
        s, actor=u, ticket=_ticket(s), name="greet"),
    "scale.set_push": lambda a, s, u, w: scale.set_push(s, actor=u, department="IT", enabled=False),
    "scale.system_status": lambda a, s, u, w: "IT" in {d["department"] for d in scale.system_status(s, actor=u)["departments"]},
    "scale.watch_service": lambda a, s, u, w: scale.watch_service(a, actor=u, enqueue=lambda d: None, limit=1),
    "imports.import_targets": lambda a, s, u, w: imports.import_targets(a, s, actor=u, department="IT"),
    "imports.run_import": lambda a, s, u, w: imports.run_import(
        a, actor=u, department_id=departments.get_department(s, "IT").id),
    "imports.run_worker": None,  # runs forever with signal handlers; its guard is checked below
    "imports.ingest_raw": lambda a, s, u, w: imports.ingest_raw(
        a, s, actor=u, department="IT", raw=plain(subject="new", sender="z@example.test", to="it@school.test")),
    # the Maildir mailbox sends no mail: the check stops after its first leg
    "verify.verify_end_to_end": lambda a, s, u, w: verify.verify_end_to_end(
        a, actor=u, department_id=departments.get_department(s, "IT").id),
}


def _actor(s, role: str):
    if role == "system":
        return SYSTEM
    if role == "anonymous":
        return ANONYMOUS
    return s.scalar(select(User).where(User.email == ROLES[role]))


def test_the_table_covers_every_public_service_function():
    matrix = read_matrix()
    assert set(matrix) == set(RUNNERS), "docs/permissions.md and the runners name different rows"
    covered = {name.split(":")[0] for name in matrix}
    assert public_service_functions() <= covered, sorted(public_service_functions() - covered)


def test_permission_matrix(app, world):
    wrong = []
    for name, expected in read_matrix().items():
        for role, allowed in expected.items():
            runner = RUNNERS[name]
            with app.session() as s:
                actor = _actor(s, role)
                if runner is None:  # imports.run_worker: the guard only (it would run forever)
                    runner = lambda a, s, u, w: imports.require_manage_settings(u)  # noqa: E731
                try:
                    seen = runner(app, s, actor, world)
                    got = seen is not False
                except (PermissionDenied, NotFoundError):
                    got = False
                s.rollback()
            if got != allowed:
                wrong.append(f"{name} as {role}: {'allowed' if got else 'denied'}, table says "
                             f"{'yes' if allowed else 'no'}")
    assert not wrong, "\n".join(wrong)


def test_run_worker_is_guarded(app):
    with pytest.raises(PermissionDenied):
        imports.run_worker(app, actor=ANONYMOUS, once=True)


def test_matrix_doc_is_sane():
    assert re.search(r"^\| function ", DOC.read_text(encoding="utf-8"), re.M)
