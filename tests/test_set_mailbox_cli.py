"""``helpdesk department set-mailbox``: each way a mailbox check fails has its own one-line message
and saves nothing; one mailbox serves one department; secrets never leak."""

from __future__ import annotations

import json
import logging
import socket

from sqlalchemy import MetaData, create_engine, select

from mailfactory import plain
from test_e2e_import import configure


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _imap(port: int, security: str, email: str, *extra: str) -> list[str]:
    return ["--protocol", "imap", "--host", "127.0.0.1", "--port", str(port), "--security", security,
            "--email", email, *extra]


def test_every_failure_kind_saves_nothing(cli, dovecot, mail_user, silent_port):
    cli("department", "add", "Tech", "--sender", mail_user.email)
    d, user, ca = dovecot, mail_user.email, ["--ca-file", str(dovecot.ca_file)]
    cases = {
        "unknown_host": ["--protocol", "imap", "--host", "nonexistent.invalid", "--security", "ssl",
                         "--email", user, "--timeout", "5"],
        "connection_refused": _imap(_unused_port(), "ssl", user, *ca),
        "timeout (silent server)": _imap(silent_port, "ssl", user, *ca, "--timeout", "2"),
        "tls (TLS to a plain port)": _imap(d.imap_port, "ssl", user, *ca),
        "timeout (plain to a TLS port)": _imap(d.imaps_port, "none", user, "--timeout", "2"),
        "certificate (self-signed, no --ca-file)": _imap(d.imaps_port, "ssl", user),
        "timeout (STARTTLS on the TLS port)": _imap(d.imaps_port, "starttls", user, *ca, "--timeout", "2"),
        "auth_failed": _imap(d.imaps_port, "ssl", user, *ca),
        "folder_missing": _imap(d.imaps_port, "ssl", user, *ca, "--folder", "NoSuchFolder"),
        "timeout (POP3 STARTTLS on the TLS port)": ["--protocol", "pop3", "--host", "127.0.0.1", "--port",
                                                    str(d.pop3s_port), "--security", "starttls",
                                                    "--email", user, *ca, "--timeout", "2"],
    }
    messages = {}
    for name, args in cases.items():
        password = "wrong-password" if name == "auth_failed" else mail_user.password
        result = cli("department", "set-mailbox", "Tech", *args, "--password-stdin",
                     input=password + "\n", ok=False)
        kind = name.split(" ")[0]
        assert result.exit_code == 1, (name, result.output)
        err = result.stderr.strip()
        assert "\n" not in err, (name, err)
        assert err.startswith(f"Error: [{kind}] ") and err.endswith("Nothing was saved."), (name, err)
        assert mail_user.password not in result.output + result.stderr
        messages[name] = err
        assert cli.json("department", "list", "--json")[0]["mailbox"] is None, name
    # every case says something different -- except the two plaintext greetings awaited on the
    # implicit-TLS port (security none / starttls there), which fail identically: that message
    # names the cause
    same_cause = ("timeout (plain to a TLS port)", "timeout (STARTTLS on the TLS port)")
    assert len({m for n, m in messages.items() if n != same_cause[1]}) == len(messages) - 1
    assert all("plain connection to a TLS port" in messages[n] for n in same_cause)
    assert "nonexistent.invalid" in messages["unknown_host"]
    assert "NoSuchFolder" in messages["folder_missing"]
    assert "--ca-file" in messages["certificate (self-signed, no --ca-file)"] or \
        "ca" in messages["certificate (self-signed, no --ca-file)"].lower()


def _dump_database(url: str) -> bytes:
    """Every value of every table, as bytes."""
    engine = create_engine(url)
    meta = MetaData()
    meta.reflect(engine)
    out = []
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)):
                for value in row:
                    out.append(value if isinstance(value, bytes) else str(value).encode())
    engine.dispose()
    return b"\n".join(out)


