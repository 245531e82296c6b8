"""The replay's fast path for CCP readings (``projection.DirectReplay``) against the generic one.

Verification replays most entries of a ledger, CCP readings, through
``DirectReplay.ccp_record`` and the others through ``apply_entry``. The fast
path must leave exactly the rows the generic path leaves, and take nothing
the generic path would refuse (it returns False instead, and the generic path
raises its own error). Hypothesis drives both with readings valid and not
(unknown lots, CCPs and parameters, wrong units, bad decimals and instants,
missing fields, values of the wrong type) interleaved with new lots and lot
corrections that move a lot's start or product, which the fast path's kept
lookups must notice. On the databases: ``verify_ledger`` reports the same with
the fast path and without it, for a clean ledger and a tampered one.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlmodel import Session

from foodtrace.records.projection import TABLES, DirectReplay, MemoryStore, apply_entry
from foodtrace.records.service import validate
from foodtrace.verify import verify_ledger
from schemas.records import RecordKind

from factories import (
    add,
    beverage_ledger,
    ccp_record,
    customer,
    material_check,
    product,
    production_lot,
    sale,
    supplier,
)

LOTS = ["PJ20260301A", "PJ20260302B", "PJ20260303C"]


def _body(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """The entry body the append path stores for ``data`` (validated, dumped)."""
    model = validate(RecordKind(kind), data)
    return model.model_dump(mode="json", exclude_none=True, exclude={"event_time"})


def _master() -> list[tuple[str, dict[str, Any]]]:
    second = product(
        code="PJ1000",
        gtin="6921234560020",
        ccp_plan=[
            {
                "code": "CCP1",
                "name": "杀菌",
                "parameters": [
                    {"code": "temperature", "name": "温度", "unit": "°C", "max": "90"},
                    {"code": "seal", "name": "封口", "kind": "pass_fail"},
                ],
            }
        ],
    )
    return [
        ("supplier", _body("supplier", supplier())),
        ("customer", _body("customer", customer())),
        ("product", _body("product", product())),
        ("product", _body("product", second)),
        ("material_check", _body("material_check", material_check())),
        ("production_lot", _body("production_lot", production_lot(lot_code=LOTS[0]))),
        (
            "production_lot",
            _body("production_lot", production_lot(lot_code=LOTS[1], product_code="PJ1000")),
        ),
    ]


def _outcome(
    store: MemoryStore, seq: int, kind: str, body: Any, direct: DirectReplay | None
) -> Any:
    store.remember(seq, kind, body)
    if direct is not None and kind == "ccp_record" and direct.ccp_record(seq, body):
        return "direct"
    try:
        apply_entry(store, seq, kind, body)
    except Exception as exc:  # noqa: BLE001 - compared, whatever it is
        return (type(exc).__name__, str(exc))
    return None


VALUES = st.one_of(
    st.sampled_from(["86.5", "84.9", "85", "85.0", "90.1", "15", "1E+1", "-0", "NaN", "x", ""]),
    st.integers(-10, 200),
    st.floats(allow_nan=True),
    st.none(),
    st.lists(st.integers(), max_size=1),
)
INSTANTS = st.sampled_from(
    [
        "2026-03-01T08:30:00+08:00",
        "2026-03-01T00:00:00Z",
        "2026-02-28T07:59:59+08:00",  # a day before a lot started at 08:00 CST, less a second
        "2026-02-28T08:00:00+08:00",  # exactly a day before
        "2026-02-20T08:00:00Z",
        "2026-03-01",
        "not a time",
    ]
)
POINTS = st.sampled_from(
    [
        {"ccp": "CCP1", "parameter": "temperature", "unit": "°C"},
        {"ccp": "CCP1", "parameter": "holding_time", "unit": "s"},
        {"ccp": "CCP2", "parameter": "seal"},
        {"ccp": "CCP1", "parameter": "seal"},  # PJ1000's plan only
    ]
)
WILD = st.fixed_dictionaries(
    {},
    optional={
        "lot_code": st.sampled_from(["NO-SUCH-LOT", LOTS[2]]) | st.integers(0, 2),
        "ccp": st.sampled_from(["CCP2", "CCP9"]) | st.just(["CCP1"]),
        "parameter": st.sampled_from(["temperature", "ph"]),
        "value": VALUES,
        "unit": st.sampled_from(["°C", "K"]) | st.none(),
        "result": st.sampled_from(["fail", "unclear"]) | st.integers(0, 1),
        "measured_at": st.just("not a time") | st.integers(),
    },
)


@st.composite
def readings(draw: Any) -> dict[str, Any]:
    """Mostly a reading that applies, then perhaps a field changed or removed."""
    body = {
        "lot_code": draw(st.sampled_from(LOTS[:2])),
        **draw(POINTS),
        "measured_at": draw(INSTANTS),
        "operator": "李强",
    }
    if body["parameter"] == "seal":
        body["result"] = draw(st.sampled_from(["pass", "fail"]))
    else:
        body["value"] = draw(st.sampled_from(["86.5", "84.9", "85", "85.0", "90.1", "15", "1E+1"]))
    if draw(st.booleans()):
        body["corrective_action"] = "重新杀菌"
    if draw(st.integers(0, 3)) == 0:
        body.update(draw(WILD))
        for key in draw(st.sets(st.sampled_from(sorted(body)), max_size=2)):
            del body[key]
    return body


READINGS = readings()
LOT_CHANGES = st.tuples(
    st.sampled_from(LOTS),
    st.sampled_from(["PJ500", "PJ1000"]),
    st.sampled_from(["2026-03-01T08:00:00+08:00", "2026-02-20T08:00:00+08:00"]),
)
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("reading"), READINGS),
        st.tuples(st.just("lot"), LOT_CHANGES),
        st.tuples(st.just("other"), st.just(None)),  # neither lots nor products change
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(STEPS)
def test_direct_replay_leaves_the_rows_of_the_generic_replay(steps: list[Any]) -> None:
    generic, fast = MemoryStore(1), MemoryStore(1)
    direct = DirectReplay(fast)
    seq = 0
    lot_seqs: dict[str, int] = {}
    for kind, body in _master():
        seq += 1
        assert _outcome(generic, seq, kind, body, None) is None
        assert _outcome(fast, seq, kind, body, direct) is None
    lot_seqs.update({LOTS[0]: seq - 1, LOTS[1]: seq})
    for step, arg in steps:
        seq += 1
        if step == "reading":
            kind, body = "ccp_record", arg
        elif step == "other":
            kind, body = "customer", _body("customer", customer(code=f"C{seq}"))
        else:
            code, product_code, started = arg
            lot = production_lot(
                lot_code=code,
                product_code=product_code,
                started_at=started,
            )
            if code in lot_seqs:  # a correction of the lot: its start or product moves
                kind = "correction"
                body = {"corrects": lot_seqs[code], "reason": "更正", "record": _body(
                    "production_lot", lot
                )}  # fmt: skip
            else:
                kind, body = "production_lot", _body("production_lot", lot)
                lot_seqs[code] = seq
        want = _outcome(generic, seq, kind, body, None)
        got = _outcome(fast, seq, kind, body, direct)
        event(f"{step}: {'fast' if got == 'direct' else 'applied' if got is None else 'refused'}")
        if got == "direct":
            assert want is None, (body, want)  # the fast path took only what applies
        else:
            assert got == want, body
        assert fast.tables == generic.tables, body


def _deviation_ledger(engine: Any, clock: Any) -> int:
    """The beverage ledger with readings of every sort: in and out of limits, pass/fail,
    a corrective action, a corrected reading, and a corrected lot start."""
    lid = beverage_ledger(engine, clock)  # the lot PJ20260301A, one reading at seq 7
    add(engine, clock, lid, "ccp_record", ccp_record(value="84.0"))  # 11: a deviation
    add(
        engine, clock, lid, "ccp_record", ccp_record(parameter="holding_time", value="16", unit="s")
    )
    add(engine, clock, lid, "ccp_record", ccp_record(ccp="CCP2", parameter="seal", value=None,
                                                     unit=None, result="fail"))  # fmt: skip
    add(engine, clock, lid, "corrective_action",
        {"reading_seq": 11, "taken_at": "2026-03-01T09:00:00+08:00", "action": "重新杀菌",
         "operator": "李强"})  # fmt: skip
    add(engine, clock, lid, "correction",
        {"corrects": 12, "reason": "读数抄错", "record": ccp_record(
            parameter="holding_time", value="14", unit="s")})  # fmt: skip
    add(engine, clock, lid, "correction",
        {"corrects": 6, "reason": "开始时间", "record": production_lot(
            started_at="2026-03-01T07:00:00+08:00")})  # fmt: skip
    add(engine, clock, lid, "ccp_record", ccp_record(value="85.5"))
    return lid


def _report(engine: Any, lid: int) -> Any:
    with Session(engine) as s:
        report = verify_ledger(session=s, ledger_id=lid)
    return (report.entries_checked, report.problems)


def test_verify_reports_the_same_with_and_without_the_fast_path(engine, clock, monkeypatch) -> None:
    lid = _deviation_ledger(engine, clock)
    taken: list[int] = []
    original = DirectReplay.ccp_record

    def counted(self: DirectReplay, seq: int, b: Any) -> bool:
        done = original(self, seq, b)
        if done:
            taken.append(seq)
        return done

    monkeypatch.setattr(DirectReplay, "ccp_record", counted)
    fast = _report(engine, lid)
    assert fast[1] == [], fast
    assert len(taken) >= 4, taken  # the readings went the fast way
    with engine.begin() as conn:  # a derived column edited behind the application's back
        conn.execute(
            text(
                "UPDATE ccp_readings SET deviation = :d WHERE enterprise_id = :l "
                "AND record_seq = 11"
            ),
            {"d": False, "l": lid},
        )
    tampered_fast = _report(engine, lid)
    monkeypatch.setattr(DirectReplay, "ccp_record", lambda self, seq, b: False)
    assert _report(engine, lid) == tampered_fast
    assert [(p.seq, p.check) for p in tampered_fast[1]] == [(11, "derived")]


@pytest.mark.parametrize("kind", ["ccp_record"])
def test_fast_path_refuses_a_body_that_is_not_an_object(kind: str) -> None:
    store = MemoryStore(1)
    direct = DirectReplay(store)
    for body in ([], "x", 3, None):
        assert direct.ccp_record(1, body) is False  # type: ignore[arg-type]
    assert not store.tables.get("ccp_readings")


# ------------------------------------------------------------- the append's fast path


def _batch_records() -> list[tuple[str, dict[str, Any]]]:
    """Appended in one batch after :func:`beverage_ledger`'s 10 entries (seq 11 on):
    readings in and out of limits, pass/fail, one with its corrective action, one
    closed by a corrective action later in the batch, a correction of a reading, a
    correction moving the lot's start, a new lot and readings of it."""
    return [
        ("ccp_record", ccp_record(value="86.0")),  # 11
        ("ccp_record", ccp_record(value="84.0")),  # 12: a deviation, open
        ("ccp_record", ccp_record(value="84.5", corrective_action="重新杀菌")),  # 13
        ("ccp_record", ccp_record(parameter="holding_time", value="16", unit="s")),  # 14
        (
            "ccp_record",
            ccp_record(ccp="CCP2", parameter="seal", value=None, unit=None, result="fail"),
        ),
        (
            "corrective_action",
            {
                "reading_seq": 12,
                "taken_at": "2026-03-01T09:00:00+08:00",
                "action": "重新杀菌",
                "operator": "李强",
            },
        ),
        (
            "correction",
            {
                "corrects": 14,
                "reason": "读数抄错",
                "record": ccp_record(parameter="holding_time", value="14", unit="s"),
            },
        ),
        ("ccp_record", ccp_record(value="85.5", measured_at="2026-02-28T08:30:00+08:00")),  # 18
        (
            "correction",
            {
                "corrects": 6,
                "reason": "开始时间",
                "record": production_lot(started_at="2026-03-01T10:00:00+08:00"),
            },
        ),
        ("production_lot", production_lot(lot_code="PJ20260302B")),  # 20
        ("ccp_record", ccp_record(lot_code="PJ20260302B", value="91.0")),  # 21
        ("ccp_record", ccp_record(value="85.5", measured_at="2026-03-01T10:30:00+08:00")),  # 22
    ]


