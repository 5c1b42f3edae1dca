"""``helpdesk_register_commands``: plugins add CLI commands; a broken plugin costs only its own."""

from __future__ import annotations

import os
import subprocess
import sys

import click
from click.testing import CliRunner

from helpdesk_core import hookimpl
from helpdesk_core.cli.main import register_plugin_commands
from helpdesk_core.plugins import Hooks


@click.command("hello")
def hello() -> None:
    click.echo("hello from a plugin")


class CommandsPlugin:
    @hookimpl
    def helpdesk_register_commands(self, cli: click.Group) -> None:
        cli.add_command(hello)
        cli.commands["department"].add_command(hello, name="hello")


class BrokenPlugin:
    @hookimpl
    def helpdesk_register_commands(self, cli: click.Group) -> None:
        raise RuntimeError("boom")


def fresh_group() -> click.Group:
    @click.group()
    def top() -> None:
        pass

    @top.group()
    def department() -> None:
        pass

    return top


def test_plugin_adds_a_group_command_and_a_department_subcommand():
    group = fresh_group()
    register_plugin_commands(group, Hooks.build(load_entrypoints=False, extra_plugins=[CommandsPlugin()]))
    assert CliRunner().invoke(group, ["hello"]).output == "hello from a plugin\n"
    assert CliRunner().invoke(group, ["department", "hello"]).output == "hello from a plugin\n"


def test_broken_plugin_only_warns(capsys):
    group = fresh_group()
    register_plugin_commands(group, Hooks.build(load_entrypoints=False, extra_plugins=[BrokenPlugin()]))
    assert "plugin commands are unavailable (RuntimeError: boom)" in capsys.readouterr().err
    assert set(group.commands) == {"department"}


def test_core_cli_works_with_the_google_plugin_disabled(tmp_path):
    """Installed or not, the core and the generic plugin work the same (run in a fresh process)."""
    env = {**os.environ, "HELPDESK_DISABLE_PLUGINS": "google", "HELPDESK_HOME": str(tmp_path)}
    env.pop("HELPDESK_DATABASE_URL", None)
    code = "from helpdesk_core.cli.main import main; main()"
    out = subprocess.run([sys.executable, "-c", code, "--help"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "department" in out.stdout and "google" not in out.stdout.split("Commands:")[1]
    assert "Warning" not in out.stderr
    init = subprocess.run([sys.executable, "-c", code, "init"], env=env, capture_output=True, text=True, timeout=60)
    assert init.returncode == 0, init.stderr
    plugins = subprocess.run([sys.executable, "-c", code, "plugins", "--json"], env=env, capture_output=True,
                             text=True, timeout=60)
    assert plugins.returncode == 0 and '"generic"' in plugins.stdout and '"google"' not in plugins.stdout
