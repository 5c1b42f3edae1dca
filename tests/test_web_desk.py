"""The staff desk and the requester portal beyond test_web.py: the ticket list's filters, search,
sort and paging (GET parameters), canned replies, history, the attachments list, "load remote
images" per message, and the requester's answer with an attachment."""

from __future__ import annotations

import html
import re

from helpdesk_core.models import Ticket
from helpdesk_core.services.lifecycle import create_ticket, set_ticket
from helpdesk_core.services.permissions import SYSTEM
from helpdesk_core.services.reply_templates import add_template
from helpdesk_core.testing.apps import ingest
from helpdesk_core.web.security import CSP, CSP_REMOTE_IMAGES, MAIL_CSP, MAIL_CSP_REMOTE_IMAGES
from test_web import csrf, signed_in
from test_web import hd as web_fixture

hd = web_fixture  # the fixture of test_web.py: departments Tech and Office, its users, ticket 1

REMOTE_MAIL = (
    "From: alice@example.test\r\nTo: tech@school.test\r\nSubject: Newsletter\r\nMessage-ID: <nl@example.test>\r\n"
    "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    "<p>Look</p><script>fetch('/x')</script><img src=\"http://203.0.113.7/t.png\">"
    "<img src=\"https://remote.example.test/p.gif\"><form action=\"https://evil.test/\"><input name=a></form>\r\n"
).encode()


def _rows(page: str) -> list[str]:
    return re.findall(r'<tr class="ticket-row">.*?<a href="/tickets/\d+">([^<]*)</a>', page, re.S)


def test_desk_filters_search_sort_and_paging(hd):
    with hd.session() as s:
        for i in range(11):
            create_ticket(hd, s, actor=SYSTEM, department="Tech", requester="bob@example.test",
                          subject=f"Laptop {i:02d}", body="the screen flickers" if i == 3 else "broken")
        s.flush()
        set_ticket(hd, s, actor=SYSTEM, ticket_id=s.query(Ticket).filter_by(subject="Laptop 05").one().id,
                   priority="urgent", add_tags=["hardware"], assign="agent@school.test")
        s.commit()
    c = signed_in(hd, "agent@school.test")
    page = c.get("/tickets?q=laptop&per=10&sort=created").text
    assert "1–10 of 11 tickets" in page and _rows(page)[0] == "Laptop 00"
    nxt = html.unescape(re.search(r'href="([^"]+)" rel="next"', page).group(1))
    assert nxt == "/tickets?q=laptop&sort=created&per=10&page=2"  # a bookmarkable URL
    page = c.get(nxt).text
    assert "11–11 of 11" in page and _rows(page) == ["Laptop 10"] and 'rel="prev"' in page
    page = c.get("/tickets?priority=urgent").text
    assert _rows(page) == ["Laptop 05"] and 'class="chip priority-urgent"' in page and ">hardware</a>" in page
    assert _rows(c.get("/tickets?tag=hardware&status=open&department=Tech").text) == ["Laptop 05"]
    assert _rows(c.get("/tickets?assignee=me").text) == ["Laptop 05"]
    assert 'class="count"' in page  # "Mine" shows how many open tickets are assigned to me
    assert _rows(c.get("/tickets?q=flickers").text) == ["Laptop 03"]
    assert "Printer broken" not in c.get("/tickets?assignee=none&q=laptop").text
    r = c.get("/tickets?status=bogus")
    assert r.status_code == 400 and "Unknown status" in r.text
    # another department's agent, and a requester, see none of them; a requester's filters are few
    assert _rows(signed_in(hd, "office@school.test").get("/tickets?q=laptop").text) == []
    alice = signed_in(hd, "alice@example.test").get("/tickets?department=Office").text
    assert _rows(alice) == ["Printer broken"] and 'name="assignee"' not in alice


