"""Settings → Departments beyond the mail server form (rename, sender, interval; status with its
30-day chart; Verify end to end against the test Dovecot and SMTP sink) and the filtered, paged
lists of failed, held and logged mail, through Starlette's TestClient."""

from __future__ import annotations

import re

import pytest

import test_web
from test_web import _keep, csrf, signed_in

hd = test_web.hd  # the installation of test_web (departments Tech and Office, a user of each role)


def test_kept_mail_is_found_only_under_its_own_kind(hd):
    """A held mail is not shown (nor retried, released, discarded) through the failed-mail URL,
    and a failed one not through the held-mail URL."""
    c = signed_in(hd, "root@school.test")
    for kind, other in (("failed", "held"), ("held", "failed")):
        kept = _keep(hd, kind)
        assert c.get(f"/admin/{kind}/{kept}").status_code == 200
        for url in (f"/admin/{other}/{kept}", f"/admin/{other}/{kept}/raw", f"/admin/{other}/{kept}/discard"):
            r = c.get(url)
            assert r.status_code == 404 and "Not found." in r.text, url


def test_a_discarded_held_mail_stays_held(hd):
    """``kind`` outlives the status: once discarded, a held mail is still not a failed import
    (before ``kept_mail.kind`` a discarded row looked the same whichever list it came from)."""
    from helpdesk_core.services import failed, held
    from helpdesk_core.services.permissions import SYSTEM

    kept = _keep(hd, "held")
    with hd.session() as s:
        held.discard_held(s, actor=SYSTEM, held_id=kept)
        s.commit()
    c = signed_in(hd, "root@school.test")
    assert c.get(f"/admin/failed/{kept}").status_code == 404
    with hd.session() as s:
        assert [r["id"] for r in failed.list_failed(s, actor=SYSTEM, include_retried=True)] == []
        assert [r["id"] for r in held.list_held(s, actor=SYSTEM, status="discarded")] == [kept]


def _ids(app):
    from helpdesk_core.services.departments import get_department

    with app.session() as s:
        return get_department(s, "Tech").id, get_department(s, "Office").id


def _dept(app, dept_id):
    from helpdesk_core.models import Department

    with app.session() as s:
        d = s.get(Department, dept_id)
        return d.name, d.sender_address, d.interval_minutes


def test_department_rename_sender_and_interval(hd):
    tech, office = _ids(hd)
    c = signed_in(hd, "techadmin@school.test")
    token = csrf(c, "/tickets")
    r = c.post(f"/settings/departments/{tech}/edit", data={"csrf": token, "name": "Office", "sender": "tech@school.test",
                                                            "interval_minutes": "5"})
    assert r.status_code == 400 and "Department &#39;Office&#39; already exists" in r.text
    assert 'value="Office"' in r.text  # what was typed is shown again
    r = c.post(f"/settings/departments/{tech}/edit", data={"csrf": token, "name": "Tech Help", "sender": "help@school.test",
                                                            "interval_minutes": "abc"})
    assert r.status_code == 400 and "whole number" in r.text
    assert _dept(hd, tech) == ("Tech", "tech@school.test", 5)  # nothing saved
    r = c.post(f"/settings/departments/{tech}/edit", data={"csrf": token, "name": "Tech Help", "sender": "Help@school.test",
                                                            "interval_minutes": "10"})
    assert r.status_code == 200 and "Saved." in r.text
    assert _dept(hd, tech) == ("Tech Help", "help@school.test", 10)
    # another department's: refused, nothing changed
    r = c.post(f"/settings/departments/{office}/edit", data={"csrf": token, "name": "Mine", "sender": "x@school.test"})
    assert r.status_code == 403 and _dept(hd, office)[0] == "Office"


