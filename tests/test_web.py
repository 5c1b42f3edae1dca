"""The web app through Starlette's TestClient: sign-in and its throttle, security headers, CSRF,
Settings → Departments (Mail Server Configuration from the provider's fields, validated before
saving), the desk and the portal, each page against each role."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from helpdesk_core import hookimpl
from helpdesk_core.services.auth import set_password
from helpdesk_core.services.permissions import SYSTEM
from helpdesk_core.services.replies import reply_to_ticket
from helpdesk_core.services.users import add_user
from helpdesk_core.testing.apps import ingest, installation
from helpdesk_core.web.app import create_app
from mailfactory import html_and_text, plain

PASSWORD = "correct horse battery"
USERS = {  # email → (role, department)
    "root@school.test": ("admin", None),
    "techadmin@school.test": ("admin", "Tech"),
    "agent@school.test": ("agent", "Tech"),
    "office@school.test": ("agent", "Office"),
    "alice@example.test": ("requester", None),
    "zoe@example.test": ("requester", None),
    "pupil@example.test": ("requester", "Tech"),
}


@pytest.fixture
def hd(hd_env):
    app = installation(hd_env, departments={"Tech": "tech@school.test", "Office": "office@school.test"})
    with app.session() as s:
        for email, (role, dept) in USERS.items():
            add_user(s, actor=SYSTEM, email=email, role=role, department=dept)
            set_password(s, actor=SYSTEM, email=email, password=PASSWORD)
        s.commit()
    out = ingest(app, plain(sender="Alice <alice@example.test>"), department="Tech")
    app.ticket_id = out.ticket_id
    with app.session() as s:
        reply_to_ticket(app, s, actor=SYSTEM, ticket_id=out.ticket_id, body="staff only secret note",
                        internal=True)
        s.commit()
    yield app
    app.engine.dispose()


def client(app, **kw) -> TestClient:
    return TestClient(create_app(app, **kw), follow_redirects=False)


def csrf(c: TestClient, url: str = "/login") -> str:
    return re.search(r'name="csrf" value="([^"]+)"', c.get(url).text).group(1)


def signed_in(app, email: str) -> TestClient:
    c = client(app)
    r = c.post("/login", data={"email": email, "password": PASSWORD, "csrf": csrf(c)})
    assert r.status_code == 303, r.text
    return c


def test_healthz_and_security_headers(hd):
    c = client(hd)
    r = c.get("/healthz")
    assert r.status_code == 200 and r.text == "ok"
    r = c.get("/login")
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert re.findall(r"<script[^>]*>", r.text) == ['<script src="/static/htmx.min.js" defer>']  # no inline script


def test_sign_in_wrong_password_and_throttle(hd):
    c = client(hd)
    token = csrf(c)
    assert c.get("/tickets").status_code == 303  # to /login
    r = c.post("/login", data={"email": "agent@school.test", "password": "nope", "csrf": token})
    assert r.status_code == 401 and "Wrong email or password" in r.text
    r = c.post("/login", data={"email": "nobody@school.test", "password": "nope", "csrf": token})
    assert r.status_code == 401 and "Wrong email or password" in r.text  # same answer
    for _ in range(4):
        c.post("/login", data={"email": "agent@school.test", "password": "nope", "csrf": token})
    r = c.post("/login", data={"email": "agent@school.test", "password": PASSWORD, "csrf": token})
    assert r.status_code == 429 and "Too many failed sign-ins" in r.text
    # another account from the same address still works (the per-address limit is higher)
    r = c.post("/login", data={"email": "root@school.test", "password": PASSWORD, "csrf": token})
    assert r.status_code == 303


def test_passwords_are_stored_as_argon2id_at_the_rfc_9106_cost():
    """The suite hashes with argon2's cheapest profile (tests/conftest.py); production does not."""
    from argon2 import PasswordHasher, extract_parameters
    from argon2.profiles import RFC_9106_LOW_MEMORY

    from helpdesk_core.services import auth

    assert auth.PASSWORD_PARAMETERS == RFC_9106_LOW_MEMORY
    stored = PasswordHasher.from_parameters(auth.PASSWORD_PARAMETERS).hash(PASSWORD)
    assert stored.startswith("$argon2id$")
    assert extract_parameters(stored) == RFC_9106_LOW_MEMORY


