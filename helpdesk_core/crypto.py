"""Encryption of secrets at rest (Fernet) and signatures for the Message-IDs we issue (HMAC)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from helpdesk_core.errors import ConfigurationError


def generate_key() -> str:
    return Fernet.generate_key().decode()


def load_or_create_key(path: Path, *, create: bool) -> str:
    """Read the instance secret from ``path``; create it (mode 0600) when ``create``."""
    if path.exists():
        return path.read_text().strip()
    if not create:
        raise ConfigurationError(
            f"No secret key at {path}: run 'helpdesk init' first, or set HELPDESK_SECRET_KEY.")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    os.chmod(path, 0o600)
    return key


class SecretBox:
    """Encrypts credential dictionaries and signs tokens with the instance secret."""

    def __init__(self, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode() if isinstance(key, str) else key)
        except (ValueError, TypeError):
            raise ConfigurationError(
                "The secret key is not a valid Fernet key (urlsafe base64 of 32 bytes); "
                "generate one with 'helpdesk init' or python -c 'from cryptography.fernet import "
                "Fernet; print(Fernet.generate_key().decode())'.") from None
        raw = base64.urlsafe_b64decode(key)
        self._sign_key = hashlib.sha256(b"helpdesk-sign:" + raw).digest()

    def encrypt(self, secrets: dict[str, str]) -> bytes:
        return self._fernet.encrypt(json.dumps(secrets).encode())

    def decrypt(self, token: bytes | None) -> dict[str, str]:
        if not token:
            return {}
        try:
            return json.loads(self._fernet.decrypt(token))
        except InvalidToken:
            raise ConfigurationError(
                "Stored credentials cannot be decrypted with this secret key (was the key changed?). "
                "Set the mailbox again with 'helpdesk department set-mailbox'.") from None

    def sign(self, data: str, length: int = 16) -> str:
        """A short URL-safe HMAC of ``data``."""
        mac = hmac.new(self._sign_key, data.encode(), hashlib.sha256).digest()
        return base64.b32encode(mac).decode().rstrip("=").lower()[:length]

    def verify(self, data: str, signature: str, length: int = 16) -> bool:
        return hmac.compare_digest(self.sign(data, length), signature.lower())
