"""``helpdesk department …``, ``helpdesk settings …`` and ``helpdesk user …``."""

from __future__ import annotations

import sys
from typing import Any

import click

from helpdesk_core.cli.main import CliState, echo_json, fail, handle_errors
from helpdesk_core.errors import MailboxError
from helpdesk_core.services import departments as svc
from helpdesk_core.services.users import add_user, list_users
from helpdesk_core.settings import SETTINGS, GeneralSettings, set_setting


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


@department.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@handle_errors
def department_list(state: CliState, as_json: bool) -> None:
    """List departments."""
    with state.session(commit=False) as (_app, session, _actor):
        data = [svc.department_summary(d) for d in svc.list_departments(session)]
    if as_json:
        echo_json(data)
        return
    for d in data:
        mb = d["mailbox"]["identity"] if d["mailbox"] else "no mailbox"
        click.echo(f"{d['name']}  <{d['sender']}>  every {d['interval_minutes']} min  {mb}")


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
        done = "saved without checking the connection" if no_validate else "checked and saved"
        click.echo(f"Mailbox of {name!r} {done}{extra_info}.")


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


@department.command("status")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@handle_errors
def department_status(state: CliState, name: str, as_json: bool) -> None:
    """Health of the department's import."""
    with state.session(commit=False) as (_app, session, _actor):
        data = svc.department_status(session, department=name)
    if as_json:
        echo_json(data)
        return
    for key, value in data.items():
        if key == "last_cycle" and value:
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        click.echo(f"{key.replace('_', ' ')}: {value if value is not None else '-'}")


@click.group()
def settings() -> None:
    """General settings (attachments, message size, ticket reference)."""


@settings.command("set")
@click.argument("key", type=click.Choice(sorted(SETTINGS)))
@click.argument("value")
@click.pass_obj
@handle_errors
def settings_set(state: CliState, key: str, value: str) -> None:
    """Change one setting."""
    from helpdesk_core.services.permissions import require_manage_settings

    with state.session() as (app, session, actor):
        require_manage_settings(actor)
        stored = set_setting(session, key, value, hooks=app.hooks)
    click.echo(f"{key} = {stored}")


@settings.command("show")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@handle_errors
def settings_show(state: CliState, as_json: bool) -> None:
    """Show all settings with their values."""
    with state.session(commit=False) as (_app, session, _actor):
        values = GeneralSettings.load(session).as_dict()
    if as_json:
        echo_json(values)
        return
    for key, value in sorted(values.items()):
        shown = ",".join(value) if isinstance(value, list) else value
        help_text = SETTINGS[key].help if key in SETTINGS else ""
        click.echo(f"{key} = {shown}    # {help_text}")


@click.group()
def user() -> None:
    """Users and roles."""


@user.command("add")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(["admin", "agent", "requester"]))
@click.option("--department", default=None, help="Make the user staff (or admin) of this department.")
@click.option("--name", default="")
@click.pass_obj
@handle_errors
def user_add(state: CliState, email: str, role: str, department: str | None, name: str) -> None:
    """Add a user or change their role."""
    with state.session() as (_app, session, actor):
        u = add_user(session, actor=actor, email=email, role=role, name=name, department=department)
        click.echo(f"User {u.email} is {u.role}" + (f" of {department!r}." if department else "."))


@user.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@handle_errors
def user_list(state: CliState, as_json: bool) -> None:
    """List users."""
    with state.session(commit=False) as (_app, session, _actor):
        data = [{"email": u.email, "name": u.name, "role": str(u.role),
                 "departments": sorted(m.department_id for m in u.memberships)} for u in list_users(session)]
    if as_json:
        echo_json(data)
        return
    for u in data:
        click.echo(f"{u['email']}  {u['role']}  {u['name']}")


def register(main: click.Group) -> None:
    main.add_command(department)
    main.add_command(settings)
    main.add_command(user)
