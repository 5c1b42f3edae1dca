"""integrity: fixed-size ledger keys with a content digest, and the import log (import_events)

The ledger key becomes the sha256 hex digest of the normalised Message-ID (or of the raw bytes),
so no Message-ID can overflow the column or break a query; existing keys are converted here
(``mid:<id>`` -> digest of the id, ``sha256:<hex>`` -> the hex). Entries from before have no
content digest (NULL): the importer takes them as duplicates of any mail with their key. The
skipped, held, failed and kept entries are copied into the new import log.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 06:40:00
"""
from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

#: ledger outcomes that were shown by ``helpdesk log``
_LOGGED = ('skipped', 'held', 'failed', 'kept')


def _new_key(old: str) -> str:
    """Frozen copy of :func:`helpdesk_core.models.imports.ledger_key` for the stored forms."""
    if old.startswith('sha256:'):
        return old[len('sha256:'):]
    value = old[len('mid:'):].strip() if old.startswith('mid:') else old.strip()
    if value.startswith('<') and value.endswith('>'):
        value = value[1:-1].strip()
    return hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()


def upgrade() -> None:
    op.create_table(
        'import_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('department_id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('raw_sha256', sa.String(length=64), nullable=False),
        sa.Column('outcome', sa.String(length=20), nullable=False),
        sa.Column('kind', sa.String(length=64), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('message_id', sa.String(length=300), nullable=False),
        sa.Column('subject', sa.String(length=300), nullable=False),
        sa.Column('sender', sa.String(length=300), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['department_id'], ['departments.id'],
                                name=op.f('fk_import_events_department_id_departments'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_import_events')),
    )
    with op.batch_alter_table('import_events') as batch:
        batch.create_index(batch.f('ix_import_events_department_id'), ['department_id'], unique=False)
    with op.batch_alter_table('import_ledger') as batch:
        batch.add_column(sa.Column('content_sha256', sa.String(length=64), nullable=True))

    bind = op.get_bind()
    ledger = sa.table('import_ledger', sa.column('id', sa.Integer), sa.column('department_id', sa.Integer),
                      sa.column('key', sa.String), sa.column('raw_sha256', sa.String),
                      sa.column('outcome', sa.String), sa.column('reason', sa.Text),
                      sa.column('created_at', sa.DateTime(timezone=True)))
    events = sa.table('import_events', *(sa.column(name) for name in (
        'department_id', 'key', 'raw_sha256', 'outcome', 'kind', 'reason', 'message_id', 'subject',
        'sender', 'created_at')))
    seen: set[tuple[int, str]] = set()
    rows = bind.execute(sa.select(ledger).order_by(ledger.c.id)).all()
    for row in rows:
        key = _new_key(row.key)
        if (row.department_id, key) in seen:  # two spellings of one id: keep the first entry
            bind.execute(sa.delete(ledger).where(ledger.c.id == row.id))
            continue
        seen.add((row.department_id, key))
        bind.execute(sa.update(ledger).where(ledger.c.id == row.id).values(key=key))
        if row.outcome in _LOGGED:
            message_id = row.key[len('mid:'):] if row.key.startswith('mid:') else ''
            bind.execute(sa.insert(events).values(
                department_id=row.department_id, key=key, raw_sha256=row.raw_sha256, outcome=row.outcome,
                kind='', reason=(row.reason or '').replace('\x00', ''), message_id=message_id[:300].replace('\x00', ''),
                subject='', sender='', created_at=row.created_at))

    with op.batch_alter_table('import_ledger') as batch:
        batch.drop_constraint('uq_import_ledger_department_id_key', type_='unique')
        batch.alter_column('key', existing_type=sa.String(length=1000), type_=sa.String(length=64),
                           existing_nullable=False)
        batch.create_unique_constraint(batch.f('uq_import_ledger_department_id_key_content_sha256'),
                                       ['department_id', 'key', 'content_sha256'])


def downgrade() -> None:
    with op.batch_alter_table('import_ledger') as batch:
        batch.drop_constraint('uq_import_ledger_department_id_key_content_sha256', type_='unique')
        batch.alter_column('key', existing_type=sa.String(length=64), type_=sa.String(length=1000),
                           existing_nullable=False)
        batch.drop_column('content_sha256')
    bind = op.get_bind()
    ledger = sa.table('import_ledger', sa.column('id', sa.Integer), sa.column('department_id', sa.Integer),
                      sa.column('key', sa.String))
    rows = bind.execute(sa.select(ledger).order_by(ledger.c.id)).all()
    seen: set[tuple[int, str]] = set()
    for row in rows:  # digests stay digests, marked as content hashes; reused ids collapse
        if (row.department_id, row.key) in seen:
            bind.execute(sa.delete(ledger).where(ledger.c.id == row.id))
            continue
        seen.add((row.department_id, row.key))
        bind.execute(sa.update(ledger).where(ledger.c.id == row.id).values(key='sha256:' + row.key))
    with op.batch_alter_table('import_ledger') as batch:
        batch.create_unique_constraint(batch.f('uq_import_ledger_department_id_key'), ['department_id', 'key'])
    with op.batch_alter_table('import_events') as batch:
        batch.drop_index(batch.f('ix_import_events_department_id'))
    op.drop_table('import_events')
