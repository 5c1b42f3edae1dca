"""Mailbox leases with fencing tokens: one importer per mailbox, on any number of machines.

A lease is ``(lease_owner, lease_expires_at, lease_generation)`` on the mailbox row. Every time a
lease changes hands (free, expired, or left by a dead process) its **generation** grows by one;
the new holder keeps that number as its fencing token. Before an importer commits a batch it calls
:func:`fence` *in the same transaction*: an ``UPDATE … WHERE lease_owner = me AND
lease_generation = my token`` that must hit the row. A worker that was paused past its lease
(SIGSTOP, a long GC pause, a frozen VM) while another took over therefore commits nothing: its
whole batch rolls back, and the mail stays in the mailbox for the new holder (whose ledger makes
a second import impossible anyway).

On PostgreSQL the fencing UPDATE row-locks the mailbox until the commit, so a take-over that
races with it waits and then sees the renewed expiry; on SQLite the writer holds the database
lock. Either way "check, then commit" is one atomic step.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.orm import Session

from helpdesk_core.config import env_number
from helpdesk_core.errors import TemporaryError
from helpdesk_core.models import Mailbox

log = logging.getLogger("helpdesk.leases")

#: default lease length; ``HELPDESK_LEASE_SECONDS`` overrides it (tests use a few seconds)
LEASE_SECONDS = 300


class LeaseLost(TemporaryError):
    """Another worker took the mailbox over while this one held it (it was paused or too slow)."""

    kind = "lease_lost"


def lease_seconds() -> int:
    """``HELPDESK_LEASE_SECONDS`` from the environment, else :data:`LEASE_SECONDS`."""
    return env_number("HELPDESK_LEASE_SECONDS", LEASE_SECONDS, int, 1)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_is_dead(owner: str | None) -> bool:
    """True only when ``owner`` ("hostname:pid") names a process of THIS host that no longer runs.

    Anything else (another host, not our format, our own pid, a live or unknowable pid) is treated
    as alive, so the lease is then only taken over once it expires. Caveat: this assumes that one
    hostname means one PID namespace; containers sharing a hostname but not their PIDs must not
    share a database without distinct hostnames.
    """
    if not owner:
        return False
    host, sep, pid_text = owner.rpartition(":")
    if not sep or host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: it exists (another user's process)
        return False
    return False


def _take(session: Session, mailbox_id: int, owner: str, expires: datetime, free: object) -> int | None:
    """Compare-and-set the lease to ``owner`` where ``free`` holds; the new generation or None."""
    now = datetime.now(UTC)
    renewing = and_(Mailbox.lease_owner == owner, Mailbox.lease_expires_at >= now)
    generation = session.scalar(
        update(Mailbox).where(Mailbox.id == mailbox_id, free)
        .values(lease_owner=owner, lease_expires_at=expires,
                lease_generation=case((renewing, Mailbox.lease_generation),
                                      else_=Mailbox.lease_generation + 1))
        .returning(Mailbox.lease_generation)
        .execution_options(synchronize_session=False))
    session.commit()
    return generation


def take_lease(session: Session, mailbox_id: int, owner: str, seconds: int | None = None) -> int | None:
    """Take (or renew) the mailbox lease and return its generation (the fencing token); None when
    another worker holds a live one. Commits.

    A lease is free when it has none, is ours, has expired, or is held by a process of this host
    that has died (e.g. ``kill -9`` of ``helpdesk import``): that one is taken over at once instead
    of after the lease time. The take-over is a compare-and-set on the dead owner, so two
    processes racing for it cannot both win. Renewing a live lease of our own keeps its generation.
    """
    now = datetime.now(UTC)
    expires = now + timedelta(seconds=seconds or lease_seconds())
    generation = _take(session, mailbox_id, owner, expires,
                       or_(Mailbox.lease_owner.is_(None), Mailbox.lease_owner == owner,
                           Mailbox.lease_expires_at < now))
    if generation is not None:
        return generation
    holder = session.scalar(select(Mailbox.lease_owner).where(Mailbox.id == mailbox_id))
    session.commit()
    if not _owner_is_dead(holder):
        return None
    log.warning("mailbox %s: taking over the lease of %s, which is no longer running", mailbox_id, holder)
    return _take(session, mailbox_id, owner, expires, Mailbox.lease_owner == holder)


def acquire_lease(session: Session, mailbox_id: int, owner: str, seconds: int | None = None) -> bool:
    """:func:`take_lease` as a yes/no answer (the historical API)."""
    return take_lease(session, mailbox_id, owner, seconds) is not None


def fence(session: Session, mailbox_id: int, owner: str, generation: int, seconds: int | None = None) -> None:
    """Check the fencing token inside the caller's open transaction and extend the lease; the caller
    commits right after. Raises :class:`LeaseLost` (after rolling back) when another worker has
    taken the lease since ``generation`` was handed out: nothing of the transaction is committed."""
    expires = datetime.now(UTC) + timedelta(seconds=seconds or lease_seconds())
    result = session.execute(
        update(Mailbox).where(Mailbox.id == mailbox_id, Mailbox.lease_owner == owner,
                              Mailbox.lease_generation == generation)
        .values(lease_expires_at=expires).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        session.rollback()
        raise LeaseLost(f"Another worker took over this mailbox (lease generation {generation} is no "
                        "longer current) while this one was paused or too slow; this batch was rolled "
                        "back and stays in the mailbox for the new holder. If this happens often, raise "
                        "HELPDESK_LEASE_SECONDS.")


def release_lease(session: Session, mailbox_id: int, owner: str, generation: int | None = None) -> None:
    """Give the lease up (only if it is still ours, and of ``generation`` when given). Commits."""
    query = update(Mailbox).where(Mailbox.id == mailbox_id, Mailbox.lease_owner == owner)
    if generation is not None:
        query = query.where(Mailbox.lease_generation == generation)
    session.execute(query.values(lease_owner=None, lease_expires_at=None)
                    .execution_options(synchronize_session=False))
    session.commit()


# ---- watch leases: which ``helpdesk watch`` process holds a mailbox's IDLE connection ----------

def claim_watches(session: Session, owner: str, *, limit: int, seconds: int | None = None,
                  candidates: list[int] | None = None) -> list[int]:
    """Renew ``owner``'s watch leases and take free ones (none, expired, or of a dead process of this
    host) up to ``limit`` in all; returns the mailbox ids ``owner`` holds now. Commits.

    Each take is a compare-and-set on the previous holder, so several watch processes together
    hold every mailbox exactly once; ``candidates`` restricts which mailboxes may be taken."""
    now = datetime.now(UTC)
    expires = now + timedelta(seconds=seconds or lease_seconds())
    session.execute(update(Mailbox).where(Mailbox.watch_owner == owner)
                    .values(watch_expires_at=expires).execution_options(synchronize_session=False))
    held = set(session.scalars(select(Mailbox.id).where(Mailbox.watch_owner == owner)))
    query = select(Mailbox.id, Mailbox.watch_owner, Mailbox.watch_expires_at).order_by(Mailbox.id)
    if candidates is not None:
        query = query.where(Mailbox.id.in_(candidates))
    for mailbox_id, holder, until in session.execute(query).all():
        if len(held) >= limit:
            break
        if mailbox_id in held:
            continue
        expired = until is not None and until.replace(tzinfo=until.tzinfo or UTC) < now
        if holder is not None and not expired and not _owner_is_dead(holder):
            continue
        hit = session.execute(
            update(Mailbox).where(Mailbox.id == mailbox_id,
                                  Mailbox.watch_owner.is_(None) if holder is None
                                  else Mailbox.watch_owner == holder)
            .values(watch_owner=owner, watch_expires_at=expires).execution_options(synchronize_session=False))
        if hit.rowcount == 1:
            held.add(mailbox_id)
    session.commit()
    return sorted(held)


def release_watches(session: Session, owner: str, mailbox_ids: list[int] | None = None) -> None:
    """Give up ``owner``'s watch leases (all, or these). Commits."""
    query = update(Mailbox).where(Mailbox.watch_owner == owner)
    if mailbox_ids is not None:
        query = query.where(Mailbox.id.in_(mailbox_ids))
    session.execute(query.values(watch_owner=None, watch_expires_at=None)
                    .execution_options(synchronize_session=False))
    session.commit()
