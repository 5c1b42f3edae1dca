"""Issue 10, the mail-level cases: what an attacker's mail can put into HTML, attachments, addresses,
names and subjects, and what that must not make a browser, a reply or a terminal do.

* case 5: a display name that is an address, several From addresses, an encoded CR/LF in a name;
* case 9: remote content and relative URLs after ``sanitize_html``;
* case 10: the stored content type of attachments and the headers a file is served with;
* case 11: CR/LF and control characters in names and subjects; replies never fail because of them;
* case 12 (first half): terminal escape sequences removed from text the CLI prints.
"""

from __future__ import annotations

from helpdesk_core.services.departments import set_mailbox

import email
import email.policy
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from helpdesk_core.mail.compose import build_message
from helpdesk_core.mail.controls import strip_controls, terminal_safe
from helpdesk_core.mail.html import sanitize_html
from helpdesk_core.mail.message import Address
from helpdesk_core.mail.filetypes import safe_content_type
from helpdesk_core.mail.parsing import parse_message
from helpdesk_core.models import OutboxMessage, Ticket
from helpdesk_core.services.permissions import SYSTEM
from helpdesk_core.services.replies import reply_to_ticket
from helpdesk_core.storage import AttachmentStorage, download_headers
from helpdesk_core.testing.apps import ingest, installation
from mailfactory import PDF, PNG
from test_sanitizer_properties import fetchable

DEPARTMENT = "Tech Support"


def raw_mail(from_: str, *, subject: str = "Printer broken", cc: str = "", body: str = "Hello.\r\n",
             extra: str = "") -> bytes:
    head = f"From: {from_}\r\nTo: techhelp@district.test\r\nSubject: {subject}\r\n"
    head += f"Cc: {cc}\r\n" if cc else ""
    head += "Message-ID: <m1@school.test>\r\nDate: Fri, 20 Nov 2026 09:30:00 +0000\r\n" + extra
    return (head + "\r\n" + body).encode()


# ---- case 9: HTML --------------------------------------------------------------------------------

OBFUSCATED = ["\\\\evil.test/a.gif", "/\\evil.test/b.gif", "http:evil.test/c.gif", "https:\\\\evil.test/d.gif",
              "ht&#9;tp://evil.test/e.gif", "&#10;//evil.test/f.gif", " http://evil.test/g.gif"]


@pytest.mark.parametrize("src", OBFUSCATED)
def test_obfuscated_remote_images_are_not_loaded(src: str) -> None:
    out = sanitize_html(f'<p>Hi<img src="{src}" alt="logo"></p>')
    assert fetchable(out) == [] and " src=" not in out
    assert 'data-remote-src="http' in out and "evil.test/" in out  # the viewer may offer to load it


@pytest.mark.parametrize("html", ['<img src="/admin/tickets/1/close">', '<img src="tickets/1/close">',
                                  '<a href="/admin/tickets/1/close">x</a>', '<img src="?close=1">'])
def test_relative_urls_never_survive(html: str) -> None:
    out = sanitize_html(html)
    assert "close" not in out and fetchable(out) == []


def test_what_survives_sanitising() -> None:
    png = "data:image/png;base64,iVBORw0KGgo="
    out = sanitize_html(
        f'<img src="cid:logo@x"><img src="{png}"><img src="data:image/svg+xml;base64,PHN2Zz4=">'
        '<img src="HTTPS://cdn.example.test/p.gif" srcset="https://cdn.example.test/p2.gif 2x">'
        '<a href="https://example.test/doc?a=1&amp;b=2">doc</a> <a href="mailto:help@district.test">m</a>'
        ' <a href="javascript:alert(1)">j</a> <a href="cid:x">c</a>'
        '<table background="http://evil.test/t.gif"><tr><td background="//evil.test/c.gif">x</td></tr></table>'
        '<div style="color:red;background:url(http://evil.test/s.gif)">s</div>'
        '<style>@import url(http://evil.test/i.css);</style><p style="background-image:u\\72l(x)">p</p>'
    )
    assert fetchable(out) == []
    assert '<img src="cid:logo@x">' in out and f'<img src="{png}">' in out
    assert "svg" not in out
    assert out.count('data-remote-src="https://cdn.example.test/p.gif"') == 1 and "p2.gif" not in out
    assert '<a href="https://example.test/doc?a=1&amp;b=2" rel="noopener noreferrer">doc</a>' in out
    assert '<a href="mailto:help@district.test" rel="noopener noreferrer">m</a>' in out
    assert '<a rel="noopener noreferrer">j</a>' in out and '<a rel="noopener noreferrer">c</a>' in out
    assert 'data-remote-src="http://evil.test/t.gif"' in out and 'data-remote-src="https://evil.test/c.gif"' in out
    assert '<div style="color:red">s</div>' in out and "@import" not in out and "u\\72l" not in out


