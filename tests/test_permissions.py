"""Permissions are enforced in the service layer (and therefore by the CLI's ``--as EMAIL``)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from helpdesk_core.errors import NotFoundError, PermissionDenied
from helpdesk_core.models import Ticket, User
from helpdesk_core.services import departments as dsvc
from helpdesk_core.services import tickets as tsvc
from helpdesk_core.services.imports import ingest_raw
from helpdesk_core.services.permissions import SYSTEM
from helpdesk_core.services.users import add_user

from mailfactory import plain


def _maildir(path):
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return str(path)


@pytest.fixture
def world(app, tmp_path, monkeypatch):
    """Tech and Facilities; a requester with tickets in both, another requester, an agent and a
    department admin of Tech, a global admin. Maildirs under tmp_path, the operator's Maildir root."""
    monkeypatch.setenv("HELPDESK_MAILDIR_ROOT", str(tmp_path))
    with app.session() as s:
        for name in ("Tech", "Facilities"):
            dsvc.add_department(s, actor=SYSTEM, name=name, sender=f"{name.lower()}@district.test")
        add_user(s, actor=SYSTEM, email="alice@example.test", role="requester")
        add_user(s, actor=SYSTEM, email="bob@example.test", role="requester")
        add_user(s, actor=SYSTEM, email="agent@district.test", role="agent", department="Tech")
        add_user(s, actor=SYSTEM, email="techadmin@district.test", role="admin", department="Tech")
        add_user(s, actor=SYSTEM, email="boss@district.test", role="admin")
        for dept, sender, subject in [("Tech", "alice@example.test", "alice tech"),
                                      ("Tech", "bob@example.test", "bob tech"),
                                      ("Facilities", "alice@example.test", "alice facilities"),
                                      ("Facilities", "bob@example.test", "bob facilities")]:
            assert ingest_raw(app, s, actor=SYSTEM, department=dept, raw=plain(subject=subject, sender=sender)).status == "created"
        s.commit()
    return {"tech": _maildir(tmp_path / "tech"), "fac": _maildir(tmp_path / "fac")}


def _user(s, email: str) -> User:
    return s.scalar(select(User).where(User.email == email))


def _set(app, s, actor, department: str, path: str) -> None:
    dsvc.set_mailbox(app, s, actor=actor, department=department, provider="generic",
                     config={"protocol": "maildir", "path": path, "email": f"{department}@district.test"},
                     secrets={})


def test_configuring_mail_needs_manage_settings(app, world):
    with app.session() as s:
        for email in ("alice@example.test", "agent@district.test"):
            actor = _user(s, email)
            with pytest.raises(PermissionDenied, match="Manage Settings"):
                _set(app, s, actor, "Tech", world["tech"])
        # a department admin: its own department only
        techadmin = _user(s, "techadmin@district.test")
        _set(app, s, techadmin, "Tech", world["tech"])
        with pytest.raises(PermissionDenied, match="Facilities"):
            _set(app, s, techadmin, "Facilities", world["fac"])
        # a global admin: any
        _set(app, s, _user(s, "boss@district.test"), "Facilities", world["fac"])
        s.commit()
        for email in ("alice@example.test", "agent@district.test"):
            with pytest.raises(PermissionDenied):
                dsvc.clear_mailbox(s, actor=_user(s, email), department="Tech")
        with pytest.raises(PermissionDenied):
            dsvc.clear_mailbox(s, actor=techadmin, department="Facilities")
        assert dsvc.clear_mailbox(s, actor=techadmin, department="Tech") is True
        assert dsvc.clear_mailbox(s, actor=_user(s, "boss@district.test"), department="Facilities") is True
        s.commit()


def _visible(s, email: str, department: str | None = None) -> list[str]:
    actor = _user(s, email) if email != "system" else SYSTEM
    return sorted(t["subject"] for t in tsvc.list_tickets(s, actor=actor, department=department))


def test_ticket_queries_are_scoped(app, world):
    with app.session() as s:
        assert _visible(s, "alice@example.test") == ["alice facilities", "alice tech"]
        assert _visible(s, "bob@example.test", "Tech") == ["bob tech"]
        assert _visible(s, "agent@district.test") == ["alice tech", "bob tech"]
        assert _visible(s, "agent@district.test", "Facilities") == []
        assert _visible(s, "techadmin@district.test") == ["alice tech", "bob tech"]
        assert len(_visible(s, "boss@district.test")) == 4 and len(_visible(s, "system")) == 4
        ids = {t.subject: t.id for t in s.scalars(select(Ticket))}
        agent, alice = _user(s, "agent@district.test"), _user(s, "alice@example.test")
        assert tsvc.get_ticket(s, actor=agent, ticket_id=ids["bob tech"]).subject == "bob tech"
        with pytest.raises(NotFoundError):  # not "forbidden": do not reveal that it exists
            tsvc.get_ticket(s, actor=agent, ticket_id=ids["alice facilities"])
        with pytest.raises(NotFoundError):
            tsvc.get_ticket(s, actor=alice, ticket_id=ids["bob tech"])
        with pytest.raises(NotFoundError):
            tsvc.find_ticket_by_number(s, actor=alice, department="Tech",
                                       number=s.get(Ticket, ids["bob tech"]).number)
        exported = [t["subject"] for t in tsvc.export_tickets(s, actor=agent)]
        assert sorted(exported) == ["alice tech", "bob tech"]


def test_cli_as_email(cli, app, world):
    def fails(*args: str) -> str:
        result = cli(*args, ok=False)
        assert result.exit_code != 0
        return result.stderr

    path = world["tech"]
    mailbox = ("department", "set-mailbox", "Tech", "--protocol", "maildir", "--path", path,
               "--email", "tech@district.test")
    for who in ("alice@example.test", "agent@district.test"):
        assert "lacks the Manage Settings permission" in fails("--as", who, *mailbox)
        assert "lacks the Manage Settings permission" in fails("--as", who, "settings", "set",
                                                               "mail.max_message_size_mb", "30")
    # settings are global: a department admin may not change them, a global admin may
    assert "lacks the Manage Settings" in fails("--as", "techadmin@district.test", "settings", "set",
                                                "mail.max_message_size_mb", "30")
    cli("--as", "boss@district.test", "settings", "set", "mail.max_message_size_mb", "30")
    cli("--as", "techadmin@district.test", *mailbox)
    assert "Facilities" in fails("--as", "techadmin@district.test", "department", "clear-mailbox", "Facilities")
    assert "lacks the Manage Settings" in fails("--as", "agent@district.test", "department", "clear-mailbox", "Tech")
    cli("--as", "techadmin@district.test", "department", "clear-mailbox", "Tech")

    mine = cli.json("--as", "alice@example.test", "ticket", "list", "--json")
    assert sorted(t["subject"] for t in mine) == ["alice facilities", "alice tech"]
    staff = cli.json("--as", "agent@district.test", "ticket", "list", "--json")
    assert sorted(t["subject"] for t in staff) == ["alice tech", "bob tech"]
    other = next(t for t in cli.json("ticket", "list", "--json") if t["subject"] == "bob facilities")
    assert "No ticket" in fails("--as", "agent@district.test", "ticket", "show", str(other["id"]))
    assert "No ticket" in fails("--as", "alice@example.test", "ticket", "show", str(other["id"]))
    assert "No user" in fails("--as", "nobody@example.test", "ticket", "list")
