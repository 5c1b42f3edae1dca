"""Mailed single-use links in the web app (services.account_links): the self-service password
reset, the sign-in link of requesters without a password, the invitation from the Users page —
each through the outbox, stored only as a hash, once, until it expires; and no answer tells
whether an address has an account."""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from helpdesk_core.models import OutboxMessage, TokenPurpose, User, UserToken
from helpdesk_core.services import account_links
from helpdesk_core.services.auth import set_password
from helpdesk_core.services.departments import set_mailbox
from helpdesk_core.services.permissions import ANONYMOUS, SYSTEM
from helpdesk_core.services.users import add_user
from helpdesk_core.testing.apps import environment, installation
from helpdesk_core.web.app import create_app

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase"


def _maildir(path):
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return str(path)


def make_site(env, tmp_path, smtp=None):
    """Tech has a Maildir mailbox (outgoing mail through ``smtp``: (config, secrets), if given);
    Office has none. Zoe is a requester member of Tech who never set a password."""
    app = installation(env, departments={"Tech": "tech@school.test", "Office": "office@school.test"})
    config = {"protocol": "maildir", "path": _maildir(tmp_path / "tech-mail"), "email": "tech@school.test"}
    secrets = {}
    if smtp:
        config, secrets = config | smtp[0], smtp[1]
    with app.session() as s:
        set_mailbox(app, s, actor=SYSTEM, department="Tech", provider="generic", config=config, secrets=secrets)
        for mail, role, dept, pw in [("root@school.test", "admin", None, True),
                                     ("techadmin@school.test", "admin", "Tech", True),
                                     ("agent@school.test", "agent", "Tech", True),
                                     ("alice@example.test", "requester", None, True),
                                     ("zoe@example.test", "requester", "Tech", False)]:
            add_user(s, actor=SYSTEM, email=mail, role=role, department=dept)
            if pw:
                set_password(s, actor=SYSTEM, email=mail, password=PASSWORD)
        s.commit()
    return app


@pytest.fixture
def site(tmp_path, sqlite_url, monkeypatch):
    monkeypatch.setenv("HELPDESK_MAILDIR_ROOT", str(tmp_path))
    app = make_site(environment(tmp_path / "home", sqlite_url), tmp_path)
    yield app
    app.engine.dispose()


def client(app, **kw) -> TestClient:
    return TestClient(create_app(app, **kw), follow_redirects=False)


def csrf(c: TestClient, url: str = "/login") -> str:
    return re.search(r'name="csrf" value="([^"]+)"', c.get(url).text).group(1)


def signed_in(app, mail: str) -> TestClient:
    c = client(app)
    assert c.post("/login", data={"email": mail, "password": PASSWORD, "csrf": csrf(c)}).status_code == 303
    return c


def outbox(app, kind=None):
    with app.session() as s:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        if kind:
            query = query.where(OutboxMessage.kind == kind)
        rows = list(s.scalars(query))
        s.expunge_all()
        return rows


def link_in(raw: bytes, path: str) -> str:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    text = msg.get_body(("plain",)).get_content()
    return re.search(rf"https?://\S+?({re.escape(path)}/[A-Za-z0-9_-]+)", text).group(1)


