"""Builds realistic test mail: plain, HTML+text, non-ASCII, 8-bit iso-8859-1, attachments."""

from __future__ import annotations

import hashlib
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from datetime import datetime, timezone

PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489") + b"\x00" * 64
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
EXE = b"MZ" + bytes(range(200))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


#: when each distinct mail was first built: the same arguments within a minute build the same bytes
#: (a copy is a duplicate), later ones a fresh Date (a test much later must not build "old" mail)
_DATES: dict[tuple[object, ...], datetime] = {}


def plain(subject: str = "Printer broken", sender: str = "Alice Parent <alice@example.test>",
          to: str = "techhelp@district.test", body: str = "The printer in room 12 is broken.\n",
          msgid: str | None = None, **headers: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    # dated now: mail older than mail.acknowledge_max_age_days, or dated before its mailbox was
    # configured, is a backlog (no acknowledgement, no staff notification); the same mail built
    # again within a minute keeps its Date, so both copies have the same bytes
    key = (subject, sender, to, body, msgid, tuple(sorted(headers.items())))
    now = datetime.now(timezone.utc).replace(microsecond=0)
    if key not in _DATES or (now - _DATES[key]).total_seconds() > 60:
        _DATES[key] = now
    msg["Date"] = format_datetime(_DATES[key])
    msg["Message-ID"] = msgid or make_msgid(domain="example.test")
    for key, value in headers.items():
        msg[key.replace("_", "-")] = value
    msg.set_content(body)
    return msg.as_bytes(policy=SMTP)


def html_and_text(subject: str = "Projector not working", sender: str = "bob@example.test") -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "techhelp@district.test"
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="example.test")
    msg.set_content("The projector shows no picture.\n")
    msg.add_alternative("<p>The projector shows <b>no picture</b>.</p><script>alert(1)</script>", subtype="html")
    return msg.as_bytes(policy=SMTP)


def utf8_nonascii(subject: str = "Überprüfung: Drucker kaputt – ñ 日本", sender: str = "José Müller <jose@example.test>") -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "techhelp@district.test"
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="example.test")
    msg.set_content("Grüße aus Köln — the printer says «erreur». 日本語\n", charset="utf-8", cte="8bit")
    return msg.as_bytes(policy=SMTP)


def latin1_8bit(sender: str = "francois@example.test") -> bytes:
    """Hand-written: iso-8859-1 body in raw 8 bit, RFC 2047 Q-encoded subject."""
    return (
        b"From: =?iso-8859-1?q?Fran=E7ois_Ga=EBl?= <" + sender.encode() + b">\r\n"
        b"To: techhelp@district.test\r\n"
        b"Subject: =?iso-8859-1?q?Probl=E8me_d'=E9cran?=\r\n"
        b"Message-ID: <latin1-" + hashlib.md5(sender.encode()).hexdigest().encode() + b"@example.test>\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n"
        b"L'\xe9cran de la salle 5 ne s'allume plus. Merci d'avance, Fran\xe7ois\r\n"
    )


def with_attachments(subject: str = "Scan of the error", sender: str = "carol@example.test",
                     files: list[tuple[str, str, bytes]] | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "techhelp@district.test"
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="example.test")
    msg.set_content("See the attached files.\n")
    for filename, ctype, data in files or [("error.png", "image/png", PNG), ("report.pdf", "application/pdf", PDF),
                                           ("virus.exe", "application/octet-stream", EXE)]:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes(policy=SMTP)


def mixed_mailbox() -> list[bytes]:
    """The mixed mail of the end-to-end tests, in delivery order."""
    return [plain(), html_and_text(), utf8_nonascii(), latin1_8bit(), with_attachments()]
