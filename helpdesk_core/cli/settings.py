"""``helpdesk settings …``: the general settings."""

from __future__ import annotations

from typing import Any

import click

from helpdesk_core.cli.common import CliState, emit, handle_errors
from helpdesk_core.services.settings import change_setting, show_settings
from helpdesk_core.settings import SETTINGS


@click.group()
def settings() -> None:
    """General settings (attachments, message size, ticket reference)."""


@settings.command("set")
@click.argument("key", type=click.Choice(sorted(SETTINGS)))
@click.argument("value")
@click.pass_obj
@handle_errors
def settings_set(state: CliState, key: str, value: str) -> None:
    """Change one setting."""
    with state.session() as (app, session, actor):
        stored = change_setting(app, session, actor=actor, key=key, value=value)
    click.echo(f"{key} = {stored}")


def _setting_line(item: tuple[str, Any]) -> str:
    key, value = item
    shown = ",".join(value) if isinstance(value, list) else value
    help_text = SETTINGS[key].help if key in SETTINGS else ""
    return f"{key} = {shown}    # {help_text}"


@settings.command("show")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@handle_errors
def settings_show(state: CliState, as_json: bool) -> None:
    """Show all settings with their values."""
    with state.session(commit=False) as (_app, session, actor):
        values = show_settings(session, actor=actor)
    emit(values, as_json, _setting_line, rows=sorted(values.items()))
