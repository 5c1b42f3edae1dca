"""``helpdesk settings …``: the general settings."""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy.orm import Session

from helpdesk_core.app import Helpdesk
from helpdesk_core.cli.common import action, listing
from helpdesk_core.services.permissions import Actor
from helpdesk_core.services.settings import change_setting, show_settings
from helpdesk_core.settings import SETTINGS


@click.group()
def settings() -> None:
    """General settings (attachments, message size, ticket reference)."""


@settings.command("set")
@click.argument("key", type=click.Choice(sorted(SETTINGS)))
@click.argument("value")
@action
def settings_set(app: Helpdesk, session: Session, actor: Actor, key: str, value: str) -> str:
    """Change one setting."""
    return f"{key} = {change_setting(app, session, actor=actor, key=key, value=value)}"


def _setting_line(item: tuple[str, Any]) -> str:
    key, value = item
    shown = ",".join(value) if isinstance(value, list) else value
    help_text = SETTINGS[key].help if key in SETTINGS else ""
    return f"{key} = {shown}    # {help_text}"


@settings.command("show")
@listing(_setting_line, rows=lambda values: sorted(values.items()))
def settings_show(_app: Helpdesk, session: Session, actor: Actor) -> dict[str, Any]:
    """Show all settings with their values."""
    return show_settings(session, actor=actor)
