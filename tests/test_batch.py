"""records.service.Batch: many records in one transaction, written one statement per table.

The batch must write exactly what :func:`record` writes one record at a time:
the same canonical bytes, hashes, chain links, derived rows, idempotency keys
and Merkle head. Each test runs both ways from the same ledger state (the
first run rolled back), with the same salts and clock, and compares every
stored byte.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from sqlmodel import Session

from foodtrace import imports
from foodtrace.clock import SimulatedClock
from foodtrace.db import read_session, write_session
from foodtrace.errors import Conflict, RecordError
from foodtrace.ledger import service as ledger_service
from foodtrace.ledger.models import Entry, IdempotencyKey, Ledger
from foodtrace.records import projection
from foodtrace.records.projection import TABLES, owner_column
from foodtrace.records.service import Batch, record
from foodtrace.verify import verify_ledger

import factories as f

Rec = tuple[str, dict[str, Any], str | None]
"""kind, data, idempotency key"""

# A ledger's life after its registration: master data, a lot with CCP readings (one a
# deviation, closed later), a release test (a public declaration follows), sales,
# corrections (of a reading and of the release test: a superseding declaration), a
# retried request (same idempotency key) and a self-inspection.
RECORDS: list[Rec] = [
    ("supplier", f.supplier(), None),
    ("customer", f.customer(), "cust-1"),
    ("product", f.product(), None),
    ("material_check", f.material_check(), None),
    ("production_lot", f.production_lot(), None),
    ("ccp_record", f.ccp_record(), "ccp-1"),
    ("ccp_record", f.ccp_record(value="87.0", measured_at="2026-03-01T09:00:00+08:00"), None),
    ("ccp_record", f.ccp_record(value="80.0", measured_at="2026-03-01T09:30:00+08:00"), None),
    (
        "corrective_action",
        {
            "reading_seq": 9,
            "action": "隔离该时段产品，重新杀菌",
            "taken_at": "2026-03-01T09:40:00+08:00",
            "operator": "李强",
        },
        None,
    ),
    ("ccp_record", f.ccp_record(), "ccp-1"),  # a retry: replayed, nothing written
    ("release_test", f.release_test(), None),  # seq 11, declaration 12
    ("sale", f.sale(), None),
    ("sale", f.sale(quantity="50"), "sale-2"),
    (
        "correction",
        {"corrects": 7, "reason": "读数抄错", "record": f.ccp_record(value="86.0")},
        None,
    ),
    ("self_inspection", f.self_inspection(), None),
    (
        "correction",
        {
            "corrects": 11,
            "reason": "报告编号写错",
            "record": f.release_test(report_no="JC-20260301-02", conclusion="fail"),
        },
        None,
    ),
    ("sale", f.sale(quantity="10", customer_code="DIST01"), None),
]


@pytest.fixture
def salts(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Deterministic salts; calling the returned function starts the sequence again."""
    state = {"n": 0}

    def salt() -> str:
        state["n"] += 1
        return base64.b64encode(state["n"].to_bytes(16, "big")).decode("ascii")

    monkeypatch.setattr(ledger_service, "new_salt", salt)
    monkeypatch.setattr(ledger_service, "new_salts", lambda n: [salt() for _ in range(n)])
    return lambda: state.update(n=0)


def snapshot(s: Session, lid: int) -> dict[str, Any]:
    """Everything a ledger's appends write: head, entries, derived rows, idempotency keys."""
    head = s.execute(
        select(Ledger.size, Ledger.head_hash, Ledger.compact_range).where(Ledger.id == lid)
    ).one()
    entries = s.execute(
        select(Entry.__table__).where(Entry.ledger_id == lid).order_by(Entry.seq)  # type: ignore[attr-defined]
    ).all()
    derived = {}
    for name, t in TABLES.items():
        rows = s.execute(select(t).where(t.c[owner_column(name)] == lid)).all()
        derived[name] = sorted((tuple(r) for r in rows), key=repr)
    keys = s.execute(
        select(IdempotencyKey.__table__).where(IdempotencyKey.ledger_id == lid)  # type: ignore[attr-defined]
    ).all()
    return {
        "head": (head.size, bytes(head.head_hash), bytes(head.compact_range)),
        "entries": [
            tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in entries
        ],
        "derived": derived,
        "keys": sorted(tuple(r) for r in keys),
    }


