"""tokens: single-use mailed links (password reset, sign-in link, invitation), stored as hashes

Revision ID: 0010_tokens
Revises: 0009
Create Date: 2026-12-02 14:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010_tokens'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'user_tokens',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('purpose', sa.Enum('RESET', 'SIGN_IN', 'INVITE', name='token_purpose', native_enum=False,
                                     length=20), nullable=False),
        sa.Column('token_sha256', sa.String(64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name='fk_user_tokens_user_id_users', ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name='pk_user_tokens'),
        sa.UniqueConstraint('token_sha256', name='uq_user_tokens_token_sha256'),
    )
    op.create_index('ix_user_tokens_user_id_purpose_created_at', 'user_tokens',
                    ['user_id', 'purpose', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_user_tokens_user_id_purpose_created_at', table_name='user_tokens')
    op.drop_table('user_tokens')
