"""suppliers and customers can be set inactive

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07

A supplier or customer the enterprise no longer deals with is set inactive by a new
version of its record (a correction whose record says ``inactive: true``); the forms stop
offering it, and the records that name it still show it. The derived rows keep the flag:
NULL for an active party (every row written before this revision), true for an inactive
one, so a replay of the ledger gives the rows this column holds.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"


def upgrade() -> None:
    for table in ("suppliers", "customers"):
        op.add_column(table, sa.Column("inactive", sa.Boolean(), nullable=True))


def downgrade() -> None:
    for table in ("suppliers", "customers"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("inactive")
