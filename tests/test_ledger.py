"""The ledger: gapless seq, hash chain, canonical bytes as stored, idempotency, corrections."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from foodtrace.canonical import ZERO_HASH, leaf_hash
from foodtrace.db import read_session, write_session
from foodtrace.errors import Conflict, RecordError
from foodtrace.ledger.models import Entry, Ledger
from foodtrace.records.models import Sale
from foodtrace.records.queries import lot_view
from foodtrace.records.service import record
from foodtrace.verify import verify_ledger

from factories import (
    add,
    beverage_ledger,
    customer,
    register,
    sale,
)
from snapshots import snapshot


def test_entries_form_a_gapless_hash_chain(engine, clock) -> None:
    lid = beverage_ledger(engine, clock)
    with read_session(engine) as s:
        entries = (
            s.execute(select(Entry).where(Entry.ledger_id == lid).order_by(Entry.seq))
            .scalars()
            .all()
        )
        head = s.get(Ledger, lid)
        assert [e.seq for e in entries] == list(range(1, 11))
        prev = ZERO_HASH
        for e in entries:
            env = json.loads(e.body)
            assert env["seq"] == e.seq
            assert env["prev_hash"] == prev == e.prev_hash.hex()
            assert env["log"] == f"trace.example.cn/ledger/{head.credit_code}"
            assert len(json.loads(e.body)["salt"]) == 24  # 16 bytes, base64
            assert e.hash == leaf_hash(e.body)
            prev = e.hash.hex()
        assert head.size == 10
        assert head.head_hash.hex() == prev
        assert verify_ledger(session=s, ledger_id=lid).ok


def test_recorded_at_comes_from_the_injected_clock(engine, clock) -> None:
    lid = register(engine, clock)
    r = add(engine, clock, lid, "customer", customer())
    assert r.recorded_at == "2026-03-02T00:30:00Z"


def test_salts_differ_between_identical_records(engine, clock) -> None:
    lid = register(engine, clock)
    a = add(engine, clock, lid, "customer", customer(code="A"))
    b = add(engine, clock, lid, "customer", customer(code="B"))
    with read_session(engine) as s:
        salts = {json.loads(s.get(Entry, (lid, n)).body)["salt"] for n in (a.seq, b.seq)}
    assert len(salts) == 2


def test_idempotent_retry_writes_once_and_returns_the_first_result(engine, clock) -> None:
    lid = beverage_ledger(engine, clock)
    first = add(engine, clock, lid, "sale", sale(quantity="5"), idempotency_key="pos-17")
    again = add(engine, clock, lid, "sale", sale(quantity="5"), idempotency_key="pos-17")
    assert again.replayed
    assert not first.replayed
    assert (again.seq, again.hash) == (first.seq, first.hash)
    with read_session(engine) as s:
        assert s.get(Ledger, lid).size == first.seq
        assert len(s.execute(select(Sale).where(Sale.enterprise_id == lid)).all()) == 2


def test_idempotency_key_reused_for_another_request_is_a_conflict(engine, clock) -> None:
    lid = beverage_ledger(engine, clock)
    add(engine, clock, lid, "sale", sale(quantity="5"), idempotency_key="pos-18")
    before = snapshot(engine)
    with pytest.raises(Conflict, match="pos-18"):
        add(engine, clock, lid, "sale", sale(quantity="6"), idempotency_key="pos-18")
    assert snapshot(engine) == before


def test_refused_record_writes_nothing(engine, clock) -> None:
    lid = beverage_ledger(engine, clock)
    before = snapshot(engine)
    with pytest.raises(RecordError):
        add(engine, clock, lid, "sale", sale(lot_code="NO-SUCH-LOT"))
    assert snapshot(engine) == before


def test_correction_changes_the_current_view_and_keeps_the_history(engine, clock) -> None:
    lid = beverage_ledger(engine, clock)  # seq 10 is the sale of 100 箱
    fix = add(
        engine,
        clock,
        lid,
        "correction",
        {"corrects": 10, "reason": "录入错误：实际发货 120 箱", "record": sale(quantity="120")},
    )
    assert fix.seq == 11
    assert fix.followed_by == []  # a sale is nothing the public declaration states
    with read_session(engine) as s:
        view = lot_view(session=s, enterprise_id=lid, lot_code="PJ20260301A")
        assert [x["quantity"] for x in view.sales] == ["120"]
        assert view.sales[0]["record_seq"] == 10
        assert view.sales[0]["current_seq"] == 11
        assert view.corrections == [{"seq": 11, "corrects": 10}]
        assert view.balance == {"unit": "瓶", "produced": "9600", "sold": "2880", "held": "6720"}
        original = json.loads(s.get(Entry, (lid, 10)).body)
        assert original["body"]["quantity"] == "100"  # the original stays as it was
        corr = json.loads(s.get(Entry, (lid, 11)).body)
        assert corr["corrects"] == 10
        assert corr["body"]["record"]["quantity"] == "120"
        assert verify_ledger(session=s, ledger_id=lid).ok


def test_a_correction_cannot_point_at_a_correction_or_nowhere(engine, clock) -> None:
    lid = beverage_ledger(engine, clock)
    add(
        engine,
        clock,
        lid,
        "correction",
        {"corrects": 10, "reason": "x", "record": sale(quantity="1")},
    )
    with pytest.raises(RecordError, match="correct entry 10 instead") as exc:
        add(engine, clock, lid, "correction", {"corrects": 11, "reason": "y", "record": sale()})
    assert exc.value.problems[0].loc == ("corrects",)
    with pytest.raises(RecordError, match="no entry 99"):
        add(engine, clock, lid, "correction", {"corrects": 99, "reason": "y", "record": sale()})


def test_a_correction_is_validated_like_the_record_it_corrects(engine, clock) -> None:
    lid = beverage_ledger(engine, clock)
    with pytest.raises(RecordError) as exc:
        add(
            engine,
            clock,
            lid,
            "correction",
            {"corrects": 10, "reason": "x", "record": sale(quantity="-3")},
        )
    assert exc.value.problems[0].loc == ("record", "quantity")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_appending_on_sqlite_needs_a_write_session(engine, clock) -> None:
    # SQLite serialises appends by BEGIN IMMEDIATE; PostgreSQL by the head-row lock.
    lid = register(engine, clock)
    from sqlmodel import Session

    with Session(engine) as s, pytest.raises(RuntimeError, match="write session"):
        record(session=s, ledger_id=lid, kind="customer", data=customer(), actor="x", clock=clock)


def test_appending_needs_a_session_of_foodtrace_db(engine, clock) -> None:
    """The listeners that write deferred head moves at commit are installed on
    FoodtraceSession, not on SQLModel's Session: an append through a plain Session,
    even a write one, is refused before anything is written."""
    from sqlalchemy import event
    from sqlmodel import Session

    from foodtrace.db import WRITE_OPTION, FoodtraceSession
    from foodtrace.ledger import service as ledger_service
    from foodtrace.records import projection

    lid = register(engine, clock)
    with (
        Session(engine.execution_options(**{WRITE_OPTION: True})) as s,
        pytest.raises(RuntimeError, match="FoodtraceSession"),
    ):
        record(session=s, ledger_id=lid, kind="customer", data=customer(), actor="x", clock=clock)
    with read_session(engine) as s:
        assert s.get(Ledger, lid).size == 1
    for cls, listeners in (
        (FoodtraceSession, True),
        (Session, False),
    ):
        for name, fn in (
            ("before_commit", ledger_service._write_pending_heads),
            ("after_transaction_end", ledger_service._forget_locked_heads),
            ("after_transaction_end", projection._forget_found_rows),
            ("after_commit", projection._carry_found_rows),
            ("after_soft_rollback", projection._drop_carry),
        ):
            assert event.contains(cls, name, fn) is listeners, (cls, name)


def test_each_ledger_has_its_own_seq(engine, clock) -> None:
    a = register(engine, clock)
    b = register(
        engine,
        clock,
        "91370404MA3CHX9R46",
        name="枣庄鲁味肉制品有限公司",
        licence_no="SC10437040400021",
    )
    ra = add(engine, clock, a, "customer", customer())
    rb = add(engine, clock, b, "customer", customer())
    assert ra.seq == rb.seq == 2
    with write_session(engine) as s:
        assert s.get(Ledger, a).origin.endswith("91370404MA3F42206T")


def test_new_salts_are_what_new_salt_makes() -> None:
    import base64

    from foodtrace.ledger.service import new_salt, new_salts

    salts = new_salts(300)
    assert len(salts) == len(set(salts)) == 300
    for s in [*salts, new_salt()]:
        assert len(base64.b64decode(s, validate=True)) == 16
        assert len(s) == 24
    assert new_salts(0) == []
