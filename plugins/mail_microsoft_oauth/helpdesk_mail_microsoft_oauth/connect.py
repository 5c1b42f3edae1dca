"""``helpdesk microsoft set-client`` and ``helpdesk department connect-microsoft``, with their logic.

The app registration is stored in the ``settings`` table (``microsoft.client``; the secret
encrypted); a started delegated sign-in (MSAL's auth-code flow: state, PKCE verifier, nonce) in
``microsoft.pending.<department id>``, encrypted. ``connect-microsoft NAME`` prints the sign-in URL;
``connect-microsoft NAME --code '<redirect URL>'`` finishes it, refuses a token of another account
than the mailbox (naming both) and saves through ``set_mailbox``, which first logs in: nothing is
saved unless that works. ``--app-only`` connects a shared mailbox with the client-credentials grant.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import click
import msal

from helpdesk_core.cli.common import CliState, fail, handle_errors
from helpdesk_core.errors import ConfigurationError, MailboxError
from helpdesk_core.models import Setting
from helpdesk_core.services.departments import get_department, set_mailbox
from helpdesk_core.services.permissions import require_manage_settings

from .provider import MicrosoftProvider
from .tokens import DELEGATED_SCOPES, call, msal_app, token_error

CLIENT_KEY = "microsoft.client"
MAIL_OPTIONS = ("protocol", "host", "port", "folder", "smtp_host", "smtp_port", "smtp_security", "send_via",
                "ca_file", "timeout")


@click.group()
def microsoft() -> None:
    """Microsoft 365: the Entra ID app registration of this instance."""


@microsoft.command("set-client")
@click.option("--client-id", required=True, help="Application (client) ID of the app registration.")
@click.option("--tenant", default="organizations", show_default=True, help="Directory (tenant) ID or domain.")
@click.option("--client-secret-stdin", is_flag=True, help="Read the client secret from standard input.")
@click.option("--secret-expires", type=click.DateTime(["%Y-%m-%d"]), help="When the client secret expires.")
@click.option("--authority-host", help="Override https://login.microsoftonline.com (national clouds, tests).")
@click.option("--graph-url", help="Override https://graph.microsoft.com.")
@click.pass_obj
@handle_errors
def set_client(state: CliState, client_id: str, tenant: str, client_secret_stdin: bool, secret_expires: Any,
               authority_host: str | None, graph_url: str | None) -> None:
    """Store the app registration; the secret (optional for delegated mode) is encrypted at rest."""
    secret = sys.stdin.readline().strip() if client_secret_stdin else ""
    value = {"client_id": client_id.strip(), "tenant": tenant.strip(), "authority_host": authority_host,
             "graph_url": graph_url, "client_secret_expires": secret_expires and secret_expires.date().isoformat()}
    with state.session() as (app, session, actor):
        require_manage_settings(actor)
        value["secret"] = app.secrets.encrypt({"client_secret": secret}).decode()
        session.merge(Setting(key=CLIENT_KEY, value=value))
    click.echo(f"Microsoft app {client_id} (tenant {tenant}) saved.")


def mail_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--protocol``, ``--host``, ... built from the provider's declared fields (help, choices, types)."""
    for f in reversed([f for f in MicrosoftProvider.fields if f.name in MAIL_OPTIONS]):
        kind = click.Choice(f.choices) if f.choices else click.INT if f.type == "int" else None
        fn = click.option("--" + f.name.replace("_", "-"), f.name, type=kind, help=f.help or f.label)(fn)
    return fn


@click.command("connect-microsoft")
@click.argument("name")
@click.option("--email", help="The mailbox address (default: the department's sender address).")
@click.option("--app-only", is_flag=True, help="Client credentials (shared mailbox; admin consent + FullAccess).")
@click.option("--code", help="The whole redirect URL (or its query) of the sign-in started before.")
@click.option("--redirect-uri", default="http://localhost", show_default=True,
              help="A redirect URI of the app registration (platform 'Mobile and desktop applications').")