def _append_batch(engine: Any, clock: Any, lid: int, records: list[Any]) -> list[Any]:
    from foodtrace.db import write_session
    from foodtrace.records.service import Batch

    with (
        write_session(engine) as session,
        Batch(session=session, ledger_id=lid, clock=clock) as batch,
    ):
        return [batch.record(kind=k, data=d, actor="qa") for k, d in records]


def _derived(engine: Any, lid: int) -> Any:
    with engine.connect() as conn:
        readings = conn.execute(
            text(
                "SELECT record_seq, current_seq, lot_seq, ccp, parameter, value, unit, result,"
                " measured_at, deviation, corrective_action FROM ccp_readings"
                " WHERE enterprise_id = :l ORDER BY record_seq"
            ),
            {"l": lid},
        ).all()
        actions = conn.execute(
            text("SELECT record_seq, reading_seq FROM corrective_actions WHERE enterprise_id = :l"),
            {"l": lid},
        ).all()
    return [tuple(r) for r in readings], [tuple(a) for a in actions]


def _outcome_of(done: list[Any]) -> list[Any]:
    return [(r.seq, r.kind, r.body, [(w.loc, w.type) for w in r.warnings]) for r in done]


def test_batch_fast_path_writes_what_the_generic_path_writes(engine, clock, monkeypatch) -> None:
    from foodtrace.bulk import COPY_FROM_ROWS

    fast_lid = beverage_ledger(engine, clock)
    slow_lid = beverage_ledger(engine, clock, "91370404MA3793PC3E")
    records = _batch_records()
    assert len(records) < COPY_FROM_ROWS or engine.dialect.name != "postgresql"
    taken: list[int] = []
    original = DirectReplay.reading

    def counted(self: DirectReplay, seq: int, b: Any) -> Any:
        row = original(self, seq, b)
        if row is not None:
            taken.append(seq)
        return row

    monkeypatch.setattr(DirectReplay, "reading", counted)
    fast = _append_batch(engine, clock, fast_lid, records)
    # Every plain reading but 18, whose lot's start the correction at 19 then moves: the
    # kept lookup is dropped, so 22 (before the old start, after the new) is seen anew.
    assert taken == [11, 12, 13, 14, 15, 18, 21, 22], taken
    monkeypatch.setattr(DirectReplay, "reading", lambda self, seq, b: None)
    slow = _append_batch(engine, clock, slow_lid, records)
    assert _outcome_of(fast) == _outcome_of(slow)
    assert [w for r in fast for w in r.warnings]  # the open deviation was reported
    assert _derived(engine, fast_lid) == _derived(engine, slow_lid)
    assert _report(engine, fast_lid) == (22, [])