def both_ways(
    engine: Engine,
    lid: int,
    reset: Callable[[], None],
    one_by_one: Callable[[Session], list[Any]],
    batched: Callable[[Session], list[Any]],
) -> Iterator[tuple[dict[str, Any], list[Any]]]:
    """Run each writer from the same state (rolled back after), with the same salts."""
    for write in (one_by_one, batched):
        reset()
        with write_session(engine) as s:
            out = write(s)
            s.flush()
            snap = snapshot(s, lid)
            s.rollback()
        yield snap, out


def test_a_batch_writes_what_record_writes_one_by_one(
    engine: Engine, clock: SimulatedClock, salts: Callable[[], None]
) -> None:
    lid = f.register(engine, clock)

    def one_by_one(s: Session) -> list[Any]:
        return [
            record(session=s, ledger_id=lid, kind=k, data=d, actor="qa", clock=clock,
                   idempotency_key=key)
            for k, d, key in RECORDS
        ]  # fmt: skip

    def batched(s: Session) -> list[Any]:
        with Batch(session=s, ledger_id=lid, clock=clock) as batch:
            return [
                batch.record(kind=k, data=d, actor="qa", idempotency_key=key)
                for k, d, key in RECORDS
            ]

    (a, rec_a), (b, rec_b) = both_ways(engine, lid, salts, one_by_one, batched)
    # registration, 16 records (one of the 17 is a retry), 2 declarations (the release test's,
    # and the one its correction to "fail" makes due)
    assert a["head"][0] == 19
    assert [r[1] for r in b["entries"]] == list(range(1, 20))
    assert a == b
    assert [(r.seq, r.hash, r.followed_by, r.replayed) for r in rec_a] == [
        (r.seq, r.hash, r.followed_by, r.replayed) for r in rec_b
    ]
    assert [[w.type for w in r.warnings] for r in rec_a] == [
        [w.type for w in r.warnings] for r in rec_b
    ]
    assert rec_b[9].replayed
    assert rec_b[9].seq == rec_b[5].seq

    # Written for good, the batched ledger verifies (bytes, chain, derived rows, Merkle range).
    salts()
    with write_session(engine) as s, Batch(session=s, ledger_id=lid, clock=clock) as batch:
        for k, d, key in RECORDS:
            batch.record(kind=k, data=d, actor="qa", idempotency_key=key)
    with read_session(engine) as s:
        assert snapshot(s, lid) == b
        assert not verify_ledger(session=s, ledger_id=lid).problems


def test_an_import_writes_what_record_writes_one_by_one(
    engine: Engine, clock: SimulatedClock, salts: Callable[[], None]
) -> None:
    lid = f.beverage_ledger(engine, clock)
    buf = io.StringIO()
    buf.write("生产批号,关键控制点,监控参数,测量值,单位,监控时间,监控人\n")
    for k in range(300):
        value = "80.0" if k % 50 == 7 else f"{85.5 + (k % 30) / 10:.1f}"
        buf.write(f"PJ20260301A,CCP1,temperature,{value},°C,2026-03-01 09:{k // 60:02d}:"
                  f"{k % 60:02d},李强\n")  # fmt: skip
    parsed = imports.parse("ccp_record", "readings.csv", buf.getvalue().encode("utf-8-sig"))
    assert not parsed.errors

    def one_by_one(s: Session) -> list[Any]:
        return [
            record(session=s, ledger_id=lid, kind="ccp_record", data=rec.data, actor="qa",
                   clock=clock)
            for rec in parsed.records
        ]  # fmt: skip

    def imported(s: Session) -> list[Any]:
        result = imports.run_import(
            session=s, ledger_id=lid, kind="ccp_record", parsed=parsed, actor="qa", clock=clock,
            dry_run=False,
        )  # fmt: skip
        assert result.ok
        assert result.written == 300
        return [w.message for w in result.warnings]

    (a, _), (b, warnings) = both_ways(engine, lid, salts, one_by_one, imported)
    assert a["head"][0] == 10 + 300
    assert a == b
    assert len(warnings) == 6  # the six deviations, reported against their rows