def test_departments_list_shows_each_mail_state(hd):
    from datetime import UTC, datetime

    from helpdesk_core.models import Department, Mailbox

    hd_ids = _ids(hd)
    with hd.session() as s:
        s.add(Department(name="Library", sender_address="lib@school.test", interval_minutes=5, options={}))
        for dept_id, since in zip(hd_ids, (None, datetime(2026, 11, 30, 8, 0, tzinfo=UTC)), strict=True):
            s.add(Mailbox(department_id=dept_id, provider="generic", identity=f"id{dept_id}", config={}, state={},
                          secrets_encrypted=hd.secrets.encrypt({}), last_success_at=datetime.now(UTC),
                          failing_since=since, last_error="refused" if since else None))
        s.commit()
    page = signed_in(hd, "root@school.test").get("/settings/departments").text
    states = dict(re.findall(r"<td>(\w+)</td><td>[^<]*</td><td>[^<]*</td>\s*<td class=\"state-[^\"]+\">([^<]+)</td>", page))
    assert states == {"Library": "not configured", "Office": "failing since 2026-11-30T08:00:00+00:00", "Tech": "OK"}


def test_status_page_with_chart_of_the_last_30_days(hd):
    from datetime import UTC, date, datetime, timedelta

    from helpdesk_core.models import LedgerEntry
    from helpdesk_core.services.departments import import_activity
    from helpdesk_core.services.permissions import SYSTEM

    tech, office = _ids(hd)
    today = datetime.now(UTC).date()
    with hd.session() as s:
        for n, (outcome, days_ago) in enumerate([("skipped", 0), ("held", 0), ("failed", 3), ("kept", 3),
                                                 ("imported", 40)]):
            s.add(LedgerEntry(department_id=tech, key=f"k{n}", raw_sha256="0" * 64, outcome=outcome,
                              created_at=datetime.now(UTC) - timedelta(days=days_ago)))
        s.commit()
        days = import_activity(s, actor=SYSTEM, department="Tech")
    assert len(days) == 30 and days[-1]["day"] == today.isoformat()
    assert days[-1] == {"day": today.isoformat(), "imported": 1, "skipped": 2, "failed": 0}  # the fixture's ticket
    assert days[-4] == {"day": (today - timedelta(days=3)).isoformat(), "imported": 0, "skipped": 0, "failed": 1}
    assert sum(d["imported"] for d in days) == 1  # 40 days ago is outside
    assert date.fromisoformat(days[0]["day"]) == today - timedelta(days=29)

    r = signed_in(hd, "agent@school.test").get(f"/settings/departments/{tech}/status")  # staff read it
    assert r.status_code == 200 and "<svg" in r.text and "<script" not in r.text.split("</head>")[1]
    assert r.text.count('class="bar-imported"') == 1 and r.text.count('class="bar-skipped"') == 1
    assert "imported (1)" in r.text and "skipped (2)" in r.text and "failed (1)" in r.text
    assert "Import now" not in r.text  # only with Manage Settings
    assert signed_in(hd, "office@school.test").get(f"/settings/departments/{tech}/status").status_code == 403
    r = signed_in(hd, "techadmin@school.test").get(f"/settings/departments/{tech}/status")
    assert "Last successful import" in r.text and "Messages waiting" in r.text


def test_test_connection_with_htmx_swaps_in_the_result(hd):
    tech, _ = _ids(hd)
    c = signed_in(hd, "root@school.test")
    page = c.get(f"/settings/departments/{tech}?provider=generic").text
    assert '<script src="/static/htmx.min.js"' in page and 'hx-post="/settings/departments/' in page
    assert c.get("/static/htmx.min.js").text.startswith("/* htmx 2.0.10")
    form = {"csrf": csrf(c, "/tickets"), "provider": "generic", "action": "test", "f_protocol": "imap",
            "f_host": "nonexistent.invalid", "f_email": "tech@school.test", "f_password": "pw", "f_security": "ssl"}
    r = c.post(f"/settings/departments/{tech}/mailbox", data=form, headers={"HX-Request": "true"})
    assert r.status_code == 200 and r.text.startswith('<div id="test-result">') and "<html" not in r.text
    assert 'data-kind="unknown_host"' in r.text and "nonexistent.invalid" in r.text
    r = c.post(f"/settings/departments/{tech}/mailbox", data=form)  # without JavaScript: the whole page
    assert r.status_code == 400 and "<html" in r.text and 'data-kind="unknown_host"' in r.text


