"""Repo-root pytest configuration: the Hypothesis profiles, and fresh test databases migrated
by copy (:func:`_migrate_empty_databases_by_copy`). (The fixtures come from the
``pytest11`` entry point of helpdesk-core, :mod:`helpdesk_core.testing.pytest_plugin`.)

Profiles: "ci" (50 examples; loaded when CI=true, so CI stays well inside its time budget) and
"dev" (300 examples; the default elsewhere, about 1.5 minutes more than "ci"). HYPOTHESIS_PROFILE
picks one explicitly (e.g. HYPOTHESIS_PROFILE=ci make test for a quick local run).
"""

import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=50,
    deadline=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=300, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])

if os.environ.get("HYPOTHESIS_PROFILE"):
    settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])
elif os.environ.get("CI", "").strip().lower() == "true":
    settings.load_profile("ci")
else:
    settings.load_profile("dev")


# --------------------------------------------------------------------------- migrated copies

_PG_TEMPLATE = "helpdesk_migrated_template"


@pytest.fixture(scope="session", autouse=True)
def _migrate_empty_databases_by_copy() -> Iterator[None]:
    """Bring an *empty* database to ``head`` by copying a database that Alembic migrated earlier
    in this session, instead of running the thirteen migrations again.

    The suite brings hundreds of fresh databases to ``head`` (every ``app``, ``cli`` and
    ``installation``), at 0.2–0.35 s each; a copy costs about 10 ms on SQLite (the backup API,
    :func:`helpdesk_core.testing.apps.copy_migrated_sqlite`, as ``memory_app`` does)
    and 0.1 s on PostgreSQL (``CREATE DATABASE … TEMPLATE``). The copy is the result of a real
    ``alembic upgrade head`` of the same code, made once per session (and once per PostgreSQL
    cluster). A database that is not empty, an upgrade to another revision (the migration tests),
    and anything the copy cannot do (a server that went away, a role that may not create
    databases) go through Alembic as before; so do the ``helpdesk`` commands a test starts as a
    process."""
    from sqlalchemy import inspect

    from helpdesk_core import app as app_module
    from helpdesk_core.db import make_engine
    from helpdesk_core.testing.apps import copy_migrated_sqlite

    real = app_module.upgrade
    pg_templates: set[tuple[Any, ...]] = set()

    def copy_postgres(engine: Any) -> None:
        import psycopg

        url = engine.url
        name = url.database
        admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
        key = (url.host, url.port, url.username)
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            if key not in pg_templates:
                conn.execute(f'DROP DATABASE IF EXISTS "{_PG_TEMPLATE}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{_PG_TEMPLATE}"')
                template = make_engine(url.set(database=_PG_TEMPLATE).render_as_string(hide_password=False))
                try:
                    real(template)
                finally:
                    template.dispose()
                pg_templates.add(key)
            engine.dispose()
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            try:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{_PG_TEMPLATE}"')
            except psycopg.Error:
                conn.execute(f'CREATE DATABASE "{name}"')
                raise

    def upgrade(engine: Any, revision: str = "head") -> None:
        copy = {"sqlite": copy_migrated_sqlite, "postgresql": copy_postgres}.get(engine.dialect.name)
        if copy is None or revision != "head" or engine.url.database in (None, "", ":memory:"):
            return real(engine, revision)
        try:
            if inspect(engine).get_table_names():
                return real(engine, revision)
            copy(engine)
        except Exception:  # noqa: BLE001 — the real upgrade reports (or does) it properly
            return real(engine, revision)

    app_module.upgrade = upgrade
    try:
        yield
    finally:
        app_module.upgrade = real