def test_one_mailbox_one_department_clear_password_change_and_secrets(cli, hd_env, dovecot, mail_user, caplog):
    caplog.set_level(logging.DEBUG)
    secret = mail_user.password
    outputs: list[str] = []
    configure(cli, dovecot, mail_user, "imap", "ssl", department="Tech")
    mail_user.deliver(plain())
    assert cli.json("import", "--json")["Tech"]["created"] == 1

    # the same mailbox (host + login + folder) for another department: refused, naming Tech
    cli("department", "add", "Facilities", "--sender", "facilities@district.test")
    same = _imap(dovecot.imaps_port, "ssl", mail_user.email, "--ca-file", str(dovecot.ca_file),
                 "--username", mail_user.email.upper(), "--folder", "inbox")  # same identity, spelt differently
    result = cli("department", "set-mailbox", "Facilities", *same, "--password-stdin", input=secret + "\n", ok=False)
    assert result.exit_code == 1 and "'Tech'" in result.stderr and "clear-mailbox" in result.stderr
    outputs.append(result.output + result.stderr)

    # a wrong password is refused and the old one keeps working
    result = cli("department", "set-mailbox", "Tech", *_imap(dovecot.imaps_port, "ssl", mail_user.email,
                 "--ca-file", str(dovecot.ca_file)), "--password-stdin", input="nope\n", ok=False)
    assert "[auth_failed]" in result.stderr
    # changing another setting keeps the stored password (no --password-stdin)
    cli("department", "set-mailbox", "Tech", *_imap(dovecot.imaps_port, "ssl", mail_user.email,
        "--ca-file", str(dovecot.ca_file), "--timeout", "20"))
    mail_user.deliver(plain(subject="Second"))
    assert cli.json("import", "--json")["Tech"]["created"] == 1

    # a new password takes effect on the next cycle (saved unchecked, then fixed)
    cli("department", "set-mailbox", "Tech", *_imap(dovecot.imaps_port, "ssl", mail_user.email,
        "--ca-file", str(dovecot.ca_file)), "--no-validate", "--password-stdin", input="now-wrong\n")
    mail_user.deliver(plain(subject="Third"))
    failing = cli("import", "--json", ok=False)
    assert failing.exit_code == 1 and json.loads(failing.stdout)["Tech"]["error_kind"] == "auth_failed"
    status = cli.json("department", "status", "Tech", "--json")
    assert status["state"] == "failing" and status["last_error_kind"] == "auth_failed"
    cli("department", "set-mailbox", "Tech", *_imap(dovecot.imaps_port, "ssl", mail_user.email,
        "--ca-file", str(dovecot.ca_file)), "--password-stdin", input=secret + "\n")
    assert cli.json("import", "--json")["Tech"]["created"] == 1
    assert mail_user.count() == 0

    for args in (("department", "list", "--json"), ("department", "status", "Tech", "--json"),
                 ("import", "--json"), ("plugins", "--json"), ("settings", "show", "--json")):
        out = cli(*args)
        outputs.append(out.output + out.stderr)
    listed = cli.json("department", "list", "--json")
    assert "password" not in json.dumps(listed)

    # clear-mailbox: the department stays, with its tickets; the mailbox is free again
    cli("department", "clear-mailbox", "Tech")
    tech = next(d for d in cli.json("department", "list", "--json") if d["name"] == "Tech")
    assert tech["mailbox"] is None
    assert cli.json("department", "status", "Tech", "--json")["state"] == "no mailbox"
    assert len(cli.json("ticket", "list", "--department", "Tech", "--json")) == 3
    same[same.index("--username") + 1] = mail_user.email
    cli("department", "set-mailbox", "Facilities", *same, "--password-stdin", input=secret + "\n")

    assert all(secret not in text for text in outputs)
    assert secret not in caplog.text
    dump = _dump_database(hd_env["HELPDESK_DATABASE_URL"])
    assert secret.encode() not in dump and b"now-wrong" not in dump


# ---- a third-party provider, installed through a throwaway entry point -----------------------

THROWAWAY = '''
"""A provider as a third party would write it: an HTTP-API mailbox with a secret api_token."""
from helpdesk_core import hookimpl
from helpdesk_core.errors import MailboxError
from helpdesk_core.providers.base import ConfigField, MailboxProvider, MailboxSession

OPENED = []  # (config, secrets) of every open()


class EmptySession(MailboxSession):
    def count(self):
        return 0

    def fetch(self, *, batch_size=100):
        return iter(())

    def delete(self, keys):
        pass

    def close(self):
        pass


class ThrowawayProvider(MailboxProvider):
    name = "throwaway"
    label = "Throwaway API mailbox"
    fields = (
        ConfigField("account", "Account", required=True, help="The account at the mail API."),
        ConfigField("region", "Region", type="choice", choices=("eu", "us"), default="eu"),
        ConfigField("api_token", "API token", secret=True, required=True, help="Issued by the mail API."),
    )

    def identity(self, config):
        return f"throwaway:{config['account']}"

    def open(self, config, secrets):
        OPENED.append((dict(config), dict(secrets)))
        if secrets.get("api_token") != "tok-s3cret-42":
            raise MailboxError("The mail API refused the token: issue a new one.", kind="auth_failed")
        return EmptySession()


@hookimpl
def helpdesk_register_providers(register):
    register(ThrowawayProvider())
'''


