"""``bulk.insert_rows``: COPY on PostgreSQL (from COPY_FROM_ROWS rows), INSERT otherwise.

The rows read back are the rows given, whatever the way; a row the table refuses
fails the statement as the INSERT would (SQLAlchemy's IntegrityError), and the
transaction writes nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from foodtrace.bulk import COPY_FROM_ROWS, insert_rows
from foodtrace.records.models import CcpReading

TABLE = CcpReading.__table__  # type: ignore[attr-defined]


def _rows(n: int, enterprise_id: int = 7) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        out.append(
            {
                "enterprise_id": enterprise_id,
                "record_seq": i + 1,
                "current_seq": i + 1,
                "lot_seq": 3,
                "ccp": "CCP1",
                "parameter": "temperature" if i % 2 else "seal",
                "value": None if i % 2 == 0 else f"{85 + i % 7}.5",
                "unit": None if i % 2 == 0 else "°C",
                "result": "pass" if i % 2 == 0 else None,
                "measured_at": f"2026-03-01T08:{i % 60:02d}:00+08:00",
                "deviation": i % 5 == 0,
                # what COPY's text format must escape: tab, newline, backslash, quotes, CJK
                "corrective_action": None if i % 3 else f"重新杀菌\t第{i}次\n\\N \"'",
            }
        )
    return out


def _read(engine: Any, enterprise_id: int = 7) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        result = conn.execute(
            select(TABLE).where(TABLE.c.enterprise_id == enterprise_id).order_by(TABLE.c.record_seq)
        )
        return [dict(r._mapping) for r in result]


@pytest.mark.parametrize("n", [1, COPY_FROM_ROWS - 1, COPY_FROM_ROWS, 500])
def test_rows_read_back_as_given(engine, n: int) -> None:
    rows = _rows(n)
    with engine.begin() as conn:
        insert_rows(conn, TABLE, rows)
    assert _read(engine) == rows


def test_a_refused_row_fails_the_statement_and_writes_nothing(engine) -> None:
    rows = _rows(COPY_FROM_ROWS * 2)
    rows[-1] = {**rows[-1], "record_seq": rows[0]["record_seq"]}  # a duplicate primary key
    with pytest.raises(IntegrityError), engine.begin() as conn:
        insert_rows(conn, TABLE, rows)
    assert _read(engine) == []
    with engine.begin() as conn:  # the connection is usable again
        insert_rows(conn, TABLE, rows[:-1])
    assert len(_read(engine)) == len(rows) - 1


def test_rows_naming_different_columns_still_insert(engine) -> None:
    rows = _rows(COPY_FROM_ROWS + 4)
    for r in rows[::2]:
        del r["corrective_action"]  # NULL by default
    with engine.begin() as conn:
        insert_rows(conn, TABLE, rows)
    assert [r["corrective_action"] for r in _read(engine)] == [
        r.get("corrective_action") for r in rows
    ]


def test_a_column_the_table_lacks_is_refused(engine) -> None:
    rows = [{**r, "colour": "red"} for r in _rows(COPY_FROM_ROWS)]
    with pytest.raises(ValueError, match="ccp_readings has no column colour"), engine.begin() as c:
        insert_rows(c, TABLE, rows)
    assert _read(engine) == []


# ------------------------------------------------------------ the collector's pause


def test_the_collector_is_paused_inside_and_restored_after() -> None:
    import gc

    from foodtrace.bulk import no_cycle_collection

    assert gc.isenabled()
    with no_cycle_collection():
        assert not gc.isenabled()
        with no_cycle_collection():  # nested (an import inside another bulk write)
            assert not gc.isenabled()
        assert not gc.isenabled()  # still paused: the outer block has not ended
    assert gc.isenabled()
    with pytest.raises(RuntimeError), no_cycle_collection():
        raise RuntimeError("an import that fails")
    assert gc.isenabled()


def test_the_collector_resumes_when_the_last_of_several_threads_ends() -> None:
    import gc
    import threading

    from foodtrace.bulk import no_cycle_collection

    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def first() -> None:
        with no_cycle_collection():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second() -> None:
        first_in.wait(5)
        with no_cycle_collection():
            second_in.set()
            first_out.wait(5)
            seen.append(gc.isenabled())  # the first thread's block ended, not this one

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == [False]
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled() -> None:
    import gc

    from foodtrace.bulk import no_cycle_collection

    gc.disable()
    try:
        with no_cycle_collection():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_rows_of_one_length_naming_different_columns_are_refused(engine) -> None:
    rows = _rows(COPY_FROM_ROWS + 4)
    rows[-1] = {("colour" if k == "unit" else k): v for k, v in rows[-1].items()}
    with pytest.raises(ValueError, match="colour"), engine.begin() as c:
        insert_rows(c, TABLE, rows)
    assert _read(engine) == []
