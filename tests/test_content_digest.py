"""``content_digest`` reads a message in place (no normalised copy, no list of all its lines) and
gives exactly the digest of the plain definition, which the ledger has stored for every import."""

from __future__ import annotations

import hashlib
import re
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from helpdesk_core.inbound import importer
from helpdesk_core.inbound.importer import _TRACE_HEADERS, content_digest


def reference(raw: bytes) -> str:
    """The definition: normalise CRLF, split at the first blank line, digest headers and lines."""
    text = raw.replace(b"\r\n", b"\n")
    head, _sep, body = text.partition(b"\n\n")
    digest = hashlib.sha256()
    for line in re.sub(rb"\n[ \t]+", b" ", head).split(b"\n"):
        name, colon, _value = line.partition(b":")
        if colon and name.strip().lower().decode("latin-1") in _TRACE_HEADERS:
            continue
        if line.startswith(b"From ") and not colon:
            continue
        digest.update(b" ".join(line.split()) + b"\n")
    digest.update(b"\n")
    for line in body.split(b"\n"):
        digest.update(line.rstrip() + b"\n")
    return digest.hexdigest()


pieces = st.sampled_from([b"\r\n", b"\n", b"\r", b" ", b"\t", b"a", b"Subject: x", b"Received: y",
                          b"From x", b"\r\n\r\n", b"\n\n", b"\n\r\n", b"\r\r\n", b" \r\n"])
mails = st.lists(pieces, max_size=60).map(b"".join)


@settings(max_examples=400, deadline=None)
@given(raw=mails, window=st.integers(1, 12))
def test_same_digest_as_the_definition(raw: bytes, window: int) -> None:
    with mock.patch.object(importer, "_DIGEST_WINDOW", window):  # many windows, lines across them
        assert content_digest(raw) == reference(raw)
    assert content_digest(raw) == reference(raw)


def test_big_message_same_digest() -> None:
    body = b"".join(b"line %d   \r\n" % i + (b"x" * 3000 + b"\r\n" if i % 97 == 0 else b"") for i in range(400_000))
    raw = b"Received: from a\r\nSubject: big\r\n\r\n" + body + b"no final newline \t"
    assert len(raw) > 3 * importer._DIGEST_WINDOW
    assert content_digest(raw) == reference(raw)
