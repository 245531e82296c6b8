"""Signed checkpoints of each ledger, as issued (the note text is stored exactly as signed)."""

from __future__ import annotations

from sqlalchemy import Column, LargeBinary, Text
from sqlmodel import Field, SQLModel


class SignedCheckpoint(SQLModel, table=True):
    """One signed C2SP checkpoint of a ledger at ``size``.

    ``root`` and ``size`` repeat what the note says, for lookups; verification
    checks that they agree with the note, and that the root is the one the
    ledger's entries give at that size. ``compact_range`` is the head's compact
    range when it was signed (the tree at ``size`` in O(log n) hashes; null for
    checkpoints signed before migration 0008): the next signing's consistency
    proof is made from it and the entries since, not from every leaf.
    """

    __tablename__ = "checkpoints"

    ledger_id: int = Field(primary_key=True, foreign_key="ledgers.id")
    size: int = Field(primary_key=True, ge=0)
    root: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    note: str = Field(sa_column=Column(Text, nullable=False))
    signed_at: str = Field(max_length=32)
    compact_range: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
