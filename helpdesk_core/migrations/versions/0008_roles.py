"""roles: one role per department membership, and an explicit global admin

Until now a user had one role and a list of memberships: ``admin`` without memberships was the
global admin, ``admin`` with memberships the admin of those departments, ``agent`` staff of its
departments. Now each membership carries its own role (``admin``, ``agent``, ``requester``) and
``users.global_admin`` says who has Manage Settings everywhere. Today's data converts as it
behaved: every membership takes the user's role; an admin without memberships becomes global
admin. ``users.role`` stays as the user's highest role (a summary).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 12:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN (SQLite too): a batch table copy of ``users`` would cascade-delete memberships
    op.add_column('memberships', sa.Column('role', sa.Enum('ADMIN', 'AGENT', 'REQUESTER', name='membership_role',
                                                           native_enum=False, length=20),
                                           server_default='AGENT', nullable=False))
    op.add_column('users', sa.Column('global_admin', sa.Boolean(), server_default=sa.false(), nullable=False))

    bind = op.get_bind()
    users = sa.table('users', sa.column('id', sa.Integer), sa.column('role', sa.String),
                     sa.column('global_admin', sa.Boolean))
    memberships = sa.table('memberships', sa.column('user_id', sa.Integer), sa.column('role', sa.String))
    for user in bind.execute(sa.select(users.c.id, users.c.role)).all():
        has_memberships = bind.execute(sa.select(sa.func.count()).select_from(memberships)
                                       .where(memberships.c.user_id == user.id)).scalar_one() > 0
        bind.execute(sa.update(memberships).where(memberships.c.user_id == user.id).values(role=user.role))
        if user.role == 'ADMIN' and not has_memberships:
            bind.execute(sa.update(users).where(users.c.id == user.id).values(global_admin=True))


def downgrade() -> None:
    # back to one role per user: the highest membership role (a global admin loses its memberships,
    # which is what made it global before)
    bind = op.get_bind()
    users = sa.table('users', sa.column('id', sa.Integer), sa.column('role', sa.String),
                     sa.column('global_admin', sa.Boolean))
    memberships = sa.table('memberships', sa.column('user_id', sa.Integer), sa.column('role', sa.String))
    bind.execute(sa.delete(memberships).where(memberships.c.user_id.in_(
        sa.select(users.c.id).where(users.c.global_admin.is_(True)))))
    # ALTER TABLE DROP COLUMN in place (SQLite >= 3.35 too): a table copy would cascade
    op.execute('ALTER TABLE users DROP COLUMN global_admin')
    op.execute('ALTER TABLE memberships DROP COLUMN role')
