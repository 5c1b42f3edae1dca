"""What the test servers share: their base class, free ports, readiness banners, traversable folders."""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

HOST = "127.0.0.1"
_POLL = 0.02
_READY_TIMEOUT = 10.0


class ServerUnavailable(RuntimeError):
    """A server binary (or a privilege it needs) is missing; ``apt_package`` names the fix."""

    def __init__(self, message: str, apt_package: str | None = None) -> None:
        super().__init__(message)
        self.apt_package = apt_package


class ManagedServer:
    """A test server that :meth:`start` starts and :meth:`stop` stops: ``with server:`` runs it for
    the block, :meth:`log_text` reads its log, and one still running when the interpreter exits is
    stopped then (no orphaned servers after a test forgot to).

    A subclass implements :meth:`start`, calling :meth:`_track` once its process runs, and
    :meth:`stop`, calling :meth:`_untrack` first; it sets ``log_path`` when it writes a log.
    """

    log_path: Path | None = None

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def log_text(self) -> str:
        """The whole server log ("" while there is none)."""
        if self.log_path is None:
            return ""
        try:
            return self.log_path.read_text(errors="replace")
        except (FileNotFoundError, PermissionError):
            return ""

    def _track(self) -> None:
        _live.add(self)

    def _untrack(self) -> None:
        _live.discard(self)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class ChildProcessServer(ManagedServer):
    """A test server that runs in the foreground as a child process of the caller (so it is reaped
    by us, and SIGTERMed by Linux if we die); ``ports`` are the TCP ports it listens on."""

    host = HOST
    #: seconds :meth:`stop` waits after SIGTERM before it SIGKILLs
    stop_timeout = 15.0
    _proc: "subprocess.Popen[bytes] | None" = None

    @property
    def ports(self) -> list[int]:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        """True while the server process runs."""
        return self._proc is not None and self._proc.poll() is None

    def _spawn(self, argv: list[str], output: "int | IO[bytes]" = subprocess.DEVNULL) -> "subprocess.Popen[bytes]":
        """Start ``argv`` (its stdout and stderr to ``output``) in a session of its own."""
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=output, stderr=output, start_new_session=True,
            preexec_fn=_set_pdeathsig if threading.current_thread() is threading.main_thread() else None)
        self._track()
        return self._proc

    def stop(self) -> None:
        """SIGTERM the process (SIGKILL if it lingers) and wait until all its ports are closed."""
        proc, self._proc = self._proc, None
        self._untrack()
        if proc is None:
            return
        terminate(proc, timeout=self.stop_timeout)
        for port in self.ports:
            wait_port_closed(port, self.host, timeout=10)


_live: set[ManagedServer] = set()


@atexit.register
def _stop_all() -> None:  # pragma: no cover - interpreter shutdown
    for server in list(_live):
        try:
            server.stop()
        except Exception:
            pass


# --------------------------------------------------------------------------- small network helpers


def port_is_free(port: int, host: str = HOST) -> bool:
    """True when nothing listens on ``host:port`` and it can be bound."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def wait_port_closed(port: int, host: str = HOST, timeout: float = 10.0) -> bool:
    """Poll until connecting to ``host:port`` is refused; return False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                pass
        except OSError:
            return True
        time.sleep(_POLL)
    return False


def wait_for_banner(
    port: int,
    prefix: bytes,
    host: str = HOST,
    timeout: float = _READY_TIMEOUT,
    alive: "subprocess.Popen[bytes] | None" = None,
) -> bytes:
    """Poll (every 20 ms) until ``host:port`` greets with ``prefix``; return the greeting line.

    Raises :class:`TimeoutError` after ``timeout`` seconds and :class:`RuntimeError` as soon as the
    optional ``alive`` process has exited.
    """
    deadline = time.monotonic() + timeout
    last_error: object = None
    while time.monotonic() < deadline:
        if alive is not None and alive.poll() is not None:
            raise RuntimeError(f"server process exited with code {alive.returncode} before port {port} greeted")
        try:
            with socket.create_connection((host, port), timeout=2.0) as s:
                data = s.recv(1024)
            if data.startswith(prefix):
                return data.split(b"\r\n", 1)[0]
            last_error = data
        except OSError as exc:
            last_error = exc
        time.sleep(_POLL)
    raise TimeoutError(f"{host}:{port} did not greet with {prefix!r} within {timeout} s (last: {last_error!r})")


def terminate(proc: "subprocess.Popen[bytes]", timeout: float = 15.0) -> None:
    """SIGTERM ``proc`` and reap it; SIGKILL when it has not exited after ``timeout`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def make_traversable(path: Path) -> None:
    """Add o+x to ``path`` and every parent lacking it, so users ``mail``/``postgres``/``dovecot``
    can reach files below it (``mktemp -d`` and pytest's ``tmp_path`` are 0700)."""
    for p in [path, *path.parents]:
        try:
            mode = p.stat().st_mode
        except FileNotFoundError:
            continue
        if not mode & 0o001:
            os.chmod(p, (mode & 0o7777) | 0o011)


def _set_pdeathsig() -> None:  # pragma: no cover - runs in the child
    """Ask Linux to SIGTERM the child when the parent dies (no orphaned servers after a crash)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass
