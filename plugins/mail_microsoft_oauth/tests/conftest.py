"""Fixtures of the Microsoft plugin's tests: the local identity platform + Graph stand-in over HTTPS."""

from __future__ import annotations

from typing import Any

import pytest

from helpdesk_core.testing.apps import Cli, environment
from helpdesk_core.testing.servers.oauth import OAuthServer


@pytest.fixture
def identity(oauth_server: OAuthServer, dovecot: Any) -> OAuthServer:
    """``oauth_server`` with its HTTPS listener (Dovecot's certificate): MSAL's authority and Graph."""
    return oauth_server.start_tls(dovecot.cert_file, dovecot.key_file)




@pytest.fixture
def sqlite_cli(tmp_path: Any, sqlite_url: str) -> Cli:
    """An initialised installation on SQLite only (for the narrower cases)."""
    runner = Cli(environment(tmp_path / "home", sqlite_url))
    runner("init")
    return runner
