"""Large messages: big parts streamed into the attachment storage (:mod:`helpdesk_core.mail.largeparts`).

``parse_message(raw, storage=...)`` must give the same result as ``parse_message(raw)`` (names,
types, sizes, digests, bodies, headers, defects), with the big attachments already stored and
byte-identical, in bounded memory, and must never raise on malformed input.
"""

from __future__ import annotations

import base64
import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpdesk_core.mail.message import ParsedMessage
from helpdesk_core.mail.parsing import parse_message
from helpdesk_core.storage import AttachmentStorage

MB = 1024 * 1024
REPO = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------- builders


def leaf(headers: list[str], body: bytes, eol: bytes = b"\r\n") -> bytes:
    return eol.join(h.encode() for h in headers) + eol + eol + body


def b64(data: bytes, eol: bytes = b"\r\n") -> bytes:
    return base64.encodebytes(data).replace(b"\n", eol)


def multipart(subtype: str, boundary: str, parts: list[bytes], eol: bytes = b"\r\n", *,
              headers: list[str] | None = None, close: bool = True) -> bytes:
    head = [*(headers or []), f'Content-Type: multipart/{subtype}; boundary="{boundary}"']
    sep = b"--" + boundary.encode()
    body = b"".join(eol + sep + eol + p for p in parts) + eol + (sep + b"--" + eol if close else b"")
    return leaf(head, b"This is a multi-part message." + body, eol)


TOP = ["From: Alice <alice@example.test>", "To: help@example.test", "Subject: big one",
       "Message-ID: <big@example.test>", "Date: Tue, 26 Nov 2024 10:00:00 +0000", "MIME-Version: 1.0"]


def summary(msg: ParsedMessage) -> dict[str, object]:
    return {"subject": msg.subject, "from": msg.from_, "text": msg.body_text, "html": msg.body_html,
            "display": msg.body_display, "headers": msg.headers, "defects": msg.defects,
            "ctype": msg.content_type,
            "attachments": [(a.filename, a.content_type, a.size, a.sha256, a.content_id, a.inline)
                            for a in msg.attachments]}


def both(raw: bytes, storage: AttachmentStorage, threshold: int) -> tuple[ParsedMessage, ParsedMessage]:
    """Parse normally and with streaming; assert they agree and the stored blobs are right."""
    normal = parse_message(raw)
    streamed = parse_message(raw, storage=storage, large_part_threshold=threshold)
    assert summary(streamed) == summary(normal)
    assert streamed.raw is raw
    for plain, att in zip(normal.attachments, streamed.attachments):
        if att.stored_key is not None:
            assert att.data == b""
            assert storage.get(att.stored_key) == plain.data
        else:
            assert att.data == plain.data
    return normal, streamed


@pytest.fixture
def storage(tmp_path: Path) -> AttachmentStorage:
    return AttachmentStorage(tmp_path / "attachments")


def no_temp_files(storage: AttachmentStorage) -> bool:
    return not any(p.name.startswith(".tmp") for p in storage.root.rglob("*"))


# ---------------------------------------------------------------------------------- (a)-(c)


def test_20mb_base64_attachment_with_alternative_bodies(storage: AttachmentStorage) -> None:
    data = random.Random(20).randbytes(20 * MB)
    alternative = multipart("alternative", "alt-1", [
        leaf(["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"],
             "Grüße, the report is attached.\r\n".encode()),
        leaf(["Content-Type: text/html; charset=utf-8"], b"<p>Gr&uuml;&szlig;e, <b>attached</b>.</p>\r\n"),
    ])
    raw = multipart("mixed", "mix-1", [alternative, leaf(
        ["Content-Type: application/pdf; name=\"report.pdf\"", "Content-Transfer-Encoding: base64",
         "Content-Disposition: attachment; filename=\"report.pdf\""], b64(data))], headers=TOP)
    normal, streamed = both(raw, storage, 4 * MB)
    (att,) = streamed.attachments
    assert (att.filename, att.content_type, att.size) == ("report.pdf", "application/pdf", 20 * MB)
    assert att.stored_key is not None and att.is_stored and att.sha256 == att.stored_key
    assert storage.get(att.stored_key) == data
    assert streamed.body_text == "Grüße, the report is attached." and "attached" in (streamed.body_html or "")
    assert normal.attachments[0].stored_key is None  # without storage: as before
    assert no_temp_files(storage)


