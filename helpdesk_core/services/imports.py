"""Import entry points other than the mailbox cycle: piped mail (``helpdesk ingest``)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from helpdesk_core.app import Helpdesk
from helpdesk_core.inbound.importer import Outcome, import_message
from helpdesk_core.services.departments import get_department


def ingest_raw(app: Helpdesk, session: Session, *, department: str, raw: bytes) -> Outcome:
    """Import one raw message handed over by a mail server. A message that cannot be imported is
    kept at once as a failed import (the mail server cannot retry a bad message usefully), so the
    caller may acknowledge the delivery after commit. There is no mailbox to leave a message in:
    an empty or over-size one comes back ``refused`` (logged) for the mail server to bounce."""
    dept = get_department(session, department)
    return import_message(app.context(session), dept, raw, max_attempts=1, from_mailbox=False)
