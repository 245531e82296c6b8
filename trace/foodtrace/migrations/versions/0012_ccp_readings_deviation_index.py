"""an enterprise's CCP deviations by time: a partial index

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07

A case's CCP scope asks for the deviations an enterprise recorded while the sampled lot
was in production. The only index on ``ccp_readings`` was by lot, so that read went
through every reading the enterprise ever took (48 a day on a line): a case cost more as
the enterprise's history grew. This index keeps only the deviations, by time
(``records.models.DEVIATION_PREDICATE``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# As ``records.models.DEVIATION_PREDICATE`` was when this revision was written.
DEVIATION_PREDICATE = {"postgresql": "deviation IS true", "sqlite": "deviation IS 1"}

revision: str = "0012"
down_revision: str | None = "0011"


def upgrade() -> None:
    op.create_index(
        "ix_ccp_readings_deviation",
        "ccp_readings",
        ["enterprise_id", "measured_at"],
        unique=False,
        postgresql_where=sa.text(DEVIATION_PREDICATE["postgresql"]),
        sqlite_where=sa.text(DEVIATION_PREDICATE["sqlite"]),
    )


def downgrade() -> None:
    op.drop_index("ix_ccp_readings_deviation", table_name="ccp_readings")
