"""Parsing in a second process while the importer writes to the database.

Parsing is about half of the work of an import and the database writes the other half. On a
machine with two or more cores the importer hands a large batch to a helper process
(``python -m helpdesk_core.inbound.parsepool``, started once per process and reused) which parses it chunk
by chunk, while the importer stores the chunks already parsed. Small batches (under
:data:`MIN_BATCH`) are parsed in process: the round trip costs more than it saves.

The helper is a plain subprocess speaking length-prefixed pickles over its stdin/stdout (not
``multiprocessing``, which would re-run an embedding program's ``__main__`` in the child).
``HELPDESK_PARSE_WORKERS=0`` turns it off. A helper that dies or cannot start is replaced by
in-process parsing for the rest of the batch: never a lost or blocked message. One batch uses the
helper at a time; a concurrent batch (another department in ``helpdesk worker``) parses in process.
"""

from __future__ import annotations

import atexit
import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any, BinaryIO

from helpdesk_core.mail.automated import bounce_reason
from helpdesk_core.mail.message import ParsedMessage
from helpdesk_core.mail.parsing import MAX_PARTS, parse_message
from helpdesk_core.storage import AttachmentStorage

log = logging.getLogger("helpdesk.parsepool")

MIN_BATCH = 20
CHUNK = 10
#: messages at least this large are parsed here, streaming their big parts to the storage (the
#: helper would need a pickled copy of each)
LOCAL_FROM_BYTES = 4 * 1024 * 1024

Parsed = tuple[ParsedMessage, Exception | None]
_Wire = list[tuple[ParsedMessage | None, str | None]]


def parse_local(raw: bytes, storage: AttachmentStorage | None = None, max_parts: int = MAX_PARTS) -> Parsed:
    """Parse in this process; a crash of the parser (it must never raise) becomes the error.
    With ``storage``, large attachments are streamed into it instead of held in memory;
    ``max_parts`` is ``mail.max_parts`` (0: no limit)."""
    try:
        return parse_message(raw, storage=storage, max_parts=max_parts), None
    except Exception as exc:  # noqa: BLE001
        return ParsedMessage(raw=raw, defects=[f"parser crashed: {type(exc).__name__}: {exc}"]), exc


def _parse_chunk(raws: list[bytes], max_parts: int) -> _Wire:
    """Parse, and compute what depends on the message alone and costs CPU (the bounce check of
    the default classification, kept on the message), so the importing process does not."""
    out: _Wire = []
    for raw in raws:
        try:
            message = parse_message(raw, max_parts=max_parts)
            bounce_reason(message)
            out.append((message, None))
        except Exception as exc:  # noqa: BLE001 - exceptions may not pickle: send text
            out.append((None, f"{type(exc).__name__}: {exc}"))
    return out


def _send(stream: BinaryIO, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("!Q", len(data)))
    stream.write(data)
    stream.flush()


def _recv(stream: BinaryIO) -> Any:
    head = stream.read(8)
    if len(head) < 8:
        raise EOFError("parsing helper closed its output")
    (size,) = struct.unpack("!Q", head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("parsing helper closed its output mid-answer")
    return pickle.loads(data)  # noqa: S301 - our own child process


def enabled() -> bool:
    env = os.environ.get("HELPDESK_PARSE_WORKERS")
    if env is not None and env.strip().isdigit():
        return int(env) > 0
    return (os.cpu_count() or 1) >= 2


class _Helper:
    """The helper subprocess and the lock that gives it to one batch at a time."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.lock = threading.Lock()

    def start(self) -> subprocess.Popen[bytes]:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([sys.executable, "-m", "helpdesk_core.inbound.parsepool"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        return self.proc

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                proc.stdin.close()  # type: ignore[union-attr]
                proc.wait(timeout=5)
            except Exception:  # noqa: BLE001
                proc.kill()


_helper = _Helper()
atexit.register(_helper.stop)


def parse_chunks(raws: list[bytes], storage: AttachmentStorage | None = None, *,
                 max_parts: int = MAX_PARTS) -> Iterator[list[Parsed]]:
    """Yield the batch parsed, in order, in chunks; parsed ahead in the helper process when the
    batch is large enough, so the caller stores one chunk while the next is parsed.

    ``max_parts`` (``mail.max_parts`` as the cycle read it) travels with every chunk to the
    long-lived helper, so a changed setting applies from the next batch on."""
    if len(raws) < MIN_BATCH or not enabled() or not _helper.lock.acquire(blocking=False):
        yield [parse_local(raw, storage, max_parts) for raw in raws]
        return
    try:
        yield from _parse_with_helper(raws, storage, max_parts)
    finally:
        _helper.lock.release()


def _parse_with_helper(raws: list[bytes], storage: AttachmentStorage | None,
                       max_parts: int) -> Iterator[list[Parsed]]:
    chunks = [raws[i:i + CHUNK] for i in range(0, len(raws), CHUNK)]
    remote = [all(len(raw) < LOCAL_FROM_BYTES for raw in chunk) for chunk in chunks]
    try:
        proc = _helper.start()
    except OSError as exc:
        log.warning("cannot start the parsing helper (%s); parsing in process", exc)
        for chunk in chunks:
            yield [parse_local(raw, storage, max_parts) for raw in chunk]
        return
    failed = threading.Event()

    def feed() -> None:  # a thread, so a full pipe never blocks our reading of answers
        try:
            for chunk, send in zip(chunks, remote):
                if send:
                    _send(proc.stdin, (max_parts, chunk))  # type: ignore[arg-type]
        except (OSError, ValueError):
            failed.set()

    writer = threading.Thread(target=feed, name="parse-feed", daemon=True)
    writer.start()
    broken = False
    for chunk, sent in zip(chunks, remote):
        results: _Wire | None = None
        if sent and not broken:
            try:
                results = _recv(proc.stdout)  # type: ignore[arg-type]
            except (OSError, EOFError, pickle.UnpicklingError) as exc:
                log.warning("parsing helper failed (%s); parsing in process", exc)
                broken = True
                _helper.stop()
        if results is None or len(results) != len(chunk):
            yield [parse_local(raw, storage, max_parts) for raw in chunk]
            continue
        yield [(msg, None) if msg is not None else
               (ParsedMessage(raw=raw, defects=[f"parser crashed: {err}"]), RuntimeError(err))
               for raw, (msg, err) in zip(chunk, results)]
    writer.join(timeout=5)
    if broken or failed.is_set():
        _helper.stop()


def _serve() -> None:
    """The helper's loop: read ``(max_parts, chunk of raw messages)``, answer with parsed messages."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write to the answer stream
    # Ctrl-C on a terminal reaches the whole process group: the importer decides what it means,
    # and this helper ends when the importer closes its stdin (no traceback of its own)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            max_parts, chunk = _recv(stdin)
        except EOFError:
            return
        _send(stdout, _parse_chunk(chunk, max_parts))


if __name__ == "__main__":
    _serve()
