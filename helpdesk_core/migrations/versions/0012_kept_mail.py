"""kept mail: ``failed_imports`` becomes ``kept_mail`` (it holds held mail too) with ``kind``.

``kind`` says why the raw message was kept (``failed`` import or ``held`` by the rate limit) and
stays when its status moves on (retried, released, discarded), so a discarded held mail is never
shown as a failed import. Existing rows: ``held`` and ``released`` ones were held; a row already
discarded counts as failed (its origin was not recorded).

Revision ID: 0012_kept_mail
Revises: 0011_backlog
Create Date: 2026-12-02 15:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012_kept_mail'
down_revision = '0011_backlog'
branch_labels = None
depends_on = None

#: (old, new) constraint names that follow the naming convention's table name (PostgreSQL keeps
#: them on a rename; SQLite keeps the table's CREATE statement, where the names are inert)
RENAMED = [("pk_failed_imports", "pk_kept_mail"),
           ("fk_failed_imports_department_id_departments", "fk_kept_mail_department_id_departments"),
           ("fk_failed_imports_ticket_message_id_ticket_messages",
            "fk_kept_mail_ticket_message_id_ticket_messages")]


def _rename(old_table: str, new_table: str, names: list[tuple[str, str]]) -> None:
    old_index, new_index = f"ix_{old_table}_department_id", f"ix_{new_table}_department_id"
    op.drop_index(old_index, table_name=old_table)
    op.rename_table(old_table, new_table)
    if op.get_bind().dialect.name == "postgresql":
        for old, new in names:
            op.execute(f'ALTER TABLE {new_table} RENAME CONSTRAINT "{old}" TO "{new}"')
    op.create_index(new_index, new_table, ["department_id"])


def upgrade() -> None:
    _rename("failed_imports", "kept_mail", RENAMED)
    op.add_column("kept_mail", sa.Column("kind", sa.String(20), nullable=False, server_default="failed"))
    op.execute("UPDATE kept_mail SET kind = 'held' WHERE status IN ('held', 'released')")


def downgrade() -> None:
    with op.batch_alter_table("kept_mail") as batch:
        batch.drop_column("kind")
    _rename("kept_mail", "failed_imports", [(new, old) for old, new in RENAMED])
