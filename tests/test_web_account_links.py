"""Mailed single-use links in the web app (services.account_links): the self-service password
reset, the sign-in link of requesters without a password, the invitation from the Users page —
each through the outbox, stored only as a hash, once, until it expires; and no answer tells
whether an address has an account."""

from __future__ import annotations

import email
import email.policy
import hashlib
import logging
import re
import shutil
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from helpdesk_core.models import OutboxMessage, TokenPurpose, User, UserToken
from helpdesk_core.services import account_links
from helpdesk_core.services.auth import set_password
from helpdesk_core.services.departments import set_mailbox
from helpdesk_core.services.permissions import ANONYMOUS, SYSTEM
from helpdesk_core.services.users import add_user
from helpdesk_core.testing.apps import environment, installation, make_app

from test_web import PASSWORD, client, csrf, signed_in

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
    hashed = None
    with app.session() as s:
        set_mailbox(app, s, actor=SYSTEM, department="Tech", provider="generic", config=config, secrets=secrets)
        for mail, role, dept, pw in [("root@school.test", "admin", None, True),
                                     ("techadmin@school.test", "admin", "Tech", True),
                                     ("agent@school.test", "agent", "Tech", True),
                                     ("alice@example.test", "requester", None, True),
                                     ("zoe@example.test", "requester", "Tech", False)]:
            user = add_user(s, actor=SYSTEM, email=mail, role=role, department=dept)
            if pw:  # one argon2 hash for all (they share the password)
                if hashed is None:
                    hashed = set_password(s, actor=SYSTEM, email=mail, password=PASSWORD).password_hash
                user.password_hash = hashed
        s.commit()
    return app


@pytest.fixture(scope="module")
def site_template(tmp_path_factory):
    """The site built (migrated, passwords hashed) once per module, on SQLite."""
    root = tmp_path_factory.mktemp("site")
    env = environment(root / "home", f"sqlite:///{root / 'helpdesk.db'}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HELPDESK_MAILDIR_ROOT", str(root))
        make_site(env, root).engine.dispose()
    return env, root / "helpdesk.db"


@pytest.fixture
def site(site_template, tmp_path):
    """A copy of the template site of its own."""
    env, db = site_template
    shutil.copy(db, tmp_path / "helpdesk.db")
    (tmp_path / "home").mkdir()
    app = make_app({**env, "HELPDESK_HOME": str(tmp_path / "home"),
                    "HELPDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'helpdesk.db'}"})
    yield app
    app.engine.dispose()




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


def test_reset_mail_through_real_smtp_works_once(tmp_path, hd_env, dovecot, mail_user, smtp_sink, monkeypatch,
                                                 caplog):
    """End to end: the form queues the mail, it is delivered to the SMTP sink after the answer,
    the link in the delivered mail sets the password once; the second use is refused clearly."""
    monkeypatch.setenv("HELPDESK_MAILDIR_ROOT", str(tmp_path))
    smtp = ({"email": mail_user.email, "smtp_host": "127.0.0.1", "smtp_port": smtp_sink.port_starttls,
             "smtp_security": "starttls", "ca_file": str(dovecot.ca_file)}, {"password": mail_user.password})
    app = make_site(hd_env, tmp_path, smtp=smtp)
    caplog.set_level(logging.DEBUG)
    try:
        c = client(app)
        r = c.post("/password-reset", data={"csrf": csrf(c, "/password-reset"), "email": "agent@school.test"})
        assert r.status_code == 200 and "is on its way" in r.text
        [sent] = smtp_sink.messages
        assert sent.rcpt_tos == ("agent@school.test",) and sent.tls and sent.auth_login == mail_user.email
        path = link_in(sent.raw, "/password-reset")
        [row] = outbox(app)  # sent: the outbox keeps no copy of the link
        assert row.status == "sent" and path.rsplit("/", 1)[1].encode() not in row.raw
        assert b"Subject: Reset your help desk password" in row.raw
        user = client(app)
        form = {"csrf": csrf(user, path), "password": NEW_PASSWORD, "password_again": NEW_PASSWORD}
        assert user.post(path, data=form).status_code == 303
        again = client(app)
        r = again.post(path, data={**form, "csrf": csrf(again)})
        assert r.status_code == 410 and "This link was already used; it works only once." in r.text
        ours = [r.getMessage() for r in caplog.records if r.name.startswith("helpdesk")]
        assert not [m for m in ours if path.rsplit("/", 1)[1] in m]  # never logged by us
    finally:
        app.engine.dispose()


# ---- invitations (Users page) ------------------------------------------------------------------

def test_invite_from_the_users_page(site):
    c = signed_in(site, "techadmin@school.test")
    page = c.get("/admin/users").text
    assert 'id="invite-form"' in page
    token = csrf(c, "/admin/users")
    r = c.post("/admin/users/invite", data={"csrf": token, "email": "Newbie@School.test", "name": "New Bie",
                                            "department": "Tech", "role": "agent"})
    assert r.status_code == 200 and "an invitation to choose a password is on its way" in r.text, r.text[:500]
    [row] = outbox(site, "invite")
    msg = email.message_from_bytes(row.raw, policy=email.policy.default)
    assert row.recipients == ["newbie@school.test"] and "techadmin@school.test invited you" in \
        msg.get_body(("plain",)).get_content()
    path = link_in(row.raw, "/invite")
    with site.session() as s:
        stored = s.scalar(select(UserToken).where(UserToken.purpose == TokenPurpose.INVITE))
        assert stored.expires_at - stored.created_at == timedelta(days=7)
    new = client(site)
    assert "Choose your password" in new.get(path).text
    assert new.get(path.replace("/invite/", "/password-reset/")).status_code == 404  # not a reset link
    r = new.post(path, data={"csrf": csrf(new, path), "password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
    assert r.status_code == 303 and "Desk" in new.get("/tickets").text  # signed in, as staff of Tech
    assert new.get(path).status_code == 410
    # within the rules of users.add_user: not into another department, not above its own role
    r = c.post("/admin/users/invite", data={"csrf": token, "email": "x@school.test", "department": "Office",
                                            "role": "agent"})
    assert r.status_code == 403 and "lacks the Manage Settings permission" in r.text
    # someone with a password only gets the role
    r = c.post("/admin/users/invite", data={"csrf": token, "email": "alice@example.test", "department": "Tech",
                                            "role": "requester"})
    assert r.status_code == 200 and "no invitation was mailed" in r.text
    assert len(outbox(site, "invite")) == 1
    with site.session() as s:
        assert s.scalar(select(User).where(User.email == "x@school.test")) is None


def test_users_nav_link_for_staff(site):
    assert 'href="/admin/users"' in signed_in(site, "agent@school.test").get("/tickets").text
    assert 'href="/admin/users"' not in signed_in(site, "alice@example.test").get("/tickets").text


# ---- the outbox page and the banner ------------------------------------------------------------

def _outbox_rows(app):
    """Tech: a failed reply (ticket 1) and a reply queued 2 hours ago (ticket 2); Office: a queued
    acknowledgement."""
    from helpdesk_core.services.departments import get_department
    from helpdesk_core.testing.apps import ingest
    from mailfactory import plain

    t1 = ingest(app, plain(sender="alice@example.test", subject="Printer", to="tech@school.test"),
                department="Tech").ticket_id
    t2 = ingest(app, plain(sender="alice@example.test", subject="Beamer", to="tech@school.test"),
                department="Tech").ticket_id
    with app.session() as s:
        tech, office = get_department(s, "Tech"), get_department(s, "Office")
        old = datetime.now(UTC) - timedelta(hours=2)
        rows = [OutboxMessage(department_id=tech.id, ticket_id=t1, kind="reply", mail_from="tech@school.test",
                              recipients=["alice@example.test"], raw=b"Subject: a\r\n\r\na\r\n", message_id="a@x",
                              subject="Re: Printer", status="failed",
                              last_error="554 5.7.1 <alice@example.test>: Relay access denied"),
                OutboxMessage(department_id=tech.id, ticket_id=t2, kind="reply", mail_from="tech@school.test",
                              recipients=["alice@example.test"], raw=b"Subject: b\r\n\r\nb\r\n", message_id="b@x",
                              subject="Re: Beamer", status="queued", created_at=old,
                              next_attempt_at=datetime.now(UTC) + timedelta(hours=1),
                              last_error="421 try again later"),
                OutboxMessage(department_id=office.id, kind="acknowledgement", mail_from="office@school.test",
                              recipients=["bob@example.test"], raw=b"Subject: c\r\n\r\nc\r\n", message_id="c@x",
                              subject="Office ack", status="queued")]
        s.add_all(rows)
        s.commit()
        return t1, t2, [r.id for r in rows]


def test_outbox_page_filters_and_permissions(site):
    _, _, (failed_id, waiting_id, office_id) = _outbox_rows(site)
    root = signed_in(site, "root@school.test").get("/outbox").text
    assert all(f'id="outbox-{i}"' in root for i in (failed_id, waiting_id, office_id))
    assert "554 5.7.1 &lt;alice@example.test&gt;: Relay access denied" in root
    admin = signed_in(site, "techadmin@school.test")
    page = admin.get("/outbox").text  # a department admin: its departments only
    assert f'id="outbox-{failed_id}"' in page and f'id="outbox-{office_id}"' not in page
    assert 'href="/outbox"' in page
    page = admin.get("/outbox?status=failed").text
    assert f'id="outbox-{failed_id}"' in page and f'id="outbox-{waiting_id}"' not in page
    page = signed_in(site, "root@school.test").get("/outbox?department=Office").text
    assert f'id="outbox-{office_id}"' in page and f'id="outbox-{failed_id}"' not in page
    assert signed_in(site, "agent@school.test").get("/outbox").status_code == 403
    assert signed_in(site, "alice@example.test").get("/outbox").status_code == 403


def test_outbox_retry_now(site):
    _, _, (failed_id, _, office_id) = _outbox_rows(site)
    admin = signed_in(site, "techadmin@school.test")
    assert admin.post(f"/outbox/{failed_id}/retry", data={}).status_code == 403  # no CSRF token
    token = csrf(admin, "/outbox")
    assert admin.post(f"/outbox/{office_id}/retry", data={"csrf": token}).status_code == 404  # not its department
    r = admin.post(f"/outbox/{failed_id}/retry", data={"csrf": token})
    assert r.status_code == 303 and r.headers["location"] == f"/outbox?retried={failed_id}"
    [row] = [o for o in outbox(site) if o.id == failed_id]
    assert row.attempts == 1 and row.last_error != "554 5.7.1 <alice@example.test>: Relay access denied"
    notice = admin.get(r.headers["location"]).text
    assert f"Message {failed_id}: {row.status}" in notice


def test_reply_problem_banner(site):
    t1, t2, _ = _outbox_rows(site)
    agent = signed_in(site, "agent@school.test")
    desk = agent.get("/tickets").text
    banner = desk.split('id="outbox-banner"')[1].split("</div>")[0]
    assert f'href="/tickets/{t1}"' in banner and "could not be sent: 554 5.7.1" in banner
    assert f'href="/tickets/{t2}"' in banner and "has waited since" in banner
    page = agent.get(f"/tickets/{t1}").text
    assert 'id="outbox-banner"' in page and f'href="/tickets/{t2}"' not in page
    # the requester and other departments' staff learn nothing of it
    assert 'id="outbox-banner"' not in signed_in(site, "alice@example.test").get(f"/tickets/{t1}").text
    from helpdesk_core.services.outbox import reply_problems
    with site.session() as s:
        root = s.scalar(select(User).where(User.email == "root@school.test"))
        assert set(reply_problems(s, actor=root, ticket_ids=[t1, t2])) == {t1, t2}
        assert reply_problems(s, actor=root, ticket_ids=[t2], now=datetime.now(UTC) - timedelta(minutes=90)) == {}


def test_cli_user_invite(site):
    from helpdesk_core.testing.apps import Cli

    env = {"HELPDESK_HOME": str(site.config.home), "HELPDESK_DATABASE_URL": site.config.database_url,
           "HELPDESK_SECRET_KEY": site.config.secret_key}
    cli = Cli(env)
    args = ["--as", "techadmin@school.test", "user", "invite", "--role", "agent", "--public-url",
            "https://hd.school.test"]
    out = cli(*args, "New@School.test", "--department", "Tech")
    assert "User new@school.test is agent of 'Tech'; invitation" in out.output
    [row] = outbox(site, "invite")
    assert link_in(row.raw, "/invite").startswith("/invite/") and b"https://hd.school.test/invite/" in row.raw
    refused = cli(*args, "y@school.test", "--department", "Office", ok=False)
    assert refused.exit_code != 0 and "lacks the Manage Settings permission" in refused.output
