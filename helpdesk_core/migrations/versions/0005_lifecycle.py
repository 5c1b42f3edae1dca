"""lifecycle: statuses, priority, assignee, tags, events, aliases, canned replies, user flags, full-text search

Revision ID: 0005
Revises: 0004_scale
Create Date: 2026-12-02 06:10:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004_scale'
branch_labels = None
depends_on = None

FTS_COLUMNS = "subject, body_text, from_email, from_name, cc"
PG_DOCUMENT = ("to_tsvector('simple', coalesce(subject, '') || ' ' || coalesce(body_text, '') || ' ' || "
               "coalesce(from_email, '') || ' ' || coalesce(from_name, '') || ' ' || coalesce(cc::text, ''))")


def _values(prefix: str) -> str:
    return ", ".join(f"{prefix}.{c.strip()}" for c in FTS_COLUMNS.split(","))


SQLITE_FTS = [
    f"CREATE VIRTUAL TABLE ticket_messages_fts USING fts5({FTS_COLUMNS}, "
    "content='ticket_messages', content_rowid='id')",
    f"""CREATE TRIGGER ticket_messages_fts_insert AFTER INSERT ON ticket_messages BEGIN
        INSERT INTO ticket_messages_fts(rowid, {FTS_COLUMNS}) VALUES (new.id, {_values('new')});
    END""",
    f"""CREATE TRIGGER ticket_messages_fts_delete AFTER DELETE ON ticket_messages BEGIN
        INSERT INTO ticket_messages_fts(ticket_messages_fts, rowid, {FTS_COLUMNS})
        VALUES ('delete', old.id, {_values('old')});
    END""",
    f"""CREATE TRIGGER ticket_messages_fts_update AFTER UPDATE ON ticket_messages BEGIN
        INSERT INTO ticket_messages_fts(ticket_messages_fts, rowid, {FTS_COLUMNS})
        VALUES ('delete', old.id, {_values('old')});
        INSERT INTO ticket_messages_fts(rowid, {FTS_COLUMNS}) VALUES (new.id, {_values('new')});
    END""",
    "INSERT INTO ticket_messages_fts(ticket_messages_fts) VALUES ('rebuild')",
]


def upgrade() -> None:
    with op.batch_alter_table('tickets') as batch:
        batch.add_column(sa.Column('priority', sa.Enum('LOW', 'NORMAL', 'HIGH', 'URGENT', name='ticket_priority',
                                                       native_enum=False, length=20),
                                   nullable=False, server_default='NORMAL'))
        batch.add_column(sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True))
    if op.get_bind().dialect.name == 'sqlite':
        # a column with its constraint, without recreating the table (its DROP would cascade deletes);
        # no ON DELETE: SQLite does not report it for a column constraint (users are deactivated, not deleted)
        op.execute("ALTER TABLE tickets ADD COLUMN assignee_id INTEGER CONSTRAINT fk_tickets_assignee_id_users "
                   "REFERENCES users (id)")
    else:
        op.add_column('tickets', sa.Column('assignee_id', sa.Integer(), nullable=True))
        op.create_foreign_key('fk_tickets_assignee_id_users', 'tickets', 'users', ['assignee_id'], ['id'])
    op.create_index('ix_tickets_assignee_id', 'tickets', ['assignee_id'], unique=False)
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('active', sa.Boolean(), nullable=False, server_default='1'))
        batch.add_column(sa.Column('notifications', sa.Boolean(), nullable=False, server_default='1'))

    op.create_table('ticket_tags',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=False),
        sa.Column('tag', sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name='fk_ticket_tags_ticket_id_tickets',
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name='pk_ticket_tags'),
        sa.UniqueConstraint('ticket_id', 'tag', name='uq_ticket_tags_ticket_id_tag'))
    op.create_index('ix_ticket_tags_tag', 'ticket_tags', ['tag'], unique=False)
    op.create_table('ticket_aliases',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=False),
        sa.Column('department_id', sa.Integer(), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['department_id'], ['departments.id'],
                                name='fk_ticket_aliases_department_id_departments', ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name='fk_ticket_aliases_ticket_id_tickets',
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name='pk_ticket_aliases'),
        sa.UniqueConstraint('department_id', 'number', name='uq_ticket_aliases_department_id_number'))
    op.create_index('ix_ticket_aliases_ticket_id', 'ticket_aliases', ['ticket_id'], unique=False)
    op.create_table('ticket_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=False),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('actor_email', sa.String(length=320), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('old', sa.JSON(), nullable=True),
        sa.Column('new', sa.JSON(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name='fk_ticket_events_actor_id_users',
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name='fk_ticket_events_ticket_id_tickets',
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name='pk_ticket_events'))
    op.create_index('ix_ticket_events_ticket_id_id', 'ticket_events', ['ticket_id', 'id'], unique=False)
    op.create_table('reply_templates',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('department_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['department_id'], ['departments.id'],
                                name='fk_reply_templates_department_id_departments', ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name='pk_reply_templates'),
        sa.UniqueConstraint('department_id', 'name', name='uq_reply_templates_department_id_name'))

    if op.get_bind().dialect.name == 'sqlite':
        for statement in SQLITE_FTS:
            op.execute(statement)
    else:
        op.execute(f"CREATE INDEX ix_ticket_messages_fts ON ticket_messages USING gin ({PG_DOCUMENT})")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        for trigger in ('insert', 'delete', 'update'):
            op.execute(f"DROP TRIGGER IF EXISTS ticket_messages_fts_{trigger}")
        op.execute("DROP TABLE IF EXISTS ticket_messages_fts")
    else:
        op.execute("DROP INDEX IF EXISTS ix_ticket_messages_fts")
    op.drop_table('reply_templates')
    op.drop_index('ix_ticket_events_ticket_id_id', table_name='ticket_events')
    op.drop_table('ticket_events')
    op.drop_index('ix_ticket_aliases_ticket_id', table_name='ticket_aliases')
    op.drop_table('ticket_aliases')
    op.drop_index('ix_ticket_tags_tag', table_name='ticket_tags')
    op.drop_table('ticket_tags')
    with op.batch_alter_table('users') as batch:
        batch.drop_column('notifications')
        batch.drop_column('active')
    op.drop_index('ix_tickets_assignee_id', table_name='tickets')
    if op.get_bind().dialect.name != 'sqlite':
        op.drop_constraint('fk_tickets_assignee_id_users', 'tickets', type_='foreignkey')
    with op.batch_alter_table('tickets') as batch:
        batch.drop_column('resolved_at')
        batch.drop_column('assignee_id')
        batch.drop_column('priority')
