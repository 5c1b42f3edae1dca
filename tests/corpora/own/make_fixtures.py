"""Regenerate the hand-made fixtures of this folder: ``python tests/corpora/own/make_fixtures.py``.

The fixtures are committed; this script documents exactly which bytes they contain (8-bit
charsets, a hand-built TNEF ``winmail.dat``, uuencoding) and is not run by the test suite.
"""

from __future__ import annotations

import base64
import binascii
import struct
from pathlib import Path

HERE = Path(__file__).parent
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def tnef(files: list[tuple[str, bytes]]) -> bytes:
    """A minimal TNEF stream (signature, key, per attachment: rend data, title, data)."""

    def obj(level: int, attr_id: int, attr_type: int, data: bytes) -> bytes:
        checksum = sum(data) & 0xFFFF
        return struct.pack("<BHHI", level, attr_id, attr_type, len(data)) + data + struct.pack("<H", checksum)

    out = struct.pack("<IH", 0x223E9F78, 0x0001)
    out += obj(1, 0x9006, 0x0008, struct.pack("<I", 0x00010000))  # attTnefVersion
    for name, data in files:
        out += obj(2, 0x9002, 0x0006, b"\x01\x00\xff\xff\xff\xff\x01\x00\x01\x00\x00\x00\x00\x00")
        out += obj(2, 0x8010, 0x0001, name.encode("ascii") + b"\x00")
        out += obj(2, 0x800F, 0x0006, data)
    return out


def uuencode(data: bytes) -> str:
    lines = [binascii.b2a_uu(data[i : i + 45]).decode("ascii").rstrip("\n") for i in range(0, len(data), 45)]
    return "\n".join(lines + ["`"])


FIXTURES: dict[str, bytes] = {}

FIXTURES["latin1_8bit.eml"] = (
    b"From: =?iso-8859-1?q?Ren=E9_Fran=E7ois?= <Rene.Francois@Example.FR>\n"
    b"To: support@example.com\n"
    b"Subject: =?iso-8859-1?q?Caf=E9_cr=E8me_et_=E9l=E8ves?=\n"
    b"Date: Mon, 3 Jun 2024 10:15:00 +0200\n"
    b"Message-ID: <latin1-1@example.fr>\n"
    b"MIME-Version: 1.0\n"
    b"Content-Type: text/plain; charset=iso-8859-1\n"
    b"Content-Transfer-Encoding: 8bit\n\n"
    + "Bonjour,\n\nVoilà, déjà vu : ça coûte 5 €uros? Non, 5 francs.\n".replace("€", "E").encode("iso-8859-1")
)

FIXTURES["unknown_charset.eml"] = (
    b"From: Hans <hans@example.de>\n"
    b"To: support@example.com\n"
    b"Subject: =?x-unknown?q?Gr=C3=BC=C3=9Fe?= aus Bonn\n"
    b"Date: Tue, 4 Jun 2024 08:00:00 +0000\n"
    b"Message-ID: <unknown-cs@example.de>\n"
    b"MIME-Version: 1.0\n"
    b"Content-Type: text/plain; charset=x-unknown\n"
    b"Content-Transfer-Encoding: 8bit\n\n" + "Viele Grüße aus Bonn\n".encode("utf-8")
)

FIXTURES["raw_utf8_headers.eml"] = (
    "From: Jürgen Müller <Juergen.Mueller@Example.DE>\n"
    "To: Støtte <support@example.com>, \"Ötzi, Team\" <team@example.com>\n"
    "Subject: Grüße aus Köln –\n \tLieferung fehlt\n"
    "Date: Wed, 5 Jun 2024 12:00:00 +0200\n"
    "Message-ID: <raw-utf8@example.de>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: 8bit\n\n"
    "Hallo, meine Bestellung ist nicht angekommen.\n"
).encode("utf-8")

FIXTURES["winmail.eml"] = (
    b"From: Outlook User <outlook@example.com>\n"
    b"To: support@example.com\n"
    b"Subject: Report attached\n"
    b"Message-ID: <tnef-1@example.com>\n"
    b"MIME-Version: 1.0\n"
    b'Content-Type: multipart/mixed; boundary="b1"\n\n'
    b"--b1\nContent-Type: text/plain; charset=us-ascii\n\nPlease see the report.\n"
    b"--b1\nContent-Type: application/ms-tnef; name=\"winmail.dat\"\n"
    b"Content-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"winmail.dat\"\n\n"
    + base64.encodebytes(tnef([("report.txt", b"quarterly numbers\n"), ("logo.png", PNG)]))
    + b"--b1--\n"
)

