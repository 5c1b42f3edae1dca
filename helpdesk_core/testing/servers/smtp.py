"""An in-process SMTP capture sink (aiosmtpd) with STARTTLS, implicit TLS, AUTH and XOAUTH2.

Two listeners on 127.0.0.1:

* ``port_starttls`` -- plain SMTP + STARTTLS; AUTH is only offered after STARTTLS.
* ``port_ssl`` -- implicit TLS (465 style); AUTH allowed at once (``auth_require_tls=False``, which aiosmtpd
  needs because it does not count implicit TLS as TLS).

AUTH PLAIN/LOGIN check ``users``; XOAUTH2 is offered when ``token_owner`` is given and accepts a token
when ``token_owner(token) == user``.  Every accepted message is recorded in :attr:`SmtpSink.messages`.
Tests can inject failures (:meth:`SmtpSink.fail_next`, :meth:`SmtpSink.set_reply`), take the server
down and up again (:meth:`SmtpSink.stop` / :meth:`SmtpSink.start`) and count connections.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import email
import email.policy
import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Callable

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from helpdesk_core.testing.servers.ports import ManagedServer

__all__ = ["CapturedMessage", "SmtpSink"]

_STAGES = ("MAIL", "RCPT", "DATA")
TokenOwner = Callable[[str], "str | None"]
DeliverTo = Callable[[str, bytes], None]


@dataclass(frozen=True)
class CapturedMessage:
    """One message accepted by the sink."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    auth_login: str | None  #: AUTH user name, None if the client did not authenticate
    tls: bool  #: True for implicit TLS or after STARTTLS
    raw: bytes  #: exact DATA bytes as received (CRLF line endings)
    port: int  #: the sink port it arrived on
    received_at: float = field(default_factory=time.time)

    def as_email(self) -> EmailMessage:
        """Parse :attr:`raw` with the modern email policy."""
        msg = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


class _Handler:
    """aiosmtpd handler: scripted failures, recording, optional local delivery."""

    def __init__(self, sink: "SmtpSink", port: int, implicit_tls: bool) -> None:
        self.sink = sink
        self.port = port
        self.implicit_tls = implicit_tls

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          mail_options: list[str]) -> str:
        reply = self.sink._take_reply("MAIL")
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        reply = self.sink._take_reply("RCPT")
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = self.sink._take_reply("DATA")
        if reply:
            return reply
        raw = envelope.original_content or b""
        deliver = self.sink.deliver_to
        if deliver is not None:
            loop = asyncio.get_running_loop()
            for rcpt in envelope.rcpt_tos:
                try:
                    await loop.run_in_executor(None, deliver, rcpt, raw)
                except Exception as exc:  # report, do not swallow: the client sees a 451
                    self.sink.errors.append(f"deliver_to({rcpt!r}) failed: {exc!r}")
                    return "451 4.3.0 Local delivery failed"
        auth = session.auth_data
        login = auth.login.decode("utf-8", "replace") if isinstance(auth, LoginPassword) else None
        self.sink._record(CapturedMessage(
            mail_from=envelope.mail_from or "", rcpt_tos=tuple(envelope.rcpt_tos), auth_login=login,
            tls=self.implicit_tls or session.ssl is not None, raw=raw, port=self.port))
        return "250 2.0.0 OK"


