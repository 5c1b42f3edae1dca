"""Property tests: parse_message never raises; sanitize_html output is always safe.

Example counts come from the Hypothesis profile loaded by the repo's conftest ("ci"/"dev").
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from helpdesk_core.mail.html import html_to_text, sanitize_html
from helpdesk_core.mail.message import ParsedMessage
from helpdesk_core.mail.parsing import decode_header_value, parse_message
from helpdesk_core.mail.quotes import strip_quoted

CORPORA = Path(__file__).parent / "corpora"
SAMPLES: list[bytes] = [
    p.read_bytes()
    for folder in ("own", "django-helpdesk", "talon/standard_replies")
    for p in sorted((CORPORA / folder).glob("*.eml"))
] + [p.read_bytes() for p in sorted((CORPORA / "flufl_bounce" / "data").iterdir())[:20]]


def _check(msg: ParsedMessage, raw: bytes) -> None:
    assert isinstance(msg, ParsedMessage)
    assert msg.raw == raw
    for addr in [msg.from_, *msg.to, *msg.cc, *msg.reply_to]:
        if addr is not None:
            assert addr.email == addr.email.lower()
            assert "@" in addr.email
    assert isinstance(msg.body_text, str) and isinstance(msg.subject, str)
    assert msg.date is None or msg.date.tzinfo is not None
    assert all(isinstance(d, str) and d for d in msg.defects)
    for att in msg.attachments:
        assert att.filename and "/" not in att.filename and "\\" not in att.filename
        assert not any(ord(c) < 32 for c in att.filename)
    if msg.body_html:
        _assert_safe_html(msg.body_html)


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    _check(parse_message(raw), raw)


_header_names = st.sampled_from(
    ["From", "To", "Cc", "Reply-To", "Subject", "Date", "Message-ID", "References", "In-Reply-To",
     "Content-Type", "Content-Disposition", "Content-Transfer-Encoding", "MIME-Version"]
)  # fmt: skip
_header_values = st.one_of(
    st.text(max_size=80),
    st.binary(max_size=80).map(lambda b: b.decode("latin-1")),
    st.sampled_from(
        ["=?utf-8?b?", "=?x?q?=ZZ?=", "<", "<>", "a@b", '"', "multipart/mixed; boundary=", "base64",
         "=?utf-8*en?Q?=C3=A9?=", "attachment; filename*=utf-8''%FF%2F..", "text/plain; charset=\"zlib\"",
         "text/plain; charset=base64", "uuencode", "message/rfc822"]
    ),
)  # fmt: skip


@given(st.lists(st.tuples(_header_names, _header_values), max_size=12), st.binary(max_size=500))
def test_generated_headers_never_raise(headers: list[tuple[str, str]], body: bytes) -> None:
    raw = b"".join(
        f"{name}: {value}".encode("utf-8", "surrogateescape").replace(b"\n", b"\n ") + b"\r\n" for name, value in headers
    ) + b"\r\n" + body
    _check(parse_message(raw), raw)


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["flip", "truncate", "duplicate", "insert", "delete"]))
        if not raw:
            break
        pos = draw(st.integers(0, len(raw) - 1))
        if kind == "flip":
            raw[pos] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del raw[pos:]
        elif kind == "duplicate":  # duplicate a header (or any) line
            end = raw.find(b"\n", pos)
            start = raw.rfind(b"\n", 0, pos) + 1
            if end > 0:
                raw[start:start] = raw[start : end + 1]
        elif kind == "insert":
            raw[pos:pos] = draw(st.sampled_from([b"\r\n", b"\n\n", b"--", b"=?", b"?=", b"\x00", b"begin 644 x\n", b">"]))
        else:
            del raw[pos : pos + draw(st.integers(1, 200))]
    return bytes(raw)


@given(_mutated())
def test_mutated_real_messages_never_raise(raw: bytes) -> None:
    _check(parse_message(raw), raw)


@given(st.text(max_size=300))
def test_decode_header_value_never_raises(value: str) -> None:
    assert isinstance(decode_header_value(value), str)


# --------------------------------------------------------------------------- HTML safety


class _AttrCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def _assert_safe_html(html: str) -> None:
    assert "<script" not in html.lower()
    collector = _AttrCollector()
    collector.feed(html)
    collector.close()
    for tag, attrs in collector.tags:
        assert tag not in ("script", "iframe", "object", "embed", "style")
        for name, value in attrs:
            assert not name.lower().startswith("on"), (tag, name)
            compact = "".join((value or "").split()).lower()
            assert "javascript:" not in compact and "vbscript:" not in compact, (tag, name, value)
            if tag == "img" and name == "src":
                assert compact.startswith(("cid:", "data:")) or "://" not in compact


_html_bits = st.sampled_from(
    ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", '<a href="javascript:alert(1)">x</a>',
     '<a href=" jav&#x09;ascript:alert(1)">x</a>', "<svg onload=alert(1)>", '<div style="background:url(http://x)">',
     '<img src="http://remote/x.png">', '<img src="cid:abc">', "<p onclick='x'>p</p>", "<scr<script>ipt>",
     "<iframe src=//evil>", "<!--<script>-->", "<b>", "</b>", "text", "&lt;script&gt;", "<object data=x>",
     '<a href="JaVaScRiPt:x">', "<math><mi xlink:href='javascript:1'>", "<style>*{}</style>", "<br/>"]
)  # fmt: skip


@given(st.lists(st.one_of(_html_bits, st.text(max_size=20)), max_size=15).map("".join))
def test_sanitize_html_output_safe(html: str) -> None:
    _assert_safe_html(sanitize_html(html))
    assert isinstance(html_to_text(html), str)


@given(st.text(max_size=2000))
def test_strip_quoted_never_empty_for_content(text: str) -> None:
    result = strip_quoted(text)
    assert bool(result.strip()) == bool(text.strip())