def test_ticket_page_canned_reply_history_and_attachments(hd):
    with hd.session() as s:
        add_template(s, actor=SYSTEM, department="Tech", name="greet", body="Hello {{ requester_name or 'there' }}, "
                     "about {{ reference }}.")
        set_ticket(hd, s, actor=SYSTEM, ticket_id=hd.ticket_id, priority="high", add_tags=["printer"])
        s.commit()
    c = signed_in(hd, "agent@school.test")
    page = c.get(f"/tickets/{hd.ticket_id}").text
    assert '<option value="greet"' in page and 'hx-select="#reply-body"' in page
    assert "priority high → normal" not in page and "priority normal → high" in page and "printer</span>" in page
    page = c.get(f"/tickets/{hd.ticket_id}?template=greet").text  # the no-JS "Use template"
    body = re.search(r'<textarea name="body" rows="8" id="reply-body">([^<]*)</textarea>', page).group(1)
    assert html.unescape(body).startswith("Hello Alice, about ") and body.endswith(".")
    r = c.get(f"/tickets/{hd.ticket_id}?template=nope")
    assert r.status_code == 400 and "has no reply template" in r.text
    alice = signed_in(hd, "alice@example.test").get(f"/tickets/{hd.ticket_id}?template=greet").text
    assert 'id="history"' not in alice and "Hello " not in alice and 'id="template-form"' not in alice


def test_remote_images_blocked_by_default_and_allowed_per_message(hd):
    out = ingest(hd, REMOTE_MAIL, department="Tech")
    c = signed_in(hd, "agent@school.test")
    r = c.get(f"/tickets/{out.ticket_id}")
    srcdoc = html.unescape(re.search(r'srcdoc="([^"]*)"', r.text).group(1))
    assert r.headers["content-security-policy"] == CSP and f'content="{MAIL_CSP}"' in srcdoc
    assert ' src="https://' not in srcdoc and "<script" not in srcdoc and "<form" not in srcdoc
    link = html.unescape(re.search(r'href="([^"]+)"[^>]*>Load remote images', r.text).group(1))
    assert link == f"/tickets/{out.ticket_id}?remote={out.ticket_message_id}#m{out.ticket_message_id}"
    r = c.get(link)
    srcdoc = html.unescape(re.search(r'srcdoc="([^"]*)"', r.text).group(1))
    assert r.headers["content-security-policy"] == CSP_REMOTE_IMAGES
    assert "script-src 'self'" in CSP_REMOTE_IMAGES and "img-src 'self' data: https:;" in CSP_REMOTE_IMAGES
    assert f'content="{MAIL_CSP_REMOTE_IMAGES}"' in srcdoc and "script" not in MAIL_CSP_REMOTE_IMAGES
    assert '<img src="https://remote.example.test/p.gif">' in srcdoc
    assert 'data-remote-src="http://203.0.113.7/t.png"' in srcdoc  # http stays unloaded
    assert "<script" not in srcdoc and "<form" not in srcdoc and "Block them again" in r.text
    # another message id changes nothing
    assert c.get(f"/tickets/{out.ticket_id}?remote=999999").headers["content-security-policy"] == CSP


def test_portal_answer_with_attachment(hd):
    with hd.session() as s:
        set_ticket(hd, s, actor=SYSTEM, ticket_id=hd.ticket_id, status="pending")
        s.commit()
    c = signed_in(hd, "alice@example.test")
    assert 'id="answer-form"' in c.get(f"/tickets/{hd.ticket_id}").text
    token = csrf(c, "/tickets")
    r = c.post(f"/tickets/{hd.ticket_id}/answer", data={"csrf": token, "body": "Still broken, photo attached."},
               files={"attachment": ("photo.jpg", b"\xff\xd8\xff\xe0 not really", "image/jpeg")})
    assert r.status_code == 303, r.text[:300]
    page = c.get(f"/tickets/{hd.ticket_id}").text
    assert "Still broken, photo attached." in page and ">photo.jpg</a>" in page
    assert "staff only secret note" not in page
    with hd.session() as s:
        assert str(s.get(Ticket, hd.ticket_id).status) == "open"  # the requester's turn is over
    assert c.post(f"/tickets/{hd.ticket_id}/answer", data={"csrf": token, "body": " "}).status_code == 400
    agent = signed_in(hd, "agent@school.test")
    r = agent.post(f"/tickets/{hd.ticket_id}/answer", data={"csrf": csrf(agent, "/tickets"), "body": "x"})
    assert r.status_code == 403
    zoe = signed_in(hd, "zoe@example.test")
    assert zoe.post(f"/tickets/{hd.ticket_id}/answer", data={"csrf": csrf(zoe, "/tickets"), "body": "x"}).status_code == 404
