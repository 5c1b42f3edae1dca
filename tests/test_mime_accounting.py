"""Issue 11, cases 4 and 7 (parsing level): every leaf MIME part is accounted for -- displayed body,
an alternative of it, an attachment, an inline image, or listed in ``removed_attachments`` with a
reason -- and the cost of a mail is bounded by ``max_parts``."""

from __future__ import annotations

import binascii
import time
import tracemalloc
from pathlib import Path

from helpdesk_core.mail.mimeparts import content_was_lost
from helpdesk_core.mail.parsing import parse_message

CORPORA = Path(__file__).parent / "corpora"
#: BinHex 4.0's 64 characters, in value order (written out here, independent of the decoder)
BINHEX_ALPHABET = "!\"#$%&'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr"
HEAD = (b"From: Alice <alice@example.test>\r\nTo: help@example.test\r\nSubject: parts\r\n"
        b"Message-ID: <parts@example.test>\r\nMIME-Version: 1.0\r\n")


def _multipart(subtype: str, *parts: bytes, boundary: str = "b1", extra: str = "") -> bytes:
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + p + b"\r\n" for p in parts)
    return (f'Content-Type: multipart/{subtype}; boundary="{boundary}"{extra}\r\n\r\n'.encode()
            + body + b"--" + boundary.encode() + b"--\r\n")


def _names(msg) -> list[str]:
    return [a.filename for a in msg.attachments]


# --------------------------------------------------------------------------- HTML parts


def test_a_nameless_html_part_next_to_an_html_body_is_an_attachment() -> None:
    raw = HEAD + _multipart("mixed", b"Content-Type: text/html\r\n\r\n<p>The body</p>",
                            b"Content-Type: text/html\r\n\r\n<p>The document</p>")
    msg = parse_message(raw)
    assert "The body" in (msg.body_html or "") and "document" not in (msg.body_html or "")
    assert "document" not in msg.body_text
    (att,) = msg.attachments
    assert att.content_type == "text/plain" and att.filename.endswith(".html")
    assert att.data == b"<p>The document</p>"


def test_document_html_after_an_alternative_body_is_an_attachment_with_or_without_disposition() -> None:
    alternative = _multipart("alternative", b"Content-Type: text/plain\r\n\r\nThe body",
                             b"Content-Type: text/html\r\n\r\n<p>The body</p>", boundary="b2")
    for disposition in (b"", b"Content-Disposition: inline\r\n", b"Content-Disposition: attachment\r\n",
                        b'Content-Disposition: attachment; filename="document.html"\r\n'):
        raw = HEAD + _multipart("mixed", alternative,
                                b"Content-Type: text/html\r\n" + disposition + b"\r\n<p>The document</p>")
        msg = parse_message(raw)
        assert msg.body_text == "The body"
        assert "document" not in (msg.body_html or "")
        assert [a.data for a in msg.attachments] == [b"<p>The document</p>"], disposition


# --------------------------------------------------------------------------- signed / encrypted


def test_pgp_signed_mail_keeps_its_signature() -> None:
    msg = parse_message((CORPORA / "django-helpdesk" / "pgp.eml").read_bytes())
    assert msg.content_type == "multipart/signed"
    (sig,) = msg.attachments
    assert sig.filename == "signature.asc" and sig.content_type == "application/pgp-signature"
    assert b"BEGIN PGP SIGNATURE" in sig.data
    assert msg.body_text.startswith("hi, thanks for looking into this")


def test_pgp_mime_encrypted_mail_keeps_both_parts_and_says_it_is_encrypted() -> None:
    raw = HEAD + _multipart(
        "encrypted",
        b"Content-Type: application/pgp-encrypted\r\nContent-Description: PGP/MIME version identification"
        b"\r\n\r\nVersion: 1\r\n",
        b'Content-Type: application/octet-stream; name="encrypted.asc"\r\n'
        b'Content-Disposition: inline; filename="encrypted.asc"\r\n\r\n'
        b"-----BEGIN PGP MESSAGE-----\r\n\r\nhQEMA1234\r\n-----END PGP MESSAGE-----\r\n",
        extra='; protocol="application/pgp-encrypted"')
    msg = parse_message(raw)
    by_type = {a.content_type: a for a in msg.attachments}
    assert len(msg.attachments) == 2
    assert by_type["application/pgp-encrypted"].data.strip() == b"Version: 1"
    assert by_type["application/pgp-encrypted"].filename.endswith(".pgp")
    assert "encrypted.asc" in _names(msg)
    assert "encrypted (PGP/MIME)" in msg.body_text and "encrypted.asc" in msg.body_text
    assert msg.body_display == msg.body_text