def _install_throwaway(tmp_path, monkeypatch):
    """Install the provider above as a distribution with a ``helpdesk`` entry point."""
    import sys

    site = tmp_path / "site"
    dist = site / "throwaway_helpdesk_provider-0.1.dist-info"
    dist.mkdir(parents=True)
    (site / "throwaway_helpdesk_provider.py").write_text(THROWAWAY)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: throwaway-helpdesk-provider\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[helpdesk]\nthrowaway = throwaway_helpdesk_provider\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "throwaway_helpdesk_provider", raising=False)
    import throwaway_helpdesk_provider

    return throwaway_helpdesk_provider


def test_third_party_provider_with_secret_field_end_to_end(cli, hd_env, tmp_path, monkeypatch):
    module = _install_throwaway(tmp_path, monkeypatch)
    token = "tok-s3cret-42"
    outputs: list[str] = []

    def run(*args, **kwargs):
        result = cli(*args, **kwargs)
        outputs.append(result.output + result.stderr)
        return result

    cli("department", "add", "Tech", "--sender", "techhelp@district.test")
    listed = json.loads(run("plugins", "--json").stdout)
    provider = next(p for p in listed["providers"] if p["name"] == "throwaway")
    fields = {f["name"]: f for f in provider["fields"]}
    assert fields["api_token"]["secret"] is True and fields["account"]["secret"] is False
    assert {"name", "label", "type", "required", "default", "choices", "secret", "help"} <= set(fields["region"])
    assert any(p["name"] == "throwaway" and p["providers"] for p in listed["plugins"])
    # the options come from the declared fields: --account, --region (a choice), --api-token-stdin
    usage = run("department", "set-mailbox", "--help").output
    assert "--account" in usage and "[eu|us]" in usage and "--api-token-stdin" in usage
    assert "--api-token " not in usage  # no option takes a secret as its value

    # a secret as an argument is refused, saying how to pass it -- and nothing is saved
    refused = run("department", "set-mailbox", "Tech", "--provider", "throwaway", "--account", "acme",
                  "--set", "api_token=not-this-way", ok=False)
    assert refused.exit_code == 2 and "--secret-stdin api_token" in refused.stderr
    assert "not-this-way" not in refused.output + refused.stderr
    outputs.pop()  # (that one echoes nothing secret, but its command line held a value)
    plain = run("department", "set-mailbox", "Tech", "--provider", "throwaway", "--account", "acme",
                "--secret-stdin", "account", input="acme\n", ok=False)
    assert plain.exit_code == 2 and "--set account=VALUE" in plain.stderr
    wrong = run("department", "set-mailbox", "Tech", "--provider", "throwaway", "--account", "acme",
                "--api-token-stdin", input="expired\n", ok=False)
    assert "[auth_failed]" in wrong.stderr and "Nothing was saved" in wrong.stderr
    assert cli.json("department", "list", "--json")[0]["mailbox"] is None

    # from standard input it is checked (open() gets it as a secret, not a setting) and saved
    module.OPENED.clear()
    run("department", "set-mailbox", "Tech", "--provider", "throwaway", "--account", "acme",
        "--set", "region=us", "--secret-stdin", "api_token", input=token + "\n")
    assert module.OPENED == [({"account": "acme", "region": "us"}, {"api_token": token})]
    mailbox = cli.json("department", "list", "--json")[0]["mailbox"]
    assert mailbox["provider"] == "throwaway" and mailbox["config"] == {"account": "acme", "region": "us"}
    # an import cycle opens the mailbox with the stored (decrypted) secret
    run("import", "--json")
    assert module.OPENED[-1] == ({"account": "acme", "region": "us"}, {"api_token": token})
    # changing a plain setting keeps the stored secret
    run("department", "set-mailbox", "Tech", "--provider", "throwaway", "--account", "acme", "--region", "eu")
    assert module.OPENED[-1][1] == {"api_token": token}

    for args in (("department", "list", "--json"), ("department", "status", "Tech", "--json"),
                 ("plugins", "--json"), ("plugins",)):
        run(*args)
    assert all(token not in text for text in outputs)
    dump = _dump_database(hd_env["HELPDESK_DATABASE_URL"])
    assert token.encode() not in dump and b"api_token" not in dump  # encrypted, names included


def test_secret_is_prompted_for_hidden_on_a_terminal(cli, tmp_path, monkeypatch):
    """On a terminal the secret comes from a hidden prompt (nothing echoed), not from a line."""
    import click.testing

    module = _install_throwaway(tmp_path, monkeypatch)
    cli("department", "add", "Tech", "--sender", "techhelp@district.test")
    monkeypatch.setattr(click.testing._NamedTextIOWrapper, "isatty", lambda self: True)
    result = cli("department", "set-mailbox", "Tech", "--provider", "throwaway", "--account", "acme",
                 "--api-token-stdin", input="tok-s3cret-42\n")
    assert "API token (throwaway):" in result.output and "tok-s3cret-42" not in result.output
    assert module.OPENED[-1][1] == {"api_token": "tok-s3cret-42"}