def test_link_text_is_what_the_browser_follows() -> None:
    out = sanitize_html('<a href=" ht&#9;tps:\\\\example.test\\doc ">doc</a>')
    assert '<a href="https://example.test/doc" rel="noopener noreferrer">doc</a>' == out


# ---- case 10: attachments ------------------------------------------------------------------------

SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>'
HTML = b"<html><body><script>fetch('/admin/tickets/1/close')</script></body></html>"


@pytest.mark.parametrize(("filename", "declared", "data", "expected"), [
    ("report.txt", "text/html", HTML, "text/plain"),
    ("image.png", "image/svg+xml", SVG, "text/plain"),
    ("image.png", "image/svg+xml", PNG, "image/png"),
    ("logo.svg", "image/svg+xml", SVG, "text/plain"),
    ("page.html", "text/html", HTML, "text/plain"),
    ("page.xhtml", "application/xhtml+xml", HTML, "text/plain"),
    ("run.js", "application/javascript", b"alert(1)", "text/plain"),
    ("feed.xml", "application/xml", b"<?xml version='1.0'?><x/>", "text/plain"),
    ("photo.jpg", "application/octet-stream", b"\xff\xd8\xff\xe0" + b"\x00" * 20, "image/jpeg"),
    ("scan.pdf", "application/octet-stream", PDF, "application/pdf"),
    ("scan.pdf", "text/html", PDF, "application/pdf"),
    ("data.bin", "text/html", bytes(range(256)), "application/octet-stream"),
    ("notes.txt", "text/plain", b"toner replaced", "text/plain"),
    ("table.csv", "text/csv", b"a,b\n1,2\n", "text/csv"),
    ("archive.zip", "application/zip", b"PK\x03\x04" + b"\x00" * 30, "application/zip"),
])  # fmt: skip
def test_stored_content_type_follows_bytes_and_extension(filename, declared, data, expected) -> None:
    assert safe_content_type(filename, declared, data[:512]) == expected


def test_forwarded_mail_keeps_its_type_even_with_html_inside() -> None:
    forwarded = b"Subject: x\r\nContent-Type: text/html\r\n\r\n<html><body>hi</body></html>"
    assert safe_content_type("x.eml", "message/rfc822", forwarded) == "message/rfc822"


def _with_attachment(filename: str, ctype: str, data: bytes) -> bytes:
    import base64

    body = base64.encodebytes(data).decode()
    return raw_mail("carol@school.test", extra='MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n',
                    body=f"--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--b\r\n"
                         f"Content-Type: {ctype}\r\nContent-Disposition: attachment; filename=\"{filename}\"\r\n"
                         f"Content-Transfer-Encoding: base64\r\n\r\n{body}\r\n--b--\r\n")


@pytest.mark.parametrize(("filename", "ctype", "data", "expected"), [
    ("report.txt", "text/html", HTML * 2000, "text/plain"),
    ("image.png", "image/svg+xml", SVG * 2000, "text/plain"),
])
def test_parsed_attachments_get_the_safe_type_also_when_streamed(tmp_path, filename, ctype, data, expected) -> None:
    raw = _with_attachment(filename, ctype, data)
    (small,) = parse_message(raw).attachments
    (large,) = parse_message(raw, storage=AttachmentStorage(tmp_path), large_part_threshold=1000).attachments
    assert large.is_stored
    assert (small.filename, small.content_type) == (large.filename, large.content_type) == (filename, expected)


def test_download_headers() -> None:
    headers = download_headers('Grüße "report"\r\n.html', "text/html")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Type"] == "text/plain"
    disposition = headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="Gr__e _report_ .html"; filename*=UTF-8\'\'')
    assert disposition.endswith("Gr%C3%BC%C3%9Fe%20%22report%22%20.html")
    assert "\r" not in "".join(headers.values()) and "\n" not in "".join(headers.values())
    assert download_headers("a.pdf", "application/pdf")["Content-Type"] == "application/pdf"
    assert download_headers("", "image/png")["Content-Disposition"] == 'attachment; filename="attachment"'


# ---- case 5: spoofed senders ---------------------------------------------------------------------


@pytest.mark.parametrize("from_", ["alice@school.test <mallory@evil.test>",
                                   '"alice@school.test" <mallory@evil.test>',
                                   "=?utf-8?q?alice=40school=2Etest?= <mallory@evil.test>",
                                   "Alice <alice@school.test> <mallory@evil.test>"])
