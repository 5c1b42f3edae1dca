"""Fixtures and helpers of the Microsoft plugin's tests: the local identity platform + Graph stand-in
over HTTPS, setting the app, signing in through the stand-in.

No ``conftest.py`` here: the core's tests import ``conftest`` by module name, and a plugin's
conftest would shadow theirs. Test modules import the fixtures from this module instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from helpdesk_core.testing.apps import Cli, environment
from helpdesk_core.testing.servers.oauth import OAuthServer


@pytest.fixture
def identity(oauth_server: OAuthServer, dovecot: Any) -> OAuthServer:
    """``oauth_server`` with its HTTPS listener (Dovecot's certificate): MSAL's authority and Graph."""
    return oauth_server.start_tls(dovecot.cert_file, dovecot.key_file)


@pytest.fixture
def sqlite_cli(tmp_path: Path, sqlite_url: str) -> Cli:
    """An initialised installation on SQLite only (for the narrower cases)."""
    runner = Cli(environment(tmp_path / "home", sqlite_url))
    runner("init")
    return runner


def set_client(cli: Any, identity: OAuthServer, *, app_only: bool = False,
               expires: str | None = None) -> tuple[str, str]:
    client_id, secret = identity.add_app() if app_only else identity.add_client()
    extra = ["--secret-expires", expires] if expires else []
    cli("microsoft", "set-client", "--client-id", client_id, "--tenant", "contoso.test", "--client-secret-stdin",
        "--authority-host", identity.https_url, "--graph-url", identity.https_url, *extra, input=secret + "\n")
    return client_id, secret


def mail_options(dovecot: Any, smtp_sink: Any | None = None, *, pop3: bool = False) -> list[str]:
    port = dovecot.pop3s_port if pop3 else dovecot.imaps_port
    options = ["--protocol", "pop3" if pop3 else "imap", "--host", "127.0.0.1", "--port", str(port),
               "--ca-file", str(dovecot.ca_file)]
    if smtp_sink is not None:
        options += ["--smtp-host", "127.0.0.1", "--smtp-port", str(smtp_sink.port_starttls)]
    return options


def sign_in(cli: Any, dovecot: Any, name: str, *options: str, ok: bool = True) -> Any:
    """connect-microsoft NAME, the browser (approves at once, redirect not followed), then --code."""
    started = cli("department", "connect-microsoft", name, *options)
    url = next(line for line in started.output.splitlines() if line.startswith("https://"))
    answer = requests.get(url, allow_redirects=False, verify=str(dovecot.ca_file), timeout=10)
    assert answer.status_code == 302, answer.text
    return cli("department", "connect-microsoft", name, "--code", answer.headers["Location"], *options, ok=ok)
