"""Receive the OAuth redirect on a loopback address (RFC 8252 section 7.3), with http.server.

:class:`LoopbackReceiver` binds ``127.0.0.1:PORT`` (0 = any free port) *before* the consent URL is
shown, so ``redirect_uri`` names the real port. :meth:`LoopbackReceiver.wait` serves requests until
one carries ``code`` or ``error`` (a browser's ``/favicon.ico`` gets a 404), checks ``state``,
answers the browser with a short page and returns the code.
"""

from __future__ import annotations

import html
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from helpdesk_core.errors import ConfigurationError, TemporaryError

__all__ = ["LoopbackReceiver"]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    receiver: LoopbackReceiver

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - never log codes
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
        if "code" not in query and "error" not in query:
            self._answer(404, "Not the OAuth redirect.")
            return
        self.receiver.answer = query
        if query.get("state") != self.receiver.expected_state:
            self._answer(400, "The state does not match this sign-in; start it again from the help desk.")
        elif "error" in query:
            self._answer(400, f"Access was not granted ({query['error']}). You can close this window.")
        else:
            self._answer(200, "The help desk received the authorisation. You can close this window.")

    def _answer(self, status: int, text: str) -> None:
        body = (f"<!doctype html><meta charset=utf-8><title>Help desk</title>"
                f"<p>{html.escape(text)}</p>").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True


class LoopbackReceiver:
    """One-shot listener for the redirect; a context manager that closes the socket."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        handler = type("Handler", (_Handler,), {"receiver": self})
        try:
            self._server = HTTPServer((host, port), handler)
        except OSError as exc:
            raise ConfigurationError(f"Cannot listen on {host}:{port} for the redirect ({exc.strerror}): "
                                     "choose another --listen-port, or 0 for any free port.") from exc
        self.host = host
        self.port = int(self._server.server_address[1])
        self.expected_state: str | None = None
        self.answer: dict[str, str] | None = None

    @property
    def redirect_uri(self) -> str:
        """``http://127.0.0.1:PORT/`` -- register loopback redirects for a Desktop OAuth client."""
        return f"http://{self.host}:{self.port}/"

    def wait(self, state: str, timeout: float = 300.0) -> str:
        """Serve until the redirect arrives; return its code. Raise on a wrong state, an error or timeout."""
        self.expected_state = state
        deadline = time.monotonic() + timeout
        while self.answer is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TemporaryError(f"No redirect arrived on {self.redirect_uri} within {int(timeout)} s: "
                                     "open the URL again, or copy the code= value from the browser's address "
                                     "bar and run the command again with --code CODE.")
            self._server.timeout = min(left, 1.0)
            self._server.handle_request()
        answer = self.answer
        if answer.get("state") != state:
            raise ConfigurationError("The redirect carried a different state than this sign-in (a stale or "
                                     "forged redirect): run the command again and use the new URL.")
        if "error" in answer:
            raise ConfigurationError(f"Access was not granted ({answer['error']}): run the command again and "
                                     "approve access in the consent screen.")
        return answer["code"]

    def close(self) -> None:
        self._server.server_close()

    def __enter__(self) -> LoopbackReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
