"""Deterministic generator of a realistic help-desk mailbox for the import benchmark.

``generate(n, seed)`` returns ``n`` raw RFC 5322 messages (CRLF line endings) in delivery order:

* ~70 % open a new thread, ~30 % reply to an earlier thread: ``In-Reply-To``/``References`` name
  the thread's previous message and the subject carries ``Re: [Ticket #N]`` where N is the number
  the importer gives that thread (threads are numbered 1, 2, ... in order of their first message,
  as a fresh department does);
* bodies: ~40 % text/plain, ~40 % multipart/alternative (text + HTML), ~20 % HTML only; replies
  quote the previous message (``On ... wrote:`` + ``>`` lines, or a ``<blockquote>``);
* charsets utf-8 (~70 %) and iso-8859-1 (~30 %); transfer encodings 8bit, quoted-printable and
  base64 in equal parts; non-ASCII subjects and display names are RFC 2047 encoded;
* ~20 % carry one attachment of 10-200 KB (PDF- or PNG-like random bytes, base64).

The same ``(n, seed)`` always gives byte-identical messages, so a mailbox can be refilled
identically for each measurement. ``big_message(mb)`` builds one message with an ``mb`` MB
attachment for the peak-memory measurement.
"""

from __future__ import annotations

import base64
import binascii
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.utils import format_datetime

__all__ = ["DEFAULT_SEED", "MailboxStats", "big_message", "generate", "stats"]

DEFAULT_SEED = 20240611
SUPPORT = "support@bench.test"
CRLF = "\r\n"

_ASCII_WORDS = (
    "printer network login password account invoice laptop screen keyboard mouse email server "
    "office meeting room projector backup file folder share access error message update install "
    "license software hardware phone headset badge door heating light chair desk monitor cable "
    "wifi vpn certificate calendar report request urgent please thanks morning afternoon today "
    "tomorrow again still broken working slow fast since yesterday week colleague manager team"
).split()
_LATIN1_WORDS = (
    "Grüße Büro Drucker Störung Straße Überweisung Bestätigung café naïve façade problème réseau "
    "élève déjà mañana niño señal pequeño Ärger Öffnung über für"
).split()
_UTF8_ONLY_WORDS = "Ошибка вход принтер 打印机 故障 ログイン パスワード Zażółć œuvre €".split()
_SUBJECTS_ASCII = ("Printer on floor 2 is jammed", "Cannot log in to the VPN", "Laptop screen flickers",
                   "Request: new keyboard", "Invoice 2024-113 missing", "Projector in room B does not start",
                   "Password reset please", "E-mail quota exceeded", "Wi-Fi drops every hour")
_SUBJECTS_LATIN1 = ("Drucker im Büro streikt", "Problème de réseau au 3ème étage", "Überweisung fehlt",
                    "Señal débil en la sala", "Bestätigung für Zugang", "Störung: Telefon im Flur")
_SUBJECTS_UTF8 = ("Ошибка входа в систему", "打印机故障", "ログインできません", "Zażółć gęślą jaźń — VPN",
                  "Café ☕ machine broken")
_FIRST = ("Anna", "Bernd", "Chloé", "Dmitri", "Élodie", "Fatima", "Günter", "Hiro", "Inès", "José",
          "Katarzyna", "Lars", "Marie", "Noël", "Olga", "Pål", "Quentin", "Renée", "Søren", "Tomás")
_LAST = ("Müller", "Dupont", "Smith", "García", "Kowalski", "Jensen", "Rossi", "Øster", "Brown", "Lefèvre")


@dataclass
class _Thread:
    number: int
    subject: str
    customer: str
    name: str
    charset: str
    message_ids: list[str] = field(default_factory=list)
    last_text: str = ""


@dataclass
class MailboxStats:
    messages: int = 0
    new_threads: int = 0
    replies: int = 0
    with_attachment: int = 0
    attachment_bytes: int = 0
    total_bytes: int = 0
    formats: dict[str, int] = field(default_factory=dict)
    charsets: dict[str, int] = field(default_factory=dict)
    encodings: dict[str, int] = field(default_factory=dict)


_last_stats = MailboxStats()


def stats() -> MailboxStats:
    """Counts of the last :func:`generate` call (for the benchmark's printout)."""
    return _last_stats


def _encode_header(text: str, charset: str) -> str:
    if text.isascii():
        return text
    return Header(text, charset, maxlinelen=76).encode(linesep=CRLF)


def _address(name: str, email: str, charset: str) -> str:
    if name.isascii():
        return f'"{name}" <{email}>'
    return f"{_encode_header(name, charset)} <{email}>"


