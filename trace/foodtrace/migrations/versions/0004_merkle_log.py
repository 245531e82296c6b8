"""merkle log: the compact range in each ledger's head row, and signed checkpoints

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

Existing ledgers get their compact range computed here from the leaf hashes
already stored in ``entries.hash`` (the RFC 9162 tree over them; see
foodtrace.tlog.merkle.CompactRange). The few lines of that computation are
repeated below rather than imported, so that this migration keeps meaning
what it meant when it was written.
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0004"
down_revision: str | None = "0003"


def _compact_range(leaf_hashes: list[bytes]) -> bytes:
    """Roots of the perfect subtrees, largest first: SHA-256(0x01 || left || right) merges."""
    stack: list[bytes] = []
    for n, h in enumerate(leaf_hashes):
        while n & 1:
            h = hashlib.sha256(b"\x01" + stack.pop() + h).digest()
            n >>= 1
        stack.append(h)
    return b"".join(stack)


def upgrade() -> None:
    # NOT NULL with a default so that existing rows get a value without SQLite
    # rebuilding the table (a rebuild would drop a table that entries reference);
    # every existing row is then given its real compact range.
    empty = sa.text("X''") if op.get_bind().dialect.name == "sqlite" else sa.text("''::bytea")
    op.add_column(
        "ledgers",
        sa.Column("compact_range", sa.LargeBinary(), nullable=False, server_default=empty),
    )
    op.create_table(
        "checkpoints",
        sa.Column("ledger_id", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("signed_at", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["ledger_id"], ["ledgers.id"]),
        sa.PrimaryKeyConstraint("ledger_id", "size"),
    )
    conn = op.get_bind()
    ledgers = conn.execute(sa.text("SELECT id, size FROM ledgers")).all()
    for ledger_id, size in ledgers:
        hashes = [
            bytes(h)
            for (h,) in conn.execute(
                sa.text(
                    "SELECT hash FROM entries WHERE ledger_id = :l AND seq <= :n ORDER BY seq"
                ),
                {"l": ledger_id, "n": size},
            )
        ]
        conn.execute(
            sa.text("UPDATE ledgers SET compact_range = :c WHERE id = :l"),
            {"c": _compact_range(hashes), "l": ledger_id},
        )


def downgrade() -> None:
    op.drop_table("checkpoints")
    with op.batch_alter_table("ledgers", schema=None) as batch_op:
        batch_op.drop_column("compact_range")
