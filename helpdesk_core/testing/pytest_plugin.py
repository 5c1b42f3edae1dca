"""pytest fixtures for real servers on loopback and test installations of the help desk.

Registered as the ``pytest11`` entry point ``helpdesk_core`` of the package, so every suite that
installs helpdesk-core (the core's, a plugin's) can ask for these fixtures. None is autouse: a test
gets only what it names.

Session scope: ``dovecot``, ``oauth_server_process``, ``postgres``, ``silent_port``, ``noaccept_port`` (and ``hd_state_root``).
Function scope: ``mail_user``, ``oauth_server`` (reset for each test), ``postgres_url``, ``smtp_sink``.

A missing server binary skips the tests that need it, naming the Debian package -- except when the
environment variable ``CI`` is ``true``: then those tests FAIL, so CI never passes by skipping.
Set ``HD_KEEP_STATE=1`` to keep the state folder (logs, Maildirs) after the session.
"""

from __future__ import annotations

import itertools
import os
import random
import secrets
import shutil
import socket
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, NoReturn, TypeVar

import pytest

from helpdesk_core.testing.apps import DATABASES
from helpdesk_core.testing.servers.blackhole import no_accept_server, silent_server
from helpdesk_core.testing.servers.dovecot import DovecotServer, ServerUnavailable, port_is_free
from helpdesk_core.testing.servers.ports import ManagedServer
from helpdesk_core.testing.servers.postgres import PostgresServer

if TYPE_CHECKING:
    from helpdesk_core.app import Helpdesk
    from helpdesk_core.testing.apps import Cli
    from helpdesk_core.testing.servers.oauth import OAuthServer
    from helpdesk_core.testing.servers.smtp import SmtpSink

__all__ = ["MailUser", "SESSION_USERS", "skip_or_fail"]

#: Users every session Dovecot has (e-mail -> password).
SESSION_USERS: dict[str, str] = {
    "techhelp@district.test": "techpass",
    "facilities@district.test": "facpass",
    "principal@district.test": "princpass",
    "requester@example.test": "reqpass",
}
_POOL_INITIAL = 300  # fresh users written before Dovecot starts (no passwd-file reread wait)
_POOL_BATCH = 50  # later batches cost one ~1 s wait each


def in_ci() -> bool:
    """True when the environment variable CI is set to true."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def skip_or_fail(message: str) -> NoReturn:
    """Skip the test with ``message`` -- or fail it when ``CI=true`` (CI must never silently skip)."""
    if in_ci():
        pytest.fail(f"{message} (CI=true: missing test servers are an error, not a skip)", pytrace=False)
    pytest.skip(message)


def _unavailable(exc: ServerUnavailable) -> NoReturn:
    hint = f"; install it with: apt-get install {exc.apt_package} (or run `make deps`)" if exc.apt_package else ""
    skip_or_fail(f"{exc}{hint}")


_Server = TypeVar("_Server", bound=ManagedServer)


def _running(server: _Server) -> Iterator[_Server]:
    """Start ``server`` (a missing binary skips, or under CI fails, the tests), yield it, stop it."""
    try:
        server.start()
    except ServerUnavailable as exc:
        _unavailable(exc)
    try:
        yield server
    finally:
        server.stop()


def _free_port_block(offsets: list[int], low: int = 20000, high: int = 40000, tries: int = 200) -> int:
    """A random base in [low, high) such that base+offset is free for every offset."""
    rng = random.Random(os.getpid() ^ int.from_bytes(os.urandom(4), "big"))
    for _ in range(tries):
        base = rng.randrange(low, high)
        if all(port_is_free(base + off) for off in offsets):
            return base
    raise RuntimeError(f"no free block of ports for offsets {offsets} in {low}-{high}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- pytest hooks


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "dovecot: needs the real Dovecot started by the suite")
    config.addinivalue_line("markers", "postgres: needs PostgreSQL")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by the servers they use, so ``-m 'not dovecot'`` / ``-m 'not postgres'`` work."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & {"dovecot", "mail_user", "smtp_sink", "oauth_server"}:
            item.add_marker("dovecot")
        if names & {"postgres", "postgres_url"}:
            item.add_marker("postgres")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach the tail of the Dovecot log to failing tests that used it."""
    outcome = yield
    report = outcome.get_result()
    server = getattr(item, "funcargs", {}).get("dovecot")
    if report.failed and isinstance(server, DovecotServer):
        tail = "\n".join(server.log_text().splitlines()[-40:])
        report.sections.append(("dovecot log (last 40 lines)", tail))


