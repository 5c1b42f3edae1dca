"""trust: tickets.sender_verified (False when the receiving server failed the first mail's
DKIM/DMARC; existing tickets count as verified)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 12:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a plain ADD COLUMN (SQLite allows it with a constant default): no table copy
    op.add_column('tickets', sa.Column('sender_verified', sa.Boolean(), server_default=sa.true(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('tickets') as batch:
        batch.drop_column('sender_verified')
