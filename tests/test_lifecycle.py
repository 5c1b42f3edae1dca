"""Working tickets through the CLI (SQLite and PostgreSQL): status, assignment, priority, tags and
their history; internal tickets; filters and full-text search; attachments; moves; department and
user administration; canned replies; auto-close."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid

import pytest

from helpdesk_core.services.lifecycle import auto_close_resolved
from mailfactory import PNG, plain, with_attachments

OLD_LIST_KEYS = {"id", "number", "department", "subject", "status", "requester", "message_count",
                 "created_at", "updated_at", "mentions"}


@pytest.fixture
def desk(cli, tmp_path):
    """Tech (agent Ann, admin Tom) and Facilities (agent Fay); Alice has ticket 1 in Tech."""
    cli("department", "add", "Tech", "--sender", "techhelp@district.test")
    cli("department", "add", "Facilities", "--sender", "facilities@district.test")
    cli("user", "add", "ann@district.test", "--role", "agent", "--department", "Tech", "--name", "Ann")
    cli("user", "add", "tom@district.test", "--role", "admin", "--department", "Tech")
    cli("user", "add", "fay@district.test", "--role", "agent", "--department", "Facilities")
    cli("ingest", "--department", "Tech", input=plain(subject="Printer broken"))
    (tmp_path / "body.txt").write_text("Called at 9:10, the beamer in room 4 flickers.\n")
    return cli


def show(cli, ticket_id=1, *who):
    return cli.json(*who, "ticket", "show", str(ticket_id), "--json")


def reply_mail(subject="Re: [Ticket #1] Printer broken", sender="Alice Parent <alice@example.test>",
               body="It is still broken.\n"):
    return plain(subject=subject, sender=sender, body=body)


# ---- status, assignment, priority, tags, history --------------------------------------------

def test_ticket_set_changes_are_shown_with_their_history(desk):
    desk("ticket", "set", "1", "--status", "pending", "--assign", "ann@district.test", "--priority", "high",
         "--tag", "printer", "--tag", "Room 12")
    desk("--as", "ann@district.test", "ticket", "set", "1", "--untag", "printer")
    data = show(desk)
    assert (data["status"], data["assignee"], data["priority"], data["tags"]) == (
        "pending", "ann@district.test", "high", ["room 12"])
    kinds = [(e["kind"], e["actor"], e["old"], e["new"]) for e in data["events"]]
    assert kinds == [("status", "system", "open", "pending"),
                     ("assignee", "system", None, "ann@district.test"),
                     ("priority", "system", "normal", "high"),
                     ("tag_added", "system", None, "printer"), ("tag_added", "system", None, "room 12"),
                     ("tag_removed", "ann@district.test", "printer", None)]
    assert all(datetime.fromisoformat(e["at"]) for e in data["events"])
    [row] = desk.json("ticket", "list", "--json")
    assert OLD_LIST_KEYS <= set(row) and (row["assignee"], row["priority"], row["tags"]) == (
        "ann@district.test", "high", ["room 12"])
    text = desk("ticket", "show", "1").output
    assert "priority high, assignee ann@district.test, tags room 12" in text and "tag_removed printer" in text


def test_only_staff_of_the_department_is_assigned_and_sets(desk):
    for email in ("fay@district.test", "alice@example.test", "nobody@district.test"):
        result = desk("ticket", "set", "1", "--assign", email, ok=False)
        assert result.exit_code == 1 and "only active agents or admins of department 'Tech'" in result.output
    result = desk("--as", "fay@district.test", "ticket", "set", "1", "--status", "closed", ok=False)
    assert result.exit_code == 1  # Fay cannot even see Tech's tickets
    result = desk("--as", "alice@example.test", "ticket", "set", "1", "--status", "closed", ok=False)
    assert "is not staff of department 'Tech'" in result.output
    assert show(desk)["status"] == "open" and show(desk)["events"] == []


@pytest.mark.parametrize("status", ["pending", "resolved"])
def test_a_requester_reply_makes_pending_and_resolved_open(desk, status):
    desk("ticket", "set", "1", "--status", status)
    desk("ingest", "--department", "Tech", input=reply_mail())
    data = show(desk)
    assert data["status"] == "open" and data["message_count"] == 2
    assert (data["events"][-1]["kind"], data["events"][-1]["actor"], data["events"][-1]["new"]) == (
        "status", "alice@example.test", "open")


@pytest.mark.parametrize("reopen", [True, False])
def test_a_reply_to_a_closed_ticket_follows_the_department_option(desk, reopen):
    desk("department", "set", "Tech", "--reopen" if reopen else "--new-ticket-on-closed")
    desk("ticket", "set", "1", "--status", "closed")
    desk("ingest", "--department", "Tech", input=reply_mail())
    tickets = desk.json("ticket", "list", "--json")
    if reopen:
        assert [(t["id"], t["status"]) for t in tickets] == [(1, "open")]
    else:
        assert [(t["id"], t["status"]) for t in tickets] == [(1, "closed"), (2, "open")]


# ---- internal tickets -----------------------------------------------------------------------

def test_a_requester_without_mailbox_opens_a_ticket_and_an_agent_answers_it(desk, tmp_path):
    desk("department", "add", "Library", "--sender", "library@district.test")
    desk("user", "add", "lea@district.test", "--role", "agent", "--department", "Library")
    desk("user", "add", "carl@example.test", "--role", "requester", "--department", "Library")
    body = str(tmp_path / "body.txt")
    out = desk.json("--as", "carl@example.test", "ticket", "create", "--department", "Library", "--subject",
                    "Beamer flickers", "--body-file", body, "--json")
    assert (out["department"], out["number"], out["requester"], out["outbox"]) == (
        "Library", 1, "carl@example.test", None)
    # not a member of Tech: may not open one there, nor one for someone else
    result = desk("--as", "carl@example.test", "ticket", "create", "--department", "Tech", "--subject", "x",
                  "--body-file", body, ok=False)
    assert "cannot open tickets in 'Tech'" in result.output
    result = desk("--as", "carl@example.test", "ticket", "create", "--department", "Library", "--requester",
                  "alice@example.test", "--subject", "x", "--body-file", body, ok=False)
    assert result.exit_code == 1
    [seen] = desk.json("--as", "lea@district.test", "ticket", "list", "--json")
    assert seen["id"] == out["id"] and seen["status"] == "open"
    (tmp_path / "answer.txt").write_text("We will replace the lamp tomorrow.\n")
    desk("--as", "lea@district.test", "ticket", "reply", str(out["id"]), "--body-file",
         str(tmp_path / "answer.txt"), "--queue-only")
    desk("--as", "lea@district.test", "ticket", "set", str(out["id"]), "--status", "pending")
    mine = show(desk, out["id"], "--as", "carl@example.test")
    assert [m["direction"] for m in mine["messages"]] == ["inbound", "outbound"]
    assert "replace the lamp" in mine["messages"][1]["body_text"] and mine["status"] == "pending"
    assert mine["events"][0]["kind"] == "created" and mine["events"][0]["actor"] == "carl@example.test"


def test_a_reply_in_a_department_without_mailbox_is_stored_and_says_it_was_not_mailed(desk, tmp_path):
    """Nothing can send the mail of a department without a mailbox: the reply used to be queued
    in the outbox, where it failed for ever with 'no_delivery'. It is stored on the ticket (the
    requester reads it in the help desk), nothing is queued, and the answer says so."""
    desk("department", "add", "Library", "--sender", "library@district.test")
    desk("user", "add", "lea@district.test", "--role", "agent", "--department", "Library")
    desk("user", "add", "carl@example.test", "--role", "requester", "--department", "Library")
    body = str(tmp_path / "body.txt")
    out = desk.json("--as", "carl@example.test", "ticket", "create", "--department", "Library", "--subject",
                    "Beamer flickers", "--body-file", body, "--json")
    (tmp_path / "answer.txt").write_text("We will replace the lamp tomorrow.\n")
    answer = str(tmp_path / "answer.txt")
    text = desk("--as", "lea@district.test", "ticket", "reply", str(out["id"]), "--body-file", answer).output
    assert "not mailed" in text and "'Library' has no mailbox" in text and "set-mailbox" in text
    data = desk.json("--as", "lea@district.test", "ticket", "reply", str(out["id"]), "--body-file", answer,
                     "--queue-only", "--json")
    assert (data["status"], data["mailed"], data["outbox"]) == ("not_mailed", False, None)
    assert "no mailbox" in data["reason"] and data["ticket_message"] > 0
    assert desk.json("outbox", "list", "--json") == []
    mine = show(desk, out["id"], "--as", "carl@example.test")
    assert [m["direction"] for m in mine["messages"]] == ["inbound", "outbound", "outbound"]
    assert "replace the lamp" in mine["messages"][1]["body_text"]
    note = desk.json("--as", "lea@district.test", "ticket", "reply", str(out["id"]), "--body-file", answer,
                     "--internal", "--json")
    assert (note["status"], note["mailed"], note["outbox"]) == ("note", False, None)


def test_a_reply_in_a_department_with_a_mailbox_is_still_queued(desk, tmp_path):
    desk("department", "set-mailbox", "Tech", "--protocol", "maildir", "--path", str(tmp_path / "Maildir"),
         "--email", "techhelp@district.test", "--no-validate")
    data = desk.json("ticket", "reply", "1", "--body-file", str(tmp_path / "body.txt"), "--queue-only", "--json")
    assert (data["status"], data["mailed"], data["reason"]) == ("queued", True, None)
    assert [r["id"] for r in desk.json("outbox", "list", "--json")] == [data["outbox"]]


def test_staff_open_a_ticket_for_a_caller_with_an_attachment(desk, tmp_path):
    (tmp_path / "photo.png").write_bytes(PNG)
    out = desk.json("--as", "ann@district.test", "ticket", "create", "--department", "Tech", "--requester",
                    "bob@example.test", "--subject", "Phone: no wifi",
                    "--body-file", str(tmp_path / "body.txt"), "--attach", str(tmp_path / "photo.png"),
                    "--notify", "--json")
    assert out["number"] == 2 and out["outbox"] is None  # no mailbox: nothing to mail
    data = show(desk, out["id"])
    assert data["requester"]["email"] == "bob@example.test"
    assert [a["filename"] for a in data["messages"][0]["attachments"]] == ["photo.png"]
    result = desk("--as", "fay@district.test", "ticket", "create", "--department", "Tech", "--requester",
                  "bob@example.test", "--subject", "x", "--body-file", str(tmp_path / "body.txt"), ok=False)
    assert result.exit_code == 1


# ---- filters and full-text search -----------------------------------------------------------

def html_only(subject: str, sender: str, html: str) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "techhelp@district.test", subject
    msg["Message-ID"] = make_msgid(domain="example.test")
    msg.set_content(html, subtype="html")
    return msg.as_bytes(policy=SMTP)


def test_full_text_search_finds_a_word_only_in_an_html_body(desk):
    desk("ingest", "--department", "Tech",
         input=html_only("Screen", "bob@example.test", "<p>The <b>Zebrafinch</b> wallpaper is gone</p>"))
    desk("ingest", "--department", "Facilities", input=plain(subject="Heating", sender="bob@example.test",
                                                             body="Radiator cold.\n"))
    ids = lambda *a: [t["id"] for t in desk.json(*a)]  # noqa: E731
    assert ids("ticket", "list", "--json", "--query", "zebrafinch") == [2]
    assert ids("ticket", "list", "--json", "--query", "wallpaper zebrafinch") == [2]
    assert ids("ticket", "list", "--json", "--query", "zebrafinch radiator") == []
    assert ids("ticket", "list", "--json", "--query", "printer") == [1]  # the subject
    assert ids("ticket", "list", "--json", "--query", "bob@example.test") == [2, 3]  # the sender
    assert ids("ticket", "list", "--json", "--query", 'quote" OR "x') == []  # no query syntax leaks
    # a requester searches only their own tickets; an agent only their departments'
    assert ids("--as", "alice@example.test", "ticket", "list", "--json", "--query", "zebrafinch") == []
    assert ids("--as", "bob@example.test", "ticket", "list", "--json", "--query", "zebrafinch") == [2]
    assert ids("--as", "fay@district.test", "ticket", "list", "--json", "--query", "bob@example.test") == [3]


def test_requesters_do_not_search_internal_notes(desk, tmp_path):
    (tmp_path / "note.txt").write_text("Alice is the Quokka person.\n")
    desk("ticket", "reply", "1", "--internal", "--body-file", str(tmp_path / "note.txt"))
    assert [t["id"] for t in desk.json("ticket", "list", "--json", "--query", "quokka")] == [1]
    assert desk.json("--as", "alice@example.test", "ticket", "list", "--json", "--query", "quokka") == []


def test_list_filters_sort_and_pages(desk):
    for n in (2, 3, 4):
        desk("ingest", "--department", "Tech", input=plain(subject=f"Issue {n}", sender=f"u{n}@example.test"))
    desk("ticket", "set", "2", "--assign", "ann@district.test", "--tag", "wifi", "--priority", "urgent")
    desk("ticket", "set", "3", "--status", "resolved", "--tag", "wifi")
    desk("ticket", "set", "4", "--status", "closed", "--priority", "low")
    ids = lambda *a: [t["id"] for t in desk.json("ticket", "list", "--json", *a)]  # noqa: E731
    assert ids("--status", "open") == [1, 2]
    assert ids("--status", "resolved,closed") == [3, 4]
    assert ids("--assignee", "ann@district.test") == [2] and ids("--assignee", "none") == [1, 3, 4]
    assert [t["id"] for t in desk.json("--as", "ann@district.test", "ticket", "list", "--json",
                                       "--assignee", "me")] == [2]
    assert ids("--requester", "u3@example.test") == [3] and ids("--tag", "WiFi") == [2, 3]
    assert ids("--sort", "-created", "--limit", "2") == [4, 3]
    assert ids("--sort", "-created", "--limit", "2", "--offset", "2") == [2, 1]
    assert ids("--sort", "priority")[:1] == [2] and ids("--sort", "priority")[-1:] == [4]
    future = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
    assert ids("--since", future) == [] and ids("--since", "2020-01-01") == [1, 2, 3, 4]
    assert "Unknown status" in desk("ticket", "list", "--status", "done", ok=False).output


# ---- attachments ----------------------------------------------------------------------------

def test_attachment_download_by_name_or_index_is_permission_checked(desk, tmp_path):
    desk("ingest", "--department", "Tech", input=with_attachments(sender="carol@example.test"))
    out = tmp_path / "got.png"
    desk("ticket", "attachment", "2", "error.png", "-o", str(out))
    assert out.read_bytes() == PNG
    assert desk("--as", "carol@example.test", "ticket", "attachment", "2", "1").stdout_bytes == PNG
    assert "has no attachment 'virus.exe'" in desk("ticket", "attachment", "2", "virus.exe", ok=False).output
    for who in ("alice@example.test", "fay@district.test"):
        result = desk("--as", who, "ticket", "attachment", "2", "1", ok=False)
        assert result.exit_code == 1 and "No ticket 2" in result.output


# ---- moving tickets, departments and users ----------------------------------------------------

def test_a_moved_ticket_gets_a_new_number_and_the_old_reference_still_threads(desk):
    desk("ingest", "--department", "Facilities", input=plain(subject="Heating", sender="bob@example.test"))
    desk("ticket", "set", "1", "--assign", "ann@district.test")
    result = desk("--as", "ann@district.test", "ticket", "move", "1", "--department", "Facilities", ok=False)
    assert "is not staff of department 'Facilities'" in result.output
    assert "now Facilities #2" in desk("ticket", "move", "1", "--department", "Facilities").output
    data = show(desk)
    assert (data["department"], data["number"], data["assignee"]) == ("Facilities", 2, None)
    assert {"kind": "department", "old": {"department": "Tech", "number": 1},
            "new": {"department": "Facilities", "number": 2}}.items() <= {
        k: v for e in data["events"] if e["kind"] == "department" for k, v in e.items()}.items()
    desk("ingest", "--department", "Tech", input=reply_mail())  # answers the old "[Ticket #1]" at Tech
    assert show(desk)["message_count"] == 2
    assert [t["id"] for t in desk.json("ticket", "list", "--json")] == [2, 1]
    desk("ingest", "--department", "Tech", input=reply_mail(subject="Re: [Ticket #1] x",
                                                            sender="mallory@example.test"))
    assert show(desk)["message_count"] == 2  # the usual trust rule still applies


def test_department_set_rename_sender_interval_and_remove(desk, tmp_path):
    desk("department", "set", "Tech", "--rename", "IT", "--sender", "it@district.test", "--interval", "9")
    [fac, it] = desk.json("department", "list", "--json")
    assert (it["name"], it["sender"], it["interval_minutes"]) == ("IT", "it@district.test", 9)
    assert "already exists" in desk("department", "set", "IT", "--rename", "Facilities", ok=False).output
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    desk("department", "set-mailbox", "IT", "--protocol", "maildir", "--path", str(maildir),
         "--email", "it@district.test")
    result = desk("department", "remove", "IT", ok=False)
    assert "has 1 tickets: move them first with --move-tickets-to" in result.output
    assert "Manage Settings" in desk("--as", "ann@district.test", "department", "remove", "IT", ok=False).output
    assert "1 tickets moved to 'Facilities'" in desk("department", "remove", "IT", "--move-tickets-to",
                                                      "Facilities").output
    assert [d["name"] for d in desk.json("department", "list", "--json")] == ["Facilities"]
    moved = show(desk)
    assert moved["department"] == "Facilities" and moved["message_count"] == len(moved["messages"]) == 1
    desk("department", "add", "IT", "--sender", "it@district.test")  # the mailbox went with it
    desk("department", "set-mailbox", "IT", "--protocol", "maildir", "--path", str(maildir),
         "--email", "it@district.test")


def test_deactivated_users_cannot_act_and_memberships_can_be_removed(desk):
    desk("ticket", "set", "1", "--assign", "ann@district.test")
    assert "deactivated" in desk("user", "set", "ann@district.test", "--deactivate", "--name", "Ann B").output
    result = desk("--as", "ann@district.test", "ticket", "list", ok=False)
    assert result.exit_code == 1 and "is deactivated and cannot act" in result.output
    assert "only active agents" in desk("ticket", "set", "1", "--assign", "ann@district.test", ok=False).output
    assert show(desk)["assignee"] == "ann@district.test"  # their tickets stay
    desk("user", "set", "ann@district.test", "--activate")
    assert "Manage Settings" in desk("--as", "fay@district.test", "user", "set", "ann@district.test",
                                     "--deactivate", ok=False).output
    desk("--as", "tom@district.test", "user", "set", "ann@district.test", "--no-notifications")
    desk("--as", "ann@district.test", "user", "set", "ann@district.test", "--notifications")
    out = desk("user", "remove-membership", "ann@district.test", "--department", "Tech").output
    assert "1 tickets unassigned" in out
    assert desk.json("--as", "ann@district.test", "ticket", "list", "--json") == []
    assert show(desk)["assignee"] is None


# ---- canned replies ---------------------------------------------------------------------------

def test_canned_replies_render_sandboxed(desk, tmp_path):
    (tmp_path / "t.txt").write_text("Hello {{ requester_name or 'there' }},\n"
                                    "about {{ reference }} ({{ subject }}): please restart it.\n")
    desk("reply-template", "add", "restart", "--department", "Tech", "--body-file", str(tmp_path / "t.txt"))
    assert "--replace" in desk("reply-template", "add", "restart", "--department", "Tech", "--body-file",
                               str(tmp_path / "t.txt"), ok=False).output
    assert [t["name"] for t in desk.json("--as", "ann@district.test", "reply-template", "list",
                                         "--department", "Tech", "--json")] == ["restart"]
    desk("--as", "ann@district.test", "ticket", "reply", "1", "--template", "restart", "--queue-only")
    body = show(desk)["messages"][-1]["body_text"]
    assert body.startswith("Hello Alice Parent,\nabout [Ticket #1] (Printer broken): please restart it.")
    (tmp_path / "evil.txt").write_text("{{ ticket.__class__.__mro__ }}{{ ''.__class__.__subclasses__() }}\n")
    desk("reply-template", "add", "evil", "--department", "Tech", "--body-file", str(tmp_path / "evil.txt"))
    result = desk("ticket", "reply", "1", "--template", "evil", "--queue-only", ok=False)
    assert result.exit_code == 1 and "Reply template 'evil' is broken" in result.output
    assert "one of them" in desk("ticket", "reply", "1", ok=False).output
    assert "has no reply template 'nope'" in desk("ticket", "reply", "1", "--template", "nope", ok=False).output
    desk("reply-template", "remove", "evil", "--department", "Tech")
    assert "Manage Settings" in desk("--as", "ann@district.test", "reply-template", "remove", "restart",
                                     "--department", "Tech", ok=False).output


# ---- auto-close -------------------------------------------------------------------------------

def test_resolved_tickets_close_after_the_department_option(desk, app):
    desk("ticket", "set", "1", "--status", "resolved")
    later = datetime.now(UTC) + timedelta(days=4)
    with app.session() as s:
        assert auto_close_resolved(s, now=later) == 0  # default: off
    desk("department", "set", "Tech", "--auto-close-days", "5")
    with app.session() as s:
        assert auto_close_resolved(s, now=later) == 0
        assert auto_close_resolved(s, now=later + timedelta(days=1, minutes=1)) == 1
        s.commit()
    data = show(desk)
    assert data["status"] == "closed" and data["events"][-1]["actor"] == "system"
    assert "0 resolved tickets closed" in desk("ticket", "auto-close").output


def test_export_lines_carry_the_new_keys(desk):
    [line] = desk("ticket", "export").stdout.splitlines()
    data = json.loads(line)
    assert {"status", "assignee", "priority", "tags", "events", "messages"} <= set(data)


def test_a_deactivated_requester_gets_no_mail_but_keeps_their_tickets(desk, tmp_path):
    desk("department", "set", "Tech", "--acknowledge")
    desk("user", "set", "alice@example.test", "--deactivate")
    desk("ingest", "--department", "Tech", input=plain(subject="Another one"))
    assert desk.json("outbox", "list", "--json") == []  # no acknowledgement
    (tmp_path / "r.txt").write_text("Fixed.\n")
    result = desk("ticket", "reply", "1", "--body-file", str(tmp_path / "r.txt"), ok=False)
    assert "is deactivated and gets no mail" in result.output
    desk("ticket", "reply", "1", "--body-file", str(tmp_path / "r.txt"), "--internal")
    assert [t["id"] for t in desk.json("ticket", "list", "--json", "--requester", "alice@example.test")] == [1, 2]
