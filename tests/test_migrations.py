"""Migrations and models agree, on SQLite and PostgreSQL, and downgrade cleanly."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from helpdesk_core.db import alembic_config, make_engine, upgrade
from helpdesk_core.models import Base
from helpdesk_core.models.search import include_name


def test_migrations_match_the_models(db_url):
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"include_name": include_name}),
                                Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"
    command.downgrade(alembic_config(engine), "base")
    upgrade(engine)
    engine.dispose()