def test_password_reset_same_answer_link_once(site):
    c = client(site)
    token = csrf(c, "/password-reset")
    known = c.post("/password-reset", data={"csrf": token, "email": "Alice@Example.test"})
    unknown = c.post("/password-reset", data={"csrf": token, "email": "nobody@example.test"})
    assert known.status_code == unknown.status_code == 200
    assert known.text.replace("Alice@Example.test", "X") == unknown.text.replace("nobody@example.test", "X")
    [row] = outbox(site)
    assert (row.kind, row.recipients, row.ticket_id) == ("password_reset", ["alice@example.test"], None)
    msg = email.message_from_bytes(row.raw, policy=email.policy.default)
    assert msg["From"] == "Tech <tech@school.test>" and msg["Auto-Submitted"] == "auto-generated"
    path = link_in(row.raw, "/password-reset")
    secret = path.rsplit("/", 1)[1]
    with site.session() as s:  # only the hash is stored
        [stored] = s.scalars(select(UserToken))
        assert stored.purpose == TokenPurpose.RESET and stored.used_at is None
        assert stored.token_sha256 == hashlib.sha256(secret.encode()).hexdigest()
        assert stored.expires_at - stored.created_at == timedelta(hours=1)

    page = c.get(path)
    assert page.status_code == 200 and 'id="set-password-form"' in page.text and "alice@example.test" in page.text
    form = {"csrf": csrf(c, path), "password": "short", "password_again": "short"}
    r = c.post(path, data=form)
    assert r.status_code == 400 and "at least 10 characters" in r.text
    r = c.post(path, data={**form, "password": NEW_PASSWORD, "password_again": "typo"})
    assert r.status_code == 400 and "differ" in r.text
    r = c.post(path, data={**form, "password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
    assert r.status_code == 303 and c.get("/tickets").status_code == 200  # signed in
    again = client(site).get(path)
    assert again.status_code == 410 and "already used" in again.text
    c2 = client(site)
    assert c2.post("/login", data={"email": "alice@example.test", "password": PASSWORD,
                                   "csrf": csrf(c2)}).status_code == 401
    assert c2.post("/login", data={"email": "alice@example.test", "password": NEW_PASSWORD,
                                   "csrf": csrf(c2)}).status_code == 303


def test_expired_wrong_and_cut_off_links(site):
    past = datetime.now(UTC) - timedelta(hours=2)
    with site.session() as s:
        account_links.request_password_reset(site, s, actor=ANONYMOUS, email="alice@example.test",
                                             base_url="http://testserver", now=past)
        s.commit()
    path = link_in(outbox(site)[0].raw, "/password-reset")
    c = client(site)
    r = c.get(path)
    assert r.status_code == 410 and "expired" in r.text
    r = c.post(path, data={"csrf": csrf(c), "password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
    assert r.status_code == 410
    assert c.get(path[:-3]).status_code == 404 and "not valid" in c.get(path[:-3]).text
    # a reset link is not a sign-in link
    assert c.get(path.replace("/password-reset/", "/login/link/")).status_code == 404


def test_link_requests_are_throttled_and_capped(site):
    c = client(site)
    token = csrf(c, "/password-reset")
    for _ in range(3):
        assert c.post("/password-reset", data={"csrf": token, "email": "alice@example.test"}).status_code == 200
    r = c.post("/password-reset", data={"csrf": token, "email": "alice@example.test"})
    assert r.status_code == 429 and "Too many requests" in r.text
    # the service caps the mails to one user per hour whoever asks (several web processes)
    with site.session() as s:
        assert account_links.request_password_reset(site, s, actor=ANONYMOUS, email="alice@example.test",
                                                    base_url="http://x") is None
    assert len(outbox(site, "password_reset")) == account_links.MAX_PER_HOUR


def test_sign_in_link_for_requester_without_password(site):
    c = client(site)
    token = csrf(c)
    answers = {m: c.post("/login/link", data={"csrf": token, "email": m})
               for m in ("zoe@example.test", "alice@example.test", "agent@school.test", "nobody@example.test")}
    assert {r.status_code for r in answers.values()} == {200}
    assert len({r.text.replace(m, "X") for m, r in answers.items()}) == 1  # the same answer for all
    [row] = outbox(site)  # only zoe: no password, no staff role
    assert row.kind == "sign_in_link" and row.recipients == ["zoe@example.test"]
    path = link_in(row.raw, "/login/link")
    page = c.get(path)  # GET only shows the button (mail scanners open links)
    assert page.status_code == 200 and 'id="sign-in-link-use"' in page.text
    r = c.post(path, data={"csrf": csrf(c, path)})
    assert r.status_code == 303 and "Zoe" not in c.get("/tickets").text and c.get("/tickets").status_code == 200
    other = client(site)
    r = other.post(path, data={"csrf": csrf(other)})
    assert r.status_code == 410 and "already used" in r.text
    with site.session() as s:
        stored = s.scalar(select(UserToken))
        assert stored.expires_at - stored.created_at == timedelta(minutes=30) and stored.used_at is not None


def test_links_use_the_public_url(site):
    c = client(site, public_url="https://helpdesk.school.test/")
    c.post("/password-reset", data={"csrf": csrf(c, "/password-reset"), "email": "alice@example.test"},
           headers={"host": "evil.example"})
    text = email.message_from_bytes(outbox(site)[0].raw, policy=email.policy.default).get_body(("plain",))
    assert "https://helpdesk.school.test/password-reset/" in text.get_content()
    assert "evil.example" not in text.get_content()


def test_reset_mail_through_real_smtp_works_once(tmp_path, hd_env, dovecot, mail_user, smtp_sink, monkeypatch):
    """End to end: the form queues the mail, it is delivered to the SMTP sink after the answer,
    the link in the delivered mail sets the password once; the second use is refused clearly."""
    monkeypatch.setenv("HELPDESK_MAILDIR_ROOT", str(tmp_path))
    smtp = ({"email": mail_user.email, "smtp_host": "127.0.0.1", "smtp_port": smtp_sink.port_starttls,
             "smtp_security": "starttls", "ca_file": str(dovecot.ca_file)}, {"password": mail_user.password})
    app = make_site(hd_env, tmp_path, smtp=smtp)
    try:
        c = client(app)
        r = c.post("/password-reset", data={"csrf": csrf(c, "/password-reset"), "email": "agent@school.test"})
        assert r.status_code == 200 and "is on its way" in r.text
        [sent] = smtp_sink.messages
        assert sent.rcpt_tos == ("agent@school.test",) and sent.tls and sent.auth_login == mail_user.email
        assert outbox(app)[0].status == "sent"
        path = link_in(sent.raw, "/password-reset")
        user = client(app)
        form = {"csrf": csrf(user, path), "password": NEW_PASSWORD, "password_again": NEW_PASSWORD}
        assert user.post(path, data=form).status_code == 303
        again = client(app)
        r = again.post(path, data={**form, "csrf": csrf(again)})
        assert r.status_code == 410 and "This link was already used; it works only once." in r.text
    finally:
        app.engine.dispose()
