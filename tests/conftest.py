"""The core's tests use the fixtures of the ``pytest11`` entry point
:mod:`helpdesk_core.testing.pytest_plugin` (``db_url`` on SQLite and PostgreSQL, ``hd_env``, ``app``,
``cli``, the real servers); the helpers are re-exported here for the test modules."""

from helpdesk_core.testing.apps import DATABASES, Cli, make_app, memory_app

__all__ = ["DATABASES", "Cli", "make_app", "memory_app"]