# --------------------------------------------------------------------------- state folder


@pytest.fixture(scope="session")
def hd_state_root() -> Iterator[Path]:
    """A short, world-traversable folder (``/tmp/hd-XXXXXXXX``) for all server state of the session."""
    root = Path(tempfile.mkdtemp(prefix="hd-", dir="/tmp"))
    os.chmod(root, 0o755)
    yield root
    if not os.environ.get("HD_KEEP_STATE"):
        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------- Dovecot


@dataclass
class MailUser:
    """A fresh Dovecot user with an empty mailbox (unique per test)."""

    email: str
    password: str
    server: DovecotServer

    @property
    def maildir(self) -> Path:
        return self.server.maildir(self.email)

    def deliver(self, raw: bytes, folder: str | None = None, seen: bool = False) -> Path:
        """Shortcut for ``server.deliver(self.email, raw, ...)``."""
        return self.server.deliver(self.email, raw, folder=folder, seen=seen)

    def count(self, folder: str = "INBOX") -> int:
        return self.server.count(self.email, folder)

    def add_department(self, cli: "Cli", name: str, *options: str) -> Any:
        """``helpdesk department add NAME`` sending from this user's address, then ``set-mailbox``
        with this user's IMAPS mailbox on the test Dovecot (password on standard input) and the
        further set-mailbox ``options``; returns the set-mailbox result."""
        cli("department", "add", name, "--sender", self.email)
        return cli("department", "set-mailbox", name, "--protocol", "imap", "--host", "127.0.0.1",
                   "--port", str(self.server.imaps_port), "--security", "ssl", "--email", self.email,
                   "--ca-file", str(self.server.ca_file), *options, "--password-stdin",
                   input=self.password + "\n")


class _UserPool:
    """Pre-registered, never-used users; refilled in batches (one passwd-file wait per batch)."""

    def __init__(self, server: DovecotServer) -> None:
        self.server = server
        self._numbers = itertools.count(1)
        self._free: list[tuple[str, str]] = []

    def fill(self, n: int) -> None:
        batch = {f"u{next(self._numbers)}@district.test": secrets.token_urlsafe(12) for _ in range(n)}
        self.server.add_users(batch)
        self._free.extend(batch.items())

    def take(self) -> MailUser:
        if not self._free:
            self.fill(_POOL_BATCH)
        email, password = self._free.pop(0)
        return MailUser(email, password, self.server)


@pytest.fixture(scope="session")
def dovecot(hd_state_root: Path) -> Iterator[DovecotServer]:
    """A started private Dovecot with :data:`SESSION_USERS`; ports chosen free in 20000-41000.

    Its oauth2 passdb points to ``http://127.0.0.1:<port_base+80>/tokeninfo?access_token=`` (nothing
    listens there unless a test starts a token validator on ``dovecot.port_base + 80``).
    """
    base = _free_port_block([143, 993, 110, 995, 80])
    server = DovecotServer(hd_state_root / "dc", base,
                           oauth2_tokeninfo_url=f"http://127.0.0.1:{base + 80}/tokeninfo?access_token=")
    server.add_users(SESSION_USERS)
    pool = _UserPool(server)
    pool.fill(_POOL_INITIAL)
    server._hd_pool = pool  # type: ignore[attr-defined]
    yield from _running(server)


@pytest.fixture
def mail_user(dovecot: DovecotServer) -> MailUser:
    """A fresh user (``u<n>@district.test``, random password) with an empty mailbox, can log in now."""
    pool: _UserPool = dovecot._hd_pool  # type: ignore[attr-defined]
    return pool.take()