def test_batch_fast_path_refuses_what_the_generic_path_refuses(engine, clock) -> None:
    from foodtrace.db import write_session
    from foodtrace.errors import RecordError
    from foodtrace.records.service import Batch

    lid = beverage_ledger(engine, clock)
    bad = [
        (ccp_record(lot_code="NOPE"), ("lot_code",), "not_found"),
        (ccp_record(unit="K"), ("unit",), "unit_mismatch"),
        (ccp_record(ccp="CCP9"), ("ccp",), "not_in_plan"),
        (ccp_record(measured_at="2026-02-20T08:00:00+08:00"), ("measured_at",), "before_lot"),
    ]
    for data, loc, type_ in bad:
        with (
            write_session(engine) as session,
            Batch(session=session, ledger_id=lid, clock=clock) as batch,
        ):
            batch.record(kind="ccp_record", data=ccp_record(value="86.0"), actor="qa")
            with pytest.raises(RecordError) as err:
                batch.record(kind="ccp_record", data=data, actor="qa")
            assert [(p.loc, p.type) for p in err.value.problems] == [(loc, type_)]
            session.rollback()
            batch.close()
    # A lot's start moved within the batch: the kept lookup of its earliest reading goes too.
    early = ccp_record(value="86.0", measured_at="2026-02-28T09:00:00+08:00")
    moved = {
        "corrects": 6,
        "reason": "开始时间",
        "record": production_lot(started_at="2026-03-01T10:00:00+08:00"),
    }
    with write_session(engine) as session, Batch(session=session, ledger_id=lid, clock=clock) as b:
        b.record(kind="ccp_record", data=early, actor="qa")  # a day before 08:00 is fine
        b.record(kind="correction", data=moved, actor="qa")
        with pytest.raises(RecordError) as err:
            b.record(kind="ccp_record", data=early, actor="qa")  # not a day before 10:00
        assert [p.type for p in err.value.problems] == ["before_lot"]
        session.rollback()
        b.close()
    assert _report(engine, lid) == (10, [])


