"""bounces: outgoing mail marked bounced (when, recipient, DSN status)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 18:10:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox_messages') as batch:
        batch.add_column(sa.Column('bounced_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('bounce_recipient', sa.String(length=320), nullable=True))
        batch.add_column(sa.Column('bounce_status', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox_messages') as batch:
        batch.drop_column('bounce_status')
        batch.drop_column('bounce_recipient')
        batch.drop_column('bounced_at')
