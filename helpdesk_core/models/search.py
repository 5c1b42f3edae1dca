"""The full-text index of ticket messages (migration 0005): what it covers and its schema objects.

SQLite: an FTS5 external-content table ``ticket_messages_fts`` kept current by three triggers on
``ticket_messages``. PostgreSQL: a GIN expression index ``ix_ticket_messages_fts`` over
:data:`PG_DOCUMENT`. Both index the subject, the text body (for an HTML-only mail the text the
parser derived from the HTML), the sender's address and name, and the Cc addresses. Queries go
through :func:`helpdesk_core.services.search.matching_ticket_ids` only.

These objects are not ORM models, so comparisons of models and migrations skip them
(:func:`include_name`). A later SQLite batch migration that recreates ``ticket_messages`` must
recreate the triggers (copy them from 0005).
"""

from __future__ import annotations

from typing import Any

#: the FTS5 table; its shadow tables share the prefix
FTS_TABLE = "ticket_messages_fts"
#: the columns of ``ticket_messages`` that are indexed
FTS_COLUMNS = ("subject", "body_text", "from_email", "from_name", "cc")
#: the PostgreSQL document expression (the GIN index and the query must use the same one)
PG_DOCUMENT = ("to_tsvector('simple', coalesce(subject, '') || ' ' || coalesce(body_text, '') || ' ' || "
               "coalesce(from_email, '') || ' ' || coalesce(from_name, '') || ' ' || coalesce(cc::text, ''))")
PG_INDEX = "ix_ticket_messages_fts"


def include_name(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
    """For Alembic's ``include_name``: leave the full-text objects out of model comparisons."""
    return not (name or "").startswith((FTS_TABLE, PG_INDEX))
