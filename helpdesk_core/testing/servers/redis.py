"""A throwaway Redis on 127.0.0.1 for tests and benchmarks (the Celery broker).

``redis-server`` runs in the foreground as a child of the calling process, without persistence
(``save ""``, no AOF): :meth:`RedisServer.restart` therefore loses every queued message, exactly as
a crashed broker without persistence would, which the distributed tests rely on.
"""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

from helpdesk_core.testing.servers.ports import (
    ChildProcessServer, ServerUnavailable, port_is_free,
)

__all__ = ["RedisServer"]


class RedisServer(ChildProcessServer):
    """A private ``redis-server`` on ``127.0.0.1:port``; state (log) in ``STATE/redis``."""

    stop_timeout = 10.0

    def __init__(self, state_dir: str | Path, port: int) -> None:
        self.state_dir = Path(state_dir).absolute() / "redis"
        self.port = port
        self.log_path = self.state_dir / "redis.log"

    @property
    def url(self) -> str:
        """The broker URL for Celery: ``redis://127.0.0.1:PORT/0``."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def ports(self) -> list[int]:
        return [self.port]

    def start(self) -> RedisServer:
        if self.running:
            return self
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).exists():
            raise ServerUnavailable("redis-server is not installed", "redis-server")
        if not port_is_free(self.port):
            raise RuntimeError(f"cannot start Redis: port {self.port} on {self.host} is already in use")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        proc = self._spawn(
            [binary, "--port", str(self.port), "--bind", self.host, "--save", "", "--appendonly", "no",
             "--dir", str(self.state_dir), "--logfile", str(self.log_path), "--daemonize", "no",
             "--protected-mode", "yes"])
        deadline = time.monotonic() + 10
        while not self.ping():
            if proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start:\n{self.log_text()[-2000:]}")
            time.sleep(0.02)
        return self

    def restart(self) -> None:
        """Stop and start again on the same port: every queued message is gone."""
        self.stop()
        self.start()

    def ping(self) -> bool:
        """True when the server answers ``PING`` with ``+PONG``."""
        return self.command("PING") == b"+PONG"

    def command(self, *words: str) -> bytes | None:
        """Send one inline command; the first line of the reply, or None when unreachable."""
        try:
            with socket.create_connection((self.host, self.port), timeout=2) as s:
                s.sendall((" ".join(words) + "\r\n").encode())
                return s.recv(65536).split(b"\r\n", 1)[0]
        except OSError:
            return None
