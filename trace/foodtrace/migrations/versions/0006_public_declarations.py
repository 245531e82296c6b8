"""public declarations: the derived table of each lot's public declaration entries

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26

A ``public_declaration`` entry (DESIGN.md, "QR codes and the consumer page") is
appended by the platform when a lot is released; this table lets the consumer
page find a lot's declarations without reading the ledger. It starts empty:
lots released before this migration get their declarations from
``foodtrace declare`` (no entry is ever written by a migration).

The revision is named, not just numbered, so that it cannot be confused with
another branch's 0005.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0006"
down_revision: str | None = "0005"


def upgrade() -> None:
    op.create_table(
        "public_declarations",
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("record_seq", sa.Integer(), nullable=False),
        sa.Column("current_seq", sa.Integer(), nullable=False),
        sa.Column("lot_seq", sa.Integer(), nullable=False),
        sa.Column("conclusion", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
        sa.Column("facts_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("enterprise_id", "record_seq"),
    )
    with op.batch_alter_table("public_declarations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_public_declarations_lot", ["enterprise_id", "lot_seq"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("public_declarations", schema=None) as batch_op:
        batch_op.drop_index("ix_public_declarations_lot")
    op.drop_table("public_declarations")
