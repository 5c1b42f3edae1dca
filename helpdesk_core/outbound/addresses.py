"""The help desk's own addresses: what it sends from and receives at (to avoid mail loops and copying
itself on replies)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk_core.models import Department, Mailbox


def own_addresses(session: Session) -> set[str]:
    """Every address of this help desk: department senders and mailbox addresses/logins."""
    ours = {a.lower() for a in session.scalars(select(Department.sender_address)) if a}
    for config in session.scalars(select(Mailbox.config)):
        for key in ("email", "username", "smtp_username"):
            value = (config or {}).get(key)
            if isinstance(value, str) and "@" in value:
                ours.add(value.strip().lower())
    return ours
