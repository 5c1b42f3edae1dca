"""The web admin's "Connect Google Workspace" (routes added with ``helpdesk_register_routes``):
the button posts, the browser goes to the consent screen of the local OAuth server (which approves
at once as the ``login_hint`` and redirects back), the callback exchanges the code and saves the
mailbox after an XOAUTH2 IMAP login to the test Dovecot; the page then shows the account."""

from __future__ import annotations

import re
import urllib.error
import urllib.request

from sqlalchemy import select
from starlette.testclient import TestClient

from helpdesk_core.models import Department
from helpdesk_core.services.auth import set_password
from helpdesk_core.services.permissions import SYSTEM
from helpdesk_core.services.users import add_user
from helpdesk_core.testing.apps import environment, installation
from helpdesk_core.web.app import create_app
from helpdesk_mail_google_oauth import service as svc

ADMIN, PASSWORD = "admin@school.test", "admin password 1"


class _Stop(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # the browser would follow; here we take the Location
        return None


def _consent_screen(url: str) -> str:
    """Open the consent URL as the admin's browser does; return where it redirects to."""
    try:
        urllib.request.build_opener(_Stop).open(url, timeout=10)
    except urllib.error.HTTPError as exc:
        assert exc.code == 302, exc
        return exc.headers["Location"]
    raise AssertionError("the consent screen did not redirect")


def _csrf(c: TestClient, url: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', c.get(url).text).group(1)


def test_connect_google_workspace_from_the_department_page(tmp_path, sqlite_url, dovecot, mail_user, oauth_server,
                                                           monkeypatch):
    monkeypatch.setenv("HELPDESK_MAILDIR_ROOT", str(dovecot.ca_file.parent))  # the CA file is a path setting
    app = installation(environment(tmp_path / "home", sqlite_url), departments={"Support": mail_user.email})
    client_id, secret = oauth_server.add_client()
    with app.session() as s:
        svc.set_client(app, s, actor=SYSTEM, client_id=client_id, client_secret=secret,
                       endpoints=oauth_server.endpoints)
        add_user(s, actor=SYSTEM, email=ADMIN, role="admin")
        set_password(s, actor=SYSTEM, email=ADMIN, password=PASSWORD)
        s.commit()
        dept_id = s.scalar(select(Department.id))
    c = TestClient(create_app(app), follow_redirects=False)
    assert c.post("/login", data={"email": ADMIN, "password": PASSWORD, "csrf": _csrf(c, "/login")}).status_code == 303
    page = c.get(f"/settings/departments/{dept_id}").text
    assert "Connect Google Workspace" in page and "Connected account" not in page
    assert c.get("/plugins/google/callback?code=x&state=y").status_code == 400  # nothing was started

    r = c.post(f"/plugins/google/connect/{dept_id}", data={
        "csrf": _csrf(c, "/tickets"), "imap_host": "127.0.0.1", "imap_port": str(dovecot.imaps_port),
        "ca_file": str(dovecot.ca_file)})
    assert r.status_code == 303 and r.headers["location"].startswith(oauth_server.endpoints["auth_url"] + "?")
    back = _consent_screen(r.headers["location"])
    assert back.startswith("http://testserver/plugins/google/callback?") and "code=" in back
    r = c.get(back)
    assert r.status_code == 303, r.text[:500]
    page = c.get(r.headers["location"]).text
    assert f"Connected account: <strong>{mail_user.email}</strong>" in page
    with app.session() as s:
        box = s.get(Department, dept_id).mailbox
        assert box.provider == "google" and box.config["email"] == mail_user.email
        assert box.config["imap_port"] == dovecot.imaps_port
    assert c.get(back).status_code == 400  # a callback works once
    app.engine.dispose()
