"""``helpdesk log`` (what the importer skipped, held or failed, and why) and ``helpdesk held``."""

from __future__ import annotations

import click

from helpdesk_core.cli.main import CliState, echo_json, handle_errors


@click.command("log")
@click.option("--department", default=None, help="Only this department.")
@click.option("--limit", default=50, show_default=True, help="How many entries.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
@handle_errors
def log_(state: CliState, department: str | None, limit: int, as_json: bool) -> None:
    """Recent mail that did not become a ticket message (skipped, held, failed), newest first."""
    from helpdesk_core.services.held import import_log

    with state.session(commit=False) as (_app, session, _actor):
        entries = import_log(session, department=department, limit=limit)
    if as_json:
        echo_json(entries)
        return
    for e in entries:
        click.echo(f"{e['created_at'][:19]}  {e['department']}  {e['outcome']:<7}  {e['key'][:60]}  {e['reason']}")
    if not entries:
        click.echo("Nothing skipped, held or failed.")


@click.group()
def held() -> None:
    """Mail held by the rate limit (mail.rate_limit_per_hour)."""


@held.command("list")
@click.option("--all", "include_released", is_flag=True, help="Include released ones.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
@handle_errors
def held_list(state: CliState, include_released: bool, as_json: bool) -> None:
    """List held mail."""
    from helpdesk_core.services.held import list_held

    with state.session(commit=False) as (_app, session, _actor):
        rows = list_held(session, include_released=include_released)
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['id']}  {r['department']}  {r['sender']}  {r['subject'][:60]!r}  {r['status']}")
    if not rows:
        click.echo("No held mail.")


@held.command("release")
@click.argument("held_id", type=int)
@click.pass_obj
@handle_errors
def held_release(state: CliState, held_id: int) -> None:
    """Import held mail now, bypassing the rate limit."""
    from helpdesk_core.services.held import release_held

    with state.session() as (app, session, actor):
        outcome = release_held(app, session, actor=actor, held_id=held_id)
    click.echo(f"{held_id}: {outcome.status}" + (f" ticket {outcome.ticket_id}" if outcome.ticket_id else "")
               + (f": {outcome.reason}" if outcome.reason else ""))


def register(main: click.Group) -> None:
    main.add_command(log_)
    main.add_command(held)
