"""Single-use links mailed to users: a password reset, a sign-in link for requesters who never
set a password, and an invitation (set your first password).

A link is ``<base_url>/<path>/<token>`` with a random token (``secrets.token_urlsafe(32)``); only
its SHA-256 is stored (:class:`~helpdesk_core.models.UserToken`) with the user, the purpose, when
it expires and when it was used. Using a link marks it used in the same transaction as what it
does (a conditional update: two requests with the same link cannot both succeed), so it works
once. A new password ends every other open link of the user.

The mail goes through the outbox From a department's address
(:mod:`helpdesk_core.outbound.account_mail`): the invitation's department, else a department the
user belongs to, else the one of their latest ticket, else the first that can send mail (has a
mailbox). Asking for a reset or a sign-in link never tells whether the address has an account:
the functions return the queued outbox row's id or None, and an interface answers the same in
both cases (and delivers with :func:`deliver_link_mail` after the commit, best after answering).
Tokens are never logged.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from helpdesk_core.app import Helpdesk
from helpdesk_core.errors import ConfigurationError, PermissionDenied
from helpdesk_core.models import Department, Mailbox, Membership, OutboxMessage, Ticket, TokenPurpose, User, UserToken
from helpdesk_core.outbound.account_mail import ACCOUNT_KINDS, queue_account_mail
from helpdesk_core.outbound.outbox import flush_outbox
from helpdesk_core.services import auth, users
from helpdesk_core.services.departments import get_department
from helpdesk_core.services.permissions import Actor

log = logging.getLogger("helpdesk.account_links")

#: how long a link works
VALID_FOR = {TokenPurpose.RESET: timedelta(hours=1), TokenPurpose.SIGN_IN: timedelta(minutes=30),
             TokenPurpose.INVITE: timedelta(days=7)}
#: the link's path in the web app (``<base_url><path>/<token>``)
PATHS = {TokenPurpose.RESET: "/password-reset", TokenPurpose.SIGN_IN: "/login/link", TokenPurpose.INVITE: "/invite"}
#: outbox kind of each purpose's mail
MAIL_KINDS = {TokenPurpose.RESET: "password_reset", TokenPurpose.SIGN_IN: "sign_in_link",
              TokenPurpose.INVITE: "invite"}
#: at most this many reset or sign-in links are mailed to one user per hour; more requests are
#: ignored (with the same answer), so nobody can flood an inbox through the form
MAX_PER_HOUR = 3


class LinkInvalid(PermissionDenied):
    """A mailed link that does not exist, has expired, was already used, or whose user was
    deactivated. The message says which, and what to do."""

    kind = "link_invalid"


@dataclass(frozen=True)
class Invitation:
    """What :func:`invite_user` did: the user, and the queued invitation (None: the user has a
    password already and was only given the role)."""

    user: User
    outbox_id: int | None


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def _valid_for(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)} days" if minutes > 24 * 60 else "1 day"
    if minutes % 60 == 0:
        return f"{minutes // 60} hours" if minutes > 60 else "1 hour"
    return f"{minutes} minutes"


def _mail_department(session: Session, user: User, preferred: Department | None = None) -> Department | None:
    """The department whose outgoing mail carries a link for ``user`` (see the module docs)."""
    if preferred is not None and preferred.mailbox is not None:
        return preferred
    can_send = select(Mailbox.department_id)
    member = session.scalar(select(Department).join(Membership, Membership.department_id == Department.id)
                            .where(Membership.user_id == user.id, Department.id.in_(can_send))
                            .order_by(Department.id).limit(1))
    if member is not None:
        return member
    latest = session.scalar(select(Department).join(Ticket, Ticket.department_id == Department.id)
                            .where(Ticket.requester_id == user.id, Department.id.in_(can_send))
                            .order_by(Ticket.id.desc()).limit(1))
    if latest is not None:
        return latest
    return session.scalar(select(Department).where(Department.id.in_(can_send)).order_by(Department.id).limit(1))


def _base(base_url: str) -> str:
    base = base_url.strip().rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ConfigurationError(f"The web app's address must start with http:// or https:// (got {base_url!r}).",
                                 details={"field": "base_url"})
    return base


def _issue(app: Helpdesk, session: Session, user: User, purpose: TokenPurpose, base_url: str, now: datetime,
           department: Department, variables: dict[str, str] | None = None) -> int:
    """A new token for ``user``, and its mail queued; returns the outbox row's id."""
    token = secrets.token_urlsafe(32)
    valid = VALID_FOR[purpose]
    session.add(UserToken(user_id=user.id, purpose=purpose, token_sha256=_sha256(token), created_at=now,
                          expires_at=now + valid))
    row = queue_account_mail(app, session, kind=MAIL_KINDS[purpose], user=user, department=department,
                             link=f"{_base(base_url)}{PATHS[purpose]}/{token}", valid_for=_valid_for(valid),
                             variables=variables, now=now)
    session.flush()
    return row.id


