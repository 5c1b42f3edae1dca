"""Settings → Departments: the list with each mail state, the Mail Server Configuration form
(rendered from the provider's declared ConfigFields), Test connection, status and Import now."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from helpdesk_core.errors import HelpdeskError
from helpdesk_core.providers.base import MailboxProvider
from helpdesk_core.services import departments as depts
from helpdesk_core.services.imports import import_targets, run_import
from helpdesk_core.services.permissions import require_manage_settings
from helpdesk_core.services.settings import change_setting, show_settings
from helpdesk_core.settings import SETTINGS
from helpdesk_core.web.pages import Page, page, redirect


@page()
def department_list(p: Page) -> Response:
    require_manage_settings(p.user)
    rows = [(d, depts.department_status(p.session, actor=p.user, department=d.name))
            for d in depts.list_departments(p.session, actor=p.user)]
    return p.render("departments.html", rows=rows, error=None)


@page()
def department_add(p: Page) -> Response:
    try:
        interval = int(p.field("interval_minutes", "5") or 5)
        dept = depts.add_department(p.session, actor=p.user, name=p.field("name"), sender=p.field("sender"),
                                    interval_minutes=interval)
    except (HelpdeskError, ValueError) as exc:
        p.session.rollback()
        rows = [(d, depts.department_status(p.session, actor=p.user, department=d.name))
                for d in depts.list_departments(p.session, actor=p.user)]
        return p.render("departments.html", status_code=400, rows=rows, error=str(exc))
    return redirect(f"/settings/departments/{dept.id}")


def _department(p: Page) -> Any:
    dept_id = int(p.request.path_params["dept_id"])
    for d in depts.list_departments(p.session, actor=p.user):
        if d.id == dept_id:
            require_manage_settings(p.user, d)
            return d
    raise depts.NotFoundError("No such department.")


def _provider_form(p: Page, dept: Any, provider_name: str | None, values: dict[str, Any] | None,
                   error: HelpdeskError | None = None, notice: str | None = None, status_code: int = 200) -> Response:
    providers = dict(sorted(p.helpdesk.providers.providers.items()))
    current = dept.mailbox
    name = provider_name or (current.provider if current else None) or next(iter(providers), None)
    provider: MailboxProvider | None = providers.get(name) if name else None
    if values is None:
        values = dict(current.config) if current is not None and current.provider == name else {}
    has_secret = {f.name: bool(current is not None and current.provider == name) for f in
                  (provider.fields if provider else ())}
    status = depts.department_status(p.session, actor=p.user, department=dept.name)
    return p.render("department.html", status_code=status_code, dept=dept, providers=providers,
                    provider=provider, values=values, has_secret=has_secret, error=error, notice=notice,
                    status=status)


@page()
def department_edit(p: Page) -> Response:
    dept = _department(p)
    return _provider_form(p, dept, p.request.query_params.get("provider"), None)


@page()
def department_mailbox(p: Page) -> Response:
    """Save (validated first; nothing saved on failure) or only test the Mail Server Configuration."""
    dept = _department(p)
    name = p.field("provider")
    provider = p.helpdesk.providers.providers.get(name)
    if provider is None:
        return _provider_form(p, dept, None, None, error=HelpdeskError(f"Unknown provider {name!r}."),
                              status_code=400)
    config: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    for f in provider.fields:
        raw = p.field(f"f_{f.name}")
        if f.secret:
            if raw:
                secrets[f.name] = raw  # empty = unchanged
        elif raw != "":
            config[f.name] = raw
    testing = p.field("action") == "test"
    dept_name = dept.name
    try:
        facts = depts.set_mailbox(p.helpdesk, p.session, actor=p.user, department=dept_name, provider=name,
                                  config=config, secrets=secrets)
    except HelpdeskError as exc:
        p.session.rollback()
        dept = _department(p)
        return _provider_form(p, dept, name, config, error=exc, status_code=400)
    waiting = facts.get("waiting")
    detail = f" ({waiting} message(s) waiting)" if waiting is not None else ""
    if testing:
        p.session.rollback()  # Test connection saves nothing
        dept = _department(p)
        return _provider_form(p, dept, name, config, notice=f"Connection OK{detail}. Nothing was saved.")
    p.session.expire_all()  # the department's new mailbox row (flushed) is loaded again
    return _provider_form(p, _department(p), name, None, notice=f"Saved: the mailbox works{detail}.")


@page()
def department_clear(p: Page) -> Response:
    dept = _department(p)
    depts.clear_mailbox(p.session, actor=p.user, department=dept.name)
    return redirect(f"/settings/departments/{dept.id}")


@page()
def department_import(p: Page) -> Response:
    """Import now: one import cycle of the department (it commits its own sessions)."""
    dept = _department(p)
    targets = import_targets(p.helpdesk, p.session, actor=p.user, department=dept.name)
    p.session.commit()
    notice: str
    try:
        result = run_import(p.helpdesk, actor=p.user, department_id=targets[0][0])
        notice = (f"Import finished: {result.fetched} fetched, {result.created} new ticket(s), "
                  f"{result.updated} update(s), {result.failed} failed.")
        error = None
    except HelpdeskError as exc:
        notice, error = "", exc
    p.session.expire_all()
    return _provider_form(p, _department(p), None, None, error=error, notice=notice or None)


routes = [
    Route("/settings/departments", department_list),
    Route("/settings/departments", department_add, methods=["POST"], name="department_add"),
    Route("/settings/departments/{dept_id:int}", department_edit),
    Route("/settings/departments/{dept_id:int}/mailbox", department_mailbox, methods=["POST"]),
    Route("/settings/departments/{dept_id:int}/clear-mailbox", department_clear, methods=["POST"]),
    Route("/settings/departments/{dept_id:int}/import", department_import, methods=["POST"]),
]


def _shown(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else "" if value is None else str(value)


def _general(p: Page, error: str | None = None, notice: str | None = None, status_code: int = 200,
             typed: dict[str, str] | None = None) -> Response:
    values = show_settings(p.session, actor=p.user)
    rows = [(d, (typed or {}).get(key, _shown(values.get(key, d.default)))) for key, d in SETTINGS.items()]
    return p.render("general.html", status_code=status_code, rows=rows, error=error, notice=notice)


@page()
def general_settings(p: Page) -> Response:
    """Settings → General: every setting with its help text, validated as the CLI validates;
    saving is all or nothing."""
    require_manage_settings(p.user)
    if p.request.method == "GET":
        return _general(p)
    current = {k: _shown(v) for k, v in show_settings(p.session, actor=p.user).items()}
    typed = {key: p.field(key) for key in SETTINGS}
    changed = [key for key, value in typed.items() if value.strip() != current.get(key, "").strip()]
    try:
        for key in changed:
            change_setting(p.helpdesk, p.session, actor=p.user, key=key, value=typed[key])
    except HelpdeskError as exc:
        p.session.rollback()
        return _general(p, error=f"{key}: {exc} Nothing was saved.", status_code=400, typed=typed)
    return _general(p, notice=f"Saved {len(changed)} setting(s)." if changed else "Nothing changed.")


routes.append(Route("/settings/general", general_settings, methods=["GET", "POST"]))