def test_smime_encrypted_mail_says_it_is_encrypted() -> None:
    raw = HEAD + (b'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"\r\n'
                  b"Content-Transfer-Encoding: base64\r\n"
                  b'Content-Disposition: attachment; filename="smime.p7m"\r\n\r\n'
                  + binascii.b2a_base64(b"\x30\x80" + bytes(range(64))))
    msg = parse_message(raw)
    assert _names(msg) == ["smime.p7m"]
    assert "encrypted (S/MIME)" in msg.body_text


# --------------------------------------------------------------------------- encoded files in the text


def binhex(name: str, data: bytes) -> str:
    """A BinHex 4.0 block (with a run-length encoded run, as real encoders produce)."""
    header = bytes([len(name)]) + name.encode() + b"\0" + b"TEXTttxt" + b"\0\0"
    header += len(data).to_bytes(4, "big") + (0).to_bytes(4, "big")
    plain = header + binascii.crc_hqx(header, 0).to_bytes(2, "big")
    plain += data + binascii.crc_hqx(data, 0).to_bytes(2, "big") + (0).to_bytes(2, "big")
    rle = bytearray()
    i = 0
    while i < len(plain):
        run = 1
        while i + run < len(plain) and plain[i + run] == plain[i] and run < 255:
            run += 1
        if plain[i] == 0x90:
            rle += b"\x90\x00" * run
        elif run > 3:
            rle += bytes([plain[i], 0x90, run])
        else:
            rle += plain[i : i + 1] * run
        i += run
    bits = "".join(f"{b:08b}" for b in rle)
    bits += "0" * (-len(bits) % 6)
    encoded = "".join(BINHEX_ALPHABET[int(bits[j : j + 6], 2)] for j in range(0, len(bits), 6))
    lines = [encoded[j : j + 64] for j in range(0, len(encoded), 64)]
    return "(This file must be converted with BinHex 4.0)\r\n:" + "\r\n".join(lines) + ":\r\n"


def test_binhex_in_a_text_body_becomes_a_decoded_attachment() -> None:
    data = b"Report line one\r\n" + b"\x00" * 40 + b"\x90 and more\r\n" + bytes(range(256))
    body = "Here is the file.\r\n\r\n" + binhex("report.txt", data) + "\r\nBye, Alice\r\n"
    raw = HEAD + b"Content-Type: text/plain\r\n\r\n" + body.encode()
    msg = parse_message(raw)
    (att,) = msg.attachments
    assert att.filename == "report.txt" and att.data == data
    assert "BinHex" not in msg.body_text and "Here is the file." in msg.body_text and "Bye, Alice" in msg.body_text
    assert msg.defects == []


def test_a_binhex_part_becomes_the_decoded_file() -> None:
    data = b"%PDF-1.4 " + bytes(range(256)) * 3
    raw = HEAD + _multipart("mixed", b"Content-Type: text/plain\r\n\r\nThe file.",
                            b'Content-Type: application/mac-binhex40; name="report.pdf.hqx"\r\n\r\n'
                            + binhex("report.pdf", data).encode())
    msg = parse_message(raw)
    assert [(a.filename, a.data) for a in msg.attachments] == [("report.pdf", data)]
    assert msg.defects == []


def test_a_corrupt_binhex_block_is_reported_and_kept() -> None:
    block = binhex("report.txt", b"some data here " * 10)
    corrupt = block[:80] + ("!" if block[80] != "!" else "#") + block[81:]
    msg = parse_message(HEAD + b"Content-Type: text/plain\r\n\r\nFile:\r\n" + corrupt.encode())
    assert any("BinHex" in d for d in msg.defects)
    assert content_was_lost(msg.defects)


