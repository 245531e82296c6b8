"""entries recorded a day or more after their event: a partial index

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26

District completeness asks, of every record of a month's lots, whether it was
entered more than a day after its event. Joining each record to its entry cost
a lookup per CCP reading (about 300,000 for a district month). Only an entry
recorded on a later (UTC) day than its event, or with a time in another form,
can be late: this index keeps just those (``ledger.models.UNUSUAL_ENTRY``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# As ``ledger.models.UNUSUAL_ENTRY`` was when this revision was written.
_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z"
UNUSUAL_ENTRY = {
    "postgresql": "substr(recorded_at, 1, 10) > substr(event_time, 1, 10)"
    " OR NOT ((event_time || recorded_at) LIKE '____-__-__T__:__:__Z____-__-__T__:__:__Z')",
    "sqlite": "substr(recorded_at, 1, 10) > substr(event_time, 1, 10)"
    f" OR NOT ((event_time || recorded_at) GLOB '{_GLOB * 2}')",
}

revision: str = "0009"
down_revision: str | None = "0008"


def upgrade() -> None:
    op.create_index(
        "ix_entries_unusual",
        "entries",
        ["ledger_id", "seq"],
        unique=False,
        postgresql_where=sa.text(UNUSUAL_ENTRY["postgresql"]),
        sqlite_where=sa.text(UNUSUAL_ENTRY["sqlite"]),
    )


def downgrade() -> None:
    op.drop_index("ix_entries_unusual", table_name="entries")
