"""scale-out: mailbox lease generation (fencing token), consecutive failures (backoff), watch lease

Revision ID: 0004_scale
Revises: 0003
Create Date: 2026-12-02 06:10:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004_scale'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('mailboxes') as batch:
        batch.add_column(sa.Column('lease_generation', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('consecutive_failures', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('watch_owner', sa.String(length=200), nullable=True))
        batch.add_column(sa.Column('watch_expires_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('mailboxes') as batch:
        batch.drop_column('watch_expires_at')
        batch.drop_column('watch_owner')
        batch.drop_column('consecutive_failures')
        batch.drop_column('lease_generation')