def _sentence(rng: random.Random, charset: str) -> str:
    words = []
    for _ in range(rng.randint(6, 16)):
        r = rng.random()
        if r < 0.12:
            words.append(rng.choice(_LATIN1_WORDS))
        elif r < 0.16 and charset == "utf-8":
            words.append(rng.choice(_UTF8_ONLY_WORDS))
        else:
            words.append(rng.choice(_ASCII_WORDS))
    return " ".join(words).capitalize() + rng.choice(".!?.")


def _paragraphs(rng: random.Random, charset: str) -> list[str]:
    return [" ".join(_sentence(rng, charset) for _ in range(rng.randint(1, 4)))
            for _ in range(rng.randint(1, 5))]


def _wrap(text: str, width: int = 72) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(line)
    return lines


def _encode_body(text: str, charset: str, cte: str) -> tuple[list[str], bytes]:
    """(part headers, encoded body bytes with CRLF) for a text part."""
    data = text.replace("\n", CRLF).encode(charset)
    if cte == "8bit" and data.isascii():
        cte = "7bit"
    if cte == "base64":
        body = base64.encodebytes(data).replace(b"\n", b"\r\n")
    elif cte == "quoted-printable":
        body = binascii.b2a_qp(data, istext=True).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    else:
        body = data
    return [f"Content-Transfer-Encoding: {cte}"], body


def _text_part(subtype: str, text: str, charset: str, cte: str) -> bytes:
    headers, body = _encode_body(text, charset, cte)
    head = [f'Content-Type: text/{subtype}; charset="{charset}"', *headers]
    return (CRLF.join(head) + CRLF + CRLF).encode("ascii") + body


def _attachment(rng: random.Random, index: int) -> tuple[bytes, int]:
    size = rng.randint(10 * 1024, 200 * 1024)
    if rng.random() < 0.5:
        name, ctype = f"scan-{index:05d}.pdf", "application/pdf"
        data = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + rng.randbytes(size - 15)
    else:
        name, ctype = f"screenshot-{index:05d}.png", "image/png"
        data = b"\x89PNG\r\n\x1a\n" + rng.randbytes(size - 8)
    return _binary_part(name, ctype, data), size


def _binary_part(name: str, ctype: str, data: bytes) -> bytes:
    head = (f'Content-Type: {ctype}; name="{name}"{CRLF}'
            f"Content-Transfer-Encoding: base64{CRLF}"
            f'Content-Disposition: attachment; filename="{name}"{CRLF}{CRLF}')
    return head.encode("ascii") + base64.encodebytes(data).replace(b"\n", b"\r\n")


def _multipart(subtype: str, parts: list[bytes], boundary: str) -> bytes:
    out = [f"Content-Type: multipart/{subtype}; boundary=\"{boundary}\"{CRLF}{CRLF}".encode("ascii")]
    for part in parts:
        out.append(f"--{boundary}{CRLF}".encode("ascii") + part + (b"" if part.endswith(b"\r\n") else b"\r\n"))
    out.append(f"--{boundary}--{CRLF}".encode("ascii"))
    return b"".join(out)


