"""The core's tests use the fixtures of the ``pytest11`` entry point
:mod:`helpdesk_core.testing.pytest_plugin` (``db_url`` on SQLite and PostgreSQL, ``hd_env``, ``app``,
``cli``, the real servers); the helpers are re-exported here for the test modules."""

from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher, profiles

from helpdesk_core.services import auth
from helpdesk_core.testing.apps import DATABASES, Cli, make_app, memory_app

__all__ = ["DATABASES", "Cli", "make_app", "memory_app"]


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashes() -> Iterator[None]:
    """Hash the suite's passwords with argon2's cheapest profile.

    The production cost (:data:`helpdesk_core.services.auth.PASSWORD_PARAMETERS`, ~0.2 s and 64 MiB
    per hash and per sign-in) is the point in production and pure waiting in a suite that sets
    passwords and signs in hundreds of times. Verifying reads the cost from the stored hash, so
    nothing else changes; ``test_passwords_are_stored_as_argon2id_at_the_rfc_9106_cost`` checks the
    production parameters themselves."""
    original = auth._hasher
    auth._hasher = PasswordHasher.from_parameters(profiles.CHEAPEST)
    auth._dummy_hash.cache_clear()
    yield
    auth._hasher = original
    auth._dummy_hash.cache_clear()