# --------------------------------------------------------------------------- OAuth 2.0


@pytest.fixture(scope="session")
def oauth_server_process(dovecot: DovecotServer) -> Iterator["OAuthServer"]:
    """The running local OAuth 2.0 server on ``dovecot.port_base + 80``, where Dovecot's oauth2
    passdb checks XOAUTH2 tokens: one per session (one port). Tests use :func:`oauth_server`."""
    from helpdesk_core.testing.servers.oauth import OAuthServer

    server = OAuthServer(port=dovecot.port_base + 80).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def oauth_server(oauth_server_process: "OAuthServer") -> "OAuthServer":
    """The local OAuth 2.0 server (:class:`~helpdesk_core.testing.servers.oauth.OAuthServer`),
    reset (clients, tokens, controls) for this test."""
    oauth_server_process.reset()
    return oauth_server_process


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def postgres(hd_state_root: Path) -> Iterator[PostgresServer]:
    """A started throwaway PostgreSQL cluster (user postgres, trust auth) on a free port."""
    port = _free_port_block([0], low=41000, high=50000)
    yield from _running(PostgresServer(hd_state_root / "pg", port))


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> Iterator[str]:
    """SQLAlchemy URL of a fresh, empty database, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    url = postgres.create_database(name)
    try:
        yield url
    finally:
        postgres.drop_database(name)


# --------------------------------------------------------------------------- blackholes


@pytest.fixture(scope="session")
def silent_port() -> Iterator[int]:
    """Port that accepts connections and never sends a byte (read/greeting timeouts)."""
    with silent_server(0) as hole:
        yield hole.port


@pytest.fixture(scope="session")
def noaccept_port() -> Iterator[int]:
    """Port whose backlog is full and that never accepts (connect timeouts)."""
    with no_accept_server(0) as hole:
        yield hole.port


# --------------------------------------------------------------------------- SMTP


@pytest.fixture
def smtp_sink(dovecot: DovecotServer) -> Iterator["SmtpSink"]:
    """A started :class:`~helpdesk_core.testing.servers.smtp.SmtpSink` with Dovecot's certificate.

    AUTH users = ``dovecot.users`` (live: session users and every ``mail_user``).  No XOAUTH2 and no
    delivery unless the test sets ``smtp_sink.deliver_to`` (e.g. ``dovecot.deliver``); call
    ``smtp_sink.accept_tokens(token_owner)`` to enable XOAUTH2.
    """
    try:
        from helpdesk_core.testing.servers.smtp import SmtpSink
    except ImportError as exc:  # pragma: no cover
        skip_or_fail(f"aiosmtpd is not installed ({exc}); pip install -e '.[test]'")
    port_starttls = _free_port()
    port_ssl = _free_port()
    while port_ssl == port_starttls:
        port_ssl = _free_port()
    yield from _running(SmtpSink(port_starttls, port_ssl, dovecot.cert_file, dovecot.key_file, users=dovecot.users))



# --------------------------------------------------------------------------- installations


@pytest.fixture(params=DATABASES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh empty database: every test using it runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'helpdesk.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'helpdesk.db'}"


@pytest.fixture
def hd_env(tmp_path: Path, db_url: str) -> dict[str, str]:
    """Environment of a fresh installation (home folder, database, secret key)."""
    from helpdesk_core.testing.apps import environment

    return environment(tmp_path / "home", db_url)


@pytest.fixture
def app(hd_env: dict[str, str]) -> Iterator["Helpdesk"]:
    """An initialised application on the test database."""
    from helpdesk_core.testing.apps import make_app

    application = make_app(hd_env)
    application.upgrade()
    yield application
    application.engine.dispose()


@pytest.fixture
def cli(hd_env: dict[str, str]) -> "Cli":
    """``helpdesk`` run in-process on an initialised installation (SQLite and PostgreSQL)."""
    from helpdesk_core.testing.apps import Cli

    runner = Cli(hd_env)
    runner("init")
    return runner
