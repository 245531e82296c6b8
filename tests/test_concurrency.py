"""Concurrent appends never fork a chain, leave a gap or write twice."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from sqlalchemy import select

from foodtrace.db import read_session, write_session
from foodtrace.ledger.models import Entry, Ledger
from foodtrace.records.service import record
from foodtrace.verify import verify_ledger
from schemas.identifiers import credit_code_check_char

from factories import BEVERAGE, DAIRY, DISTRIBUTOR, MEAT, SUGAR, WORKSHOP, customer, register

CODES = [BEVERAGE, SUGAR, MEAT, DAIRY, WORKSHOP, DISTRIBUTOR]
# two more valid codes in the same district
for tail in ("MA3TEXT01", "MA3TEXT02"):
    first17 = "91370404" + tail
    CODES.append(first17 + credit_code_check_char(first17))


def run_threads(n: int, work: Callable[[int], None]) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(n)

    def target(i: int) -> None:
        try:
            start.wait()
            work(i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]


def append_many(engine, clock, ledger_id: int, thread: int, count: int) -> None:
    for i in range(count):
        with write_session(engine) as s:
            record(
                session=s,
                ledger_id=ledger_id,
                kind="customer",
                data=customer(code=f"T{thread}-{i}"),
                actor=f"t{thread}",
                clock=clock,
                idempotency_key=f"t{thread}-{i}",
            )


def assert_gapless_and_verified(engine, ledger_id: int, expected: int) -> None:
    with read_session(engine) as s:
        seqs = (
            s.execute(select(Entry.seq).where(Entry.ledger_id == ledger_id).order_by(Entry.seq))
            .scalars()
            .all()
        )
        assert seqs == list(range(1, expected + 1))
        assert s.get(Ledger, ledger_id).size == expected
        report = verify_ledger(session=s, ledger_id=ledger_id)
        assert report.ok, report.problems[:3]


def _per_thread(engine) -> int:
    # PostgreSQL: the 8 x 200. SQLite serialises whole transactions, so fewer.
    return 200 if engine.dialect.name == "postgresql" else 40


def test_eight_threads_appending_to_one_ledger(engine, clock) -> None:
    lid = register(engine, clock)
    n = _per_thread(engine)
    run_threads(8, lambda i: append_many(engine, clock, lid, i, n))
    assert_gapless_and_verified(engine, lid, 1 + 8 * n)


def test_eight_threads_on_eight_ledgers(engine, clock) -> None:
    ids = [register(engine, clock, code) for code in CODES]
    n = _per_thread(engine)
    run_threads(8, lambda i: append_many(engine, clock, ids[i], i, n))
    for lid in ids:
        assert_gapless_and_verified(engine, lid, 1 + n)


def test_concurrent_retries_with_one_idempotency_key_write_once(engine, clock) -> None:
    lid = register(engine, clock)
    results = []

    def work(i: int) -> None:
        with write_session(engine) as s:
            results.append(
                record(
                    session=s,
                    ledger_id=lid,
                    kind="customer",
                    data=customer(),
                    actor="t",
                    clock=clock,
                    idempotency_key="same-key",
                )
            )

    run_threads(8, work)
    assert len({r.seq for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    assert_gapless_and_verified(engine, lid, 2)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_head_row_lock_is_taken_on_postgresql(engine, clock) -> None:
    # While one transaction holds the head lock, another append must wait, not fork.
    lid = register(engine, clock)
    from foodtrace.ledger.service import lock_head

    with write_session(engine) as s1:
        lock_head(session=s1, ledger_id=lid)
        with engine.connect() as c2:
            c2.exec_driver_sql("SET lock_timeout = '200ms'")
            from sqlalchemy.exc import OperationalError

            with pytest.raises(OperationalError, match="lock"):
                c2.execute(select(Ledger).where(Ledger.id == lid).with_for_update())


def test_verification_during_appends_raises_no_false_alarm(engine, clock) -> None:
    from foodtrace.verify import verify_consistently

    lid = register(engine, clock)
    stop = threading.Event()
    alarms: list = []

    def verifier() -> None:
        while not stop.is_set():
            report = verify_consistently(engine=engine, ledger_id=lid)[0]
            if not report.ok:
                alarms.append(report.problems[:2])

    t = threading.Thread(target=verifier)
    t.start()
    try:
        append_many(engine, clock, lid, 0, 60)
    finally:
        stop.set()
        t.join()
    assert alarms == []
