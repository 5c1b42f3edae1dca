"""``helpdesk user …``: users and roles."""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy.orm import Session

from helpdesk_core.app import Helpdesk
from helpdesk_core.cli.common import CliState, action, handle_errors, listing
from helpdesk_core.services.account_links import deliver_link_mail, invite_user
from helpdesk_core.services.auth import set_password
from helpdesk_core.services.permissions import Actor
from helpdesk_core.services.users import add_user, list_users


@click.group()
def user() -> None:
    """Users and roles."""


@user.command("add")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(["admin", "agent", "requester"]))
@click.option("--department", default=None, help="Make the user staff (or admin) of this department.")
@click.option("--name", default="")
@action
def user_add(_app: Helpdesk, session: Session, actor: Actor, email: str, role: str, department: str | None,
             name: str) -> str:
    """Add a user or change their role."""
    u = add_user(session, actor=actor, email=email, role=role, name=name, department=department)
    return f"User {u.email} is {u.role}" + (f" of {department!r}." if department else ".")


@user.command("list")
@listing(lambda u: f"{u['email']}  {u['role']}  {u['name']}")
def user_list(_app: Helpdesk, session: Session, actor: Actor) -> list[dict[str, Any]]:
    """List users."""
    return list_users(session, actor=actor)


@user.command("set-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (one line).")
@click.pass_obj
@handle_errors
def user_set_password(state: CliState, email: str, password_stdin: bool) -> None:
    """Set a user's web sign-in password (from standard input, or prompted for hidden)."""
    if password_stdin:
        password = click.get_text_stream("stdin").readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with state.session() as (_app, session, actor):
        u = set_password(session, actor=actor, email=email, password=password)
        click.echo(f"Password of {u.email} set: they can sign in to the web app.")


@user.command("invite")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(["admin", "agent", "requester"]))
@click.option("--department", required=True, help="The department they join (its address sends the mail).")
@click.option("--name", default="")
@click.option("--public-url", envvar="HELPDESK_PUBLIC_URL", required=True, metavar="URL",
              help="The web app's address for the link, e.g. https://helpdesk.district.org [env: HELPDESK_PUBLIC_URL].")
@click.pass_obj
@handle_errors
def user_invite(state: CliState, email: str, role: str, department: str, name: str, public_url: str) -> None:
    """Add a user (as 'user add') and mail them a link to choose their password (7 days, once)."""
    with state.session() as (app, session, actor):
        invitation = invite_user(app, session, actor=actor, email=email, role=role, department=department,
                                 name=name, base_url=public_url)
        address, outbox_id = invitation.user.email, invitation.outbox_id
    if outbox_id is None:
        click.echo(f"User {address} is {role} of {department!r}; they have a password already, so nothing was mailed.")
        return
    status = deliver_link_mail(app, outbox_id=outbox_id)
    click.echo(f"User {address} is {role} of {department!r}; invitation {status} "
               f"(outbox message {outbox_id}; see 'helpdesk outbox list').")
