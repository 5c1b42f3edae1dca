"""``helpdesk google …`` and ``helpdesk department connect-google``; logic lives in :mod:`.service`.

Added to the core CLI by the ``helpdesk_register_commands`` hook (see ``__init__.py``).
"""

from __future__ import annotations

import sys
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from helpdesk_core.cli.common import CliState, echo_json, fail, handle_errors
from helpdesk_core.errors import MailboxError

from . import service as svc
from .loopback import LoopbackReceiver


def endpoint_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--auth-url, --token-url, --tokeninfo-url, --revoke-url (default: Google's)."""
    for name in reversed(svc.ENDPOINT_OPTIONS):
        flag = "--" + name.replace("_", "-")
        fn = click.option(flag, name, default=None, metavar="URL",
                          help=f"Override Google's {name.split('_')[0]} endpoint.")(fn)
    return fn


@click.group()
def google() -> None:
    """Google Workspace / Gmail: the OAuth client and service account of this instance."""


@google.command("set-client")
@click.option("--client-id", required=True, help="OAuth client ID (type Desktop app) from the Google Cloud console.")
@click.option("--client-secret-stdin", is_flag=True, help="Read the client secret from standard input.")
@endpoint_options
@click.pass_obj
@handle_errors
def set_client(state: CliState, client_id: str, client_secret_stdin: bool, **endpoints: str | None) -> None:
    """Store the instance's OAuth client; the secret is encrypted at rest."""
    if not client_secret_stdin:
        fail("Pass the client secret on standard input with --client-secret-stdin "
             "(it must not appear in the process list or shell history).", 2)
    secret = sys.stdin.readline().rstrip("\r\n")
    with state.session() as (app, session, actor):
        svc.set_client(app, session, actor=actor, client_id=client_id, client_secret=secret, endpoints=endpoints)
    click.echo(f"Google OAuth client {client_id} saved.")


@google.command("set-service-account")
@click.option("--key-file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The service account's JSON key (domain-wide delegation enabled).")
@click.option("--token-url", default=None, metavar="URL", help="Override the key file's token_uri.")
@click.pass_obj
@handle_errors
def set_service_account(state: CliState, key_file: Path, token_url: str | None) -> None:
    """Store a service account key (encrypted) for connecting Workspace mailboxes without consent."""
    with state.session() as (app, session, actor):
        email = svc.set_service_account(app, session, actor=actor, key_json=key_file.read_text(),
                                        token_url=token_url)
    click.echo(f"Service account {email} saved; you may delete {key_file} now.")


@google.command("show")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@handle_errors
def show(state: CliState, as_json: bool) -> None:
    """Show the OAuth client ID, endpoints and service account (never secrets)."""
    with state.session(commit=False) as (_app, session, _actor):
        info = svc.client_info(session)
    if as_json:
        echo_json(info)
        return
    click.echo(f"client id: {info['client_id'] or '- (run helpdesk google set-client)'}")
    click.echo(f"service account: {info['service_account'] or '-'}")
    for name, url in info["endpoints"].items():
        click.echo(f"{name.replace('_', ' ')}: {url}")


@click.command("connect-google")
@click.argument("name")
@click.option("--email", help="The mailbox address (default: the department's sender address).")
@click.option("--code", help="The code (or whole redirect URL) from a sign-in started earlier.")
@click.option("--service-account", is_flag=True, help="Use the service account (domain-wide delegation).")
@click.option("--no-browser", is_flag=True, help="Only print the URL; do not open a browser.")
@click.option("--listen-port", type=int, default=0, show_default=True,
              help="Loopback port for the redirect (0 = any free port).")
@click.option("--wait", "wait_seconds", type=int, default=300, show_default=True,
              help="Seconds to wait for the redirect.")
@click.option("--imap-host")
@click.option("--imap-port", type=int)
@click.option("--imap-security", type=click.Choice(["ssl", "starttls"]))
@click.option("--folder")
@click.option("--smtp-host")
@click.option("--smtp-port", type=int)
@click.option("--smtp-security", type=click.Choice(["ssl", "starttls"]))
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False), help="PEM of a CA to trust (IMAP/SMTP).")
@click.option("--timeout", type=int, help="Network timeout in seconds.")
@endpoint_options
@click.pass_obj
@handle_errors
def connect_google(state: CliState, name: str, email: str | None, code: str | None, service_account: bool,
                   no_browser: bool, listen_port: int, wait_seconds: int, **options: Any) -> None:
    """Connect a department to its Gmail / Workspace mailbox with OAuth 2.0.

    Prints the consent URL and receives the redirect on http://127.0.0.1:PORT/; sign in as the
    department's address. The token must belong to that address and log into IMAP, else nothing is saved.
    """
    mail = {k: v for k, v in options.items() if k in svc.MAIL_OPTIONS}
    endpoints = {k: v for k, v in options.items() if k in svc.ENDPOINT_OPTIONS}
    try:
        if service_account:
            with state.session() as (app, session, actor):
                facts = svc.connect_service_account(app, session, actor=actor, department=name, email=email,
                                                    mail=mail, endpoints=endpoints)
        elif code:
            pasted, returned_state = svc.parse_pasted_code(code)
            with state.session() as (app, session, actor):
                facts = svc.finish_consent(app, session, actor=actor, department=name, code=pasted,
                                           state=returned_state, mail=mail, endpoints=endpoints)
        else:
            facts = _consent_in_browser(state, name, email, no_browser, listen_port, wait_seconds, mail, endpoints)
    except MailboxError as exc:
        fail(f"[{exc.kind}] {exc.message} Nothing was saved.", 1)
    waiting = facts.get("waiting")
    extra = f" ({waiting} messages waiting)" if waiting is not None else ""
    click.echo(f"Mailbox {facts['email']} connected to {name!r} and checked{extra}.")


def _consent_in_browser(state: CliState, name: str, email: str | None, no_browser: bool, listen_port: int,
                        wait_seconds: int, mail: dict[str, Any], endpoints: dict[str, Any]) -> dict[str, Any]:
    with LoopbackReceiver(listen_port) as receiver:
        with state.session() as (app, session, actor):
            consent = svc.start_consent(app, session, actor=actor, department=name, email=email,
                                        redirect_uri=receiver.redirect_uri, endpoints=endpoints)
        click.echo("Open this URL and sign in as the department's address to allow access:")
        click.echo(consent.url)
        click.echo(f"Waiting for the redirect on {receiver.redirect_uri} (Ctrl-C to stop; then use --code).",
                   err=True)
        if not no_browser:
            webbrowser.open(consent.url)
        code = receiver.wait(consent.state, timeout=wait_seconds)
    with state.session() as (app, session, actor):
        return svc.finish_consent(app, session, actor=actor, department=name, code=code, state=consent.state,
                                  mail=mail, endpoints=endpoints)


def register(cli: click.Group) -> None:
    """Add ``helpdesk google`` and ``helpdesk department connect-google``."""
    cli.add_command(google)
    department = cli.commands.get("department")
    if isinstance(department, click.Group):
        department.add_command(connect_google)