@mail_options
@click.pass_obj
@handle_errors
def connect_microsoft(state: CliState, name: str, email: str | None, app_only: bool, code: str | None,
                      redirect_uri: str, **options: Any) -> None:
    """Connect a department to its Microsoft 365 mailbox (delegated sign-in, or --app-only)."""
    with state.session() as (app, session, actor):
        dept = get_department(session, name)
        require_manage_settings(actor, dept)
        row = session.get(Setting, CLIENT_KEY)
        if row is None:
            raise ConfigurationError("No Microsoft app is set: run 'helpdesk microsoft set-client' first.")
        client = dict(row.value)
        secrets = {"client_secret": app.secrets.decrypt(client.pop("secret").encode())["client_secret"],
                   "token_cache": ""}
        address = (email or dept.sender_address or "").strip().lower()
        config = {**{k: v for k, v in client.items() if v}, **{k: v for k, v in options.items() if v is not None},
                  "email": address, "mode": "app_only" if app_only else "delegated"}
        pending = f"microsoft.pending.{dept.id}"
        cache = msal.SerializableTokenCache()
        if not app_only and code is None:
            with warnings.catch_warnings():  # MSAL recommends form_post, which a pasted redirect cannot use
                warnings.simplefilter("ignore", UserWarning)
                flow = msal_app(config, secrets["client_secret"], cache).initiate_auth_code_flow(
                    DELEGATED_SCOPES, redirect_uri=redirect_uri, login_hint=address, prompt="select_account")
            session.merge(Setting(key=pending, value={"flow": app.secrets.encrypt(flow).decode()}))
            click.echo(f"Open this URL and sign in as {address}:\n{flow['auth_uri']}\nThen run: helpdesk department "
                       f"connect-microsoft {name} --code '<the address the browser was sent to>'")
            return
        if not app_only:
            started = session.get(Setting, pending)
            if started is None:
                raise ConfigurationError(f"No sign-in was started for {name!r}: run connect-microsoft without --code.")
            session.delete(started)  # a code works once
            _sign_in(config, secrets, cache, app.secrets.decrypt(started.value["flow"].encode()), code, name)
        try:
            facts = set_mailbox(app, session, actor=actor, department=name, provider="microsoft", config=config,
                                secrets=secrets, validate=True)
        except MailboxError as exc:
            fail(f"[{exc.kind}] {exc.message} Nothing was saved.", 1)
    click.echo(f"Mailbox {address} connected to {name!r} ({config['mode']}); {facts.get('waiting')} messages waiting.")


def _sign_in(config: dict[str, Any], secrets: dict[str, str], cache: msal.SerializableTokenCache,
             flow: dict[str, Any], code: str, name: str) -> None:
    """Redeem the redirect of ``flow``; refuse another account than the mailbox; keep MSAL's cache."""
    query = dict(parse_qsl(urlsplit(code).query or code.split("?")[-1]))
    if query.get("state") != flow.get("state"):
        raise ConfigurationError("The redirect belongs to another sign-in (state mismatch): use the address the "
                                 f"browser reached after the latest 'connect-microsoft {name}'.")
    client_app = msal_app(config, secrets["client_secret"], cache)
    result = call("Exchanging the code", lambda: client_app.acquire_token_by_auth_code_flow(flow, query))
    if "access_token" not in result:
        raise token_error(result, config)
    owner, address = str(result.get("id_token_claims", {}).get("preferred_username", "")).lower(), config["email"]
    if owner != address:
        raise ConfigurationError(f"The Microsoft account that consented is {owner or 'unknown'}, but department "
                                 f"{name!r} uses {address}: sign in as {address} and run connect-microsoft again "
                                 "(or pass --email). Nothing was saved.")
    secrets["token_cache"] = cache.serialize()


def register(cli: click.Group) -> None:
    """Add ``helpdesk microsoft`` and ``helpdesk department connect-microsoft``."""
    cli.add_command(microsoft)
    department = cli.commands.get("department")
    if isinstance(department, click.Group):
        department.add_command(connect_microsoft)
