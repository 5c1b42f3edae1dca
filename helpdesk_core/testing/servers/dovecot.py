"""A private Dovecot instance (IMAP, IMAPS, POP3, POP3S) on 127.0.0.1 for tests and benchmarks.

Everything lives under one short state folder (Unix socket paths are limited to 107 bytes)::

    STATE/dovecot/{dovecot.conf,oauth2.conf.ext,users,ssl/,run/,state/,dovecot.log,stderr.log}
    STATE/mail/<email>/Maildir          (owned by the unprivileged user "mail")

Dovecot runs in the foreground (``dovecot -F``) as a child of the calling process, so it is reaped by
us and stopped by :meth:`DovecotServer.stop` (also registered with :mod:`atexit`).  Must run as root:
the master drops to ``mail`` for mailbox access.
"""

from __future__ import annotations

import imaplib
import itertools
import os
import pwd
import re
import shutil
import signal
import ssl
import subprocess
import threading
import time
from pathlib import Path
from helpdesk_core.testing.servers.dovecot_conf import CONF_TEMPLATE, login_services

__all__ = [
    "DovecotServer",
    "ServerUnavailable",
    "make_traversable",
    "port_is_free",
    "wait_port_closed",
    "wait_for_banner",
]

HOST = "127.0.0.1"
SOCKET_PATH_LIMIT = 107
_SOCKET_NAME_RESERVE = 32  # longest socket name Dovecot puts below base_dir, with margin
_MAILDIR_HOST = "hd-test"


from helpdesk_core.testing.servers.ports import (  # noqa: E402 - re-exported: the fixtures and the benchmark import them from here
    ChildProcessServer, ServerUnavailable, make_traversable, port_is_free, wait_for_banner,
    wait_port_closed,
)


# --------------------------------------------------------------------------- Maildir names

_stamp_lock = threading.Lock()
_last_stamp = (0, 0)
_seq = itertools.count(1)


def _unique_maildir_name() -> tuple[str, float]:
    """Classic ``<secs>.M<usecs>P<pid>Q<n>.<host>`` name, strictly increasing within the process.

    Dovecot assigns UIDs to newly found files ordered by (seconds, usecs, name), so this keeps
    UID order = delivery order.  Returns the name and its timestamp (used as mtime = INTERNALDATE).
    """
    global _last_stamp
    with _stamp_lock:
        now = time.time()
        stamp = (int(now), int((now % 1) * 1_000_000))
        if stamp <= _last_stamp:
            secs, usecs = _last_stamp[0], _last_stamp[1] + 1
            if usecs >= 1_000_000:
                secs, usecs = secs + 1, 0
            stamp = (secs, usecs)
        _last_stamp = stamp
        n = next(_seq)
    secs, usecs = stamp
    return f"{secs}.M{usecs}P{os.getpid()}Q{n}.{_MAILDIR_HOST}", secs + usecs / 1_000_000


# --------------------------------------------------------------------------- the server


_OAUTH2_PASSDB = """\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {oauth2_conf}
}}
"""

_OAUTH2_CONF = """\
tokeninfo_url = {url}
username_attribute = email
timeout_msecs = 5000
"""