def _html(paragraphs: list[str], quoted: str | None, who: str) -> str:
    esc = [p.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") for p in paragraphs]
    body = "".join(f"<p style=\"color:#222;font-family:Arial\">{p}</p>\n" for p in esc)
    if quoted:
        q = quoted.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", "<br>\n")
        body += f"<div>On Mon, 3 Jun 2024, {who} wrote:</div>\n<blockquote type=\"cite\">{q}</blockquote>\n"
    return ("<html><head><style>p{margin:0}</style></head><body>\n" + body
            + "<div>--<br>Sent from my phone</div>\n</body></html>\n")


def generate(n: int, seed: int = DEFAULT_SEED, *, reply_share: float = 0.30,
             attachment_share: float = 0.20) -> list[bytes]:
    """``n`` raw messages (bytes, CRLF), identical for the same ``(n, seed)``."""
    global _last_stats
    rng = random.Random(seed)
    st = MailboxStats()
    threads: list[_Thread] = []
    start = datetime(2024, 6, 3, 7, 30, tzinfo=UTC)
    out: list[bytes] = []
    for i in range(n):
        reply = bool(threads) and rng.random() < reply_share
        if reply:
            thread = rng.choice(threads[-500:])  # recent threads get the replies
            charset = thread.charset
            subject = f"Re: [Ticket #{thread.number}] {thread.subject}"
            st.replies += 1
        else:
            charset = "iso-8859-1" if rng.random() < 0.30 else "utf-8"
            pool = _SUBJECTS_ASCII + _SUBJECTS_LATIN1 + (_SUBJECTS_UTF8 if charset == "utf-8" else ())
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            number = len(threads) + 1
            thread = _Thread(number=number, subject=f"{rng.choice(pool)} ({number})",
                             customer=f"{first.lower().encode('ascii', 'ignore').decode()}.{number}@customers.test",
                             name=f"{first} {last}", charset=charset)
            threads.append(thread)
            subject = thread.subject
            st.new_threads += 1
        cte = rng.choice(("8bit", "quoted-printable", "base64"))
        fmt = rng.choices(("plain", "alternative", "html"), weights=(40, 40, 20))[0]
        paragraphs = _paragraphs(rng, charset)
        quoted = thread.last_text if reply and thread.last_text else None
        text_lines: list[str] = []
        for p in paragraphs:
            text_lines += _wrap(p) + [""]
        text_lines += ["Best regards,", thread.name]
        if quoted:
            text_lines += ["", f"On Mon, 3 Jun 2024 at 09:12, {thread.name} <{thread.customer}> wrote:"]
            text_lines += ["> " + line if line else ">" for line in quoted.split("\n")]
        text = "\n".join(text_lines) + "\n"
        own_text = "\n".join(_wrap(" ".join(paragraphs)))
        if fmt == "plain":
            body = _text_part("plain", text, charset, cte)
        elif fmt == "html":
            body = _text_part("html", _html(paragraphs, quoted, thread.name), charset, cte)
        else:
            body = _multipart("alternative", [
                _text_part("plain", text, charset, cte),
                _text_part("html", _html(paragraphs, quoted, thread.name), charset, cte),
            ], f"alt-{seed}-{i}")
        if rng.random() < attachment_share:
            att, size = _attachment(rng, i)
            body = _multipart("mixed", [body, att], f"mix-{seed}-{i}")
            st.with_attachment += 1
            st.attachment_bytes += size
        msgid = f"{seed}.{i}.{rng.getrandbits(40):010x}@mail.customers.test"
        date = start + timedelta(seconds=37 * i + rng.randint(0, 30))
        headers = [
            f"Return-Path: <{thread.customer}>",
            f"Received: from mail.customers.test (mail.customers.test [192.0.2.{i % 250 + 1}]){CRLF}"
            f"\tby mx.bench.test with ESMTPS id {rng.getrandbits(48):012X}{CRLF}"
            f"\tfor <{SUPPORT}>; {format_datetime(date)}",
            f"From: {_address(thread.name, thread.customer, charset)}",
            f"To: IT Support <{SUPPORT}>",
            f"Subject: {_encode_header(subject, charset)}",
            f"Date: {format_datetime(date)}",
            f"Message-ID: <{msgid}>",
        ]
        if reply and thread.message_ids:
            headers.append(f"In-Reply-To: <{thread.message_ids[-1]}>")
            refs = " ".join(f"<{m}>" for m in thread.message_ids[-10:])
            headers.append(f"References: {refs}")
        headers += ["MIME-Version: 1.0", "X-Mailer: bench-mailgen 1.0"]
        raw = (CRLF.join(headers) + CRLF).encode("ascii") + body
        thread.message_ids.append(msgid)
        thread.last_text = own_text
        out.append(raw)
        st.messages += 1
        st.total_bytes += len(raw)
        st.formats[fmt] = st.formats.get(fmt, 0) + 1
        st.charsets[charset] = st.charsets.get(charset, 0) + 1
        st.encodings[cte] = st.encodings.get(cte, 0) + 1
    _last_stats = st
    return out


def big_message(megabytes: float = 50, seed: int = DEFAULT_SEED) -> bytes:
    """One message with a ``megabytes`` MB PDF-like attachment (base64, so ~1.37x on the wire)."""
    rng = random.Random(seed + 1)
    data = b"%PDF-1.4\n" + rng.randbytes(int(megabytes * 1024 * 1024) - 9)
    text = _text_part("plain", "Please find the full scan attached.\nRegards,\nBig Sender\n", "utf-8", "8bit")
    body = _multipart("mixed", [text, _binary_part("full-scan.pdf", "application/pdf", data)], f"big-{seed}")
    date = datetime(2024, 6, 3, 7, 30, tzinfo=UTC)
    headers = [
        "From: Big Sender <big.sender@customers.test>",
        f"To: IT Support <{SUPPORT}>",
        "Subject: Full scan of the archive",
        f"Date: {format_datetime(date)}",
        f"Message-ID: <big.{seed}@mail.customers.test>",
        "MIME-Version: 1.0",
    ]
    return (CRLF.join(headers) + CRLF).encode("ascii") + body


if __name__ == "__main__":  # quick look: python bench/mailgen.py 5 | less
    import sys

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    for raw in generate(count):
        sys.stdout.write(raw.decode("latin-1")[:3000] + "\n" + "=" * 72 + "\n")