def _entries(engine: Any, lid: int, after: int) -> list[Any]:
    """The entries after seq ``after`` as stored, less what differs by nature (salt, hashes)."""
    import json

    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT body FROM entries WHERE ledger_id = :l AND seq > :s ORDER BY seq"),
            {"l": lid, "s": after},
        ).all()
    out = []
    for (data,) in rows:
        env = json.loads(bytes(data))
        for key in ("salt", "prev_hash", "log"):
            env.pop(key)
        out.append(env)
    return out


def _readings() -> list[dict[str, Any]]:
    return [
        ccp_record(value="86.0"),
        ccp_record(value="84.0"),  # an open deviation
        ccp_record(value="84.5", corrective_action="重新杀菌"),  # a closed one
        ccp_record(parameter="holding_time", value="16", unit="s"),
        ccp_record(ccp="CCP2", parameter="seal", value=None, unit=None, result="fail"),
        ccp_record(value="85.5", event_time="2026-03-01T09:10:00+08:00"),
        ccp_record(value="85.5", measured_at="2026-02-28T08:30:00+08:00"),
    ]


def test_record_many_writes_what_record_writes(engine, clock, monkeypatch) -> None:
    from foodtrace.db import write_session
    from foodtrace.records.service import Batch

    many_lid = beverage_ledger(engine, clock)
    one_lid = beverage_ledger(engine, clock, "91370404MA3793PC3E")
    models = [validate(RecordKind.CCP_RECORD, r) for r in _readings() * 3]
    generic: list[int] = []
    record = Batch.record

    def counted(self: Batch, **kw: Any) -> Any:
        generic.append(1)
        return record(self, **kw)

    monkeypatch.setattr(Batch, "record", counted)
    with write_session(engine) as s, Batch(session=s, ledger_id=many_lid, clock=clock) as batch:
        many = batch.record_many(kind=RecordKind.CCP_RECORD, models=models, actor="qa")
    assert generic == []  # every reading took record_many's own loop
    with write_session(engine) as s, Batch(session=s, ledger_id=one_lid, clock=clock) as batch:
        one = [batch.record(kind="ccp_record", data=m, actor="qa") for m in models]
    assert len(generic) == len(models)
    assert _outcome_of(many) == _outcome_of(one)
    assert [(r.event_time, r.recorded_at) for r in many] == [
        (r.event_time, r.recorded_at) for r in one
    ]
    assert any(r.warnings for r in many)
    assert not all(r.warnings for r in many)
    assert _entries(engine, many_lid, 10) == _entries(engine, one_lid, 10)
    assert _derived(engine, many_lid) == _derived(engine, one_lid)
    assert _report(engine, many_lid) == (10 + len(models), [])