def _requested(app: Helpdesk, session: Session, email: str, purpose: TokenPurpose, base_url: str,
               now: datetime | None) -> int | None:
    _base(base_url)  # a wrong address is the caller's mistake, whoever asks
    now = now or datetime.now(UTC)
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or not user.active:
        return None
    if purpose == TokenPurpose.SIGN_IN and (user.password_hash or user.global_admin or user.department_ids):
        return None  # staff and everyone with a password sign in with it (or reset it)
    recent = session.scalar(select(func.count(UserToken.id)).where(
        UserToken.user_id == user.id, UserToken.purpose == purpose, UserToken.created_at > now - timedelta(hours=1)))
    if (recent or 0) >= MAX_PER_HOUR:
        log.info("not mailing another %s link to user %s: %d in the last hour", purpose, user.id, recent)
        return None
    department = _mail_department(session, user)
    if department is None:
        log.warning("cannot mail a %s link to user %s: no department can send mail (configure a mailbox)",
                    purpose, user.id)
        return None
    return _issue(app, session, user, purpose, base_url, now, department)


def request_password_reset(app: Helpdesk, session: Session, *, actor: Actor, email: str, base_url: str,
                           now: datetime | None = None) -> int | None:
    """Mail ``email``'s owner a link to choose a new password (valid 1 hour, once).

    Anyone may ask, signed in or not (``actor`` is usually ANONYMOUS): the link goes only to the
    address itself. Returns the queued outbox row's id, or None when nothing was mailed (no such
    active user, :data:`MAX_PER_HOUR` reached, no department can send mail) — which the
    interface must not show (see the module docs). Never commits.
    """
    del actor  # no permission needed: only the address's owner receives the link
    return _requested(app, session, email, TokenPurpose.RESET, base_url, now)


def request_sign_in_link(app: Helpdesk, session: Session, *, actor: Actor, email: str, base_url: str,
                         now: datetime | None = None) -> int | None:
    """Mail a requester who never set a password a link that signs them in once (valid 30 minutes).

    Like :func:`request_password_reset`: anyone may ask, None when nothing was mailed — also for
    staff and for users with a password, who sign in with it. Never commits.
    """
    del actor  # no permission needed: only the address's owner receives the link
    return _requested(app, session, email, TokenPurpose.SIGN_IN, base_url, now)


def invite_user(app: Helpdesk, session: Session, *, actor: Actor, email: str, role: str, base_url: str,
                department: str | None = None, name: str = "", now: datetime | None = None) -> Invitation:
    """Add ``email`` with ``role`` (in ``department``) as :func:`users.add_user` does — with its
    permission rules: a department admin invites into its own departments, up to its own role —
    and mail them a link to choose their password (valid 7 days, once). A user who has a password
    already only gets the role. Raises ConfigurationError when no department can send the mail
    (the caller rolls back). Never commits."""
    now = now or datetime.now(UTC)
    _base(base_url)
    user = users.add_user(session, actor=actor, email=email, role=role, name=name, department=department)
    if user.password_hash:
        return Invitation(user=user, outbox_id=None)
    dept = get_department(session, department) if department else None
    sender = _mail_department(session, user, dept)
    if sender is None:
        raise ConfigurationError("No department can send mail, so the invitation cannot be mailed: give a "
                                 "department a mailbox first, or set the password yourself.",
                                 details={"hint": "set_mailbox"})
    inviter = actor.email if isinstance(actor, User) else "The help desk administrator"
    outbox_id = _issue(app, session, user, TokenPurpose.INVITE, base_url, now, sender,
                       variables={"inviter": inviter, "role": role})
    return Invitation(user=user, outbox_id=outbox_id)