class _OAuthHandler(_Handler):
    """Adds the XOAUTH2 mechanism (aiosmtpd advertises every ``auth_<MECH>`` method of the handler)."""

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        try:
            blob = base64.b64decode(args[1], validate=True) if len(args) > 1 else None
        except (binascii.Error, ValueError):
            blob = b""
        if blob is None:
            answer = await server.challenge_auth("")
            blob = answer if isinstance(answer, bytes) else b""
        fields = dict(p.split("=", 1) for p in blob.decode("utf-8", "replace").split("\x01") if "=" in p)
        user, auth = fields.get("user", ""), fields.get("auth", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        owner_fn = self.sink.token_owner
        owner = None
        if owner_fn is not None and user and token:
            owner = await asyncio.get_running_loop().run_in_executor(None, owner_fn, token)
        if owner is not None and owner == user:
            return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
        await server.challenge_auth(json.dumps(
            {"status": "400", "schemes": "Bearer", "scope": "https://mail.google.com/"}))  # Gmail-style 334
        return AuthResult(success=False, handled=False,
                          message=self.sink.xoauth2_refusal)


class _CountingSMTP(SMTP):
    def __init__(self, handler: Any, *, sink: "SmtpSink", **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._sink = sink

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # aiosmtpd calls connection_made again after STARTTLS: that is not a new connection
        upgraded = self.transport is not None and self._original_transport is not None
        super().connection_made(transport)
        if not upgraded:
            self._sink._count_connection()


class _Controller(Controller):
    def __init__(self, handler: Any, *, sink: "SmtpSink", **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._sink = sink

    def factory(self) -> SMTP:
        return _CountingSMTP(self.handler, sink=self._sink, **self.SMTP_kwargs)


class SmtpSink(ManagedServer):
    """Capture sink on ``127.0.0.1``: STARTTLS port ``port_starttls``, implicit-TLS port ``port_ssl``.

    ``users`` is used live (add entries at run time); ``token_owner`` maps an OAuth access token to its
    e-mail (or None) and enables XOAUTH2; ``deliver_to(rcpt, raw)`` is called for every recipient of an
    accepted message (e.g. ``DovecotServer.deliver``) -- an exception there answers ``451``.
    """

    host = "127.0.0.1"

    def __init__(self, port_starttls: int, port_ssl: int, cert: str | Path, key: str | Path,
                 users: dict[str, str], token_owner: TokenOwner | None = None,
                 deliver_to: DeliverTo | None = None, server_hostname: str = "smtp.district.test") -> None:
        self.port_starttls = port_starttls
        self.port_ssl = port_ssl
        self.cert = Path(cert)
        self.key = Path(key)
        self.users = users
        self.token_owner = token_owner
        #: the reply to a refused XOAUTH2 login (Exchange with SMTP AUTH off: ``535 5.7.139 ...``)
        self.xoauth2_refusal = "535 5.7.8 Username and Password not accepted (XOAUTH2)"
        self.deliver_to = deliver_to
        self.server_hostname = server_hostname
        self.errors: list[str] = []  #: problems inside the sink (e.g. deliver_to failures)
        self._lock = threading.Lock()
        self._messages: list[CapturedMessage] = []
        self._connections = 0
        self._counting = False
        self._once: dict[str, collections.deque[str]] = {s: collections.deque() for s in _STAGES}
        self._sticky: dict[str, str | None] = {s: None for s in _STAGES}
        self._controllers: list[Controller] = []
        self._arrived = threading.Condition(self._lock)

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        return bool(self._controllers)

    def start(self) -> "SmtpSink":
        """Start both listeners (again, after :meth:`stop`: same ports, recorded messages kept)."""
        if self._controllers:
            return self
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(str(self.cert), str(self.key))
        kw: dict[str, Any] = dict(hostname=self.host, authenticator=self._authenticate,
                                  server_hostname=self.server_hostname, sink=self)
        if self.token_owner is None:
            kw["auth_exclude_mechanism"] = ["XOAUTH2"]
        handler_cls = _OAuthHandler if self.token_owner is not None else _Handler
        specs = [
            (self.port_starttls, dict(tls_context=tls, auth_require_tls=True), False),
            (self.port_ssl, dict(ssl_context=tls, auth_require_tls=False), True),
        ]
        self._counting = False  # aiosmtpd's own readiness probe connects once per listener
        try:
            for port, extra, implicit in specs:
                controller = _Controller(handler_cls(self, port, implicit), port=port, **extra, **kw)
                try:
                    controller.start()
                except Exception as exc:
                    raise RuntimeError(f"SMTP sink cannot listen on {self.host}:{port}: {exc}") from exc
                self._controllers.append(controller)
        except BaseException:
            self.stop()
            raise
        self._counting = True
        self._track()
        return self

    def stop(self) -> None:
        """Stop both listeners: new connections are refused (simulates the server being down)."""
        controllers, self._controllers = self._controllers, []
        self._untrack()
        for controller in controllers:
            try:
                controller.stop()
            except Exception:
                pass

    def accept_tokens(self, token_owner: TokenOwner) -> None:
        """Offer XOAUTH2 from now on and check its tokens with ``token_owner``. Running listeners
        are restarted (the EHLO capabilities are fixed when they start); recorded messages stay."""
        self.token_owner = token_owner
        if self.running:
            self.stop()
            self.start()

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client context trusting the sink's (self-signed) certificate."""
        return ssl.create_default_context(cafile=str(self.cert))

    # ------------------------------------------------------------------ observations

    @property
    def messages(self) -> list[CapturedMessage]:
        """Snapshot (copy) of the accepted messages, oldest first."""
        with self._lock:
            return list(self._messages)

    @property
    def connections(self) -> int:
        """Number of client connections accepted since construction (probes excluded)."""
        with self._lock:
            return self._connections

    def wait_for(self, count: int, timeout: float = 5.0) -> list[CapturedMessage]:
        """Block until at least ``count`` messages were accepted; raise TimeoutError otherwise."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self._messages) >= count, timeout):
                raise TimeoutError(f"SMTP sink got {len(self._messages)} message(s), expected {count}")
            return list(self._messages)

    def clear(self) -> None:
        """Forget recorded messages, errors, connection count and scripted replies."""
        with self._lock:
            self._messages.clear()
            self.errors.clear()
            self._connections = 0
            for stage in _STAGES:
                self._once[stage].clear()
                self._sticky[stage] = None

    # ------------------------------------------------------------------ scripted failures

    def fail_next(self, code: int, text: str = "Temporary failure", stage: str = "DATA", count: int = 1) -> None:
        """Answer the next ``count`` MAIL/RCPT/DATA commands (``stage``) with ``code text``."""
        reply = self._format(code, text, stage)
        with self._lock:
            self._once[stage.upper()].extend([reply] * count)

    def set_reply(self, code: int | None, text: str = "Failure", stage: str = "DATA") -> None:
        """Answer every MAIL/RCPT/DATA (``stage``) with ``code text`` until ``set_reply(None)``."""
        with self._lock:
            self._sticky[stage.upper()] = None if code is None else self._format(code, text, stage)

    @staticmethod
    def _format(code: int, text: str, stage: str) -> str:
        if stage.upper() not in _STAGES:
            raise ValueError(f"stage must be one of {_STAGES}, not {stage!r}")
        if not 200 <= code <= 599:
            raise ValueError(f"invalid SMTP reply code {code}")
        return f"{code} {text}"

    # ------------------------------------------------------------------ called from the event loop

    def _take_reply(self, stage: str) -> str | None:
        with self._lock:
            if self._once[stage]:
                return self._once[stage].popleft()
            return self._sticky[stage]

    def _record(self, message: CapturedMessage) -> None:
        with self._arrived:
            self._messages.append(message)
            self._arrived.notify_all()

    def _count_connection(self) -> None:
        if self._counting:
            with self._lock:
                self._connections += 1

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        """AUTH PLAIN / LOGIN against :attr:`users`."""
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        ok = login in self.users and self.users[login] == auth_data.password.decode("utf-8", "replace")
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)