def test_a_retried_key_within_a_batch_is_replayed_and_a_reused_one_refused(
    engine: Engine, clock: SimulatedClock
) -> None:
    lid = f.beverage_ledger(engine, clock)
    with write_session(engine) as s, Batch(session=s, ledger_id=lid, clock=clock) as batch:
        first = batch.record(kind="customer", data=f.customer(code="C9"), actor="qa",
                             idempotency_key="k1")  # fmt: skip
        again = batch.record(kind="customer", data=f.customer(code="C9"), actor="qa",
                             idempotency_key="k1")  # fmt: skip
        assert again.replayed
        assert (again.seq, again.hash) == (first.seq, first.hash)
        with pytest.raises(Conflict):
            batch.record(kind="customer", data=f.customer(code="C8"), actor="qa",
                         idempotency_key="k1")  # fmt: skip
    # committed: a later batch finds the key in the database
    with write_session(engine) as s, Batch(session=s, ledger_id=lid, clock=clock) as batch:
        later = batch.record(kind="customer", data=f.customer(code="C9"), actor="qa",
                             idempotency_key="k1")  # fmt: skip
        assert later.replayed
        assert later.hash == first.hash
        assert len(batch) == 0
    with read_session(engine) as s:
        assert s.get(Ledger, lid).size == first.seq  # type: ignore[union-attr]


def test_after_a_refused_record_the_batch_will_not_flush_and_the_rollback_writes_nothing(
    engine: Engine, clock: SimulatedClock
) -> None:
    lid = f.beverage_ledger(engine, clock)
    with read_session(engine) as s:
        before = snapshot(s, lid)
    with write_session(engine) as s:
        batch = Batch(session=s, ledger_id=lid, clock=clock)
        batch.record(kind="ccp_record", data=f.ccp_record(), actor="qa")
        with pytest.raises(RecordError, match="lot"):
            batch.record(kind="ccp_record", data=f.ccp_record(lot_code="NOPE"), actor="qa")
        with pytest.raises(RuntimeError, match="refused"):
            batch.flush()
        with pytest.raises(RuntimeError, match="refused"):
            batch.record(kind="ccp_record", data=f.ccp_record(), actor="qa")
        batch.close()
        s.rollback()
    with read_session(engine) as s:
        assert snapshot(s, lid) == before
        assert not verify_ledger(session=s, ledger_id=lid).problems


def test_one_open_batch_per_ledger_and_session(engine: Engine, clock: SimulatedClock) -> None:
    lid = f.beverage_ledger(engine, clock)
    with write_session(engine) as s, Batch(session=s, ledger_id=lid, clock=clock):
        # record() would read a head the open batch has not written yet: a fork
        with pytest.raises(RuntimeError, match="open batch"):
            record(session=s, ledger_id=lid, kind="customer", data=f.customer(code="X"),
                   actor="qa", clock=clock)  # fmt: skip


def _selects(engine: Engine) -> list[str]:
    seen: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _count(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    return seen


def _plan_min(value: str) -> dict[str, Any]:
    product = f.product()
    product["ccp_plan"][0]["parameters"][0]["min"] = value
    return {"corrects": 4, "reason": "杀菌温度下限提高", "record": product}


def test_master_rows_are_read_once_across_transactions_and_a_correction_is_seen(
    engine: Engine, clock: SimulatedClock
) -> None:
    lid = f.beverage_ledger(engine, clock)  # product at seq 4, its plan: temperature min 85
    f.add(engine, clock, lid, "ccp_record", f.ccp_record(value="87.0"))
    selects = _selects(engine)
    done = f.add(engine, clock, lid, "ccp_record", f.ccp_record(value="87.0"))
    assert not done.warnings
    assert len(selects) == 1, selects  # the head lock; the lot and the product were carried
    assert "FOR NO KEY UPDATE" in selects[0] or engine.dialect.name == "sqlite"
    f.add(engine, clock, lid, "correction", _plan_min("90"))
    done = f.add(engine, clock, lid, "ccp_record", f.ccp_record(value="87.0"))
    assert [w.type for w in done.warnings] == ["open_deviation"]  # read with the new limit


def test_carried_rows_are_dropped_when_another_process_moved_the_head(
    engine: Engine, clock: SimulatedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    lid = f.beverage_ledger(engine, clock)
    f.add(engine, clock, lid, "ccp_record", f.ccp_record(value="87.0"))  # carries lot, product
    with monkeypatch.context() as other:  # another process: its own (empty) carried rows
        other.setattr(projection, "_CARRIED", {})
        f.add(engine, clock, lid, "correction", _plan_min("90"))
    done = f.add(engine, clock, lid, "ccp_record", f.ccp_record(value="87.0"))
    assert [w.type for w in done.warnings] == ["open_deviation"]
