"""A byte-for-byte picture of a database's ledgers and derived tables, to prove nothing changed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from foodtrace.db import read_session
from foodtrace.models import Attachment, Entry, IdempotencyKey, Ledger
from foodtrace.records.projection import TABLES


def snapshot(engine: Engine) -> dict[str, Any]:
    tables = {
        "ledgers": Ledger.__table__,
        "entries": Entry.__table__,
        "idempotency_keys": IdempotencyKey.__table__,
        "attachments": Attachment.__table__,
        **TABLES,
    }
    out: dict[str, Any] = {}
    with read_session(engine) as session:
        for name, table in tables.items():
            rows = session.execute(select(table)).all()
            out[name] = sorted(tuple(map(_plain, r)) for r in rows)
    return out


def _plain(v: Any) -> Any:
    return bytes(v) if isinstance(v, memoryview) else v
