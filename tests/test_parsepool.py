"""Parsing ahead in the helper process gives exactly what parsing in process gives."""

from __future__ import annotations

import json
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


def four_files(subject: str) -> bytes:
    return with_attachments(subject=subject, files=[(f"scan{i}.pdf", "application/pdf", b"%PDF-1.4 " + bytes([i]) * 64)
                                                    for i in range(4)])


def test_max_parts_travels_with_every_chunk_to_the_running_helper(monkeypatch):
    """The helper is started once and reused: ``mail.max_parts`` goes with each chunk, so a
    changed value applies to the next batch without restarting it."""
    monkeypatch.setenv("HELPDESK_PARSE_WORKERS", "1")
    raws = [four_files(f"scan {i}") for i in range(parsepool.MIN_BATCH)]
    limited = flatten(parsepool.parse_chunks(raws, max_parts=3))
    helper = parsepool._helper.proc
    assert all(e is None for _, e in limited)
    assert [[a.filename for a in m.attachments] for m, _ in limited] == [["scan0.pdf", "scan1.pdf"]] * len(raws)
    assert all([r["filename"] for r in m.removed_attachments] == ["scan2.pdf", "scan3.pdf"] for m, _ in limited)
    assert all("mail.max_parts" in r["reason"] for m, _ in limited for r in m.removed_attachments)
    unlimited = flatten(parsepool.parse_chunks(raws, max_parts=0))
    assert parsepool._helper.proc is helper and helper.poll() is None  # the same process
    assert all(len(m.attachments) == 4 and m.removed_attachments == [] for m, _ in unlimited)
    assert [len(m.attachments) for m, _ in flatten(parsepool.parse_chunks(raws[:2], max_parts=3))] == [2, 2]


@pytest.mark.parametrize("workers", ["0", "1"])
def test_a_changed_mail_max_parts_applies_from_the_next_cycle(cli, tmp_path, monkeypatch, workers):
    monkeypatch.setenv("HELPDESK_PARSE_WORKERS", workers)
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    cli("department", "add", "Tech", "--sender", "tech@district.test")
    cli("department", "set-mailbox", "Tech", "--protocol", "maildir", "--path", str(tmp_path / "Maildir"),
        "--email", "tech@district.test")
    cli("settings", "set", "mail.rate_limit_per_hour", "0")
    assert cli.json("settings", "show", "--json")["mail.max_parts"] == 500
    cli("settings", "set", "mail.max_parts", "3")
    for i in range(parsepool.MIN_BATCH):
        box.add(four_files(f"first {i}"))
    assert cli.json("import", "--json")["Tech"]["created"] == parsepool.MIN_BATCH
    cli("settings", "set", "mail.max_parts", "0")
    for i in range(parsepool.MIN_BATCH):
        box.add(four_files(f"second {i}"))
    assert cli.json("import", "--json")["Tech"]["created"] == parsepool.MIN_BATCH
    removed: dict[str, list[str]] = {}
    for line in cli("ticket", "export").output.splitlines():
        ticket = json.loads(line)
        [message] = ticket["messages"]
        removed[ticket["subject"]] = [r["filename"] for r in message["removed_attachments"]]
        kept = [a["filename"] for a in message["attachments"] if a["filename"] != "original.eml"]
        assert sorted(kept + removed[ticket["subject"]]) == [f"scan{i}.pdf" for i in range(4)]
    assert all(removed[f"first {i}"] == ["scan2.pdf", "scan3.pdf"] for i in range(parsepool.MIN_BATCH))
    assert all(removed[f"second {i}"] == [] for i in range(parsepool.MIN_BATCH))
