"""Single-use links mailed to users: password reset, sign-in link, invitation.

Only the SHA-256 of the random token is stored (the token itself is in the mail and nowhere
else), with its purpose, expiry and when it was used; a row is used at most once
(:mod:`helpdesk_core.services.account_links`).
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk_core.models.base import Base, created_at, intpk
from helpdesk_core.models.user import User


class TokenPurpose(enum.StrEnum):
    """What a mailed link does: set a new password (``reset``), sign in once (``sign_in``), or set
    the first password of an invited user (``invite``)."""

    RESET = "reset"
    SIGN_IN = "sign_in"
    INVITE = "invite"


class UserToken(Base):
    """One mailed link: the hash of its token, whose it is, what for, until when, used when."""

    __tablename__ = "user_tokens"
    __table_args__ = (
        UniqueConstraint("token_sha256", name="uq_user_tokens_token_sha256"),
        Index("ix_user_tokens_user_id_purpose_created_at", "user_id", "purpose", "created_at"),
    )

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE",
                                                    name="fk_user_tokens_user_id_users"))
    purpose: Mapped[TokenPurpose] = mapped_column(Enum(TokenPurpose, name="token_purpose", native_enum=False,
                                                       length=20))
    #: hex SHA-256 of the token in the link; the token itself is never stored
    token_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[created_at]
    expires_at: Mapped[datetime]
    #: when the link was used (None: not yet); a used link never works again
    used_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()
