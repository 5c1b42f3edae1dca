"""Fixtures of the Google plugin's tests. The core's fixtures (``db_url`` on SQLite and
PostgreSQL, ``cli``, the real servers) come from :mod:`helpdesk_core.testing.pytest_plugin`."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpdesk_core.testing.apps import Cli, make_app
from helpdesk_core.testing.apps import environment as _environment

__all__ = ["Cli", "environment", "make_app"]


def environment(tmp_path: Path, url: str) -> dict[str, str]:
    return _environment(tmp_path / "home", url)


@pytest.fixture
def sqlite_cli(tmp_path: Path, sqlite_url: str) -> Cli:
    """An initialised installation on SQLite only (for the slower or narrower cases)."""
    runner = Cli(environment(tmp_path, sqlite_url))
    runner("init")
    return runner
