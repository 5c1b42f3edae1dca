"""Settings → Departments: the list with each mail state; a department's name, sender and
interval; the Mail Server Configuration form (rendered from the provider's declared
ConfigFields), Test connection (htmx: the result is swapped in; a plain POST without JavaScript),
Verify end to end, the status page with its 30-day chart, and Import now."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from helpdesk_core.errors import HelpdeskError
from helpdesk_core.providers.base import MailboxProvider
from helpdesk_core.services import departments as depts
from helpdesk_core.services.administration import update_department
from helpdesk_core.services.imports import import_targets, run_import
from helpdesk_core.services.permissions import can_manage_settings, require_manage_settings
from helpdesk_core.services.settings import change_setting, show_settings
from helpdesk_core.services.verify import DEFAULT_TIMEOUT, verify_end_to_end
from helpdesk_core.settings import SETTINGS
from helpdesk_core.web.charts import activity_chart
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


#: how long "Verify end to end" waits for the test mail (seconds; the request waits as long)
VERIFY_TIMEOUT = DEFAULT_TIMEOUT


def _department(p: Page, *, manage: bool = True) -> Any:
    """The department of the URL; with ``manage`` only for whom has Manage Settings for it."""
    dept_id = int(p.request.path_params["dept_id"])
    for d in depts.list_departments(p.session, actor=p.user):
        if d.id == dept_id:
            if manage:
                require_manage_settings(p.user, d)
            return d
    raise depts.NotFoundError("No such department.")


def _provider_form(p: Page, dept: Any, provider_name: str | None, values: dict[str, Any] | None,
                   error: HelpdeskError | None = None, notice: str | None = None, status_code: int = 200,
                   verify: dict[str, Any] | None = None, edit_error: str | None = None,
                   edit_notice: str | None = None) -> Response:
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
                    status=status, verify=verify, edit_error=edit_error, edit_notice=edit_notice,
                    edit={k: p.field(k) for k in ("name", "sender", "interval_minutes")} if edit_error else None)


def _htmx(p: Page) -> bool:
    """Whether htmx sent the request (it then gets the fragment to swap in, always with 200:
    htmx swaps no 4xx answer)."""
    return p.request.headers.get("hx-request") == "true"


@page()
def department_edit_names(p: Page) -> Response:
    """Rename the department, change its sender address or import interval
    (``administration.update_department``, as ``helpdesk department set --rename/--sender/--interval``)."""
    dept = _department(p)
    try:
        interval = int(p.field("interval_minutes") or dept.interval_minutes)
        name, sender = p.field("name").strip(), p.field("sender").strip()
        update_department(p.session, actor=p.user, department=dept.name,
                          rename=name if name != dept.name else None,
                          sender=sender if sender != dept.sender_address else None,
                          interval_minutes=interval if interval != dept.interval_minutes else None)
    except (HelpdeskError, ValueError) as exc:
        p.session.rollback()
        message = str(exc) if isinstance(exc, HelpdeskError) else "The import interval must be a whole number."
        return _provider_form(p, _department(p), None, None, edit_error=message, status_code=400)
    return _provider_form(p, dept, None, None, edit_notice="Saved.")


@page()
def department_verify(p: Page) -> Response:
    """Verify end to end: a test mail From the department to its own address, imported and
    deleted without a ticket; each leg is reported (``verify.verify_end_to_end``)."""
    dept = _department(p)
    dept_id = dept.id
    p.session.commit()  # the check runs its own sessions and import cycles
    try:
        report = verify_end_to_end(p.helpdesk, actor=p.user, department_id=dept_id,
                                   timeout=VERIFY_TIMEOUT)
    except HelpdeskError as exc:
        p.session.expire_all()
        return _provider_form(p, _department(p), None, None, error=exc, status_code=400)
    p.session.expire_all()
    return _provider_form(p, _department(p), None, None, verify=report, status_code=200 if report["ok"] else 409)


@page()
def department_status_page(p: Page) -> Response:
    """Department status (for its staff): last success, failing since, last error, next run,
    waiting, the reconciliation counts and a chart of the last 30 days; Import now for whom may."""
    dept = _department(p, manage=False)
    status = depts.department_status(p.session, actor=p.user, department=dept.name)
    days = depts.import_activity(p.session, actor=p.user, department=dept.name)
    return p.render("department_status.html", dept=dept, status=status, chart=activity_chart(days),
                    can_manage=can_manage_settings(p.user, dept))


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
        if testing and _htmx(p):
            return p.render("mailbox_result.html", error=exc, notice=None)
        dept = _department(p)
        return _provider_form(p, dept, name, config, error=exc, status_code=400)
    waiting = facts.get("waiting")
    detail = f" ({waiting} message(s) waiting)" if waiting is not None else ""
    if testing:
        p.session.rollback()  # Test connection saves nothing
        notice = f"Connection OK{detail}. Nothing was saved."
        if _htmx(p):
            return p.render("mailbox_result.html", error=None, notice=notice)
        dept = _department(p)
        return _provider_form(p, dept, name, config, notice=notice)
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
    Route("/settings/departments/{dept_id:int}/edit", department_edit_names, methods=["POST"]),
    Route("/settings/departments/{dept_id:int}/verify", department_verify, methods=["POST"]),
    Route("/settings/departments/{dept_id:int}/status", department_status_page),
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
