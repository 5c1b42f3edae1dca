"""Default classification: every message is ordinary mail."""

from __future__ import annotations

from helpdesk_core import hookimpl
from helpdesk_core.context import Classification


@hookimpl(trylast=True)
def helpdesk_classify_message() -> Classification:
    return Classification(kind="normal")
