"""Property: a mutated real message (bytes flipped, cut, inserted) still becomes a ticket message or a
recorded skip -- never a failed import -- and keeps its raw original when content was lost.

Example counts come from the repo's Hypothesis profile; one shared SQLite database (see
``test_threading_properties.shared_app``)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpdesk_core.mail.mimeparts import content_was_lost
from helpdesk_core.models import TicketMessage
from helpdesk_core.mail.parsing import parse_message
from helpdesk_core.services.imports import ingest_raw
from helpdesk_core.services.permissions import SYSTEM

from test_threading_properties import shared_app

pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
CORPORA = Path(__file__).parent / "corpora"
SAMPLES = [p.read_bytes() for folder in ("own", "django-helpdesk", "talon/standard_replies")
           for p in sorted((CORPORA / folder).glob("*.eml"))]
_SEQ = itertools.count(1)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(1, 6))):
        i = draw(st.integers(0, max(len(raw) - 1, 0)))
        op = draw(st.sampled_from(["flip", "cut", "insert", "truncate"]))
        if op == "flip" and raw:
            raw[i] = draw(st.integers(0, 255))
        elif op == "cut":
            del raw[i:i + draw(st.integers(1, 200))]
        elif op == "insert":
            raw[i:i] = draw(st.sampled_from([b"\r\n", b"--", b"=?utf-8?b?", b"\x00", b"\xff\xfe", b"\r\n\r\n",
                                             b"Content-Type: multipart/mixed; boundary=x\r\n"]))
        else:
            del raw[i:]
    return b"Message-ID: <mut%d@example.test>\r\n" % next(_SEQ) + bytes(raw)


@given(raw=mutated())
def test_mutated_real_mail_is_imported_not_failed(raw):
    app = shared_app()
    with app.session() as s:
        outcome = ingest_raw(app, s, actor=SYSTEM, department="Tech", raw=raw)
        s.commit()
        assert outcome.status in ("created", "updated", "skipped"), outcome
        if outcome.ticket_message_id is not None:
            tm = s.get(TicketMessage, outcome.ticket_message_id)
            has_original = any(a.filename == "original.eml" for a in tm.attachments)
            assert has_original == content_was_lost(parse_message(raw).defects)
