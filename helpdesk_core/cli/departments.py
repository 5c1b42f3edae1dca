"""``helpdesk department …``: departments and their mailboxes."""

from __future__ import annotations

import sys
from typing import Any

import click

from helpdesk_core.cli.common import CliState, emit, fail, handle_errors
from helpdesk_core.errors import MailboxError
from helpdesk_core.services import departments as svc


@click.group()
def department() -> None:
    """Departments and their mailboxes."""


@department.command("add")
@click.argument("name")
@click.option("--sender", required=True, help="The department's address replies are sent From.")
@click.option("--interval", default=5, show_default=True, type=int, help="Minutes between import cycles.")
@click.pass_obj
@handle_errors
def department_add(state: CliState, name: str, sender: str, interval: int) -> None:
    """Create a department (it works without a mailbox too)."""
    with state.session() as (_app, session, actor):
        dept = svc.add_department(session, actor=actor, name=name, sender=sender, interval_minutes=interval)
        click.echo(f"Department {dept.name!r} created (sender {dept.sender_address}).")


def _department_line(d: dict[str, Any]) -> str:
    mb = d["mailbox"]["identity"] if d["mailbox"] else "no mailbox"
    return f"{d['name']}  <{d['sender']}>  every {d['interval_minutes']} min  {mb}"


@department.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@handle_errors
def department_list(state: CliState, as_json: bool) -> None:
    """List departments."""
    with state.session(commit=False) as (_app, session, actor):
        data = [svc.department_summary(d) for d in svc.list_departments(session, actor=actor)]
    emit(data, as_json, _department_line)


@department.command("set-mailbox")
@click.argument("name")
@click.option("--provider", default="generic", show_default=True)
@click.option("--protocol", type=click.Choice(["imap", "pop3", "maildir"]))
@click.option("--host")
@click.option("--port", type=int)
@click.option("--security", type=click.Choice(["ssl", "starttls", "none"]),
              help="ssl (implicit TLS), starttls, or none (plaintext; must be explicit).")
@click.option("--email", "email", help="The mailbox's address.")
@click.option("--username", help="Login (default: --email).")
@click.option("--folder", help="IMAP folder (default INBOX).")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False), help="PEM of a CA to trust.")
@click.option("--path", type=click.Path(), help="Maildir folder (protocol maildir).")
@click.option("--timeout", type=int, help="Network timeout in seconds.")
@click.option("--set", "extra", multiple=True, metavar="KEY=VALUE", help="Any other provider setting.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--smtp-host", help="Outgoing mail (SMTP) server for replies; without it nothing is sent.")
@click.option("--smtp-port", type=int, help="Default: 465 (ssl), 587 (starttls), 25 (none).")
@click.option("--smtp-security", type=click.Choice(["ssl", "starttls", "none"]),
              help="ssl (implicit TLS), starttls, or none (plaintext; must be explicit).")
@click.option("--smtp-username", help="SMTP login (default: the mailbox login).")
@click.option("--smtp-password-stdin", is_flag=True,
              help="Read the SMTP password from standard input (default: the mailbox password); "
                   "with --password-stdin too, the second line.")
@click.option("--no-validate", is_flag=True, hidden=True)
@click.pass_obj
@handle_errors
def department_set_mailbox(state: CliState, name: str, provider: str, password_stdin: bool,
                           smtp_password_stdin: bool, extra: tuple[str, ...], no_validate: bool,
                           **options: Any) -> None:
    """Configure the department's mailbox (and outgoing mail server). Connectivity is checked first;
    nothing is saved on failure."""
    config = {k: v for k, v in options.items() if v is not None}
    secrets: dict[str, str] = {}
    for item in extra:
        key, sep, value = item.partition("=")
        if not sep:
            fail(f"--set takes KEY=VALUE (got {item!r}).", 2)
        if key.startswith("smtp_password") or key.endswith("secret"):
            secrets[key] = value
        else:
            config[key.replace("-", "_")] = value
    if password_stdin:
        secrets["password"] = sys.stdin.readline().rstrip("\r\n")
    if smtp_password_stdin:
        secrets["smtp_password"] = sys.stdin.readline().rstrip("\r\n")
    with state.session() as (app, session, actor):
        try:
            facts = svc.set_mailbox(app, session, actor=actor, department=name, provider=provider,
                                    config=config, secrets=secrets, validate=not no_validate)
        except MailboxError as exc:
            fail(f"[{exc.kind}] {exc.message} Nothing was saved.", 1)
        waiting = facts.get("waiting")
        extra_info = f" ({waiting} messages waiting)" if waiting is not None else ""
        if facts.get("smtp"):
            extra_info += f"; outgoing mail via {facts['smtp']} checked"
        click.echo(f"Mailbox of {name!r} checked and saved{extra_info}.")


@department.command("set")
@click.argument("name")
@click.option("--acknowledge/--no-acknowledge", default=None,
              help="Send an automatic acknowledgement for each new ticket opened by a person.")
@click.option("--reopen/--new-ticket-on-closed", "reopen_closed", default=None,
              help="A reply to a closed ticket reopens it (default), or opens a new ticket.")
@click.option("--templates-dir", type=click.Path(file_okay=False), default=None,
              help="Folder overriding the mail templates (reply/, acknowledgement/); '' for the defaults.")
@click.pass_obj
@handle_errors
def department_set(state: CliState, name: str, acknowledge: bool | None, reopen_closed: bool | None,
                   templates_dir: str | None) -> None:
    """Change department options."""
    with state.session() as (_app, session, actor):
        options = svc.set_department_options(session, actor=actor, department=name, acknowledge=acknowledge,
                                             reopen_closed=reopen_closed, templates_dir=templates_dir)
    click.echo(f"{name}: " + ", ".join(f"{k}={v}" for k, v in sorted(options.items())))


@department.command("clear-mailbox")
@click.argument("name")
@click.pass_obj
@handle_errors
def department_clear_mailbox(state: CliState, name: str) -> None:
    """Remove the department's mailbox; it keeps working for internal tickets."""
    with state.session() as (_app, session, actor):
        removed = svc.clear_mailbox(session, actor=actor, department=name)
    click.echo(f"Mailbox of {name!r} removed." if removed else f"{name!r} had no mailbox.")


def _status_line(item: tuple[str, Any]) -> str:
    key, value = item
    if key == "last_cycle" and value:
        value = ", ".join(f"{k}={v}" for k, v in value.items())
    return f"{key.replace('_', ' ')}: {value if value is not None else '-'}"


@department.command("status")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@handle_errors
def department_status(state: CliState, name: str, as_json: bool) -> None:
    """Health of the department's import."""
    with state.session(commit=False) as (_app, session, actor):
        data = svc.department_status(session, actor=actor, department=name)
    emit(data, as_json, _status_line, rows=data.items())
