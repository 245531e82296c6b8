"""entries by ledger and event time: a period's entries without reading whole ledgers

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26

District completeness reads the entries of a month for every enterprise of a
district; with only the (ledger_id, seq) key that was a scan of every entry.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"


def upgrade() -> None:
    op.create_index(
        "ix_entries_ledger_event_time", "entries", ["ledger_id", "event_time"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_entries_ledger_event_time", table_name="entries")
