"""Migration 0008 converts one role per user into one role per membership, as it behaved before:
an admin without memberships stays global admin, an admin with memberships becomes admin of those
departments only, an agent stays agent of its departments (SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import select, text

from helpdesk_core.db import make_engine, upgrade
from helpdesk_core.models import Department, User
from helpdesk_core.services.permissions import can_manage_settings, is_global_admin, is_staff
from helpdesk_core.testing.apps import make_app


def test_upgrade_converts_roles(hd_env):
    engine = make_engine(hd_env["HELPDESK_DATABASE_URL"])
    upgrade(engine, "0006")
    with engine.begin() as conn:
        for i, name in ((1, "IT"), (2, "HR")):
            conn.execute(text("INSERT INTO departments (id, name, sender_address, interval_minutes, last_ticket_number, "
                              "options, created_at) VALUES (:i, :n, 'x@d.test', 5, 0, '{}', CURRENT_TIMESTAMP)"),
                         {"i": i, "n": name})
        for i, email, role in ((1, "root@d.test", "ADMIN"), (2, "itadmin@d.test", "ADMIN"), (3, "agent@d.test", "AGENT"),
                               (4, "alice@d.test", "REQUESTER")):
            conn.execute(text("INSERT INTO users (id, email, name, role, active, notifications, created_at) "
                              "VALUES (:i, :e, '', :r, true, true, CURRENT_TIMESTAMP)"), {"i": i, "e": email, "r": role})
        for i, user_id, dept_id in ((1, 2, 1), (2, 3, 1), (3, 3, 2)):
            conn.execute(text("INSERT INTO memberships (id, user_id, department_id) VALUES (:i, :u, :d)"),
                         {"i": i, "u": user_id, "d": dept_id})
    upgrade(engine)
    engine.dispose()
    app = make_app(hd_env)
    with app.session() as s:
        users = {u.email: u for u in s.scalars(select(User))}
        it, hr = s.get(Department, 1), s.get(Department, 2)
        assert is_global_admin(users["root@d.test"]) and not users["root@d.test"].memberships
        itadmin = users["itadmin@d.test"]
        assert not is_global_admin(itadmin) and can_manage_settings(itadmin, it) and not can_manage_settings(itadmin, hr)
        agent = users["agent@d.test"]
        assert is_staff(agent, it) and is_staff(agent, hr) and not can_manage_settings(agent, it)
        assert {str(m.role) for m in agent.memberships} == {"agent"}
        alice = users["alice@d.test"]
        assert not is_staff(alice, it) and not is_global_admin(alice)
    app.engine.dispose()
