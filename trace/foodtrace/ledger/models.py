"""Tables of the ledger: one head row per ledger, one plain row per entry."""

from __future__ import annotations

from sqlalchemy import Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel


class Ledger(SQLModel, table=True):
    """A ledger's head row. Appends lock it; ``size`` and ``head_hash`` follow the last entry.

    ``compact_range`` is the RFC 9162 Merkle tree of the ledger in O(log n)
    hashes: the roots of its perfect subtrees, largest first, concatenated
    (``foodtrace.tlog.merkle.CompactRange``, popcount(size) × 32 bytes). Each
    append updates it, so the root at ``size`` is known without reading entries.

    The ledger's id is also the id of the enterprise (or authority) that owns
    it, so every enterprise-owned table's ``enterprise_id`` is its ledger.
    """

    __tablename__ = "ledgers"

    id: int | None = Field(default=None, primary_key=True)
    owner_kind: str = Field(max_length=16)  # "enterprise" | "authority"
    credit_code: str = Field(max_length=18, unique=True)
    origin: str = Field(max_length=255, unique=True)
    size: int = 0
    head_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    compact_range: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: str = Field(max_length=32)


class Entry(SQLModel, table=True):
    """One ledger entry. ``body`` holds the canonical bytes exactly as hashed.

    ``kind``, ``event_time`` and ``recorded_at`` are derived from ``body`` for
    listing; verification checks that they agree with it.
    """

    __tablename__ = "entries"
    # A period's entries of some ledgers (district completeness) without a scan of them all.
    __table_args__ = (Index("ix_entries_ledger_event_time", "ledger_id", "event_time"),)

    ledger_id: int = Field(primary_key=True, foreign_key="ledgers.id")
    seq: int = Field(primary_key=True, ge=1)
    kind: str = Field(max_length=32, index=True)
    event_time: str = Field(max_length=32)
    recorded_at: str = Field(max_length=32)
    prev_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class IdempotencyKey(SQLModel, table=True):
    """A client's idempotency key and the entry it produced (same transaction as the entry)."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("ledger_id", "seq"),)

    ledger_id: int = Field(primary_key=True)
    key: str = Field(primary_key=True, max_length=128)
    request_digest: str = Field(max_length=64)
    seq: int
