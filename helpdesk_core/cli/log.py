"""``helpdesk log``: what the importer skipped, held or failed, and why."""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy.orm import Session

from helpdesk_core.app import Helpdesk
from helpdesk_core.cli.common import kept_filters, listing
from helpdesk_core.services.held import LOG_OUTCOMES, import_log
from helpdesk_core.services.permissions import Actor


@click.command("log")
@click.option("--limit", default=50, show_default=True, help="How many entries.")
@click.option("--outcome", type=click.Choice(LOG_OUTCOMES), default=None, help="Only this outcome.")
@listing(lambda e: f"{e['created_at'][:19]}  {e['department']}  {e['outcome']:<7}  {e['key'][:60]}  {e['reason']}",
         "Nothing skipped, held or failed.")
@kept_filters
def log_(_app: Helpdesk, session: Session, actor: Actor, limit: int, outcome: str | None,
         **filters: Any) -> list[dict[str, Any]]:
    """Recent mail that did not become a ticket message (skipped, held, failed), newest first."""
    return import_log(session, actor=actor, limit=limit, outcome=outcome, **filters)
