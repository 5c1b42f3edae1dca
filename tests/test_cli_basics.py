"""The CLI contract that needs no mail server: init, plugins, departments, settings, users."""

from __future__ import annotations

import os
import stat

from click.testing import CliRunner

from helpdesk_core.cli.main import main


def test_init_creates_database_and_a_private_secret_key(tmp_path):
    home = tmp_path / "home"
    env = {"HELPDESK_HOME": str(home), "HELPDESK_DATABASE_URL": None, "HELPDESK_SECRET_KEY": None}
    runner = CliRunner()
    first = runner.invoke(main, ["init"], env=env)
    assert first.exit_code == 0, first.output
    key = home / "secret.key"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert (home / "helpdesk.db").exists()
    before = key.read_text()
    again = runner.invoke(main, ["init"], env=env)  # upgrade is idempotent, key kept
    assert again.exit_code == 0 and key.read_text() == before


def test_commands_before_init_say_what_to_do(tmp_path):
    env = {"HELPDESK_HOME": str(tmp_path), "HELPDESK_DATABASE_URL": None, "HELPDESK_SECRET_KEY": None}
    result = CliRunner().invoke(main, ["department", "list"], env=env)
    assert result.exit_code == 1 and "helpdesk init" in result.output


def test_plugins_json_lists_providers_with_fields(cli):
    data = cli.json("plugins", "--json")
    generic = next(p for p in data["providers"] if p["name"] == "generic")
    names = {f["name"] for f in generic["fields"]}
    assert {"protocol", "host", "port", "security", "email", "username", "folder", "ca_file", "path"} <= names
    assert next(f for f in generic["fields"] if f["name"] == "password")["secret"] is True
    plugin = next(p for p in data["plugins"] if p["name"] == "generic")
    assert plugin["distribution"] == "helpdesk-mail-generic" and "helpdesk_register_providers" in plugin["hooks"]
    assert any(p["default"] for p in data["plugins"])


def test_departments_and_settings(cli):
    cli("department", "add", "Tech Help", "--sender", "TechHelp@District.test", "--interval", "2")
    assert cli("department", "add", "Tech Help", "--sender", "x@y.test", ok=False).exit_code == 1
    assert cli("department", "add", "Bad", "--sender", "not-an-address", ok=False).exit_code == 1
    [dept] = cli.json("department", "list", "--json")
    assert (dept["name"], dept["sender"], dept["interval_minutes"], dept["mailbox"]) == \
        ("Tech Help", "techhelp@district.test", 2, None)

    cli("settings", "set", "attachments.allowed_extensions", "PDF, .png,jpg")
    cli("settings", "set", "attachments.max_size_mb", "2.5")
    cli("settings", "set", "mail.max_message_size_mb", "30")
    shown = cli.json("settings", "show", "--json")
    assert shown["attachments.allowed_extensions"] == ["pdf", "png", "jpg"]
    assert shown["attachments.max_size_mb"] == 2.5 and shown["mail.max_message_size_mb"] == 30
    bad = cli("settings", "set", "attachments.max_size_mb", "lots", ok=False)
    assert bad.exit_code == 1 and "takes a float" in bad.output


def test_users_and_roles(cli):
    cli("department", "add", "Tech", "--sender", "tech@district.test")
    cli("user", "add", "boss@district.test", "--role", "admin")
    cli("user", "add", "ann@district.test", "--role", "agent", "--department", "Tech")
    users = {u["email"]: u for u in cli.json("user", "list", "--json")}
    assert users["ann@district.test"]["role"] == "agent" and users["ann@district.test"]["departments"]
    refused = cli("--as", "ann@district.test", "department", "add", "X", "--sender", "x@district.test", ok=False)
    assert refused.exit_code == 1 and "Manage Settings" in refused.output
    cli("--as", "boss@district.test", "department", "add", "X", "--sender", "x@district.test")
