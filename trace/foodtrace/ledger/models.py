"""Tables of the ledger: one head row per ledger, a row per entry, its signed checkpoints."""

from __future__ import annotations

from sqlalchemy import Column, Index, LargeBinary, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

_INSTANT_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z"
UNUSUAL_ENTRY = {
    "postgresql": "substr(recorded_at, 1, 10) > substr(event_time, 1, 10)"
    " OR NOT ((event_time || recorded_at) LIKE '____-__-__T__:__:__Z____-__-__T__:__:__Z')",
    "sqlite": "substr(recorded_at, 1, 10) > substr(event_time, 1, 10)"
    f" OR NOT ((event_time || recorded_at) GLOB '{_INSTANT_GLOB * 2}')",
}
"""The entries recorded on a later (UTC) day than their event, or with a time not in the
whole-second UTC form ``format_instant`` gives (PostgreSQL's LIKE is case-sensitive,
SQLite's is not: there GLOB). Only these can be entered more than a day late, which
district completeness asks of every record of a month; a partial index keeps them, so
that question reads these few entries and not the month's. A query uses the index when
its condition contains this text as it is."""


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
    __table_args__ = (
        Index("ix_entries_ledger_event_time", "ledger_id", "event_time"),
        Index(
            "ix_entries_unusual",
            "ledger_id",
            "seq",
            postgresql_where=text(UNUSUAL_ENTRY["postgresql"]),
            sqlite_where=text(UNUSUAL_ENTRY["sqlite"]),
        ),
    )

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


class ImportKey(SQLModel, table=True):
    """An import's idempotency key, the file it came with, and the answer it was given.

    Written in the import's own transaction, so a key is stored exactly when the
    file's entries are: a retry with the same key and the same file gets this answer
    again and writes nothing; another file under the key is refused (409)."""

    __tablename__ = "import_keys"

    ledger_id: int = Field(primary_key=True, foreign_key="ledgers.id")
    key: str = Field(primary_key=True, max_length=160)
    request_digest: str = Field(max_length=64)
    """SHA-256 (hex) of the record kind and the file's bytes."""
    status: int
    answer: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    """The answer's JSON bytes, as first sent."""
    first_seq: int
    last_seq: int
    created_at: str = Field(max_length=32)


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
