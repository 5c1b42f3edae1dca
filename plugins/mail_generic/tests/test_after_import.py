"""The generic provider's after-import option against the real test Dovecot: imported mail is
deleted (the default) or, over IMAP, moved to a folder the admin names -- created when the mailbox
is saved, or a clear error before anything is saved. Either way the core acknowledges only after
the commit, and the ledger keeps a mail that comes back from being imported twice."""

from __future__ import annotations

from typing import Any

import pytest

from helpdesk_core.errors import ConfigurationError, MailboxError
from helpdesk_core.testing.apps import Cli
from helpdesk_mail_generic.imap import ImapSession

from test_generic_provider import PROVIDER, message, server_config


def test_move_creates_the_folder_on_save_and_moves_imported_mail(dovecot: Any, mail_user: Any) -> None:
    config = server_config(dovecot, mail_user, "imap", "ssl", after_import="move", move_to_folder="Imported/2026")
    for n in range(3):
        mail_user.deliver(message(n))
    facts = PROVIDER.validate(config, {"password": mail_user.password})
    assert facts == {"waiting": 3, "move_to_folder": "Imported/2026"}
    assert dovecot.folder_path(mail_user.email, "Imported/2026").is_dir()
    with PROVIDER.open(config, {"password": mail_user.password}) as session:
        keys = [m.key for batch in session.fetch() for m in batch]
        session.delete(keys[:2])
        assert session.count() == 1
    assert (mail_user.count(), mail_user.count("Imported/2026")) == (1, 2)


def test_move_without_the_move_capability_copies_then_deletes(dovecot: Any, mail_user: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    config = server_config(dovecot, mail_user, "imap", "starttls", after_import="move", move_to_folder="Done")
    mail_user.deliver(message(1))
    with PROVIDER.open(config, {"password": mail_user.password}) as session:
        assert isinstance(session, ImapSession) and session.client is not None
        real = session.client.has_capability
        monkeypatch.setattr(session.client, "has_capability", lambda cap: cap != "MOVE" and real(cap))
        session.delete([m.key for batch in session.fetch() for m in batch])  # the folder is created here
    assert (mail_user.count(), mail_user.count("Done")) == (0, 1)


def test_a_folder_the_server_refuses_is_a_clear_error(dovecot: Any, mail_user: Any) -> None:
    config = server_config(dovecot, mail_user, "imap", "ssl", after_import="move", move_to_folder="Done.2026")
    with pytest.raises(MailboxError) as info:
        PROVIDER.validate(config, {"password": mail_user.password})
    assert info.value.kind == "folder_missing" and not info.value.temporary
    assert "'Done.2026'" in info.value.message and "not allowed" in info.value.message and "move_to_folder" in info.value.message


@pytest.mark.parametrize(("extra", "wanted"), [
    ({"after_import": "move"}, "move_to_folder' is required"),
    ({"after_import": "move", "move_to_folder": "inbox"}, "must differ from the folder read"),
    ({"move_to_folder": "Done"}, "needs after_import=move"),
    ({"after_import": "archive"}, "after_import"),
    ({"protocol": "pop3", "after_import": "move"}, "IMAP only"),
])
def test_after_import_settings_are_checked(extra: dict[str, Any], wanted: str) -> None:
    config = {"protocol": "imap", "host": "imap.example.test", "security": "ssl", "email": "help@example.test",
              **extra}
    with pytest.raises(ConfigurationError) as info:
        PROVIDER.normalize_config(config)
    assert wanted in info.value.message


def test_delete_stays_the_default_and_is_declared(dovecot: Any, mail_user: Any) -> None:
    fields = {f["name"]: f for f in PROVIDER.describe()["fields"]}
    assert fields["after_import"]["default"] == "delete" and fields["after_import"]["choices"] == ["delete", "move"]
    assert "move_to_folder" in fields and "folder" in fields
    cfg = PROVIDER.normalize_config(server_config(dovecot, mail_user, "imap", "ssl"))
    assert (cfg["after_import"], cfg["move_to_folder"]) == ("delete", None)


def _configure(cli: Cli, dovecot: Any, user: Any, *options: str) -> str:
    cli("department", "add", "Tech", "--sender", user.email)
    cli("settings", "set", "mail.rate_limit_per_hour", "0")
    return cli("department", "set-mailbox", "Tech", "--protocol", "imap", "--host", "127.0.0.1",
               "--port", str(dovecot.imaps_port), "--security", "ssl", "--email", user.email,
               "--ca-file", str(dovecot.ca_file), *options, "--password-stdin", input=user.password + "\n").output


def test_cycles_move_imported_mail_and_never_import_it_twice(cli: Cli, dovecot: Any, mail_user: Any,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """From a folder other than INBOX, moved to an archive folder; a move that fails after the commit
    leaves the mail where it was, and the next cycle finds it in the ledger and only moves it."""
    dovecot.create_folder(mail_user.email, "Support")
    out = _configure(cli, dovecot, mail_user, "--folder", "Support", "--after-import", "move",
                     "--move-to-folder", "Support/Done")
    assert "moved to folder 'Support/Done'" in out
    assert any(p["name"] == "after_import" for prov in cli.json("plugins", "--json")["providers"]
               if prov["name"] == "generic" for p in prov["fields"])
    for n in range(3):
        mail_user.deliver(message(n), folder="Support")
    mail_user.deliver(message(9))  # INBOX is not read
    counts = cli.json("import", "--json")["Tech"]
    assert (counts["created"], counts["deleted"]) == (3, 3)
    assert (mail_user.count("Support"), mail_user.count("Support/Done"), mail_user.count()) == (0, 3, 1)

    mail_user.deliver(message(0), folder="Support")     # the same mail again
    mail_user.deliver(message(4), folder="Support")
    broken = {"left": 1}
    real_delete = ImapSession.delete

    def delete_fails_once(self: ImapSession, keys: Any) -> None:
        if broken["left"]:
            broken["left"] -= 1
            raise MailboxError("connection lost (simulated)", kind="server_error", temporary=True)
        real_delete(self, keys)

    monkeypatch.setattr(ImapSession, "delete", delete_fails_once)
    cli("import", "--json", ok=False)
    assert mail_user.count("Support") == 2 and mail_user.count("Support/Done") == 3  # committed, not moved
    counts = cli.json("import", "--json")["Tech"]
    assert (counts["created"], counts["duplicates"], counts["deleted"]) == (0, 2, 2)
    assert (mail_user.count("Support"), mail_user.count("Support/Done")) == (0, 5)
    subjects = sorted(t["subject"] for t in cli.json("ticket", "list", "--json"))
    assert subjects == ["question #0", "question #1", "question #2", "question #4"]
