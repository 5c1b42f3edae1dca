"""``helpdesk held …``: mail held by the rate limit."""

from __future__ import annotations

import click

from helpdesk_core.cli.common import CliState, emit, handle_errors
from helpdesk_core.services.held import list_held, release_held


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
    with state.session(commit=False) as (_app, session, actor):
        rows = list_held(session, actor=actor, include_released=include_released)
    emit(rows, as_json, lambda r: f"{r['id']}  {r['department']}  {r['sender']}  {r['subject'][:60]!r}  {r['status']}",
         "No held mail.")


@held.command("release")
@click.argument("held_id", type=int)
@click.pass_obj
@handle_errors
def held_release(state: CliState, held_id: int) -> None:
    """Import held mail now, bypassing the rate limit."""
    with state.session() as (app, session, actor):
        outcome = release_held(app, session, actor=actor, held_id=held_id)
    click.echo(f"{held_id}: {outcome.status}" + (f" ticket {outcome.ticket_id}" if outcome.ticket_id else "")
               + (f": {outcome.reason}" if outcome.reason else ""))