@pytest.mark.parametrize(
    ("data", "type_"),
    [
        (ccp_record(lot_code="NOPE"), "not_found"),
        (ccp_record(unit="K"), "unit_mismatch"),
        (ccp_record(measured_at="2026-02-20T08:00:00+08:00"), "before_lot"),
        (ccp_record(measured_at="2026-03-03T08:00:00+08:00"), "future"),
        (ccp_record(event_time="2026-03-03T08:00:00+08:00"), "future"),
        (
            ccp_record(
                event_time="2026-03-04T08:00:00+08:00", measured_at="2026-03-03T08:00:00+08:00"
            ),
            "future",
        ),
    ],
)
def test_record_many_refuses_what_record_refuses(engine, clock, data: Any, type_: str) -> None:
    from foodtrace.db import write_session
    from foodtrace.errors import RecordError
    from foodtrace.records.service import Batch

    lid = beverage_ledger(engine, clock)
    models = [validate(RecordKind.CCP_RECORD, r) for r in [*_readings()[:2], data]]
    problems = []
    for many in (True, False):
        with write_session(engine) as s:
            batch = Batch(session=s, ledger_id=lid, clock=clock)

            def write(batch: Batch = batch, many: bool = many) -> None:
                if many:
                    batch.record_many(kind=RecordKind.CCP_RECORD, models=models, actor="qa")
                else:
                    for m in models:
                        batch.record(kind=RecordKind.CCP_RECORD, data=m, actor="qa")

            with pytest.raises(RecordError) as err:
                write()
            problems.append([(p.loc, p.msg, p.type) for p in err.value.problems])
            s.rollback()
            batch.close()
    assert [t for _, _, t in problems[0]] == [type_]
    assert problems[0] == problems[1]  # the same field, message and type as record's
    assert _report(engine, lid) == (10, [])