def test_unsafe_request_without_csrf_token_is_refused(hd):
    c = signed_in(hd, "agent@school.test")
    r = c.post(f"/tickets/{hd.ticket_id}/reply", data={"body": "hi", "kind": "note"})
    assert r.status_code == 403
    c2 = client(hd)
    assert c2.post("/login", data={"email": "agent@school.test", "password": PASSWORD}).status_code == 403


def test_logout(hd):
    c = signed_in(hd, "agent@school.test")
    token = csrf(c, "/tickets")
    assert c.post("/logout", data={"csrf": token}).status_code == 303
    assert c.get("/tickets").status_code == 303


# each role against each page: allowed (200) or refused (403 / 404 that reveals nothing)
MATRIX = [
    ("/settings/departments", {"root@school.test": 200, "techadmin@school.test": 403, "agent@school.test": 403,
                               "alice@example.test": 403}),
    ("/settings/departments/{tech}", {"root@school.test": 200, "techadmin@school.test": 200,
                                      "agent@school.test": 403, "alice@example.test": 403}),
    ("/settings/departments/{office}", {"root@school.test": 200, "techadmin@school.test": 403}),
    ("/tickets", {"root@school.test": 200, "agent@school.test": 200, "alice@example.test": 200,
                  "zoe@example.test": 200}),
    ("/tickets/{ticket}", {"root@school.test": 200, "techadmin@school.test": 200, "agent@school.test": 200,
                           "office@school.test": 404, "alice@example.test": 200, "zoe@example.test": 404}),
    ("/tickets/999999", {"root@school.test": 404, "zoe@example.test": 404}),
    ("/tickets/new", {"root@school.test": 200, "agent@school.test": 200, "pupil@example.test": 200,
                      "zoe@example.test": 200}),
]


@pytest.mark.parametrize("url,expected", MATRIX)
def test_permission_matrix(hd, url, expected):
    from helpdesk_core.services.departments import get_department

    with hd.session() as s:
        ids = {"tech": get_department(s, "Tech").id, "office": get_department(s, "Office").id,
               "ticket": hd.ticket_id}
    for email, status in expected.items():
        r = signed_in(hd, email).get(url.format(**ids))
        assert r.status_code == status, (email, url, r.text[:300])
        if status == 404:
            assert "Not found." in r.text and "Printer" not in r.text


def test_portal_hides_internal_notes_and_reply_form(hd):
    c = signed_in(hd, "alice@example.test")
    page = c.get(f"/tickets/{hd.ticket_id}").text
    assert "Printer broken" in page and "staff only secret note" not in page and "reply-form" not in page
    staff = signed_in(hd, "agent@school.test").get(f"/tickets/{hd.ticket_id}").text
    assert "staff only secret note" in staff and "reply-form" in staff
    r = c.post(f"/tickets/{hd.ticket_id}/reply", data={"body": "x", "kind": "note", "csrf": csrf(c, "/tickets")})
    assert r.status_code == 403


def test_reply_with_attachment_and_safe_download(hd):
    c = signed_in(hd, "agent@school.test")
    token = csrf(c, "/tickets")
    r = c.post(f"/tickets/{hd.ticket_id}/reply", data={"body": "Here is the manual", "kind": "note", "csrf": token},
               files={"attachment": ("manual<script>.html", b"<script>alert(1)</script>", "text/html")})
    assert r.status_code == 303, r.text
    page = c.get(f"/tickets/{hd.ticket_id}").text
    assert "Here is the manual" in page and "manual&lt;script&gt;.html" in page
    href = re.search(r'href="(/tickets/\d+/attachments/\d+)"', page).group(1)
    r = c.get(href)
    assert r.content == b"<script>alert(1)</script>"
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-type"] == "application/octet-stream"
    # the requester cannot fetch the note's attachment
    assert signed_in(hd, "alice@example.test").get(href).status_code == 404


