"""A throwaway PostgreSQL cluster on 127.0.0.1 for tests and benchmarks.

Layout: ``STATE/pg/{data,sock,postgres.log}`` owned by user ``postgres``.  ``initdb`` and ``pg_ctl`` refuse
to run as root, so as root they run through ``runuser -u postgres``.  Durability is switched off
(``fsync=off`` etc.): the cluster is disposable.  Authentication is ``trust`` for user ``postgres``.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path

from helpdesk_core.testing.servers.ports import (
    ManagedServer, ServerUnavailable, make_traversable, port_is_free, wait_port_closed,
)

__all__ = ["PostgresServer", "find_pg_bindir"]

_SOCKET_PATH_LIMIT = 107
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def find_pg_bindir() -> Path:
    """The ``bin`` folder of the newest ``/usr/lib/postgresql/<version>`` (else ``pg_config --bindir``)."""
    candidates = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]

    def version(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", p.parent.name)) or (0,)

    if candidates:
        return max(candidates, key=version)
    pg_config = shutil.which("pg_config")
    if pg_config:
        bindir = Path(subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip())
        if (bindir / "initdb").exists():
            return bindir
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise ServerUnavailable("PostgreSQL server binaries (initdb, pg_ctl) are not installed", "postgresql")


class PostgresServer(ManagedServer):
    """A private PostgreSQL cluster listening on ``127.0.0.1:port`` (socket folder ``STATE/pg/sock``)."""

    host = "127.0.0.1"
    user = "postgres"

    def __init__(self, state_dir: str | os.PathLike[str], port: int) -> None:
        self.state_dir = Path(state_dir).absolute()
        self.port = port
        self.pg_dir = self.state_dir / "pg"
        self.data_dir = self.pg_dir / "data"
        self.socket_dir = self.pg_dir / "sock"
        self.log_path = self.pg_dir / "postgres.log"
        self._bindir: Path | None = None
        self._running = False
        if len(f"{self.socket_dir}/.s.PGSQL.{port}.lock") > _SOCKET_PATH_LIMIT:
            raise ValueError(f"state_dir {self.state_dir} is too long for a Unix socket path; use e.g. /tmp/hd-XXXX")

    # ------------------------------------------------------------------ lifecycle

    @property
    def bindir(self) -> Path:
        """Folder holding initdb/pg_ctl (highest installed version)."""
        if self._bindir is None:
            self._bindir = find_pg_bindir()
        return self._bindir

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> "PostgresServer":
        """``initdb`` (once) and ``pg_ctl start -w``; raises with the log tail on failure."""
        if self._running:
            return self
        bindir = self.bindir
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                raise ServerUnavailable("runuser is missing (needed to run PostgreSQL as user postgres)", "util-linux")
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise ServerUnavailable("system user 'postgres' does not exist", "postgresql") from None
        if not port_is_free(self.port):
            raise RuntimeError(f"cannot start PostgreSQL: port {self.port} on {self.host} is already in use")
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o755)
        make_traversable(self.state_dir)
        self._chown_tree(self.pg_dir)
        if not (self.data_dir / "PG_VERSION").exists():
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self._run_as_postgres(
                [str(bindir / "initdb"), "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
                 "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"], what="initdb")
        options = (f"-p {self.port} -c listen_addresses={self.host} -k {self.socket_dir} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run_as_postgres(
            [str(bindir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_path), "-w", "-t", "30",
             "-o", options, "start"], what="pg_ctl start")
        self._running = True
        self._track()
        return self

    def stop(self) -> None:
        """``pg_ctl stop -m fast`` and wait until the port is closed."""
        if not self._running:
            return
        self._running = False
        self._untrack()
        try:
            self._run_as_postgres([str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w",
                                   "-t", "30", "stop"], what="pg_ctl stop")
        finally:
            wait_port_closed(self.port, self.host, timeout=10)

    # ------------------------------------------------------------------ databases

    def url(self, name: str = "postgres") -> str:
        """SQLAlchemy URL of database ``name``: ``postgresql+psycopg://postgres@127.0.0.1:PORT/name``."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{name}"

    def dsn(self, name: str = "postgres") -> str:
        """libpq DSN of database ``name`` (for psycopg/psql)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{name}"

    def create_database(self, name: str) -> str:
        """Create database ``name`` (a plain identifier) and return its SQLAlchemy URL."""
        self._check_name(name)
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, disconnecting its sessions first."""
        self._check_name(name)
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _check_name(name: str) -> None:
        if not _IDENT.match(name):
            raise ValueError(f"database name must be a plain identifier ([A-Za-z_][A-Za-z0-9_]*): {name!r}")

    def _admin(self, sql: str) -> None:
        import psycopg  # lazy: only needed when databases are created

        with psycopg.connect(self.dsn("postgres"), autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def _run_as_postgres(self, argv: list[str], what: str) -> None:
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd="/")
        if result.returncode != 0:
            raise RuntimeError(
                f"PostgreSQL {what} failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}"
                f"\n--- log tail ---\n{self.log_text()[-2000:]}")

    @staticmethod
    def _chown_tree(path: Path) -> None:
        if os.geteuid() != 0:
            return
        pw = pwd.getpwnam("postgres")
        for root, dirs, files in os.walk(path):
            os.chown(root, pw.pw_uid, pw.pw_gid)
            for f in files:
                os.chown(os.path.join(root, f), pw.pw_uid, pw.pw_gid)