FIXTURES["uuencoded.eml"] = (
    b"From: Old Client <old@example.com>\n"
    b"To: support@example.com\n"
    b"Subject: uuencoded file\n"
    b"Message-ID: <uu-1@example.com>\n\n"
    b"Here is the file.\n\nbegin 644 notes.txt\n"
    + uuencode(b"line one\nline two with more text to exceed forty-five bytes\n").encode("ascii")
    + b"\nend\n\nThanks!\n"
)

FIXTURES["cid_inline.eml"] = (
    b"From: Designer <designer@example.com>\n"
    b"To: support@example.com\n"
    b"Subject: Logo inline\n"
    b"Message-ID: <cid-1@example.com>\n"
    b"MIME-Version: 1.0\n"
    b'Content-Type: multipart/related; boundary="rel"\n\n'
    b"--rel\nContent-Type: text/html; charset=utf-8\n\n"
    b'<html><body><p>Our logo:</p><img src="cid:logo123@example.com" alt="logo">'
    b'<img src="https://tracker.example.net/pixel.gif"></body></html>\n'
    b"--rel\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n"
    b"Content-ID: <logo123@example.com>\nContent-Disposition: inline\n\n"
    + base64.encodebytes(PNG)
    + b"--rel\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n"
    b"Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9%2F..%2Fevil.pdf\n\n"
    + base64.encodebytes(b"%PDF-1.4 fake")
    + b"--rel--\n"
)

FIXTURES["nested_rfc822.eml"] = (
    b"From: Forwarder <fwd@example.com>\n"
    b"To: support@example.com\n"
    b"Subject: Fwd: original problem\n"
    b"Message-ID: <outer@example.com>\n"
    b"MIME-Version: 1.0\n"
    b'Content-Type: multipart/mixed; boundary="outer"\n\n'
    b"--outer\nContent-Type: text/plain; charset=utf-8\n\nSee the customer's mail below.\n"
    b"--outer\nContent-Type: message/rfc822\n\n"
    b"From: Customer <customer@example.org>\n"
    b"Subject: Printer on fire\n"
    b"Message-ID: <inner@example.org>\n"
    b"MIME-Version: 1.0\n"
    b'Content-Type: multipart/alternative; boundary="inner"\n\n'
    b"--inner\nContent-Type: text/plain\n\nInner body text.\n"
    b"--inner\nContent-Type: text/html\n\n<p>Inner body text.</p>\n"
    b"--inner--\n"
    b"--outer--\n"
)

FIXTURES["html_only_xss.eml"] = (
    b"From: Attacker <Evil@Example.COM>\n"
    b"To: support@example.com\n"
    b"Subject: =?utf-8?b?SGVsbG8g8J+Ri4==?=\n"
    b"Message-ID: <xss@example.com>\n"
    b"MIME-Version: 1.0\n"
    b"Content-Type: text/html; charset=utf-8\n\n"
    b"<html><head><style>body{background:url(http://x/y)}</style><script>alert(1)</script></head>"
    b"<body><p onclick=\"steal()\">Hello &amp; welcome</p><img src=x onerror=\"alert(2)\">"
    b"<a href=\"javascript:alert(3)\">click</a><a href=\"https://example.com/help\">help</a>"
    b"<ul><li>first</li><li>second</li></ul><br><img src=\"http://remote.example/i.png\">"
    b"<iframe src=\"https://evil\"></iframe><svg onload=\"alert(4)\"></svg></body></html>\n"
)

FIXTURES["malformed.eml"] = (
    b"From: broken <<<Broken.Sender@Example.com> garbage ((\n"
    b"To: ,,, <>\n"
    b"Subject: =?utf-8?q?Broken_=E2=82?= message\n"
    b"Date: yesterday at noon\n"
    b"Message-ID: no-brackets@example.com\n"
    b"References: <a@x> junk b@y\n <c@z>\n"
    b"Content-Type: multipart/mixed; boundary=\"never\"\n\n"
    b"--never\nContent-Type: text/plain; charset=\"utf-8\n\nThis part is cut off and has \xff\xfe bytes\n"
)


def main() -> None:
    for name, data in FIXTURES.items():
        (HERE / name).write_bytes(data)


if __name__ == "__main__":
    main()
