"""General settings (attachments, message size, ticket reference): show and change them."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from helpdesk_core.app import Helpdesk
from helpdesk_core.services.permissions import Actor, require_manage_settings, require_signed_in
from helpdesk_core.settings import GeneralSettings, set_setting


def show_settings(session: Session, *, actor: Actor) -> dict[str, Any]:
    """Every setting with its current value (each signed-in user may read them)."""
    require_signed_in(actor)
    return GeneralSettings.load(session).as_dict()


def change_setting(app: Helpdesk, session: Session, *, actor: Actor, key: str, value: str) -> Any:
    """Store one setting (validated by its definition); returns the stored value. Needs Manage Settings."""
    require_manage_settings(actor)
    return set_setting(session, key, value, hooks=app.hooks)