def test_nested_related_inline_image_and_attachment(storage: AttachmentStorage) -> None:
    rng = random.Random(7)
    image, archive = rng.randbytes(300_000), rng.randbytes(250_000)
    related = multipart("related", "rel==2", [
        leaf(["Content-Type: text/html; charset=us-ascii"], b'<p>See <img src="cid:logo@x"></p>'),
        leaf(["Content-Type: image/png", "Content-Transfer-Encoding: base64", "Content-ID: <logo@x>",
              "Content-Disposition: inline"], b64(image)),
    ])
    alternative = multipart("alternative", "alt.2", [
        leaf(["Content-Type: text/plain"], b"See the logo."), related])
    raw = multipart("mixed", "mix 2", [alternative, leaf(
        ["Content-Type: application/octet-stream", "Content-Transfer-Encoding: base64",
         "Content-Disposition: attachment; filename*=utf-8''Gr%C3%BC%C3%9Fe.zip"], b64(archive))], headers=TOP)
    _normal, streamed = both(raw, storage, 100_000)
    png, zipped = streamed.attachments
    assert (png.content_type, png.content_id, png.inline, png.size) == ("image/png", "logo@x", True, 300_000)
    assert (zipped.filename, zipped.content_type) == ("Grüße.zip", "application/zip")
    assert png.is_stored and zipped.is_stored
    assert storage.get(png.stored_key) == image and storage.get(zipped.stored_key) == archive


@pytest.mark.parametrize("eol", [b"\r\n", b"\n"])
@pytest.mark.parametrize("cte", ["8bit", "binary", "7bit"])
def test_big_8bit_text_attachment_stored_as_is(storage: AttachmentStorage, eol: bytes, cte: str) -> None:
    lines = [f"line {i}: Grüße — ünïcödé {'x' * (i % 50)}".encode() for i in range(40_000)]
    text = eol.join(lines) + eol + eol  # the line break before the boundary (added by multipart()) goes
    raw = multipart("mixed", "b", [
        leaf(["Content-Type: text/plain"], b"Log attached." + eol, eol),
        leaf(["Content-Type: text/plain; charset=utf-8", f"Content-Transfer-Encoding: {cte}",
              "Content-Disposition: attachment; filename=server.log"], text, eol),
    ], eol, headers=TOP)
    normal, streamed = both(raw, storage, 200_000)
    (att,) = streamed.attachments
    assert att.is_stored and storage.get(att.stored_key) == text == normal.attachments[0].data
    assert streamed.body_text == "Log attached."


def test_single_part_message_and_body_text_parts(storage: AttachmentStorage) -> None:
    data = random.Random(3).randbytes(300_000)
    raw = leaf([*TOP, "Content-Type: application/pdf; name=scan.pdf", "Content-Transfer-Encoding: base64"],
               b64(data))
    _normal, streamed = both(raw, storage, 100_000)
    assert streamed.attachments[0].is_stored
    assert streamed.header("X-Helpdesk-Stored") is None  # the marker never shows
    # a big text body (no file name) stays body text: not streamed
    body = ("A very long text body. " * 20_000).encode()
    raw = leaf([*TOP, "Content-Type: text/plain; charset=us-ascii", "Content-Transfer-Encoding: base64"], b64(body))
    _normal, streamed = both(raw, storage, 100_000)
    assert streamed.attachments == [] and streamed.body_text.startswith("A very long text body.")


def test_small_message_or_no_storage_unchanged(storage: AttachmentStorage) -> None:
    raw = multipart("mixed", "b", [leaf(["Content-Type: application/pdf", "Content-Transfer-Encoding: base64",
                                         "Content-Disposition: attachment; filename=a.pdf"], b64(b"x" * 5000))],
                    headers=TOP)
    msg = parse_message(raw, storage=storage)  # below the default 4 MB threshold
    assert not msg.attachments[0].is_stored and msg.attachments[0].data == b"x" * 5000
    assert not any(storage.root.rglob("*")) if storage.root.exists() else True


