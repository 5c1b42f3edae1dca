"""Parsing ahead in the helper process gives exactly what parsing in process gives."""

from __future__ import annotations

import mailbox

import pytest

from helpdesk_core.inbound import parsepool
from helpdesk_core.mail.parsing import parse_message

from mailfactory import html_and_text, latin1_8bit, plain, utf8_nonascii, with_attachments


def sample(n: int) -> list[bytes]:
    makers = [plain, html_and_text, utf8_nonascii, latin1_8bit, with_attachments]
    out = [makers[i % len(makers)]() for i in range(n - 1)]
    return out + [b"\x00\xff garbage that is no mail at all"]


def flatten(chunks):
    return [item for chunk in chunks for item in chunk]


def test_helper_process_parses_like_in_process(monkeypatch):
    monkeypatch.setenv("HELPDESK_PARSE_WORKERS", "1")
    raws = sample(parsepool.MIN_BATCH + 7)
    got = flatten(parsepool.parse_chunks(raws))
    assert len(got) == len(raws)
    for raw, (message, error) in zip(raws, got):
        assert error is None
        expected = parse_message(raw)
        assert message.raw == raw
        assert (message.subject, message.from_, message.body_text, message.body_html, message.defects) == \
            (expected.subject, expected.from_, expected.body_text, expected.body_html, expected.defects)
        assert [(a.filename, a.sha256) for a in message.attachments] == \
            [(a.filename, a.sha256) for a in expected.attachments]


def test_a_dead_helper_falls_back_to_parsing_in_process(monkeypatch):
    monkeypatch.setenv("HELPDESK_PARSE_WORKERS", "1")
    raws = sample(parsepool.MIN_BATCH)
    list(parsepool.parse_chunks(raws))          # the helper runs
    parsepool._helper.proc.kill()               # … and dies between batches
    parsepool._helper.proc.wait()
    got = flatten(parsepool.parse_chunks(raws))  # restarted, or parsed here: never lost
    assert [m.raw for m, _ in got] == raws
    proc = parsepool._helper.start()
    proc.stdin.write(b"\x00" * 8)               # answer stream broken mid-batch: kill it while
    proc.kill()                                  # a batch is being parsed
    got = flatten(parsepool.parse_chunks(raws))
    assert [m.raw for m, _ in got] == raws and all(e is None for _, e in got)


@pytest.mark.parametrize("workers", ["0", "1"])
def test_import_of_a_large_batch_is_the_same_either_way(cli, tmp_path, monkeypatch, workers):
    monkeypatch.setenv("HELPDESK_PARSE_WORKERS", workers)
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    raws = [plain(subject=f"Question {i}", sender=f"p{i}@example.test") for i in range(30)]
    raws.append(plain(subject="Re: [Ticket #3] Question 2", sender="p2@example.test"))
    for raw in raws:
        box.add(raw)
    cli("department", "add", "Tech", "--sender", "tech@district.test")
    cli("department", "set-mailbox", "Tech", "--protocol", "maildir", "--path", str(tmp_path / "Maildir"),
        "--email", "tech@district.test")
    counts = cli.json("import", "--json")["Tech"]
    assert (counts["created"], counts["updated"], counts["deleted"]) == (30, 1, 31)
