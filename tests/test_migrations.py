"""Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import foodtrace.models  # noqa: F401
from foodtrace.db import current_revision, head_revision, make_engine, migrate


def test_migrated_schema_matches_the_models(db_url) -> None:
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_migrate_is_idempotent(db_url) -> None:
    engine = make_engine(db_url)
    try:
        migrate(engine)
        migrate(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_0004_gives_existing_ledgers_their_merkle_compact_range(db_url) -> None:
    """A database with entries written before the Merkle log gets each head's compact range."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from foodtrace.db import migrations_dir
    from foodtrace.tlog.merkle import CompactRange

    engine = make_engine(db_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0003")
        hashes = [bytes([i]) * 32 for i in range(1, 14)]
        with engine.begin() as conn:
            for lid, n in ((1, 13), (2, 0)):
                conn.execute(
                    text(
                        "INSERT INTO ledgers (id, owner_kind, credit_code, origin, size,"
                        " head_hash, created_at)"
                        " VALUES (:i, 'enterprise', :c, :o, :n, :h, '2026-03-02T00:30:00Z')"
                    ),
                    {"i": lid, "c": f"C{lid}", "o": f"o/{lid}", "n": n, "h": bytes(32)},
                )
            for seq, h in enumerate(hashes, 1):
                conn.execute(
                    text(
                        "INSERT INTO entries (ledger_id, seq, kind, event_time, recorded_at,"
                        " prev_hash, hash, body) VALUES (1, :s, 'k', 't', 't', :p, :h, :b)"
                    ),
                    {"s": seq, "p": bytes(32), "h": h, "b": b"{}"},
                )
        migrate(engine)
        with engine.connect() as conn:
            got = dict(conn.execute(text("SELECT id, compact_range FROM ledgers")).all())
        assert bytes(got[1]) == CompactRange.of(hashes).to_bytes()
        assert len(got[1]) == 3 * 32  # 13 = 8 + 4 + 1
        assert bytes(got[2]) == b""
    finally:
        engine.dispose()