def _token_row(session: Session, token: str, purposes: tuple[TokenPurpose, ...], now: datetime) -> UserToken:
    row = session.scalar(select(UserToken).where(UserToken.token_sha256 == _sha256(token)))
    again = "Ask for a new link on the sign-in page." if TokenPurpose.INVITE not in purposes else \
        "Ask your administrator for a new invitation, or reset your password on the sign-in page."
    if row is None or row.purpose not in purposes:
        raise LinkInvalid(f"This link is not valid (mistyped or cut off?). {again}")
    if row.used_at is not None:
        raise LinkInvalid(f"This link was already used; it works only once. {again}", kind="link_used")
    if row.expires_at <= now:
        raise LinkInvalid(f"This link has expired. {again}", kind="link_expired")
    if not row.user.active:
        raise LinkInvalid("This account is deactivated: ask an administrator.")
    return row


def _use(session: Session, row: UserToken, now: datetime) -> None:
    done = session.execute(update(UserToken).where(UserToken.id == row.id, UserToken.used_at.is_(None))
                           .values(used_at=now).execution_options(synchronize_session=False))
    if done.rowcount != 1:  # another request used it a moment ago
        raise LinkInvalid("This link was already used; it works only once. Ask for a new link on the sign-in "
                          "page.", kind="link_used")
    session.expire(row)


def check_link(session: Session, *, token: str, purposes: tuple[TokenPurpose, ...],
               now: datetime | None = None) -> User:
    """The user of a link that still works (without using it: the page that asks for the new
    password); :class:`LinkInvalid` otherwise."""
    return _token_row(session, token, purposes, now or datetime.now(UTC)).user


def set_password_with_link(session: Session, *, token: str, password: str,
                           purposes: tuple[TokenPurpose, ...] = (TokenPurpose.RESET, TokenPurpose.INVITE),
                           now: datetime | None = None) -> User:
    """Use a reset or invitation link: set the user's new password (argon2, the rules of
    :func:`auth.set_password`, acting as the user themself) and end their other open links.
    A password that is refused leaves the link unused. Never commits."""
    now = now or datetime.now(UTC)
    row = _token_row(session, token, purposes, now)
    user = auth.set_password(session, actor=row.user, email=row.user.email, password=password)
    _use(session, row, now)
    session.execute(update(UserToken).where(UserToken.user_id == user.id, UserToken.used_at.is_(None))
                    .values(used_at=now).execution_options(synchronize_session=False))
    return user


def sign_in_with_link(session: Session, *, token: str, now: datetime | None = None) -> User:
    """Use a sign-in link: the user it signs in (once). Never commits."""
    now = now or datetime.now(UTC)
    row = _token_row(session, token, (TokenPurpose.SIGN_IN,), now)
    _use(session, row, now)
    return row.user


def deliver_link_mail(app: Helpdesk, *, outbox_id: int) -> str | None:
    """Send a just-queued (and committed) link mail now, with its department's other due mail; the
    row's status afterwards (None when it is not a link mail). Needs no permission: it only sends
    what the worker's next flush would send anyway. Uses and commits its own sessions."""
    with app.session() as session:
        row = session.get(OutboxMessage, outbox_id)
        if row is None or row.kind not in ACCOUNT_KINDS:
            return None
        department_id = row.department_id
    flush_outbox(app, department=department_id)
    with app.session() as session:
        row = session.get(OutboxMessage, outbox_id)
        return None if row is None else str(row.status)
