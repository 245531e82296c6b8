"""Signed checkpoints of each ledger, as issued (the note text is stored exactly as signed)."""

from __future__ import annotations

from sqlalchemy import Column, LargeBinary, Text
from sqlmodel import Field, SQLModel


class SignedCheckpoint(SQLModel, table=True):
    """One signed C2SP checkpoint of a ledger at ``size``.

    ``root`` and ``size`` repeat what the note says, for lookups; verification
    checks that they agree with the note, and that the root is the one the
    ledger's entries give at that size.
    """

    __tablename__ = "checkpoints"

    ledger_id: int = Field(primary_key=True, foreign_key="ledgers.id")
    size: int = Field(primary_key=True, ge=0)
    root: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    note: str = Field(sa_column=Column(Text, nullable=False))
    signed_at: str = Field(max_length=32)