def test_html_mail_is_shown_in_a_sandboxed_iframe(hd):
    out = ingest(hd, html_and_text(sender="alice@example.test"), department="Tech")
    page = signed_in(hd, "agent@school.test").get(f"/tickets/{out.ticket_id}").text
    frame = re.search(r"<iframe ([^>]*)>", page).group(1)
    assert 'sandbox=""' in frame and "srcdoc=" in frame
    assert "default-src &#39;none&#39;" in frame or "default-src 'none'" in frame


def test_department_mail_server_form_is_rendered_from_provider_fields(hd):
    from helpdesk_core.services.departments import get_department

    c = signed_in(hd, "root@school.test")
    with hd.session() as s:
        tech = get_department(s, "Tech").id
    page = c.get(f"/settings/departments/{tech}?provider=generic").text
    prov = hd.providers.get("generic")
    for f in prov.fields:
        assert f'name="f_{f.name}"' in page
        if f.secret:
            assert re.search(rf'type="password" name="f_{f.name}"', page)
    assert "not configured" in c.get("/settings/departments").text


def test_department_save_refuses_bad_settings_and_saves_nothing(hd):
    from helpdesk_core.services.departments import get_department

    c = signed_in(hd, "root@school.test")
    with hd.session() as s:
        tech = get_department(s, "Tech").id
    token = csrf(c, "/tickets")
    r = c.post(f"/settings/departments/{tech}/mailbox", data={
        "csrf": token, "provider": "generic", "action": "save", "f_protocol": "imap", "f_host": "nonexistent.invalid",
        "f_email": "tech@school.test", "f_password": "pw", "f_timeout": "5", "f_security": "ssl"})
    assert r.status_code == 400 and "nonexistent.invalid" in r.text and 'data-kind="unknown_host"' in r.text
    assert 'value="pw"' not in r.text
    with hd.session() as s:
        assert get_department(s, "Tech").mailbox is None


def test_add_department(hd):
    c = signed_in(hd, "root@school.test")
    token = csrf(c, "/tickets")
    r = c.post("/settings/departments", data={"csrf": token, "name": "Library", "sender": "not-an-address"})
    assert r.status_code == 400 and "email address" in r.text
    r = c.post("/settings/departments", data={"csrf": token, "name": "Library", "sender": "lib@school.test"})
    assert r.status_code == 303
    assert "Library" in c.get("/settings/departments").text


class RoutePlugin:
    @hookimpl
    def helpdesk_register_routes(self, register):
        from starlette.responses import PlainTextResponse

        register("/plugins/hello", lambda request: PlainTextResponse("hello from a plugin"))


def test_hook_helpdesk_register_routes(hd_env):
    app = installation(hd_env, RoutePlugin(), departments={})
    c = client(app)
    r = c.get("/plugins/hello")
    assert r.text == "hello from a plugin" and r.headers["x-frame-options"] == "DENY"

    class Clash:
        @hookimpl
        def helpdesk_register_routes(self, register):
            register("/login", lambda request: None)

    with pytest.raises(ValueError, match="/login"):
        create_app(installation(hd_env, Clash(), departments={"X": "x@school.test"}))


def test_general_settings_validated_all_or_nothing(hd):
    from helpdesk_core.services.settings import show_settings

    assert signed_in(hd, "techadmin@school.test").get("/settings/general").status_code == 403
    c = signed_in(hd, "root@school.test")
    page = c.get("/settings/general").text
    assert "attachments.max_size_mb" in page and "Largest attachment kept" in page
    token = csrf(c, "/settings/general")
    form = dict(re.findall(r'<input name="([^"]+)" value="([^"]*)"', page))
    bad = {**form, "attachments.max_size_mb": "25", "mail.ticket_reference_format": "no number here", "csrf": token}
    r = c.post("/settings/general", data=bad)
    assert r.status_code == 400 and "Nothing was saved" in r.text
    with hd.session() as s:
        assert show_settings(s, actor=SYSTEM)["attachments.max_size_mb"] == 10.0
    r = c.post("/settings/general", data={**form, "attachments.max_size_mb": "25", "csrf": token})
    assert r.status_code == 200 and "Saved 1 setting(s)" in r.text
    with hd.session() as s:
        assert show_settings(s, actor=SYSTEM)["attachments.max_size_mb"] == 25.0