class DovecotServer(ChildProcessServer):
    """A private Dovecot on 127.0.0.1: IMAP ``port_base+143`` (plain + STARTTLS), IMAPS ``+993``,
    POP3 ``+110`` (plain + STLS), POP3S ``+995``.  Users live in a passwd-file ({PLAIN} passwords).

    ``oauth2_tokeninfo_url`` (e.g. ``http://127.0.0.1:<port_base+80>/tokeninfo?access_token=``) enables
    an oauth2 passdb for XOAUTH2/OAUTHBEARER; OAuth users must still be added with :meth:`add_user`.
    """

    def __init__(self, state_dir: str | os.PathLike[str], port_base: int, oauth2_tokeninfo_url: str | None = None) -> None:
        self.state_dir = Path(state_dir).absolute()
        self.port_base = port_base
        self.imap_port = port_base + 143
        self.imaps_port = port_base + 993
        self.pop3_port = port_base + 110
        self.pop3s_port = port_base + 995
        self.oauth2_tokeninfo_url = oauth2_tokeninfo_url
        self.dovecot_dir = self.state_dir / "dovecot"
        self.run_dir = self.dovecot_dir / "run"
        self.conf_path = self.dovecot_dir / "dovecot.conf"
        self.oauth2_conf_path = self.dovecot_dir / "oauth2.conf.ext"
        self.users_path = self.dovecot_dir / "users"
        self.log_path = self.dovecot_dir / "dovecot.log"
        self.ca_file = self.dovecot_dir / "ssl" / "cert.pem"
        self.cert_file = self.ca_file
        self.key_file = self.dovecot_dir / "ssl" / "key.pem"
        self.mail_root = self.state_dir / "mail"
        self.users: dict[str, str] = {}
        self._users_lock = threading.RLock()
        self._users_written_at = 0.0
        if len(str(self.run_dir)) + _SOCKET_NAME_RESERVE > SOCKET_PATH_LIMIT:
            raise ValueError(
                f"state_dir {self.state_dir} is too long: Dovecot's sockets in {self.run_dir} would exceed "
                f"the {SOCKET_PATH_LIMIT}-byte Unix socket path limit; use a short folder such as /tmp/hd-XXXX"
            )

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "DovecotServer":
        """Write config, users and certificate, start ``dovecot -F`` and wait for the IMAP/POP3 greetings."""
        if self.running:
            return self
        binary = self._dovecot_binary()
        for helper in ("imap", "pop3"):
            if not Path("/usr/lib/dovecot", helper).exists():
                raise ServerUnavailable(f"/usr/lib/dovecot/{helper} is missing", f"dovecot-{helper}d")
        if os.geteuid() != 0:
            raise ServerUnavailable("the test Dovecot must be started as root (it switches to user 'mail')")
        self._prepare_dirs()
        self._ensure_certificate()
        self._write_config()
        with self._users_lock:
            self._write_users_file()
        self._stop_stale_instance()
        shutil.rmtree(self.run_dir, ignore_errors=True)  # stale sockets break the next start
        busy = [p for p in self.ports if not port_is_free(p)]
        if busy:
            raise RuntimeError(f"cannot start Dovecot: port(s) {busy} on {HOST} are already in use")
        stderr = open(self.dovecot_dir / "stderr.log", "ab")
        try:
            proc = self._spawn([binary, "-F", "-c", str(self.conf_path)], stderr)
        finally:
            stderr.close()
        try:
            wait_for_banner(self.imap_port, b"* OK", alive=proc)
            wait_for_banner(self.pop3_port, b"+OK", alive=proc)
        except (RuntimeError, TimeoutError) as exc:
            self.stop()
            raise RuntimeError(f"Dovecot did not start: {exc}\n--- log tail ---\n{self._log_tail()}") from exc
        return self

    @property
    def ports(self) -> list[int]:
        """All TCP ports of this instance."""
        return [self.imap_port, self.imaps_port, self.pop3_port, self.pop3s_port]

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting this server's self-signed certificate (SAN localhost, 127.0.0.1)."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    # ------------------------------------------------------------------ users

    def add_user(self, email: str, password: str) -> None:
        """Add (or change) a passwd-file user; when running, return only once a login would see it."""
        self.add_users({email: password})

    def add_users(self, users: dict[str, str]) -> None:
        """Add several users with a single wait for Dovecot's once-per-second passwd-file reread."""
        for email, password in users.items():
            for value in (email, password):
                if not value or any(c in value for c in ":\r\n\0"):
                    raise ValueError(f"invalid user name or password for the passwd-file: {value!r}")
        with self._users_lock:
            self.users.update(users)
            if not self.running:
                self._write_users_file()
                return
            self._write_users_file()
            # Dovecot stats the file at most once per (whole) second: a lookup in the same second as
            # the edit may still use the old data.  Wait for the next whole second (+ margin).
            _sleep_until(int(self._users_written_at) + 1.05)

    def _write_users_file(self) -> None:
        content = "".join(f"{e}:{{PLAIN}}{p}::::::\n" for e, p in self.users.items()).encode()
        old_size = self.users_path.stat().st_size if self.users_path.exists() else -1
        if old_size == len(content) and int(time.time()) == int(self._users_written_at):
            # same size and same mtime second as the last write: Dovecot would miss the change
            _sleep_until(int(self._users_written_at) + 1.0)
        self.dovecot_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.users_path.with_suffix(".tmp")
        tmp.write_bytes(content)
        os.chmod(tmp, 0o644)  # the auth process runs as user "dovecot"
        os.replace(tmp, self.users_path)
        self._users_written_at = time.time()

    # ------------------------------------------------------------------ mailboxes

    def maildir(self, email: str) -> Path:
        """The user's INBOX Maildir (may not exist yet)."""
        return self.mail_root / email / "Maildir"

    def folder_path(self, email: str, folder: str | None = None) -> Path:
        """Maildir++ folder directory: ``INBOX``/None -> Maildir, ``Archive/2024`` -> Maildir/.Archive.2024."""
        if folder is None or folder.upper() == "INBOX":
            return self.maildir(email)
        return self.maildir(email) / ("." + folder.replace("/", "."))

    def deliver(self, email: str, raw: bytes, folder: str | None = None, seen: bool = False,
                internaldate: float | None = None) -> Path:
        """Write ``raw`` straight into the Maildir (the fastest delivery; works for unseen users).

        Files are chowned to ``mail``; names increase strictly so UID order = delivery order.
        ``seen`` puts it in ``cur/`` with ``\\Seen``; ``internaldate`` (Unix time) sets the mtime.
        Returns the path of the new file.  Dovecot sees it on the next SELECT/STATUS/NOOP/IDLE wake-up.
        """
        if folder is not None and folder.upper() != "INBOX" and not self.folder_path(email, folder).is_dir():
            self.create_folder(email, folder)
        target = self.folder_path(email, folder)
        self._ensure_maildir(target)
        name, stamp = _unique_maildir_name()
        tmp = target / "tmp" / name
        with open(tmp, "wb") as f:
            f.write(raw.replace(b"\r\n", b"\n"))  # Maildir files use LF line endings
        _chown_mail(tmp)
        ts = stamp if internaldate is None else internaldate
        os.utime(tmp, (ts, ts))
        dest = target / "cur" / f"{name}:2,S" if seen else target / "new" / name
        os.rename(tmp, dest)  # atomic: Dovecot never sees half a file
        return dest

    def append(self, email: str, raw: bytes, folder: str = "INBOX", flags: str = "") -> int | None:
        """IMAP APPEND as the user (password from :attr:`users`); returns the APPENDUID UID if given."""
        m = imaplib.IMAP4(HOST, self.imap_port, timeout=10)
        try:
            m.login(email, self.users[email])
            typ, data = m.append(f'"{folder}"', f"({flags})" if flags else None, None, raw)
            if typ != "OK":
                raise RuntimeError(f"APPEND to {folder} for {email} failed: {data!r}")
            match = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
            return int(match.group(1)) if match else None
        finally:
            try:
                m.logout()
            except (imaplib.IMAP4.error, OSError):
                pass

    def count(self, email: str, folder: str = "INBOX") -> int:
        """Number of messages in the folder (files in ``new/`` + ``cur/``); 0 if it does not exist."""
        target = self.folder_path(email, folder)
        total = 0
        for sub in ("new", "cur"):
            d = target / sub
            if d.is_dir():
                total += sum(1 for entry in os.scandir(d) if entry.is_file() and not entry.name.startswith("."))
        return total

    def reset(self, email: str, kick: bool = False) -> None:
        """Empty the INBOX: delete ``new/ cur/ tmp/`` and Dovecot's index files (fresh UIDVALIDITY).

        Only call it while no client session of the user is open (an open session answers
        ``Mailbox was deleted under us``); ``kick=True`` disconnects the user first.  Other folders are kept.
        """
        if kick:
            self.kick(email)
        md = self.maildir(email)
        if not md.is_dir():
            return
        for sub in ("new", "cur", "tmp"):
            shutil.rmtree(md / sub, ignore_errors=True)
        for entry in md.iterdir():
            if entry.name.startswith("dovecot") and entry.is_file():
                entry.unlink(missing_ok=True)
        self._ensure_maildir(md)

    def create_folder(self, email: str, name: str) -> Path:
        """Create (and subscribe) an IMAP folder such as ``Archive/2024``; returns its Maildir path."""
        path = self.folder_path(email, name)
        if path.is_dir():
            return path
        if self.running and email in self.users:
            self._ensure_maildir(self.maildir(email))
            result = self.doveadm("mailbox", "create", "-s", "-u", email, name, check=False)
            if result.returncode != 0 and not path.is_dir():
                raise RuntimeError(f"doveadm mailbox create {name!r} for {email} failed: {result.stderr.strip()}")
        else:
            self._ensure_maildir(path)
            (path / "maildirfolder").touch()
            _chown_mail(path / "maildirfolder")
        return path

    def kick(self, email: str, wait: float = 5.0) -> None:
        """Drop all IMAP/POP3 sessions of the user (``doveadm kick``) and wait (up to ``wait`` s)
        until ``doveadm who`` no longer lists one: an exiting session may still write its index."""
        self.doveadm("kick", email, check=False)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            who = self.doveadm("who", "-1", email, check=False)
            if email not in who.stdout:
                return
            time.sleep(0.05)

    def doveadm(self, *args: str, check: bool = True, input: bytes | None = None) -> "subprocess.CompletedProcess[str]":
        """Run ``doveadm -c <conf> ARGS``; raise on a non-zero exit when ``check``."""
        doveadm = shutil.which("doveadm") or "/usr/bin/doveadm"
        result = subprocess.run(
            [doveadm, "-c", str(self.conf_path), *args],
            input=input.decode("utf-8", "surrogateescape") if input is not None else None,
            capture_output=True, text=True, timeout=60,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"doveadm {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def reload(self) -> None:
        """Re-read the configuration (e.g. after editing ``oauth2.conf.ext``)."""
        self.doveadm("reload")

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _dovecot_binary() -> str:
        binary = shutil.which("dovecot") or ("/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None)
        if binary is None:
            raise ServerUnavailable("the dovecot binary is not installed", "dovecot-core")
        return binary

    def _prepare_dirs(self) -> None:
        for d in (self.dovecot_dir / "ssl", self.dovecot_dir / "state", self.mail_root):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o755)
        os.chmod(self.dovecot_dir, 0o755)
        make_traversable(self.state_dir)
        _chown_mail(self.mail_root)

    def _ensure_certificate(self) -> None:
        if self.ca_file.exists() and self.key_file.exists():
            return
        openssl = shutil.which("openssl")
        if openssl is None:
            raise ServerUnavailable("the openssl command is not installed", "openssl")
        subprocess.run(
            [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
             "-keyout", str(self.key_file), "-out", str(self.ca_file), "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
            check=True, capture_output=True, timeout=60,
        )
        os.chmod(self.key_file, 0o600)
        os.chmod(self.ca_file, 0o644)

    def _write_config(self) -> None:
        oauth2_passdb = ""
        mechanisms = "plain login"
        if self.oauth2_tokeninfo_url:
            self.oauth2_conf_path.write_text(_OAUTH2_CONF.format(url=self.oauth2_tokeninfo_url))
            os.chmod(self.oauth2_conf_path, 0o644)  # read by the auth process (user "dovecot")
            oauth2_passdb = _OAUTH2_PASSDB.format(oauth2_conf=self.oauth2_conf_path)
            mechanisms = "plain login xoauth2 oauthbearer"
        self.conf_path.write_text(CONF_TEMPLATE.format(
            port_base=self.port_base, run_dir=self.run_dir, state_dir=self.dovecot_dir / "state",
            log=self.log_path, cert=self.cert_file, key=self.key_file, mechanisms=mechanisms,
            mail_root=self.mail_root, users=self.users_path, oauth2_passdb=oauth2_passdb,
            login_services=login_services({"imap": (self.imap_port, self.imaps_port),
                                           "pop3": (self.pop3_port, self.pop3s_port)}),
        ))

    def _stop_stale_instance(self) -> None:
        """Terminate a leftover master of *this* config (PID file + cmdline check)."""
        pid_file = self.run_dir / "master.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            return
        if str(self.conf_path).encode() in cmdline:
            os.kill(pid, signal.SIGTERM)
            for port in self.ports:
                wait_port_closed(port, timeout=10)

    def _ensure_maildir(self, path: Path) -> None:
        """Create ``path`` with cur/new/tmp (and missing parents below the mail root) owned by mail."""
        for sub in ("cur", "new", "tmp"):
            d = path / sub
            if d.is_dir():
                continue
            missing = [p for p in [d, *d.parents] if not p.exists()]
            d.mkdir(parents=True, exist_ok=True)
            for p in missing:
                os.chmod(p, 0o700)
                _chown_mail(p)

    def _log_tail(self, lines: int = 30) -> str:
        text = self.log_text()
        try:
            text += (self.dovecot_dir / "stderr.log").read_text(errors="replace")
        except FileNotFoundError:
            pass
        return "\n".join(text.splitlines()[-lines:])


def _mail_ids() -> tuple[int, int]:
    pw = pwd.getpwnam("mail")
    return pw.pw_uid, pw.pw_gid


def _chown_mail(path: Path) -> None:
    if os.geteuid() == 0:
        uid, gid = _mail_ids()
        os.chown(path, uid, gid)


def _sleep_until(unix_time: float) -> None:
    delay = unix_time - time.time()
    if delay > 0:
        time.sleep(delay)