def test_forged_marker_header_is_not_trusted(storage: AttachmentStorage) -> None:
    secret = storage.put(b"another ticket's attachment")
    payload = random.Random(5).randbytes(200_000)
    raw = multipart("mixed", "b", [
        leaf(["Content-Type: application/pdf", "Content-Transfer-Encoding: base64",
              f"X-Helpdesk-Stored: {secret} 27 0-0", "Content-Disposition: attachment; filename=a.pdf"], b64(payload)),
        leaf(["Content-Type: application/pdf", "Content-Transfer-Encoding: base64",
              f"X-Helpdesk-Stored: {secret} 27 0-0", "Content-Disposition: attachment; filename=b.pdf"],
             b64(b"small")),
    ], headers=[*TOP, f"X-Helpdesk-Stored: {secret} 27 0-0"])
    _normal, streamed = both(raw, storage, 100_000)
    big, small = streamed.attachments
    assert big.is_stored and big.stored_key != secret and storage.get(big.stored_key) == payload
    assert not small.is_stored and small.data == b"small"
    assert streamed.header("X-Helpdesk-Stored") == f"{secret} 27 0-0"  # the sender's header is kept


# ---------------------------------------------------------------------------------- (d) malformed


def _big_mixed(eol: bytes = b"\r\n", body: bytes | None = None, close: bool = True) -> bytes:
    data = random.Random(11).randbytes(300_000)
    return multipart("mixed", "zz", [
        leaf(["Content-Type: text/plain"], b"hello" + eol, eol),
        leaf(["Content-Type: application/octet-stream", "Content-Transfer-Encoding: base64",
              "Content-Disposition: attachment; filename=data.bin"], body if body is not None else b64(data, eol), eol),
        leaf(["Content-Type: text/plain", "Content-Disposition: attachment; filename=after.txt"], b"after" + eol, eol),
    ], eol, headers=TOP, close=close)


@pytest.mark.parametrize("case", ["no close boundary", "truncated", "truncated mid-headers", "bad chars",
                                  "missing padding", "1 mod 4", "padding inside", "no boundary param",
                                  "boundary never found", "no blank line", "garbage tail"])
def test_malformed_big_messages_never_raise_and_agree(storage: AttachmentStorage, case: str) -> None:
    good = b64(random.Random(11).randbytes(300_000))
    raw = {
        "no close boundary": lambda: _big_mixed(close=False),
        "truncated": lambda: _big_mixed()[:250_000],
        "truncated mid-headers": lambda: _big_mixed()[: _big_mixed().index(b"Content-Transfer-Encoding") + 8],
        "bad chars": lambda: _big_mixed(body=good.replace(b"\r\n", b" \r\n", 100)),
        "missing padding": lambda: _big_mixed(body=b64(b"abcd" * 75_001).rstrip(b"=\r\n")),
        "1 mod 4": lambda: _big_mixed(body=b64(b"abc" * 100_000).rstrip(b"\r\n") + b"Q"),
        "padding inside": lambda: _big_mixed(body=good[:1000] + b"==" + good[1000:]),
        "no boundary param": lambda: _big_mixed().replace(b'boundary="zz"', b"charset=x"),
        "boundary never found": lambda: _big_mixed().replace(b"--zz", b"--yy"),
        "no blank line": lambda: _big_mixed().replace(b"filename=data.bin\r\n\r\n", b"filename=data.bin\r\n"),
        "garbage tail": lambda: _big_mixed() + random.Random(1).randbytes(200_000),
    }[case]()
    normal, streamed = both(raw, storage, 100_000)
    assert isinstance(streamed, ParsedMessage)
    if case in ("bad chars", "1 mod 4", "padding inside"):  # irregular base64: the normal path decodes it
        assert not any(a.is_stored for a in streamed.attachments)
    if case in ("no close boundary", "truncated", "missing padding"):  # regular enough: still streamed
        assert any(a.is_stored for a in streamed.attachments)
        assert normal.defects == streamed.defects
    assert no_temp_files(storage)


@pytest.mark.parametrize("cut", [0.05, 0.3, 0.5, 0.77, 0.99])
def test_truncated_nested_messages_agree(storage: AttachmentStorage, cut: float) -> None:
    rng = random.Random(int(cut * 100))
    inner = multipart("related", "in", [
        leaf(["Content-Type: text/html"], b"<p>x</p>"),
        leaf(["Content-Type: image/gif", "Content-Transfer-Encoding: base64", "Content-ID: <g@x>"],
             b64(rng.randbytes(150_000))),
        leaf(["Content-Type: application/zip", "Content-Transfer-Encoding: binary",
              "Content-Disposition: attachment; filename=z.zip"], rng.randbytes(150_000)),
    ])
    raw = multipart("mixed", "out", [inner, leaf(["Content-Type: application/x-tar", "Content-Transfer-Encoding: 8bit",
                                                  "Content-Disposition: attachment; filename=t.tar"],
                                                 rng.randbytes(150_000))], headers=TOP)
    both(raw[: int(len(raw) * cut)], storage, 100_000)


