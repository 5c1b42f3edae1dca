"""Test installations of the help desk, for the core's tests and for plugin authors.

* :func:`make_app` — an application on a given environment (home folder, database URL, key);
* :class:`Cli` — runs ``helpdesk`` in-process against such an installation;
* :func:`memory_app` — a migrated in-memory SQLite installation, fast enough for hypothesis
  (the schema is migrated once and copied per call).

The pytest fixtures built on them (``db_url``, ``sqlite_url``, ``hd_env``, ``app``, ``cli``) are in
:mod:`helpdesk_core.testing.pytest_plugin`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from sqlalchemy.pool import StaticPool

from helpdesk_core.app import Helpdesk
from helpdesk_core.config import Config
from helpdesk_core.crypto import generate_key
from helpdesk_core.db import make_engine, upgrade

#: the databases every ``db_url`` test runs on (``HELPDESK_TEST_DATABASES=sqlite`` narrows it)
DATABASES = [d.strip() for d in os.environ.get("HELPDESK_TEST_DATABASES", "sqlite,postgresql").split(",")
             if d.strip()]


def environment(home: Path, database_url: str) -> dict[str, str]:
    """The environment of a fresh installation in ``home`` (created) on ``database_url``."""
    home.mkdir(parents=True, exist_ok=True)
    return {"HELPDESK_HOME": str(home), "HELPDESK_DATABASE_URL": database_url,
            "HELPDESK_SECRET_KEY": generate_key()}


def make_app(env: dict[str, str], extra_plugins: Iterable[object] = ()) -> Helpdesk:
    """The application of the installation described by ``env`` (see :func:`environment`)."""
    home = Path(env["HELPDESK_HOME"])
    config = Config(home=home, database_url=env["HELPDESK_DATABASE_URL"],
                    attachments_dir=home / "attachments", secret_key=env["HELPDESK_SECRET_KEY"])
    return Helpdesk.from_config(config, extra_plugins=tuple(extra_plugins))


@dataclass
class Cli:
    """Runs ``helpdesk`` in-process with the installation's environment; raises on a non-zero
    exit unless ``ok=False``."""

    env: dict[str, str]
    runner: CliRunner = field(default_factory=CliRunner)

    def __call__(self, *args: str, input: str | bytes | None = None, ok: bool = True) -> Result:
        from helpdesk_core.cli.main import main  # imported late: a broken CLI fails the test, not the collection

        result = self.runner.invoke(main, list(args), input=input, env=self.env, catch_exceptions=False)
        if ok and result.exit_code != 0:
            raise AssertionError(f"helpdesk {' '.join(args)} exited {result.exit_code}:\n{result.output}")
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args).stdout)

    def app(self) -> Helpdesk:
        return make_app(self.env)


_MEMORY_KEY = generate_key()
_MIGRATED: list[Any] = []  # the migrated in-memory database, built once per process


def _memory_engine() -> Any:
    return make_engine("sqlite://", poolclass=StaticPool, connect_args={"timeout": 30})


def copy_migrated_sqlite(engine: Any) -> None:
    """Make the SQLite database of ``engine`` a copy (the backup API) of an in-memory one that
    Alembic brought to ``head`` once per process: a fresh migrated database in milliseconds."""
    if not _MIGRATED:
        migrated = _memory_engine()
        upgrade(migrated)
        _MIGRATED.append(migrated)
    source, target = _MIGRATED[0].raw_connection(), engine.raw_connection()
    try:
        source.driver_connection.backup(target.driver_connection)
    finally:
        target.close()
        source.close()


def memory_app(*plugins: object, load_entrypoints: bool = False) -> Helpdesk:
    """A migrated in-memory SQLite installation of its own, with ``plugins`` registered."""
    home = Path("/nonexistent-helpdesk-home")
    config = Config(home=home, database_url="sqlite://", attachments_dir=home / "attachments",
                    secret_key=_MEMORY_KEY)
    engine = _memory_engine()
    copy_migrated_sqlite(engine)
    return Helpdesk.from_config(config, engine=engine, load_entrypoints=load_entrypoints,
                                extra_plugins=plugins)


def installation(env: dict[str, str], *plugins: object, departments: dict[str, str]) -> Helpdesk:
    """An upgraded application with ``plugins`` and the given departments (name → sender)."""
    from helpdesk_core.services.departments import add_department
    from helpdesk_core.services.permissions import SYSTEM

    app = make_app(env, extra_plugins=plugins)
    app.upgrade()
    with app.session() as session:
        for name, sender in departments.items():
            add_department(session, actor=SYSTEM, name=name, sender=sender)
        session.commit()
    return app


def ingest(app: Helpdesk, raw: bytes, *, department: str) -> Any:
    """Import one raw message into ``department`` the way ``helpdesk ingest`` does, committed;
    returns the importer's Outcome (status, ticket_id, ticket_message_id, reason)."""
    from helpdesk_core.services.imports import ingest_raw
    from helpdesk_core.services.permissions import SYSTEM

    with app.session() as session:
        outcome = ingest_raw(app, session, actor=SYSTEM, department=department, raw=raw)
        session.commit()
    return outcome