def test_display_name_that_is_another_address(from_: str) -> None:
    msg = parse_message(raw_mail(from_))
    assert msg.from_ is not None and msg.from_.email == "mallory@evil.test"
    assert "alice@school.test" in msg.from_.name  # kept for display, next to the real address
    assert msg.from_suspicious and "mallory@evil.test" in msg.sender_warning


@pytest.mark.parametrize("from_", ["alice@school.test, mallory@evil.test", "Alice <alice@school.test>, x@evil.test"])
def test_more_than_one_from_address(from_: str) -> None:
    msg = parse_message(raw_mail(from_))
    assert msg.from_ is not None and msg.from_.email == "alice@school.test"
    assert msg.from_suspicious and "more than one" in msg.sender_warning


@pytest.mark.parametrize("from_", ["Alice Parent <alice@school.test>", "alice@school.test",
                                   "alice@school.test <alice@school.test>", '"Parent, Alice" <alice@school.test>'])
def test_ordinary_senders_are_not_suspicious(from_: str) -> None:
    msg = parse_message(raw_mail(from_))
    assert msg.from_ is not None and msg.from_.email == "alice@school.test"
    assert not msg.from_suspicious and msg.sender_warning == ""


def test_encoded_crlf_in_a_display_name_never_replaces_the_address() -> None:
    msg = parse_message(raw_mail("=?utf-8?q?Bob=0D=0ABcc:_x@evil.test?= <bob@school.test>",
                                 cc="=?utf-8?q?Eve=3A_a@evil.test=2C?= <eve@school.test>, dan@school.test"))
    assert msg.from_ == Address("bob@school.test", "Bob Bcc: x@evil.test")
    assert msg.from_suspicious  # the name shows another address
    assert [a.email for a in msg.cc] == ["eve@school.test", "dan@school.test"]


# ---- case 11: control characters in names and subjects; replies --------------------------------

EVIL_NAME = "=?utf-8?q?Ann=0D=0AX-Evil=3A_1?="


def test_names_and_subjects_are_stored_without_control_characters() -> None:
    msg = parse_message(raw_mail(f"{EVIL_NAME} <ann@school.test>", cc=f"{EVIL_NAME} <cara@school.test>",
                                 subject="=?utf-8?q?Printer=0D=0AX-Evil:_1=1B]0;owned=07=E2=80=AE?= \x1b[31mred"))
    assert msg.from_ == Address("ann@school.test", "Ann X-Evil: 1")
    assert msg.cc == [Address("cara@school.test", "Ann X-Evil: 1")]
    assert msg.subject == "Printer X-Evil: 1]0;owned [31mred"
    assert strip_controls("a\r\n\tb\x00c\x7f\u0085d\u202ee") == "a bcde"


def test_outgoing_headers_never_fail_because_of_a_stored_name() -> None:
    msg = build_message(mail_from=Address("techhelp@district.test", "Tech\r\nSupport"),
                        to=[Address("ann@school.test", "Ann\r\nX-Evil: 1")],
                        cc=[Address("cara@school.test", 'Cara\x00 "the\\boss" <cara@school.test>\n')],
                        subject="Re: x\r\nX-Evil: 2", text="t", html="<p>t</p>", message_id="1@district.test",
                        date=datetime(2026, 11, 20, tzinfo=UTC))
    raw = msg.as_bytes(policy=email.policy.SMTP)
    head = raw.split(b"\r\n\r\n")[0]
    assert b"\r\nX-Evil" not in head
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["To"].addresses[0].addr_spec == "ann@school.test"
    assert [a.addr_spec for a in parsed["Cc"].addresses] == ["cara@school.test"]


@given(st.text(max_size=200), st.text(max_size=200))
def test_any_stored_name_or_subject_makes_a_sendable_mail(name: str, subject: str) -> None:
    msg = build_message(mail_from=Address("techhelp@district.test", name), to=[Address("ann@school.test", name)],
                        cc=[Address("cara@school.test", name[::-1])], subject=subject, text="t", html="h",
                        message_id="1@district.test", date=datetime(2026, 11, 20, tzinfo=UTC))
    parsed = email.message_from_bytes(msg.as_bytes(policy=email.policy.SMTP), policy=email.policy.default)
    assert [a.addr_spec for a in parsed["To"].addresses] == ["ann@school.test"]
    assert [a.addr_spec for a in parsed["Cc"].addresses] == ["cara@school.test"]