def test_storage_failure_falls_back(tmp_path: Path) -> None:
    class Broken(AttachmentStorage):
        def put_stream(self, chunks):  # type: ignore[no-untyped-def, override]
            raise OSError("disk full")

    raw = _big_mixed()
    msg = parse_message(raw, storage=Broken(tmp_path / "s"), large_part_threshold=100_000)
    assert summary(msg) == summary(parse_message(raw))
    assert not any(a.is_stored for a in msg.attachments)


# ---------------------------------------------------------------------------------- property


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    threshold = 2048
    eol = draw(st.sampled_from([b"\r\n", b"\n"]))
    rng = random.Random(draw(st.integers(0, 2**32)))

    def one_leaf() -> bytes:
        size = draw(st.integers(threshold - 300, threshold + 800))
        kind = draw(st.sampled_from(["b64", "b64-nopad", "b64-spaces", "8bit", "binary", "qp", "text-body",
                                     "inline-image", "rfc822"]))
        data = rng.randbytes(size)
        if kind.startswith("b64"):
            body = b64(data, eol)
            if kind == "b64-nopad":
                body = body.rstrip(b"=\r\n") + eol
            elif kind == "b64-spaces":
                body = body.replace(eol, b" " + eol, 1)
            return leaf([f"Content-Type: application/octet-stream; name=f{size}.bin",
                         "Content-Transfer-Encoding: base64"], body, eol)
        if kind in ("8bit", "binary"):
            return leaf([f"Content-Type: application/x-thing; name=\"t{size}.dat\"",
                         f"Content-Transfer-Encoding: {kind}", "Content-Disposition: attachment"], data, eol)
        if kind == "qp":
            import quopri
            return leaf(["Content-Type: application/pdf; name=q.pdf", "Content-Transfer-Encoding: quoted-printable"],
                        quopri.encodestring(data).replace(b"\n", eol), eol)
        if kind == "inline-image":
            return leaf(["Content-Type: image/png", "Content-Transfer-Encoding: base64",
                         f"Content-ID: <img{size}@x>"], b64(data, eol), eol)
        if kind == "rfc822":
            return leaf(["Content-Type: message/rfc822"], leaf(["Subject: inner", "Content-Type: image/png",
                                                                "Content-Transfer-Encoding: base64"], b64(data, eol), eol), eol)
        text = (" ".join(str(rng.random()) for _ in range(size // 18))).encode()
        return leaf(["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: base64"], b64(text, eol), eol)

    def tree(depth: int) -> bytes:
        if depth < 2 and draw(st.booleans()):
            n = draw(st.integers(1, 3))
            subtype = draw(st.sampled_from(["mixed", "alternative", "related"]))
            return multipart(subtype, f"bd{depth}{rng.randrange(10**6)}", [tree(depth + 1) for _ in range(n)], eol,
                             close=draw(st.booleans()) or depth > 0)
        return one_leaf()

    top = tree(0)
    raw = eol.join(h.encode() for h in TOP) + eol + top
    if draw(st.booleans()):
        raw = raw[: draw(st.integers(len(raw) // 2, len(raw)))]
    return raw


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                  HealthCheck.function_scoped_fixture])
@given(raw=messages())
def test_streaming_and_normal_path_agree(tmp_path_factory: pytest.TempPathFactory, raw: bytes) -> None:
    storage = AttachmentStorage(tmp_path_factory.mktemp("prop"))
    both(raw, storage, 2048)


# ---------------------------------------------------------------------------------- (e) memory


def _big_raw(tmp_path: Path, megabytes: int = 50) -> Path:
    data = b"%PDF-1.4\n" + random.Random(50).randbytes(megabytes * MB - 9)
    raw = multipart("mixed", "big-boundary", [
        leaf(["Content-Type: text/plain; charset=utf-8"], b"Here is the scan."),
        leaf(["Content-Type: application/pdf; name=\"scan.pdf\"", "Content-Transfer-Encoding: base64",
              "Content-Disposition: attachment; filename=\"scan.pdf\""], b64(data)),
    ], headers=TOP)
    path = tmp_path / "big.eml"
    path.write_bytes(raw)
    return path


_VMHWM = """
def vmhwm_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
"""


def _run(code: str, env: dict[str, str] | None = None, stdin: Path | None = None) -> dict[str, float]:
    piped = {"input": stdin.read_bytes()} if stdin is not None else {"stdin": subprocess.DEVNULL}  # a pipe
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(_VMHWM) + textwrap.dedent(code)],
                          capture_output=True, timeout=300, cwd=REPO, env={**os.environ, **(env or {})}, **piped)
    proc_stderr, proc_stdout = proc.stderr.decode(errors="replace"), proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, proc_stderr[-3000:]
    return json.loads(proc_stdout.strip().splitlines()[-1])


def test_peak_memory_of_parsing_a_50mb_attachment(tmp_path: Path) -> None:
    """parse_message with storage, then storing the raw as the mapping does: one copy of the raw."""
    path = _big_raw(tmp_path)
    figures = _run(f"""
        import json
        from pathlib import Path
        from helpdesk_core.mail.parsing import parse_message
        from helpdesk_core.storage import AttachmentStorage
        storage = AttachmentStorage(Path({str(tmp_path / 'att')!r}))
        raw = Path({str(path)!r}).read_bytes()
        before = vmhwm_mb()
        msg = parse_message(raw, storage=storage)
        storage.put(msg.raw, msg.raw_sha256)
        (att,) = msg.attachments
        assert att.is_stored and att.size == 50 * 1024 * 1024, att
        print(json.dumps({{"raw_mb": len(raw) / 1048576, "loaded": before, "peak": vmhwm_mb()}}))
    """)
    print(f"\nparse of a {figures['raw_mb']:.1f} MB message: VmHWM {figures['peak']:.0f} MB "
          f"({figures['loaded']:.0f} MB with the raw loaded)")
    assert figures["peak"] - figures["loaded"] < 30  # the parse adds ~1 MB; the old path added ~500 MB
    assert figures["peak"] < 400


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_peak_memory_of_ingesting_a_50mb_attachment(tmp_path: Path, sqlite_url: str, source: str) -> None:
    """``helpdesk ingest`` of one message with a 50 MB attachment, in a subprocess, from a file
    argument and piped on standard input (spooled to a temporary file, read back as one copy);
    the stored raw message is byte-identical."""
    from helpdesk_core.crypto import generate_key

    home = tmp_path / "home"
    home.mkdir()
    env = {"HELPDESK_HOME": str(home), "HELPDESK_DATABASE_URL": sqlite_url, "HELPDESK_SECRET_KEY": generate_key()}
    setup = [["init"], ["department", "add", "Tech", "--sender", "help@example.test"],
             ["settings", "set", "attachments.max_size_mb", "110"],
             ["settings", "set", "mail.max_message_size_mb", "110"]]
    for argv in setup:
        done = subprocess.run([sys.executable, "-c", "from helpdesk_core.cli.main import main; main()", *argv],
                              capture_output=True, text=True, env={**os.environ, **env}, timeout=120)
        assert done.returncode == 0, done.stderr
    path = _big_raw(tmp_path)
    figures = _run(f"""
        import json
        from helpdesk_core.cli.main import main
        try:
            main(["ingest", "--department", "Tech", *{[str(path)] if source == "file" else []!r}],
                 standalone_mode=False)
        except SystemExit as exc:
            assert not exc.code, exc.code
        print(json.dumps({{"peak": vmhwm_mb()}}))
    """, env, stdin=path if source == "stdin" else None)
    print(f"\nhelpdesk ingest of a 68 MB message ({source}): VmHWM {figures['peak']:.0f} MB")
    stored = sorted((p.stat().st_size, p) for p in (home / "attachments").rglob("*") if p.is_file())
    assert [size for size, _ in stored[-2:]] == [50 * MB, path.stat().st_size]  # the attachment and the raw message
    assert stored[-1][1].read_bytes() == path.read_bytes()
    assert figures["peak"] < 220  # ~150 MB: baseline ~62 + one copy of the raw 68 + the parse
