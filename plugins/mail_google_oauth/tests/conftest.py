"""Fixtures of the Google plugin's tests: the core's (database on SQLite and PostgreSQL, CLI
runner) rebuilt here, because ``tests/conftest.py`` only covers the core's own folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from helpdesk_core.app import Helpdesk
from helpdesk_core.config import Config
from helpdesk_core.crypto import generate_key

DATABASES = [d.strip() for d in os.environ.get("HELPDESK_TEST_DATABASES", "sqlite,postgresql").split(",") if d.strip()]


@pytest.fixture(params=DATABASES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'helpdesk.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'helpdesk.db'}"


def environment(tmp_path: Path, url: str) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {"HELPDESK_HOME": str(home), "HELPDESK_DATABASE_URL": url, "HELPDESK_SECRET_KEY": generate_key()}


def make_app(env: dict[str, str]) -> Helpdesk:
    config = Config(home=Path(env["HELPDESK_HOME"]), database_url=env["HELPDESK_DATABASE_URL"],
                    attachments_dir=Path(env["HELPDESK_HOME"]) / "attachments",
                    secret_key=env["HELPDESK_SECRET_KEY"])
    return Helpdesk.from_config(config)


@dataclass
class Cli:
    """Runs ``helpdesk`` in-process with the test installation's environment."""

    env: dict[str, str]
    runner: CliRunner = field(default_factory=CliRunner)

    def __call__(self, *args: str, input: str | None = None, ok: bool = True) -> Result:
        from helpdesk_core.cli import main

        result = self.runner.invoke(main, list(args), input=input, env=self.env, catch_exceptions=False)
        if ok and result.exit_code != 0:
            raise AssertionError(f"helpdesk {' '.join(args)} exited {result.exit_code}:\n{result.output}")
        return result

    def json(self, *args: str) -> object:
        import json

        return json.loads(self(*args).stdout)

    def app(self) -> Helpdesk:
        return make_app(self.env)


@pytest.fixture
def cli(tmp_path: Path, db_url: str) -> Iterator[Cli]:
    """An initialised installation on SQLite and on PostgreSQL."""
    runner = Cli(environment(tmp_path, db_url))
    runner("init")
    yield runner


@pytest.fixture
def sqlite_cli(tmp_path: Path, sqlite_url: str) -> Cli:
    """An initialised installation on SQLite only (for the slower or narrower cases)."""
    runner = Cli(environment(tmp_path, sqlite_url))
    runner("init")
    return runner
