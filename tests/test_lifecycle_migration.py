"""Migration 0005 on a database with tickets: nothing is lost (SQLite adds the columns in place,
no table copy that would cascade deletes) and existing messages are searchable at once."""

from __future__ import annotations

from sqlalchemy import text

from helpdesk_core.db import make_engine, upgrade
from helpdesk_core.services.permissions import SYSTEM
from helpdesk_core.services.search import search_tickets
from helpdesk_core.testing.apps import make_app


def test_upgrade_keeps_tickets_and_indexes_their_messages(hd_env):
    engine = make_engine(hd_env["HELPDESK_DATABASE_URL"])
    upgrade(engine, "0003")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO departments (id, name, sender_address, interval_minutes, "
                          "last_ticket_number, options, created_at) VALUES (1, 'Tech', 't@d.test', 5, 1, '{}', "
                          "CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO tickets (id, department_id, number, subject, status, participants, "
                          "created_at, updated_at) VALUES (1, 1, 1, 'Old one', 'OPEN', '[]', CURRENT_TIMESTAMP, "
                          "CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO ticket_messages (id, ticket_id, department_id, direction, kind, "
                          "in_reply_to, \"references\", from_email, from_name, \"to\", cc, subject, body_text, "
                          "body_display, removed_attachments, defects, created_at) VALUES (1, 1, 1, 'INBOUND', "
                          "'message', '[]', '[]', 'old@example.test', '', '[]', '[]', 'Old one', "
                          "'Legacy capybara text', '', '[]', '[]', CURRENT_TIMESTAMP)"))
    upgrade(engine)
    engine.dispose()
    app = make_app(hd_env)
    with app.session() as s:
        [found] = search_tickets(s, actor=SYSTEM, query="capybara")
        assert (found["id"], found["status"], found["priority"], found["message_count"]) == (1, "open", "normal", 1)
    app.engine.dispose()