@pytest.mark.parametrize("view", ["log", "failed", "held", "outbox"])
def test_admin_lists(hd, view):
    # the import log, failed and held mail: their departments' staff; the outbox: global admins
    assert signed_in(hd, "agent@school.test").get(f"/admin/{view}").status_code == (403 if view == "outbox" else 200)
    assert signed_in(hd, "alice@example.test").get(f"/admin/{view}").status_code == 403
    r = signed_in(hd, "root@school.test").get(f"/admin/{view}")
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("email,department,expected", [
    ("pupil@example.test", "Tech", 303),   # a requester in a department they belong to
    ("pupil@example.test", "Office", 403),  # not theirs
    ("zoe@example.test", "Tech", 403),      # belongs to no department
    ("agent@school.test", "Tech", 303),     # staff, for themselves
])
def test_portal_new_ticket(hd, email, department, expected):
    c = signed_in(hd, email)
    form = c.get("/tickets/new").text
    if email == "pupil@example.test":
        assert '<option value="Tech"' in form and '<option value="Office"' not in form
    if email == "zoe@example.test":
        assert "do not belong to any department" in form
    token = csrf(c, "/tickets")
    r = c.post("/tickets/new", data={"csrf": token, "department": department, "subject": "Projector <b>dead</b>",
                                     "body": "It makes no picture."})
    assert r.status_code == expected, r.text[:300]
    if expected == 303:
        page = c.get(r.headers["location"]).text
        assert "Projector &lt;b&gt;dead&lt;/b&gt;" in page and "It makes no picture." in page
        assert any(t["subject"] == "Projector <b>dead</b>" for t in _tickets(hd, email))


def _tickets(app, email):
    from helpdesk_core.services.permissions import resolve_actor
    from helpdesk_core.services.tickets import list_tickets

    with app.session() as s:
        return list_tickets(s, actor=resolve_actor(s, email))


def test_portal_new_ticket_needs_subject_and_text(hd):
    c = signed_in(hd, "pupil@example.test")
    r = c.post("/tickets/new", data={"csrf": csrf(c, "/tickets"), "department": "Tech", "subject": "kept",
                                     "body": "  "})
    assert r.status_code == 400 and "Write a subject and a description first." in r.text and 'value="kept"' in r.text
    assert _tickets(hd, "pupil@example.test") == []


def _keep(app, status: str) -> int:
    """A kept raw mail of Tech (failed or held) whose body carries markup."""
    import hashlib

    from helpdesk_core.models import KeptMail
    from helpdesk_core.services.departments import get_department

    raw = plain(sender="Mallory <mallory@example.test>", subject="Kept one",
                body="<script>alert(1)</script> please help")
    with app.session() as s:
        row = KeptMail(department_id=get_department(s, "Tech").id, raw=raw,
                           raw_sha256=hashlib.sha256(raw).hexdigest(), subject="Kept one",
                           sender="mallory@example.test", error="boom", status=status)
        s.add(row)
        s.commit()
        return row.id


def _kept_status(app, kept_id: int) -> str:
    from helpdesk_core.models import KeptMail

    with app.session() as s:
        return s.get(KeptMail, kept_id).status


@pytest.mark.parametrize("kind", ["failed", "held"])
@pytest.mark.parametrize("email,view,act", [
    ("root@school.test", 200, 200),
    ("techadmin@school.test", 200, 200),
    ("agent@school.test", 200, 403),      # staff reads, only Manage Settings acts
    ("office@school.test", 404, 404),     # another department's: does not exist
    ("alice@example.test", 403, 403),
])
def test_kept_mail_permissions(hd, kind, email, view, act):
    kept = _keep(hd, kind)
    c = signed_in(hd, email)
    assert c.get(f"/admin/{kind}/{kept}").status_code == view
    assert c.get(f"/admin/{kind}/{kept}/raw").status_code == view
    action = "retry" if kind == "failed" else "release"
    token = csrf(c, "/tickets")
    assert c.post(f"/admin/{kind}/{kept}/{action}", data={"csrf": token}).status_code == act
    assert _kept_status(hd, kept) == (kind if act != 200 else "retried" if kind == "failed" else "released")


