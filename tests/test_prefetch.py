"""DbStore.prefetch: one IN query fills ``find`` for many values, with the same rows."""

from __future__ import annotations

from sqlalchemy import event

from foodtrace.db import read_session
from foodtrace.records.projection import DbStore

from factories import add, beverage_ledger, sale


def test_prefetched_rows_are_the_rows_find_reads(engine, clock) -> None:
    lid = beverage_ledger(engine, clock)
    add(engine, clock, lid, "sale", sale(quantity="20", document_no="CK-2"))
    with read_session(engine) as s:
        lot_seq = DbStore(s, lid).find("lots")[0]["record_seq"]
        expected = DbStore(s, lid).find("sales", lot_seq=lot_seq)
    with read_session(engine) as s:
        store = DbStore(s, lid)
        queries: list[str] = []

        @event.listens_for(engine, "before_cursor_execute")
        def _count(_c, _cur, statement, *_a):  # type: ignore[no-untyped-def]
            if statement.lstrip().upper().startswith("SELECT"):
                queries.append(statement)

        store.prefetch("sales", "lot_seq", [lot_seq, 999_999])
        assert len(queries) == 1
        assert store.find("sales", lot_seq=lot_seq) == expected
        assert len(expected) == 2
        assert store.find("sales", lot_seq=999_999) == []  # a value with no rows is remembered
        assert len(queries) == 1
        event.remove(engine, "before_cursor_execute", _count)
