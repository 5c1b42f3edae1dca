"""Engine, sessions and migrations. The caller owns the session and its transactions."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from helpdesk_core.errors import ConfigurationError, DatabaseUnavailable

MIGRATIONS = Path(__file__).parent / "migrations"


def _parses(url: str) -> bool:
    try:
        make_url(url)
    except ArgumentError:
        return False
    return True


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout, and its file (it holds
    mail) is made readable by its owner only (0600; folders it creates 0700): SQLite gives its WAL
    and shared-memory files the mode of the database file."""
    db_file: Path | None = None
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:" and not path.startswith("file:"):
            db_file = Path(path.split("?", 1)[0])
            db_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"timeout": 30})
    try:
        engine = create_engine(url, **kwargs)
    except (ArgumentError, NoSuchModuleError, ImportError, ValueError) as exc:
        shown = make_url(url).render_as_string(hide_password=True) if _parses(url) else "(unparsable)"
        reason = " ".join(str(exc).split())[:300]
        raise ConfigurationError(
            f"Cannot use the database URL {shown}: {reason}. Give a URL such as sqlite:///path/helpdesk.db "
            "or postgresql+psycopg://user@host/dbname (with its driver installed).") from None
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            if db_file is not None:
                private_file(db_file)  # created by this connect (SQLite uses the umask's 0644)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "savepoint")
        def _sqlite_begin_before_savepoint(conn: Any, _name: str) -> None:
            # pysqlite only opens a transaction before INSERT/UPDATE/DELETE, not before SAVEPOINT;
            # SQLite then treats the savepoint as the transaction and RELEASE commits it, so the
            # importer's batch would be committed message by message and a rollback would undo
            # nothing. Open the real transaction first (IMMEDIATE: the write lock, waiting for it
            # with the busy timeout, as pysqlite's own implicit BEGIN before a write would).
            dbapi_conn = conn.connection.driver_connection
            if not dbapi_conn.in_transaction:
                dbapi_conn.execute("BEGIN IMMEDIATE")
    return engine


def private_file(path: Path) -> None:
    """Make an existing file we own readable by its owner only (0600); others' files are left."""
    try:
        st = path.stat()
        if st.st_mode & 0o077 and st.st_uid == os.getuid():
            os.chmod(path, 0o600)
    except OSError:
        pass


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(engine: Engine) -> Any:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema (Alembic ``upgrade head``)."""
    from alembic import command

    try:
        command.upgrade(alembic_config(engine), revision)
    except OperationalError as exc:
        raise DatabaseUnavailable(f"Cannot reach the database to upgrade it: {exc.orig}") from exc


def is_initialised(engine: Engine) -> bool:
    try:
        return inspect(engine).has_table("departments")
    except OperationalError as exc:
        raise DatabaseUnavailable(f"Cannot reach the database: {exc.orig}") from exc