def test_the_mass_balance_of_many_sales_is_the_sum_of_the_others(engine, clock) -> None:
    """Each sale is checked against the lot's other sales (a running total, not a re-sum):
    appended one by one or in a batch, and through a correction, the oversold warnings fall
    on the same records, and both ledgers verify (the replay keeps totals of its own)."""
    from foodtrace.db import write_session
    from foodtrace.records.service import Batch

    def steps(append: Any) -> list[list[str]]:
        # beverage_ledger's lot: 400 箱 produced, 100 sold; 5 sales of 60 reach 400 exactly
        done = [append("sale", sale(quantity="60")) for _ in range(5)]
        fifth = done[-1].seq
        for quantity in ("60", "61"):  # checked against the others, not against itself too
            fixed = {"corrects": fifth, "reason": "数量录错", "record": sale(quantity=quantity)}
            done.append(append("correction", fixed))
        done += [append("sale", sale(quantity="60")) for _ in range(2)]
        return [[w.type for w in r.warnings] for r in done]

    expected = [[]] * 6 + [["oversold"]] * 3
    one = beverage_ledger(engine, clock)
    assert steps(lambda kind, data: add(engine, clock, one, kind, data)) == expected
    other = beverage_ledger(engine, clock, "91370404MA3793PC3E")
    with (
        write_session(engine) as session,
        Batch(session=session, ledger_id=other, clock=clock) as batch,
    ):
        assert steps(lambda kind, data: batch.record(kind=kind, data=data, actor="qa")) == expected
    for lid in (one, other):
        assert _report(engine, lid)[1] == []


def test_a_memory_stores_running_total_follows_puts_replacements_and_deletes() -> None:
    rng = random.Random(7)
    store = MemoryStore(1)
    row = dict.fromkeys(c.name for c in TABLES["sales"].columns)

    def expected(lot: int) -> Decimal:
        return sum(
            (Decimal(r["quantity_base"]) for r in store.find("sales", lot_seq=lot)), Decimal(0)
        )

    for step in range(400):
        seq, lot = rng.randrange(1, 40), rng.randrange(1, 4)
        qty = f"{rng.randrange(0, 10_000)}.{rng.randrange(0, 1000):03d}"
        new = {**row, "enterprise_id": 1, "record_seq": seq, "current_seq": seq + step,
               "lot_seq": lot, "quantity_base": qty}  # fmt: skip
        if rng.random() < 0.1:
            store.delete("sales", record_seq=seq)
        else:
            store.put("sales", new, replace=True)
        if step == 50:
            assert store.total("sales", "quantity_base", lot_seq=lot) == expected(lot)  # built
        if step > 50:
            for k in (1, 2, 3):
                assert store.total("sales", "quantity_base", lot_seq=k) == expected(k), step
