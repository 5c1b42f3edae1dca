"""Passwords and signing in (the web app). Passwords are hashed with argon2 (argon2-cffi)."""

from __future__ import annotations

from functools import cache

from argon2 import Parameters, PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk_core.errors import ConfigurationError, PermissionDenied
from helpdesk_core.models import User
from helpdesk_core.services.permissions import Actor, require_manage_settings, require_signed_in

#: argon2id as RFC 9106 recommends where memory is limited (argon2-cffi's default: t=3, 64 MiB, p=4)
PASSWORD_PARAMETERS: Parameters = RFC_9106_LOW_MEMORY
_hasher = PasswordHasher.from_parameters(PASSWORD_PARAMETERS)
#: the shortest password accepted
MIN_PASSWORD_LENGTH = 10


@cache
def _dummy_hash() -> str:
    """Verified against when the account does not exist, so both cases take as long. Made on the
    first sign-in, not at import: an argon2 hash takes ~0.3 s and 64 MiB, which every ``helpdesk``
    command (an import's peak RSS included) would otherwise pay."""
    return _hasher.hash("not a password of anyone")


class SignInFailed(PermissionDenied):
    """Wrong email or password (never says which), or the account is deactivated."""


def set_password(session: Session, *, actor: Actor, email: str, password: str) -> User:
    """Set ``email``'s web password. The user themself, or a global admin (a department admin could
    otherwise take over an account that is admin elsewhere)."""
    require_signed_in(actor)
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise ConfigurationError(f"No user {email!r}: add them first ('helpdesk user add {email} --role …').")
    if not (isinstance(actor, User) and actor.id == user.id):
        require_manage_settings(actor)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigurationError(f"A password needs at least {MIN_PASSWORD_LENGTH} characters.",
                                 details={"field": "password"})
    user.password_hash = _hasher.hash(password)
    session.flush()
    return user


def authenticate(session: Session, *, email: str, password: str) -> User:
    """The active user with this email and password; :class:`SignInFailed` otherwise."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    stored = user.password_hash if user is not None and user.password_hash else _dummy_hash()
    try:
        _hasher.verify(stored, password)
        ok = user is not None and bool(user.password_hash)
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None or not user.active:
        raise SignInFailed("Wrong email or password. Try again, or ask an admin to set your password.")
    if _hasher.check_needs_rehash(stored):
        user.password_hash = _hasher.hash(password)
    return user


def user_by_id(session: Session, user_id: int) -> User | None:
    """The active user of a signed-in session, or None (deleted or deactivated since)."""
    user = session.get(User, user_id)
    return user if user is not None and user.active else None
