"""The ``generic`` mailbox provider: IMAP, POP3 or a local Maildir, logging in with a password.

Other providers reuse the connection code and replace only the login, e.g. Gmail with XOAUTH2::

    from helpdesk_mail_generic.provider import connect_imap

    session = connect_imap(config, lambda client: client.oauth2_login(user, access_token))

``config`` for :func:`connect_imap` / :func:`connect_pop3` holds ``host``, ``port``, ``security``
(``ssl``/``starttls``/``none``), ``folder`` (IMAP), ``ca_file``, ``timeout`` and ``username`` or
``email`` (used in error messages); :meth:`GenericProvider.normalize_config` produces such a dict.

Outgoing mail (staff replies, acknowledgements) goes out over SMTP when ``smtp_host`` is set
(:mod:`helpdesk_mail_generic.smtp`, with the same login seam: :func:`~helpdesk_mail_generic.smtp.connect_smtp`).
``smtp_username`` and the secret ``smtp_password`` default to the mailbox's login and password.
"""

from __future__ import annotations

import ipaddress
import os
import poplib
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from imapclient import IMAPClient

from helpdesk_core.errors import ConfigurationError, DeliveryError, MailboxError
from helpdesk_core.hooktypes import OutgoingMail
from helpdesk_core.providers.base import ConfigField, MailboxProvider, MailboxSession

from . import imap, pop3, smtp
from .imap import ImapSession
from .maildir import MaildirSession
from .pop3 import Pop3Session

__all__ = ["GenericProvider", "account_identity", "canonical_host", "connect_imap", "connect_pop3",
           "default_port", "smtp_login"]

_DEFAULT_PORTS = {("imap", "ssl"): 993, ("imap", "starttls"): 143, ("imap", "none"): 143,
                  ("pop3", "ssl"): 995, ("pop3", "starttls"): 110, ("pop3", "none"): 110}

#: settings that only make sense for some protocols
_ONLY_FOR: dict[str, tuple[str, ...]] = {
    "host": ("imap", "pop3"), "port": ("imap", "pop3"), "security": ("imap", "pop3"),
    "username": ("imap", "pop3"), "ca_file": ("imap", "pop3"), "timeout": ("imap", "pop3"),
    "folder": ("imap",), "move_to_folder": ("imap",), "path": ("maildir",),
}
#: what ``after_import`` may say: ``delete`` on every protocol, ``move`` on IMAP only
AFTER_IMPORT = ("delete", "move")
#: settings of outgoing mail; only with ``smtp_host``
_SMTP_FIELDS = ("smtp_port", "smtp_security", "smtp_username")


def default_port(protocol: str, security: str) -> int:
    """993/143 for IMAP, 995/110 for POP3 (implicit TLS / STARTTLS or plain)."""
    return _DEFAULT_PORTS[(protocol, security)]


def connect_imap(config: Mapping[str, Any], authenticate: Callable[[IMAPClient], None]) -> ImapSession:
    """Connect and secure as ``config`` says, call ``authenticate(client)``, select the folder."""
    return ImapSession(config, login=authenticate)


def connect_pop3(config: Mapping[str, Any], authenticate: Callable[[poplib.POP3], None]) -> Pop3Session:
    """Connect and secure as ``config`` says, then call ``authenticate(pop)``."""
    return Pop3Session(config, login=authenticate)


