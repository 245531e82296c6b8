"""checkpoints keep the compact range they were signed at

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26

The next signing of a grown ledger needs a consistency proof from the last
signed size; made from every leaf hash it cost O(n) per ledger per second
(BENCHMARKS.md). With the signed tree's compact range kept beside its
checkpoint, the proof takes O(log n + new entries). Older checkpoints keep
null: their proofs are made from the leaves, as before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"


def upgrade() -> None:
    op.add_column("checkpoints", sa.Column("compact_range", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    op.drop_column("checkpoints", "compact_range")
