"""Ports that misbehave on purpose, for timeout tests (stdlib only, daemon threads).

* :func:`silent_server` accepts connections and never sends a byte: clients hit their *read* timeout
  waiting for a greeting (IMAP/POP3 ``TimeoutError``, smtplib ``SMTPServerDisconnected``).
* :func:`no_accept_server` listens with ``listen(0)`` and never calls ``accept()``; its backlog is filled
  by the server itself, so the kernel drops new SYNs and clients hit their *connect* timeout.

Both return a :class:`Blackhole` with ``.port`` and ``.stop()``; pass ``port=0`` for a free port.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType
from typing import Callable

__all__ = ["Blackhole", "silent_server", "no_accept_server"]

HOST = "127.0.0.1"


class Blackhole:
    """A running misbehaving listener; :meth:`stop` closes it and every socket it holds."""

    host = HOST

    def __init__(self, listener: socket.socket, kind: str) -> None:
        self.kind = kind
        self.port: int = listener.getsockname()[1]
        self._listener = listener
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _start(self, target: Callable[[], None]) -> "Blackhole":
        self._thread = threading.Thread(target=target, name=f"{self.kind}-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and close the listener and all held connections."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for s in [self._listener, *self._held]:
            try:
                s.close()
            except OSError:
                pass
        self._held.clear()

    def __enter__(self) -> "Blackhole":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Blackhole {self.kind} {self.host}:{self.port}>"


def _listener(port: int, backlog: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((HOST, port))
    s.listen(backlog)
    return s


def silent_server(port: int = 0) -> Blackhole:
    """Listen on ``127.0.0.1:port``, accept every connection, never send anything."""
    hole = Blackhole(_listener(port, 64), "silent")
    hole._listener.settimeout(0.1)

    def run() -> None:
        while not hole._stop.is_set():
            try:
                conn, _ = hole._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            hole._held.append(conn)  # keep it open: the peer waits for a greeting forever

    return hole._start(run)


def no_accept_server(port: int = 0, fill_timeout: float = 0.2, max_fill: int = 64) -> Blackhole:
    """Listen with ``listen(0)`` on ``127.0.0.1:port`` and never accept; connects then time out.

    The backlog is filled right away by connecting to it until a connect attempt itself times out
    (``fill_timeout``), so the very first test connection already hangs in connect.
    """
    hole = Blackhole(_listener(port, 0), "no-accept")
    for _ in range(max_fill):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.settimeout(fill_timeout)
        try:
            c.connect((HOST, hole.port))
        except OSError:  # timed out: the backlog is full, SYNs are dropped now
            c.close()
            break
        hole._held.append(c)
    else:
        hole.stop()
        raise RuntimeError(f"could not fill the backlog of {HOST}:{hole.port} with {max_fill} connections")
    return hole._start(lambda: hole._stop.wait())
