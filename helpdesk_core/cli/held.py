"""``helpdesk held …``: mail held by the rate limit."""

from __future__ import annotations

import click
from sqlalchemy.orm import Session

from helpdesk_core.app import Helpdesk
from helpdesk_core.cli.common import action, kept_mail_group
from helpdesk_core.services.held import list_held, release_held
from helpdesk_core.services.permissions import Actor


held = kept_mail_group(
    "held", "Mail held by the rate limit (mail.rate_limit_per_hour).",
    list_doc="List held mail, oldest first.", everything="Include released ones.",
    line=lambda r: f"{r['id']}  {r['department']}  {r['sender']}  {r['subject'][:60]!r}  {r['status']}",
    nothing="No held mail.",
    rows=lambda session, *, actor, everything, **filters: list_held(
        session, actor=actor, include_released=everything, **filters))


@held.command("release")
@click.argument("held_id", type=int)
@action
def held_release(app: Helpdesk, session: Session, actor: Actor, held_id: int) -> str:
    """Import held mail now, bypassing the rate limit."""
    outcome = release_held(app, session, actor=actor, held_id=held_id)
    return (f"{held_id}: {outcome.status}" + (f" ticket {outcome.ticket_id}" if outcome.ticket_id else "")
            + (f": {outcome.reason}" if outcome.reason else ""))