@pytest.mark.parametrize("kind", ["failed", "held"])
def test_kept_mail_shown_escaped_and_downloaded_safely(hd, kind):
    kept = _keep(hd, kind)
    c = signed_in(hd, "root@school.test")
    assert f'href="/admin/{kind}/{kept}"' in c.get(f"/admin/{kind}").text
    page = c.get(f"/admin/{kind}/{kept}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; please help" in page and "<script>alert" not in page
    r = c.get(f"/admin/{kind}/{kept}/raw")
    assert b"<script>alert(1)</script>" in r.content
    assert r.headers["content-disposition"].startswith("attachment;") and f"{kind}-{kept}.eml" in \
        r.headers["content-disposition"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-type"] == "application/octet-stream"


@pytest.mark.parametrize("kind,action,done", [("failed", "retry", "retried"), ("held", "release", "released")])
def test_kept_mail_retry_or_release_imports_it(hd, kind, action, done):
    kept = _keep(hd, kind)
    c = signed_in(hd, "root@school.test")
    r = c.post(f"/admin/{kind}/{kept}/{action}", data={"csrf": csrf(c, "/tickets")})
    assert r.status_code == 200 and "Imported (created" in r.text, r.text[:500]
    assert _kept_status(hd, kept) == done
    assert any(t["subject"] == "Kept one" for t in _tickets(hd, "root@school.test"))
    wrong = "release" if kind == "failed" else "retry"
    assert c.post(f"/admin/{kind}/{kept}/{wrong}", data={"csrf": csrf(c, "/tickets")}).status_code == 404


@pytest.mark.parametrize("kind", ["failed", "held"])
def test_kept_mail_discard_after_confirmation(hd, kind):
    kept = _keep(hd, kind)
    c = signed_in(hd, "root@school.test")
    confirm = c.get(f"/admin/{kind}/{kept}/discard")
    assert confirm.status_code == 200 and 'id="confirm-form"' in confirm.text
    assert _kept_status(hd, kept) == kind  # asking changes nothing
    assert c.post(f"/admin/{kind}/{kept}/discard", data={}).status_code == 403  # no CSRF token
    token = re.search(r'name="csrf" value="([^"]+)"', confirm.text).group(1)
    r = c.post(f"/admin/{kind}/{kept}/discard", data={"csrf": token})
    assert r.status_code == 303 and r.headers["location"] == f"/admin/{kind}"
    assert _kept_status(hd, kept) == "discarded"
    assert f'href="/admin/{kind}/{kept}"' not in c.get(f"/admin/{kind}").text


@pytest.mark.parametrize("email,status,form,departments", [
    ("root@school.test", 200, True, ["Office", "Tech"]),
    ("techadmin@school.test", 200, True, ["Tech"]),   # only where it has Manage Settings
    ("agent@school.test", 200, False, []),            # staff see their departments' members
    ("alice@example.test", 403, False, []),
])
def test_users_page(hd, email, status, form, departments):
    r = signed_in(hd, email).get("/admin/users")
    assert r.status_code == status, r.text[:300]
    assert ('id="role-form"' in r.text) == form
    if form:
        role_form = r.text.split('id="role-form"')[1].split("</form>")[0]
        assert re.findall(r'<option value="([A-Z][a-z]+)"', role_form) == departments
    if status == 200:
        assert "pupil@example.test" in r.text and "Tech: requester" in r.text


def _role(app, email: str, department: str):
    from helpdesk_core.services.departments import get_department
    from helpdesk_core.services.permissions import resolve_actor

    with app.session() as s:
        role = resolve_actor(s, email).role_in(get_department(s, department).id)
        return None if role is None else str(role)


@pytest.mark.parametrize("actor,email,department,role,status,message,after", [
    ("root@school.test", "pupil@example.test", "Office", "agent", 200, "is agent of 'Office'", "agent"),
    ("techadmin@school.test", "pupil@example.test", "Tech", "agent", 200, "is agent of 'Tech'", "agent"),
    ("techadmin@school.test", "Agent@School.test", "Tech", "admin", 200, "is admin of 'Tech'", "admin"),
    ("techadmin@school.test", "pupil@example.test", "Office", "agent", 403,
     "lacks the Manage Settings permission for department &#39;Office&#39;", None),
    ("techadmin@school.test", "root@school.test", "Tech", "requester", 403,
     "is a global admin: only a global admin can change them", None),
    ("agent@school.test", "pupil@example.test", "Tech", "agent", 403, "lacks the Manage Settings", "requester"),
    ("root@school.test", "pupil@example.test", "Tech", "remove", 200, "removed from 'Tech'", None),
    ("root@school.test", "zoe@example.test", "Tech", "remove", 404, "is not a member of", None),
    ("root@school.test", "not-an-address", "Tech", "agent", 400, "is not an email address", None),
    ("root@school.test", "pupil@example.test", "Tech", "boss", 400, "Unknown role", "requester"),
])
def test_users_change_role_per_department(hd, actor, email, department, role, status, message, after):
    c = signed_in(hd, actor)
    r = c.post("/admin/users/role", data={"csrf": csrf(c, "/tickets"), "email": email, "department": department,
                                          "role": role})
    assert r.status_code == status, r.text[:500]
    assert message.replace("'", "&#39;") in r.text, r.text[:800]
    if "@" in email and email != "root@school.test":
        assert _role(hd, email.lower(), department) == after


def _state(app):
    from sqlalchemy import select

    from helpdesk_core.models import Ticket, TicketEvent

    with app.session() as s:
        t = s.get(Ticket, app.ticket_id)
        kinds = list(s.scalars(select(TicketEvent.kind).where(TicketEvent.ticket_id == t.id).order_by(TicketEvent.id)))
        return (str(t.status), t.assignee.email if t.assignee else None, str(t.priority), sorted(t.tags), kinds)


def test_ticket_set_form_changes_only_what_differs(hd):
    c = signed_in(hd, "agent@school.test")
    page = c.get(f"/tickets/{hd.ticket_id}").text
    assert 'id="ticket-set-form"' in page
    assert '<option value="agent@school.test"' in page and '<option value="office@school.test"' not in page
    token = csrf(c, "/tickets")
    before = _state(hd)[4]
    r = c.post(f"/tickets/{hd.ticket_id}/set", data={"csrf": token, "status": "pending", "priority": "high",
                                                     "assignee": "agent@school.test", "tags": "Printer, room  12"})
    assert r.status_code == 303, r.text[:500]
    status, assignee, priority, tags, events = _state(hd)
    assert (status, assignee, priority, tags) == ("pending", "agent@school.test", "high", ["printer", "room 12"])
    assert events[len(before):].count("tag_added") == 2
    page = c.get(f"/tickets/{hd.ticket_id}").text
    assert '<option value="pending" selected>' in page and 'value="printer, room 12"' in page
    # the same state again records nothing; then unassign and drop a tag
    c.post(f"/tickets/{hd.ticket_id}/set", data={"csrf": token, "status": "pending", "priority": "high",
                                                 "assignee": "agent@school.test", "tags": "printer, room 12"})
    assert len(_state(hd)[4]) == len(events)
    c.post(f"/tickets/{hd.ticket_id}/set", data={"csrf": token, "status": "pending", "priority": "high",
                                                 "assignee": "", "tags": "room 12"})
    assert _state(hd)[1:4] == (None, "high", ["room 12"])


@pytest.mark.parametrize("email,data,status,message", [
    ("agent@school.test", {"assignee": "office@school.test"}, 400, "cannot be assigned ticket"),
    ("agent@school.test", {"status": "weird"}, 400, "Unknown status"),
    ("agent@school.test", {"tags": "x" * 101}, 400, "A tag needs 1 to 100 characters"),
    ("alice@example.test", {"status": "closed"}, 403, ""),   # the requester sees the ticket, may not set it
    ("office@school.test", {"status": "closed"}, 404, "Not found."),
])
def test_ticket_set_refused(hd, email, data, status, message):
    c = signed_in(hd, email)
    before = _state(hd)
    form = {"status": "open", "priority": "normal", "assignee": "", "tags": "", **data}
    r = c.post(f"/tickets/{hd.ticket_id}/set", data={"csrf": csrf(c, "/tickets"), **form})
    assert r.status_code == status and message in r.text, r.text[:500]
    assert _state(hd) == before
    if email == "alice@example.test":
        assert 'id="ticket-set-form"' not in c.get(f"/tickets/{hd.ticket_id}").text
