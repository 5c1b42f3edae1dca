"""Helpers of the Microsoft plugin's tests: set the app, sign in through the stand-in."""

from __future__ import annotations

from typing import Any

import requests

from helpdesk_core.testing.servers.oauth import OAuthServer


def set_client(cli: Any, identity: OAuthServer, *, app_only: bool = False, expires: str | None = None) -> tuple[str, str]:
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
