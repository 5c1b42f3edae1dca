"""Alembic environment: the engine is handed in by helpdesk_core.db.upgrade()."""

from __future__ import annotations

from alembic import context

from helpdesk_core.models import Base
from helpdesk_core.models.search import include_name

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        from helpdesk_core.config import Config
        from helpdesk_core.db import make_engine

        engine = make_engine(Config.from_env().database_url)
    with engine.begin() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite", include_name=include_name)
        context.run_migrations()


run_migrations_online()
