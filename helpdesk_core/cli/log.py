"""``helpdesk log``: what the importer skipped, held or failed, and why."""

from __future__ import annotations

import click

from helpdesk_core.cli.common import CliState, emit, handle_errors
from helpdesk_core.services.held import import_log


@click.command("log")
@click.option("--department", default=None, help="Only this department.")
@click.option("--limit", default=50, show_default=True, help="How many entries.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
@handle_errors
def log_(state: CliState, department: str | None, limit: int, as_json: bool) -> None:
    """Recent mail that did not become a ticket message (skipped, held, failed), newest first."""
    with state.session(commit=False) as (_app, session, actor):
        entries = import_log(session, actor=actor, department=department, limit=limit)
    emit(entries, as_json,
         lambda e: f"{e['created_at'][:19]}  {e['department']}  {e['outcome']:<7}  {e['key'][:60]}  {e['reason']}",
         "Nothing skipped, held or failed.")
