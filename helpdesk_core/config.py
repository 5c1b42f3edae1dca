"""Where things live: database URL, data folder, secret key. Read from the environment.

* ``HELPDESK_HOME`` — data folder (default ``~/.local/share/helpdesk``): SQLite database,
  ``secret.key`` and the ``attachments/`` store.
* ``HELPDESK_DATABASE_URL`` — SQLAlchemy URL (default ``sqlite:///$HELPDESK_HOME/helpdesk.db``).
* ``HELPDESK_SECRET_KEY`` — the instance secret (Fernet key, urlsafe base64 of 32 bytes); when unset
  it is read from ``$HELPDESK_HOME/secret.key``, created with mode 0600 by ``helpdesk init``.
* ``HELPDESK_ATTACHMENTS`` — attachment store folder (default ``$HELPDESK_HOME/attachments``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

log = logging.getLogger("helpdesk.config")

_Number = TypeVar("_Number", int, float)


def env_number(name: str, default: _Number, parse: Callable[[str], _Number], minimum: _Number) -> _Number:
    """The number (``parse``: ``int`` or ``float``) in the environment variable ``name``, at least
    ``minimum``; ``default`` when it is unset or empty, or (logged as a warning) not a number."""
    value = os.environ.get(name, "").strip()
    try:
        return max(minimum, parse(value)) if value else default
    except ValueError:
        log.warning("%s=%r is not a %s; using %s", name, value,
                    "whole number" if parse is int else "number", default)
        return default


def default_home() -> Path:
    env = os.environ.get("HELPDESK_HOME")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "helpdesk"


@dataclass(frozen=True)
class Config:
    home: Path
    database_url: str
    attachments_dir: Path
    secret_key: str | None = None

    @classmethod
    def from_env(cls, database_url: str | None = None, home: Path | None = None) -> Config:
        home = home or default_home()
        url = database_url or os.environ.get("HELPDESK_DATABASE_URL") or f"sqlite:///{home / 'helpdesk.db'}"
        attachments = Path(os.environ.get("HELPDESK_ATTACHMENTS") or home / "attachments")
        return cls(home=home, database_url=url, attachments_dir=attachments,
                   secret_key=os.environ.get("HELPDESK_SECRET_KEY") or None)

    @property
    def secret_key_file(self) -> Path:
        return self.home / "secret.key"
