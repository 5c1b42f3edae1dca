"""Issue 11, case 5: 8-bit bytes in headers are decoded (never ``?``) and stray lines in the header
block do not lose the headers after them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpdesk_core.mail.headers import decode_header_value
from helpdesk_core.mail.parsing import parse_message


def _mail(headers: bytes, body: bytes = b"Hello\r\n") -> bytes:
    return headers + b"\r\n" + body


def test_raw_8bit_byte_inside_an_encoded_word_uses_the_words_charset() -> None:
    raw = _mail(b"From: a@example.test\r\nSubject: =?iso-8859-1?Q?Die_Hasen_und_die_Fr\xf6sche?=\r\n")
    msg = parse_message(raw)
    assert msg.subject == "Die Hasen und die Frösche"
    assert msg.header("Subject") == "Die Hasen und die Frösche"


def test_raw_utf8_inside_an_encoded_word_and_text_around_it() -> None:
    raw = _mail("From: a@example.test\r\nSubject: Gr\u00fc\u00dfe =?utf-8?Q?aus_K\u00f6ln?= und Bonn\r\n"
                .encode("utf-8"))
    assert parse_message(raw).subject == "Grüße aus Köln und Bonn"


@pytest.mark.parametrize("text,charset,declared", [
    ("Réponse automatique : absent", "iso-8859-1", None),
    ("Odpowiedź automatyczna", "iso-8859-2", "iso-8859-2"),
    ("Привет, как дела", "koi8-r", "koi8-r"),
    ("自動応答: 不在です", "shift_jis", None),
    ("自動応答: 不在です", "euc-jp", None),
    ("自动回复：我不在办公室", "gb2312", None),
])  # fmt: skip
def test_raw_8bit_headers_declared_then_utf8_then_detected(text: str, charset: str, declared: str | None) -> None:
    ctype = f"Content-Type: text/plain; charset={declared}\r\n".encode() if declared else b""
    raw = _mail(b"From: a@example.test\r\nSubject: " + text.encode(charset) + b"\r\n" + ctype,
                text.encode(charset) + b"\r\n")
    msg = parse_message(raw)
    assert msg.subject == text
    assert "?" not in msg.subject.replace(text, "") and "\ufffd" not in msg.subject


def test_decode_header_value_keeps_undecodable_words_and_reports_them() -> None:
    defects: list[str] = []
    assert decode_header_value("=?utf-8?B?###?= x", defects, "Subject") in ("=?utf-8?B?###?= x", "x")
    assert decode_header_value("=?utf-8?Q?caf=C3=A9?=") == "café"


@pytest.mark.parametrize("stray", [
    b">From someone@example.test Mon Jan  1 00:00:00 2026",
    b"this line has no colon",
    b"=?utf-8?q?a_broken_folded_word?=",
    b"From someone@example.test Mon Jan  1 00:00:00 2026",
])  # fmt: skip
def test_headers_after_a_stray_line_are_recovered(stray: bytes) -> None:
    raw = _mail(b"Received: from mx.example.test by mx2.example.test\r\n" + stray
                + b"\r\nFrom: Alice <alice@example.test>\r\nSubject: Printer broken\r\nTo: help@example.test\r\n"
                  b"Message-ID: <stray@example.test>\r\n",
                b"The printer in room 12 is broken.\r\n")
    msg = parse_message(raw)
    assert msg.subject == "Printer broken"
    assert msg.from_ is not None and msg.from_.email == "alice@example.test"
    assert msg.message_id == "stray@example.test"
    assert msg.body_text == "The printer in room 12 is broken."
    assert msg.raw == raw  # the kept original is unchanged


def test_a_missing_blank_line_still_starts_the_body() -> None:
    raw = b"From: alice@example.test\r\nSubject: No blank line\r\nThe body starts here\r\nand goes on.\r\n"
    msg = parse_message(raw)
    assert msg.subject == "No blank line"
    assert "The body starts here" in msg.body_text


# printable Latin-1 only: control characters (C0, DEL, C1) are stripped from subjects on purpose
_LATIN1_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_categories=("Cc",),
                                     exclude_characters="?=_"),
                       min_size=1, max_size=40).filter(lambda t: t.strip() == t and "  " not in t)


@settings(max_examples=200, deadline=None)
@given(text=_LATIN1_TEXT, charset=st.sampled_from(["iso-8859-1", "windows-1252", "iso-8859-15"]))
def test_raw_8bit_inside_encoded_words_round_trips(text: str, charset: str) -> None:
    try:
        data = text.encode(charset)
    except UnicodeEncodeError:
        return
    word = b"=?" + charset.encode() + b"?Q?" + data.replace(b" ", b"_") + b"?="
    raw = _mail(b"From: a@example.test\r\nSubject: " + word + b"\r\n")
    assert parse_message(raw).subject == text