def test_uuencoded_content_in_a_text_body_becomes_a_decoded_attachment() -> None:
    data = bytes(range(200))
    uu = b"".join(binascii.b2a_uu(data[i : i + 45]) for i in range(0, len(data), 45))
    raw = HEAD + b"Content-Type: text/plain\r\n\r\nSee attached.\r\n\r\nbegin 644 data.bin\r\n" + uu + b"`\r\nend\r\n"
    msg = parse_message(raw)
    assert [(a.filename, a.data) for a in msg.attachments] == [("data.bin", data)]
    assert msg.body_text == "See attached."


# --------------------------------------------------------------------------- broken base64


def test_broken_base64_is_a_defect_and_not_raw_base64_in_the_body() -> None:
    encoded = binascii.b2a_base64(b"The printer in room 12 is broken.").strip() + b"Q"  # length 1 mod 4
    raw = HEAD + b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n" + encoded + b"\r\n"
    msg = parse_message(raw)
    assert msg.defects and any("base64" in d for d in msg.defects)
    assert msg.body_text.startswith("The printer in room 12 is broken")
    assert encoded.decode() not in msg.body_text
    assert content_was_lost(msg.defects)  # the original is kept on the ticket


def test_base64_with_garbage_characters_is_reported() -> None:
    raw = HEAD + (b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                  b"VGhlIHByaW50ZXI!!gaXMgYnJva2VuLg==\r\n")
    msg = parse_message(raw)
    assert any("base64" in d for d in msg.defects)


# --------------------------------------------------------------------------- limits


def _many_parts(count: int, filler: bytes = b"x") -> bytes:
    parts = [HEAD, b'Content-Type: multipart/mixed; boundary="BOUNDARY"\r\n\r\n',
             b"--BOUNDARY\r\nContent-Type: text/plain\r\n\r\nHello, see the files.\r\n"]
    for i in range(count):
        parts.append(b'--BOUNDARY\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; '
                     b'filename="f%06d.txt"\r\n\r\n%s\r\n' % (i, filler))
    parts.append(b"--BOUNDARY--\r\n")
    return b"".join(parts)


def test_parts_beyond_max_parts_are_listed_as_removed_and_stay_in_the_original() -> None:
    raw = _many_parts(30)
    msg = parse_message(raw, max_parts=10)
    assert msg.raw == raw
    assert msg.body_text == "Hello, see the files."
    assert _names(msg) == [f"f{i:06d}.txt" for i in range(9)]  # the body is one of the 10 parts
    assert [r["filename"] for r in msg.removed_attachments] == [f"f{i:06d}.txt" for i in range(9, 30)]
    assert all("mail.max_parts" in r["reason"] for r in msg.removed_attachments)
    assert content_was_lost(msg.defects)  # → original.eml is kept on the ticket
    assert len(parse_message(raw).attachments) == 30  # the default limit is 500


def test_max_parts_counts_nested_parts_and_cuts_the_rest_of_every_level() -> None:
    inner = _multipart("mixed", *[b"Content-Type: image/png\r\nContent-Disposition: attachment; filename=i%d.png"
                                  b"\r\n\r\nPNG" % i for i in range(5)], boundary="inner")
    raw = HEAD + _multipart("mixed", b"Content-Type: text/plain\r\n\r\nBody", inner,
                            b"Content-Type: text/plain; name=after.txt\r\n\r\nafter", boundary="outer")
    msg = parse_message(raw, max_parts=3)
    assert _names(msg) == ["i0.png", "i1.png"]
    assert [r["filename"] for r in msg.removed_attachments] == ["i2.png", "i3.png", "i4.png", "after.txt"]


def test_a_hundred_thousand_tiny_attachments_parse_in_bounded_time_and_memory() -> None:
    raw = _many_parts(100_000, b"x" * 16)
    assert len(raw) > 11_000_000
    tracemalloc.start()
    start = time.monotonic()
    try:
        msg = parse_message(raw)
        elapsed = time.monotonic() - start
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 30  # (41 s and 573 MB before; generous for a loaded machine under tracemalloc)
    assert peak < 150 * 1024 * 1024
    assert len(msg.attachments) == 499
    listed = msg.removed_attachments
    assert len(listed) == 101 and listed[-1]["filename"].startswith("(99401 more parts")
