"""Verifying ledgers in parallel processes: the same reports as one process, one snapshot."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import text

from foodtrace import verify
from foodtrace.db import make_engine
from foodtrace.verify import verify_consistently, verify_parallel

from factories import BEVERAGE, DAIRY, MEAT, SUGAR, add, beverage_ledger, customer


def _seen(reports: list[Any]) -> list[Any]:
    return [(r.credit_code, r.size, r.entries_checked, r.problems) for r in reports]


def _ledgers(engine: Any, clock: Any) -> dict[str, int]:
    return {code: beverage_ledger(engine, clock, code) for code in (BEVERAGE, SUGAR, MEAT, DAIRY)}


def test_parallel_reports_equal_one_process(engine, clock) -> None:
    ids = _ledgers(engine, clock)
    with engine.begin() as conn:  # one ledger edited behind the application's back
        conn.execute(
            text("UPDATE sales SET quantity = '7' WHERE enterprise_id = :l"), {"l": ids[MEAT]}
        )
    alone = verify_consistently(engine=engine)
    assert [r.ok for r in alone].count(False) == 1
    assert _seen(verify_parallel(engine=engine, processes=2)) == _seen(alone)
    one = verify_parallel(engine=engine, processes=2, credit_code=MEAT)
    assert _seen(one) == _seen([r for r in alone if r.credit_code == MEAT])


def test_workers_see_the_callers_snapshot(engine, clock, monkeypatch) -> None:
    ids = _ledgers(engine, clock)
    before = _seen(verify_consistently(engine=engine))
    if engine.dialect.name != "postgresql":  # SQLite: one process, verify_consistently
        assert _seen(verify_parallel(engine=engine, processes=2)) == before
        return
    start = verify._start_worker
    url = engine.url.render_as_string(hide_password=False)

    def append_then_start(worker_url: str) -> None:
        # In each worker, before its first ledger: an append committed after the snapshot.
        other = make_engine(url)
        add(other, clock, ids[BEVERAGE], "customer", customer(code=f"C{os.getpid()}"))
        other.dispose()
        start(worker_url)

    monkeypatch.setattr(verify, "_start_worker", append_then_start)
    assert _seen(verify_parallel(engine=engine, processes=2)) == before
    after = {r.credit_code: r for r in verify_consistently(engine=engine)}
    assert after[BEVERAGE].ok
    sizes = {code: size for code, size, *_ in before}
    assert after[BEVERAGE].size == sizes[BEVERAGE] + 2  # both workers appended
