"""Fixtures of the core's tests: a database on SQLite and on PostgreSQL, an app, a CLI runner."""

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
    home = tmp_path / "home"
    home.mkdir()
    return {"HELPDESK_HOME": str(home), "HELPDESK_DATABASE_URL": db_url,
            "HELPDESK_SECRET_KEY": generate_key()}


def make_app(env: dict[str, str], extra_plugins: tuple[object, ...] = ()) -> Helpdesk:
    config = Config(home=Path(env["HELPDESK_HOME"]), database_url=env["HELPDESK_DATABASE_URL"],
                    attachments_dir=Path(env["HELPDESK_HOME"]) / "attachments",
                    secret_key=env["HELPDESK_SECRET_KEY"])
    return Helpdesk.from_config(config, extra_plugins=extra_plugins)


@pytest.fixture
def app(hd_env: dict[str, str]) -> Iterator[Helpdesk]:
    """An initialised application on the test database."""
    application = make_app(hd_env)
    application.upgrade()
    yield application
    application.engine.dispose()


@dataclass
class Cli:
    """Runs ``helpdesk`` in-process with the test installation's environment."""

    env: dict[str, str]
    runner: CliRunner = field(default_factory=CliRunner)

    def __call__(self, *args: str, input: str | bytes | None = None, ok: bool = True) -> Result:
        result = self.runner.invoke(_main(), list(args), input=input, env=self.env, catch_exceptions=False)
        if ok and result.exit_code != 0:
            raise AssertionError(f"helpdesk {' '.join(args)} exited {result.exit_code}:\n"
                                 f"{result.output}\n{result.stderr if hasattr(result, 'stderr') else ''}")
        return result

    def json(self, *args: str) -> object:
        import json

        return json.loads(self(*args).stdout)


def _main():  # imported lazily so a broken CLI module fails the test, not the collection
    from helpdesk_core.cli import main

    return main


@pytest.fixture
def cli(hd_env: dict[str, str]) -> Cli:
    runner = Cli(hd_env)
    runner("init")
    return runner