class GenericProvider(MailboxProvider):
    """Any IMAP or POP3 server with a username and password, or a Maildir on this machine."""

    name = "generic"
    label = "IMAP / POP3 / Maildir (password)"
    fields = (
        ConfigField("protocol", "Protocol", type="choice", required=True, choices=("imap", "pop3", "maildir"),
                    help="imap or pop3 to read a mail server, maildir for a folder on this machine."),
        ConfigField("host", "Server host name", help="IMAP/POP3 server, e.g. imap.example.org."),
        ConfigField("port", "Port", type="int",
                    help="Default: IMAP 993 (ssl) or 143; POP3 995 (ssl) or 110."),
        ConfigField("security", "Connection security", type="choice", choices=("ssl", "starttls", "none"),
                    help="ssl = TLS from the start (993/995), starttls = upgrade a plain connection "
                         "(143/110), none = unencrypted (only on a trusted network). Required for imap/pop3."),
        ConfigField("email", "Department address", type="email", required=True,
                    help="The address mail to this department is sent to."),
        ConfigField("username", "Login name", help="Default: the department address."),
        ConfigField("folder", "IMAP folder", default="INBOX", help="IMAP only: the folder mail is imported from."),
        ConfigField("after_import", "After import", type="choice", choices=AFTER_IMPORT, default="delete",
                    help="What happens to a mail once its ticket is committed: delete (the default) removes "
                         "it from the mailbox; move (IMAP only) moves it to move_to_folder. Either way it is "
                         "imported once."),
        ConfigField("move_to_folder", "Folder for imported mail",
                    help="IMAP with after_import=move: imported mail is moved here (created when the "
                         "mailbox is saved if it does not exist), e.g. Imported."),
        ConfigField("ca_file", "CA certificate (PEM)", type="path",
                    help="Trust this certificate file instead of the system CAs, e.g. for a self-signed server."),
        ConfigField("path", "Maildir path", type="path", help="Maildir only: the folder holding cur/, new/, tmp/."),
        ConfigField("authserv_id", "Receiving server's authserv-id",
                    help="The name your receiving mail server writes first in Authentication-Results "
                         "(e.g. mx.school.test): only its DKIM/DMARC results are read. Unset: none are."),
        ConfigField("timeout", "Network timeout (seconds)", type="int", default=30,
                    help="Waiting longer than this for the server is an error."),
        ConfigField("password", "Password", secret=True, help="IMAP/POP3 password."),
        ConfigField("smtp_host", "Outgoing mail (SMTP) server",
                    help="Server replies are sent through, e.g. smtp.example.org. Without it the "
                         "department cannot send mail."),
        ConfigField("smtp_port", "SMTP port", type="int", help="Default: 465 (ssl), 587 (starttls), 25 (none)."),
        ConfigField("smtp_security", "SMTP connection security", type="choice", choices=("ssl", "starttls", "none"),
                    help="ssl = TLS from the start (465), starttls = upgrade a plain connection (587 or 25), "
                         "none = unencrypted (only on a trusted network). Required with smtp_host."),
        ConfigField("smtp_username", "SMTP login name", help="Default: the mailbox login."),
        ConfigField("smtp_password", "SMTP password", secret=True, help="Default: the mailbox password."),
    )

    def normalize_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Check the settings for the chosen protocol and fill defaults (port, username, folder).

        maildir needs ``path`` and no server settings; imap and pop3 need ``host`` and
        ``security`` (there is no default: ``none`` must be chosen explicitly).
        """
        given = {k: (v.strip() if isinstance(v, str) else v) for k, v in config.items()}
        given = {k: (None if v == "" else v) for k, v in given.items()}
        out = super().normalize_config(given)
        protocol = out["protocol"]
        defaults = {f.name: f.default for f in self.fields}
        for name, protocols in _ONLY_FOR.items():
            if protocol in protocols or (name in ("ca_file", "timeout") and given.get("smtp_host")):
                continue
            value = given.get(name)
            if value is not None and not _same(value, defaults.get(name)):
                raise ConfigurationError(f"Setting {name!r} does not apply to protocol {protocol!r}; remove it.")
            out[name] = None
        email = str(out["email"])
        if "@" not in email.strip("@"):
            raise ConfigurationError(f"Setting 'email' must be an email address (got {email!r}).")
        self._normalize_smtp(out)
        if protocol == "maildir":
            self._normalize_after_import(out, protocol)
            if not out["path"]:
                raise ConfigurationError("Setting 'path' is required for protocol 'maildir': "
                                         "the Maildir folder holding cur/, new/ and tmp/.")
            out["path"] = os.path.abspath(os.path.expanduser(str(out["path"])))
            return out
        if not out["host"]:
            raise ConfigurationError(f"Setting 'host' is required for protocol {protocol!r}.")
        out["host"] = str(out["host"])
        if not out["security"]:
            tls, plain = default_port(protocol, "ssl"), default_port(protocol, "starttls")
            raise ConfigurationError(
                f"Setting 'security' is required for protocol {protocol!r}: ssl (port {tls}), "
                f"starttls (port {plain}) or none (unencrypted, port {plain}; only on a trusted network).")
        if out["port"] is None:
            out["port"] = default_port(protocol, out["security"])
        if not 0 < out["port"] < 65536:
            raise ConfigurationError(f"Setting 'port' must be between 1 and 65535 (got {out['port']}).")
        if out["timeout"] is not None and out["timeout"] <= 0:
            raise ConfigurationError(f"Setting 'timeout' must be a positive number of seconds (got {out['timeout']}).")
        out["username"] = str(out["username"] or email)
        if protocol == "imap":
            folder = str(out["folder"] or "INBOX")
            out["folder"] = "INBOX" if folder.upper() == "INBOX" else folder
        self._normalize_after_import(out, protocol)
        if out["ca_file"]:
            ca_file = os.path.abspath(os.path.expanduser(str(out["ca_file"])))
            if not os.path.isfile(ca_file):
                raise ConfigurationError(f"Setting 'ca_file': no file {ca_file!r}; give a PEM certificate file.")
            out["ca_file"] = ca_file
        return out

    @staticmethod
    def _normalize_after_import(out: dict[str, Any], protocol: str) -> None:
        """Check ``after_import`` and ``move_to_folder`` (in place): ``move`` is IMAP only and
        needs a folder other than the one read."""
        action = str(out.get("after_import") or "delete").strip().lower()
        out["after_import"] = action
        if action == "delete":
            if out.get("move_to_folder"):
                raise ConfigurationError("Setting 'move_to_folder' needs after_import=move; set both, or "
                                         "remove move_to_folder to delete imported mail.")
            out["move_to_folder"] = None
            return
        if protocol != "imap":
            raise ConfigurationError(f"after_import=move is for IMAP only; protocol {protocol!r} can only "
                                     "delete imported mail (after_import=delete).")
        target = str(out.get("move_to_folder") or "").strip()
        if not target:
            raise ConfigurationError("Setting 'move_to_folder' is required with after_import=move: the IMAP "
                                     "folder imported mail is moved to, e.g. Imported.")
        target = "INBOX" if target.upper() == "INBOX" else target
        if target == out["folder"]:
            raise ConfigurationError(f"Setting 'move_to_folder' must differ from the folder read ({target!r}): "
                                     "mail moved there would be imported again and again.")
        out["move_to_folder"] = target

    @staticmethod
    def _normalize_smtp(out: dict[str, Any]) -> None:
        """Check the outgoing-mail settings (in place): ``smtp_security`` required with ``smtp_host``."""
        if not out.get("smtp_host"):
            stray = [name for name in _SMTP_FIELDS if out.get(name) is not None]
            if stray:
                raise ConfigurationError(f"Setting(s) {', '.join(stray)} need smtp_host: give the outgoing "
                                         "mail server with --smtp-host.")
            out["smtp_host"] = None
            return
        out["smtp_host"] = str(out["smtp_host"])
        security = out.get("smtp_security")
        if not security:
            raise ConfigurationError(
                "Setting 'smtp_security' is required with smtp_host: ssl (port 465), starttls (port 587 or 25) "
                "or none (unencrypted, port 25; only on a trusted network).")
        if out.get("smtp_port") is None:
            out["smtp_port"] = smtp.DEFAULT_SMTP_PORTS[security]
        if not 0 < out["smtp_port"] < 65536:
            raise ConfigurationError(f"Setting 'smtp_port' must be between 1 and 65535 (got {out['smtp_port']}).")
        out["smtp_username"] = str(out.get("smtp_username") or out.get("username") or out["email"])

    def identity(self, config: Mapping[str, Any]) -> str:
        """The account read: ``login@host/folder`` (:func:`account_identity`, whatever the
        protocol, port and security: POP3 reads the INBOX), or ``maildir:/abs/path``."""
        cfg = self.normalize_config(config)
        if cfg["protocol"] == "maildir":
            return f"maildir:{os.path.realpath(cfg['path'])}"
        return account_identity(cfg["username"], cfg["host"], cfg["folder"] if cfg["protocol"] == "imap" else "INBOX")

    def open(self, config: Mapping[str, Any], secrets: Mapping[str, str]) -> MailboxSession:
        """Connect, log in with the password and (IMAP) select the folder."""
        cfg = self.normalize_config(config)
        if cfg["protocol"] == "maildir":
            return MaildirSession(cfg)
        password = secrets.get("password")
        if not password:
            raise MailboxError(f"No password is stored for user {cfg['username']!r} on {cfg['host']}: "
                               "set the mailbox password.", kind="auth_failed", temporary=False)
        if cfg["protocol"] == "imap":
            return connect_imap(cfg, imap.password_login(cfg["username"], password))
        return connect_pop3(cfg, pop3.password_login(cfg["username"], password))

    def deliver(self, config: Mapping[str, Any], secrets: Mapping[str, str],
                mails: Sequence[OutgoingMail]) -> list[DeliveryError | None] | None:
        """Send ``mails`` over the configured SMTP server, on one connection (None without
        ``smtp_host``: this mailbox sends no mail). A bad configuration, a missing password or a
        connection failure raises (the core keeps every mail queued)."""
        cfg = self.normalize_config(config)
        settings = smtp.smtp_settings(cfg)
        if settings is None:
            return None
        with smtp.connect_smtp(settings, smtp_login(cfg, secrets)) as conn:
            return conn.send_all(mails)

    def validate(self, config: Mapping[str, Any], secrets: Mapping[str, str]) -> dict[str, Any]:
        """Check the mailbox (count messages; with after_import=move, create the folder for
        imported mail when missing), then, with ``smtp_host``, the outgoing mail server: connect,
        TLS, EHLO and log in, without sending anything."""
        cfg = self.normalize_config(config)
        with self.open(cfg, secrets) as session:
            facts: dict[str, Any] = {"waiting": session.count()}
            if isinstance(session, ImapSession) and session.move_to is not None:
                session.ensure_folder(session.move_to)  # created now, or a clear error before saving
                facts["move_to_folder"] = session.move_to
        settings = smtp.smtp_settings(cfg)
        if settings is not None:
            smtp.check_smtp(settings, smtp_login(cfg, secrets))
            facts["smtp"] = f"{settings['host']}:{settings['port']}"
        return facts


def canonical_host(host: str) -> str:
    """One spelling per server: lower case, IDNA, no trailing dot or brackets, IP addresses
    compressed (an IPv4-mapped IPv6 address as IPv4), and this machine -- ``localhost``, any
    loopback address, ``*.localhost``, its own host name -- as ``localhost``. Names are not
    looked up (round-robin DNS would make the identity change from one call to the next)."""
    name = host.strip().rstrip(".").lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        address = None
    if address is not None:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return "localhost" if address.is_loopback else address.compressed
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError:
        pass
    own = {socket.gethostname().lower().rstrip("."), "localhost", "localhost.localdomain"}
    return "localhost" if name in own or name.endswith(".localhost") else name


def account_identity(login: str, host: str, folder: str = "INBOX") -> str:
    """``login@host/folder`` of a mailbox account: the login case-folded, the host
    :func:`canonical_host`, the folder with ``INBOX`` in any case as ``INBOX``. Two departments
    may not read one account, over whatever protocol, port or security."""
    folder = "INBOX" if not folder or folder.upper() == "INBOX" else folder
    return f"{login.strip().casefold()}@{canonical_host(host)}/{folder}"


def smtp_login(config: Mapping[str, Any], secrets: Mapping[str, str]) -> smtp.SmtpLogin:
    """The SMTP password login: ``smtp_username``/``smtp_password``, defaulting to the mailbox's."""
    username = str(config.get("smtp_username") or config.get("username") or config.get("email"))
    password = secrets.get("smtp_password") or secrets.get("password")
    if not password:
        raise MailboxError(f"Outgoing mail (SMTP): no password is stored for user {username!r}: set the "
                           "mailbox password or --smtp-password-stdin.", kind="auth_failed", temporary=False)
    return smtp.password_login(username, password)


def _same(value: Any, default: Any) -> bool:
    if default is None:
        return False
    return str(value).strip().upper() == str(default).upper()