def _keep_many(app):
    import hashlib
    from datetime import UTC, datetime

    from helpdesk_core.models import KeptMail

    tech, office = _ids(app)
    rows = [(tech, "failed", "Printer jam", 1), (tech, "failed", "Scanner", 2), (office, "failed", "Printer ink", 3),
            (tech, "retried", "Printer old", 4), (tech, "held", "Printer flood", 5)]
    with app.session() as s:
        for dept_id, status, subject, day in rows:
            raw = subject.encode()
            s.add(KeptMail(department_id=dept_id, raw=raw, raw_sha256=hashlib.sha256(raw).hexdigest(),
                               subject=subject, sender="x@example.test", error="boom", status=status,
                               created_at=datetime(2026, 11, day, 12, tzinfo=UTC)))
        s.commit()


def _subjects(page):
    return re.findall(r"<td>((?:Printer|Scanner)[^<]*)</td>", page)


def test_failed_held_and_log_lists_filter_and_page(hd, monkeypatch):
    from helpdesk_core.web import routes_admin

    _keep_many(hd)
    c = signed_in(hd, "root@school.test")
    assert _subjects(c.get("/admin/failed").text) == ["Printer jam", "Scanner", "Printer ink"]
    assert _subjects(c.get("/admin/failed?q=PRINTER&department=Tech").text) == ["Printer jam"]
    assert _subjects(c.get("/admin/failed?status=retried").text) == ["Printer old"]
    assert _subjects(c.get("/admin/failed?since=2026-11-02&until=2026-11-03").text) == ["Scanner", "Printer ink"]
    assert _subjects(c.get("/admin/held?q=printer").text) == ["Printer flood"]
    r = c.get("/admin/failed?since=yesterday")
    assert r.status_code == 400 and "YYYY-MM-DD" in r.text
    assert c.get("/admin/held?status=retried").status_code == 400
    # staff see only their departments; another department's filter is refused
    agent = signed_in(hd, "agent@school.test")
    assert _subjects(agent.get("/admin/failed").text) == ["Printer jam", "Scanner"]
    assert agent.get("/admin/failed?department=Office").status_code == 403
    monkeypatch.setattr(routes_admin, "PAGE_SIZE", 2)
    first = c.get("/admin/failed?q=r").text
    assert _subjects(first) == ["Printer jam", "Scanner"] and 'href="?q=r&amp;page=2" rel="next"' in first
    second = c.get("/admin/failed?q=r&page=2").text
    assert _subjects(second) == ["Printer ink"] and 'rel="prev"' in second and 'rel="next"' not in second

    # the import log: by outcome, department and text
    from helpdesk_core.models import ImportEvent

    tech, office = _ids(hd)
    with hd.session() as s:
        for dept_id, outcome, subject in [(tech, "skipped", "Out of office"), (tech, "failed", "Broken mail"),
                                          (office, "skipped", "Out of office too")]:
            s.add(ImportEvent(department_id=dept_id, key="k" * 64, raw_sha256="0" * 64, outcome=outcome,
                              reason="auto-reply", subject=subject, sender="a@example.test"))
        s.commit()
    page = c.get("/admin/log?status=skipped&department=Tech").text
    assert "Out of office" in page and "Broken mail" not in page and "Out of office too" not in page
    page = c.get("/admin/log?q=broken").text
    assert "Broken mail" in page and "Out of office" not in page


# ---- Verify end to end, against the test Dovecot (IMAP) and the SMTP sink ----------------------

@pytest.fixture
def imap_desk(tmp_path, sqlite_url, dovecot, mail_user, smtp_sink):
    """Department Tech importing ``mail_user``'s Dovecot INBOX over IMAPS, sending through the
    SMTP sink, acknowledging new tickets; a global admin who can sign in."""
    from helpdesk_core.services.auth import set_password
    from helpdesk_core.services.departments import set_department_options, set_mailbox
    from helpdesk_core.services.permissions import SYSTEM
    from helpdesk_core.services.users import add_user
    from helpdesk_core.testing.apps import environment, installation

    env = environment(tmp_path / "home", sqlite_url)
    app = installation(env, departments={"Tech": mail_user.email})
    app.env = env
    with app.session() as s:
        set_mailbox(app, s, actor=SYSTEM, department="Tech", provider="generic", secrets={"password": mail_user.password},
                    config={"protocol": "imap", "host": "127.0.0.1", "port": dovecot.imaps_port, "security": "ssl",
                            "email": mail_user.email, "ca_file": str(dovecot.ca_file), "smtp_host": "127.0.0.1",
                            "smtp_port": smtp_sink.port_starttls, "smtp_security": "starttls", "timeout": 5})
        set_department_options(s, actor=SYSTEM, department="Tech", acknowledge=True)
        add_user(s, actor=SYSTEM, email="root@school.test", role="admin")
        set_password(s, actor=SYSTEM, email="root@school.test", password=test_web.PASSWORD)
        s.commit()
        app.tech = _ids_of(s)["Tech"]
    yield app
    app.engine.dispose()


def _ids_of(s):
    from sqlalchemy import select

    from helpdesk_core.models import Department

    return {d.name: d.id for d in s.scalars(select(Department))}


def _nothing_made(app):
    from sqlalchemy import func, select

    from helpdesk_core.models import OutboxMessage, Ticket

    with app.session() as s:
        return s.scalar(select(func.count(Ticket.id))) == 0 and s.scalar(select(func.count(OutboxMessage.id))) == 0


def test_verify_end_to_end_sends_sees_and_removes_without_a_ticket(imap_desk, dovecot, mail_user, smtp_sink):
    from sqlalchemy import select

    from helpdesk_core.models import ImportEvent
    from helpdesk_core.services.permissions import SYSTEM
    from helpdesk_core.services.verify import verify_end_to_end

    smtp_sink.deliver_to = lambda rcpt, raw: dovecot.deliver(rcpt, raw)  # the sink delivers into Dovecot
    report = verify_end_to_end(imap_desk, actor=SYSTEM, department_id=imap_desk.tech, timeout=20, interval=0.2)
    assert [(leg["leg"], leg["ok"]) for leg in report["legs"]] == [("sent", True), ("seen", True), ("removed", True)]
    assert report["ok"] and not smtp_sink.errors
    [sent] = smtp_sink.messages
    assert sent.mail_from == mail_user.email and sent.rcpt_tos == (mail_user.email,)
    assert report["message_id"].encode() in sent.raw
    assert mail_user.count() == 0  # deleted from the mailbox
    assert _nothing_made(imap_desk)  # no ticket, no acknowledgement
    with imap_desk.session() as s:
        [event] = s.scalars(select(ImportEvent).where(ImportEvent.outcome == "skipped"))
        assert "own mail" in event.reason and event.message_id.strip("<>") == report["message_id"].strip("<>")


def test_verify_end_to_end_reports_a_mail_that_never_arrives(imap_desk, mail_user, smtp_sink, monkeypatch):
    from helpdesk_core.web import routes_settings

    monkeypatch.setattr(routes_settings, "VERIFY_TIMEOUT", 0)  # one import cycle, then the verdict
    c = signed_in(imap_desk, "root@school.test")  # the sink accepts the mail and delivers it nowhere
    page = c.get(f"/settings/departments/{imap_desk.tech}").text
    assert 'id="verify-form"' in page
    r = c.post(f"/settings/departments/{imap_desk.tech}/verify", data={"csrf": csrf(c, "/tickets")})
    assert r.status_code == 409 and "End-to-end check failed" in r.text
    legs = dict(re.findall(r'data-leg="(\w+)">\s*\w+: (.) ', r.text))
    assert legs == {"sent": "✓", "seen": "✗", "removed": "–"}, r.text[-1500:]
    assert "Not seen within 0 s" in r.text and len(smtp_sink.messages) == 1
    assert _nothing_made(imap_desk)
    # the same check from the command line
    from helpdesk_core.testing.apps import Cli

    result = Cli(imap_desk.env)("department", "verify", "Tech", "--timeout", "0", ok=False)
    assert result.exit_code == 1 and "sent: ok" in result.output and "seen: FAILED  Not seen within 0 s" in result.output
