"""backlog: ``mailboxes.configured_at``, when the mailbox was first configured.

Mail dated before it is a backlog (a first import of a full mailbox) and gets no acknowledgement.
Existing mailboxes take the time their row was written (``updated_at``, set when it was created).

Revision ID: 0011_backlog
Revises: 0010_tokens
Create Date: 2026-12-02 14:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011_backlog'
down_revision = '0010_tokens'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('mailboxes', sa.Column('configured_at', sa.DateTime(timezone=True), nullable=True))
    mailboxes = sa.table('mailboxes', sa.column('configured_at', sa.DateTime(timezone=True)),
                         sa.column('updated_at', sa.DateTime(timezone=True)))
    op.execute(sa.update(mailboxes).values(configured_at=mailboxes.c.updated_at))
    # NOT NULL: a table copy on SQLite, harmless here (no table refers to mailboxes)
    with op.batch_alter_table('mailboxes') as batch:
        batch.alter_column('configured_at', existing_type=sa.DateTime(timezone=True), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('mailboxes') as batch:
        batch.drop_column('configured_at')
