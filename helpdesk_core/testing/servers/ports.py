"""Small helpers shared by the test servers: free ports, readiness banners, traversable folders."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

HOST = "127.0.0.1"
_POLL = 0.02
_READY_TIMEOUT = 10.0


class ServerUnavailable(RuntimeError):
    """A server binary (or a privilege it needs) is missing; ``apt_package`` names the fix."""

    def __init__(self, message: str, apt_package: str | None = None) -> None:
        super().__init__(message)
        self.apt_package = apt_package


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
