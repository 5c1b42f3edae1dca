"""Issue 10, cases 1-3: internal notes, department-admin escalation, unguarded reads — as an
attacker would try them through the command line (``--as EMAIL``), on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json

import pytest

from helpdesk_core.models import KeptMail, ImportEvent
from helpdesk_core.services import departments as dsvc
from helpdesk_core.services.imports import ingest_raw
from helpdesk_core.services.permissions import SYSTEM
from helpdesk_core.services.users import add_user

from mailfactory import plain

SECRET_NOTE = "the requester's laptop is stolen property"
RAW_FAILED = b"From: carol@example.test\r\nSubject: carol's private mail\r\n\r\nmy password is hunter2\r\n"


@pytest.fixture
def desk(cli, tmp_path):
    """IT and HR; a requester (alice) with a ticket in IT and a participant on it (pat), an IT
    agent, an IT admin, an HR agent, a global admin (root); a failed and a held import in HR."""
    app = cli.app()
    with app.session() as s:
        for name in ("IT", "HR"):
            dsvc.add_department(s, actor=SYSTEM, name=name, sender=f"{name.lower()}@school.test")
        add_user(s, actor=SYSTEM, email="alice@example.test", role="requester")
        add_user(s, actor=SYSTEM, email="agent@school.test", role="agent", department="IT")
        add_user(s, actor=SYSTEM, email="itadmin@school.test", role="admin", department="IT")
        add_user(s, actor=SYSTEM, email="hragent@school.test", role="agent", department="HR")
        add_user(s, actor=SYSTEM, email="root@school.test", role="admin")
        raw = plain(subject="laptop", sender="alice@example.test", cc="pat@example.test", to="it@school.test")
        assert ingest_raw(app, s, actor=SYSTEM, department="IT", raw=raw).status == "created"
        hr = dsvc.get_department(s, "HR")
        for status in ("failed", "held"):
            s.add(KeptMail(department_id=hr.id, raw=RAW_FAILED, raw_sha256=hashlib.sha256(RAW_FAILED).hexdigest(),
                               subject="carol's private mail", sender="carol@example.test", error="boom",
                               status=status))
        s.add(ImportEvent(department_id=hr.id, key="k" * 64, raw_sha256="0" * 64, outcome="failed",
                          reason="boom", subject="carol's private mail", sender="carol@example.test"))
        s.commit()
    (tmp_path / "note.txt").write_text(SECRET_NOTE, encoding="utf-8")
    cli("--as", "agent@school.test", "ticket", "reply", "1", "--internal", "--body-file", str(tmp_path / "note.txt"))
    return cli


def _fails(cli, *args: str) -> str:
    result = cli(*args, ok=False)
    assert result.exit_code != 0, f"helpdesk {' '.join(args)} answered:\n{result.output}"
    return result.output


def test_case1_internal_notes_never_reach_requesters(desk):
    staff = desk.json("--as", "agent@school.test", "ticket", "show", "1", "--json")
    assert any(m["kind"] == "note" for m in staff["messages"])  # staff see the note
    for who in ("alice@example.test", "pat@example.test"):
        if who == "pat@example.test":
            desk("user", "add", who, "--role", "requester")
        shown = desk("--as", who, "ticket", "show", "1", "--json").stdout
        assert SECRET_NOTE not in shown and '"note"' not in shown
        assert json.loads(shown)["message_count"] == 1
        exported = desk("--as", who, "ticket", "export").stdout
        assert exported.strip() and SECRET_NOTE not in exported
        listed = desk.json("--as", who, "ticket", "list", "--json")
        assert [t["message_count"] for t in listed] == [1]
    # an agent of another department does not see the ticket at all
    assert "No ticket" in _fails(desk, "--as", "hragent@school.test", "ticket", "show", "1")


def test_case2_department_admin_cannot_escalate(desk):
    # granting admin of IT to HR's agent makes them admin of IT only, never of HR
    desk("--as", "itadmin@school.test", "user", "add", "hragent@school.test", "--role", "admin", "--department", "IT")
    assert "Manage Settings" in _fails(desk, "--as", "hragent@school.test", "department", "clear-mailbox", "HR")
    users = {u["email"]: u for u in desk.json("user", "list", "--json")}
    roles = {m["role"] for m in users["hragent@school.test"]["memberships"]}
    assert roles == {"admin", "agent"}
    # the global admin cannot be demoted (nor given a membership) by a department admin
    assert "global admin" in _fails(desk, "--as", "itadmin@school.test", "user", "add", "root@school.test",
                                    "--role", "requester", "--department", "IT")
    assert "global admin" in _fails(desk, "--as", "itadmin@school.test", "user", "set", "root@school.test",
                                    "--deactivate")
    users = {u["email"]: u for u in desk.json("user", "list", "--json")}
    assert users["root@school.test"]["global_admin"] is True and users["root@school.test"]["memberships"] == []
    # a global admin keeps its standing when it is given a membership (by a global admin)
    desk("user", "add", "root@school.test", "--role", "agent", "--department", "HR")
    desk("--as", "root@school.test", "settings", "set", "mail.max_message_size_mb", "30")
    # no role without a department (global admin) and nothing in another department
    assert "Manage Settings" in _fails(desk, "--as", "itadmin@school.test", "user", "add", "x@example.test",
                                       "--role", "admin")
    assert "Manage Settings" in _fails(desk, "--as", "itadmin@school.test", "user", "add", "x@example.test",
                                       "--role", "agent", "--department", "HR")
    # nor above its own: an IT agent cannot hand out roles at all
    assert "Manage Settings" in _fails(desk, "--as", "agent@school.test", "user", "add", "x@example.test",
                                       "--role", "agent", "--department", "IT")
    # nor change someone who is also a member of a department it does not administer
    assert "cannot change" in _fails(desk, "--as", "itadmin@school.test", "user", "set", "hragent@school.test",
                                     "--name", "Mallory")
    assert "Manage Settings" in _fails(desk, "--as", "itadmin@school.test", "user", "remove-membership",
                                       "hragent@school.test", "--department", "HR")
    # what it may do: manage its own agents and requesters
    desk("--as", "itadmin@school.test", "user", "add", "new@school.test", "--role", "agent", "--department", "IT")
    desk("--as", "itadmin@school.test", "user", "set", "new@school.test", "--name", "New Agent")


READS = [("failed", "list", "--json"), ("failed", "export", "1"), ("held", "list", "--json"),
         ("log", "--json"), ("user", "list", "--json"), ("department", "status", "HR", "--json")]


@pytest.mark.parametrize("who", ["alice@example.test", "agent@school.test"])
def test_case3_reads_are_guarded(desk, who):
    """A requester reads none of these; an agent of IT none of HR's."""
    for args in READS:
        result = desk("--as", who, *args, ok=False)
        assert "carol" not in result.output and "hunter2" not in result.output, args
        if who == "alice@example.test" or args[:2] in (("failed", "export"), ("department", "status")):
            assert result.exit_code != 0, args
    listed = desk("--as", who, "department", "list", "--json", ok=False)
    if listed.exit_code == 0:
        assert all("mailbox" not in d for d in json.loads(listed.stdout))
    # the department's staff (and the global admin) do read them
    for staff in ("hragent@school.test", "root@school.test"):
        assert b"hunter2" in desk("--as", staff, "failed", "export", "1").stdout_bytes
        assert "carol" in desk("--as", staff, "held", "list", "--json").stdout
        assert "carol" in desk("--as", staff, "log", "--json").stdout
        desk("--as", staff, "department", "status", "HR", "--json")
    assert any("mailbox" in d for d in desk.json("--as", "root@school.test", "department", "list", "--json"))