def test_reply_to_requester_and_cc_with_crlf_names(hd_env) -> None:
    app = installation(hd_env, departments={DEPARTMENT: "techhelp@district.test"})
    with app.session() as s:  # a mailbox (no SMTP): the reply is queued, not only stored
        set_mailbox(app, s, actor=SYSTEM, department=DEPARTMENT, provider="generic", validate=False, secrets={},
                    config={"protocol": "maildir", "path": hd_env["HELPDESK_HOME"] + "/Maildir",
                            "email": "techhelp@district.test"})
        s.commit()
    raw = raw_mail(f"{EVIL_NAME} <ann@school.test>", cc=f"{EVIL_NAME} <cara@school.test>")
    assert ingest(app, raw, department=DEPARTMENT).status == "created"
    with app.session() as s:
        # a name stored before this fix (or by another path) still carries the CR/LF
        ticket = s.scalars(select(Ticket)).one()
        ticket.requester.name = "Ann\r\nX-Evil: 1"
        reply_to_ticket(app, s, actor=SYSTEM, ticket_id=ticket.id, body="Fixed.")
        s.commit()
    with app.session() as s:
        row = s.scalars(select(OutboxMessage)).one()
        assert row.recipients == ["ann@school.test", "cara@school.test"]
        head = row.raw.split(b"\r\n\r\n")[0]
        assert b"\nX-Evil" not in head


# ---- case 12: terminal output ----------------------------------------------------------------


def test_terminal_escape_sequences_are_removed() -> None:
    text = "Printer\x1b]0;owned\x07 \x1b[2J\x1b[31mbroken\x1b[0m\r\x9b31m\x1bPq#0\x1b\\ok\x08\u202e\nline 2\tx"
    assert terminal_safe(text) == "Printer brokenok\nline 2\tx"
    assert terminal_safe("Grüße – 日本") == "Grüße – 日本"


def test_ticket_list_prints_no_escape_sequence_from_a_subject(cli) -> None:
    cli("department", "add", DEPARTMENT, "--sender", "techhelp@district.test")
    raw = raw_mail("alice@school.test", subject="=?utf-8?q?Printer=1B]0;owned=07?= \x1b[2Jbroken\x9b")
    cli("ingest", "--department", DEPARTMENT, input=raw)
    out = cli("ticket", "list").output
    assert "Printer]0;owned [2Jbroken" in out and not any(c in out for c in "\x1b\x07\x9b")


# ---- case 12 (second half): files that hold mail are the owner's only ---------------------------


def test_database_and_attachment_store_are_private(tmp_path, db_url) -> None:
    import os
    import stat

    from helpdesk_core.testing.apps import Cli, environment

    old = os.umask(0o022)  # the usual umask: what SQLite and mkdir would give 0644/0755 under
    try:
        env = environment(tmp_path / "home", db_url if not db_url.startswith("sqlite")
                          else f"sqlite:///{tmp_path / 'new' / 'helpdesk.db'}")
        env["HELPDESK_ATTACHMENTS"] = str(tmp_path / "store")
        cli = Cli(env)
        cli("init")
        cli("department", "add", DEPARTMENT, "--sender", "techhelp@district.test")
        cli("ingest", "--department", DEPARTMENT, input=_with_attachment("r.pdf", "application/pdf", PDF))
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    store = tmp_path / "store"
    folders = [store, *(p for p in store.rglob("*") if p.is_dir())]
    files = [p for p in store.rglob("*") if p.is_file()]
    assert len(folders) > 1 and files
    assert {oct(mode(p)) for p in folders} == {"0o700"}
    assert {oct(mode(p)) for p in files} == {"0o600"}
    if db_url.startswith("sqlite"):
        db = tmp_path / "new" / "helpdesk.db"
        assert oct(mode(db)) == "0o600" and oct(mode(db.parent)) == "0o700"
        for extra in (db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            assert not extra.exists() or oct(mode(extra)) == "0o600"


def test_nothing_the_cli_prints_carries_a_terminal_escape(cli) -> None:
    import json

    cli("department", "add", DEPARTMENT, "--sender", "techhelp@district.test")
    body = "Look:\x1b]0;owned\x07 \x1b[2Jgone \x9b31m red \u202eevil\r\n"
    cli("ingest", "--department", DEPARTMENT, input=raw_mail("Ann\u202e <ann@school.test>", body=body).decode()
        .encode("utf-8"))
    for args in (("ticket", "show", "1"), ("ticket", "show", "1", "--json"), ("ticket", "export"),
                 ("ticket", "list", "--json")):
        out = cli(*args).output
        assert not any(c in out for c in "\x1b\x07\x9b\u202e"), (args, out)
    shown = json.loads(cli("ticket", "show", "1", "--json").output)
    bodies = [m.get("body_text") or "" for m in shown["messages"]]
    assert any("\x1b]0;owned\x07 \x1b[2Jgone \x9b31m" in b for b in bodies)  # the JSON keeps it, escaped
