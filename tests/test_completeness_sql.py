"""The completeness counts made in SQL give the reports the row-by-row rules gave.

``completeness_reference`` keeps the rules as they were before the counts moved into
SQL; a generated district with every kind of defect (missing readings, readings on
either side of the window's edges, open and closed deviations, records entered a
second either side of a day late, instants with microseconds, corrections, missing and
failing release tests, sales before the test, overselling, a rejected material) must
give exactly the same report both ways, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import literal, select, text

import completeness_reference as reference
from foodtrace.accounts.models import Enterprise
from foodtrace.completeness import (
    LATE,
    _canonical,
    _own_rules,
    _read_period,
    _shifted,
    district_completeness,
)
from foodtrace.db import read_session
from foodtrace.ledger.models import UNUSUAL_ENTRY
from foodtrace.records.projection import DbStore
from schemas.types import format_instant

import factories as f

START = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
DAYS = 6


def _text(at: datetime) -> str:
    return format_instant(at)


class _Schedule:
    """Records to add in the order they were recorded (the clock only moves forward)."""

    def __init__(self) -> None:
        self.items: list[tuple[datetime, int, int, str, Callable[[], dict[str, Any]], str]] = []
        self.seqs: dict[str, int] = {}

    def at(
        self,
        when: datetime,
        lid: int,
        kind: str,
        data: Callable[[], dict[str, Any]],
        name: str = "",
    ) -> datetime:
        self.items.append((when, len(self.items), lid, kind, data, name))
        return when

    def run(self, engine, clock) -> None:
        for when, _, lid, kind, data, name in sorted(self.items, key=lambda x: (x[0], x[1])):
            clock.set(when)
            done = f.add(engine, clock, lid, kind, data())
            if name:
                self.seqs[name] = done.seq


def _delay(rng: random.Random) -> timedelta:
    """How long after its event a record is entered: mostly soon, sometimes a second
    either side of a day, sometimes days later; now and then at a fraction of a second."""
    delay = rng.choice(
        [timedelta(minutes=5)] * 6
        + [LATE - timedelta(seconds=1), LATE, LATE + timedelta(seconds=1), timedelta(days=3)]
    )
    if rng.random() < 0.05:
        delay += timedelta(microseconds=250_000)
    return delay


def _lot(
    s: _Schedule,
    rng: random.Random,
    lid: int,
    code: str,
    day: date,
    materials: list[str],
    customers: list[str],
) -> None:
    """One juice lot (window 08:00-11:00 CST) with defects drawn from ``rng``."""
    begin = datetime(day.year, day.month, day.day, 0, 0, tzinfo=UTC)  # 08:00 CST
    end = begin + timedelta(hours=3)
    material = rng.choice(materials)
    # the lot's entry dated another day (a production day may then have no record), or
    # at a fraction of a second (an event time in another form)
    event = rng.choice([None, None, end - timedelta(days=2), end + timedelta(microseconds=5)])
    extra = {} if event is None else {"event_time": _text(event)}
    lot_rec = s.at(
        end + timedelta(minutes=20),
        lid,
        "production_lot",
        lambda: f.production_lot(
            lot_code=code,
            production_date=day.isoformat(),
            started_at=_text(begin),
            ended_at=_text(end),
            materials=[{"material_lot": material, "quantity": "10", "unit": "kg"}],
            **extra,
        ),
    )
    slack = timedelta(minutes=15)
    edges = [
        begin - slack,
        begin - slack - timedelta(seconds=1),
        end + slack,
        end + slack + timedelta(seconds=1),
        begin - slack + timedelta(microseconds=1),
        end + slack - timedelta(microseconds=500_000),
    ]
    for ccp, param, need in (("CCP1", "temperature", 6), ("CCP1", "holding_time", 6)) + (
        ("CCP2", "seal", 1),
    ):
        for k in range(rng.choice([0, need - 1, need, need + 2])):
            if rng.random() < 0.2:
                at = rng.choice(edges)
            else:
                at = begin - timedelta(minutes=20) + timedelta(minutes=rng.randrange(0, 221))
            bad = rng.random() < 0.25
            data: dict[str, Any] = {"lot_code": code, "ccp": ccp, "parameter": param}
            if param == "seal":
                data |= {"value": None, "unit": None, "result": "fail" if bad else "pass"}
            elif param == "temperature":
                data |= {"value": "83.0" if bad else "86.5", "unit": "°C"}
            else:
                data |= {"value": "10" if bad else "20", "unit": "s"}
            closing = rng.choice(["none", "inline", "later"]) if bad else "none"
            if closing == "inline":
                data["corrective_action"] = "重新杀菌"
            data["measured_at"] = _text(at)
            name = f"{lid}/{code}/{ccp}/{param}/{k}"
            rec = s.at(
                max(at + _delay(rng), lot_rec + timedelta(seconds=1)),
                lid,
                "ccp_record",
                lambda data=data: f.ccp_record(**data),
                name,
            )
            if closing == "later":
                s.at(
                    rec + timedelta(hours=rng.choice([1, 30])),
                    lid,
                    "corrective_action",
                    lambda name=name, at=at: {
                        "reading_seq": s.seqs[name],
                        "action": "隔离该批次并重新杀菌",
                        "taken_at": _text(at + timedelta(minutes=10)),
                        "operator": "李强",
                    },
                )
            if rng.random() < 0.08:  # a reading corrected afterwards: a newer entry
                s.at(
                    rec + _delay(rng),
                    lid,
                    "correction",
                    lambda name=name, data=data: {
                        "corrects": s.seqs[name],
                        "reason": "录入笔误",
                        "record": f.ccp_record(**data),
                    },
                )
    test = rng.choice(["none", "fail", "partial", "pass", "pass", "pass"])
    tested = end + timedelta(hours=rng.choice([4, 30]))
    if test != "none":
        items = f.release_test()["items"]
        s.at(
            max(tested + _delay(rng), lot_rec + timedelta(seconds=1)),
            lid,
            "release_test",
            lambda: f.release_test(
                lot_code=code,
                tested_at=_text(tested),
                conclusion="fail" if test == "fail" else "pass",
                items=items[:1] if test == "partial" else items,
                report_no=f"JC-{code}",
            ),
        )
    for n in range(rng.choice([0, 1, 1, 2])):
        sold = day + timedelta(days=rng.choice([0, 1]))
        when = datetime(sold.year, sold.month, sold.day, 6, tzinfo=UTC)
        at = max(when + _delay(rng), lot_rec + timedelta(seconds=1 + n))
        to = rng.choice(customers)
        s.at(
            at,
            lid,
            "sale",
            lambda sold=sold, to=to: f.sale(
                lot_code=code,
                quantity=rng.choice(["100", "250"]),
                sale_date=sold.isoformat(),
                customer_code=to,
            ),
        )


def generated_district(engine, clock, seed: int) -> list[int]:
    rng = random.Random(seed)
    s = _Schedule()
    ids = []
    # Enterprise 0 buys from enterprise 1 (registered): its receipts name enterprise 1's
    # lots as batches, some sold to it, some sold elsewhere, some never made.
    for n, code in enumerate((f.BEVERAGE, f.DAIRY)):
        clock.set(START)
        ids.append(f.register(engine, clock, code, name=f"企业{n}"))
    for n, lid in enumerate(ids):
        clock.set(START)
        supplier = f.supplier(code="UP", name="企业1", credit_code=f.DAIRY if n == 0 else None)
        for kind, data in (
            ("supplier", f.supplier(credit_code=None)),
            ("supplier", supplier),
            ("customer", f.customer(credit_code=None)),
            ("customer", f.customer(code="DOWN", name="企业0", credit_code=f.BEVERAGE)),
            ("product", f.product()),
        ):
            f.add(engine, clock, lid, kind, data)
        for ml in ("ML-OK", "ML-REJ"):
            f.add(engine, clock, lid, "material_check", f.material_check(material_lot=ml))
        materials = ["ML-OK", "ML-OK", "ML-REJ"]
        if n == 0:
            for batch in [f"L{d}" for d in range(DAYS - 2)] + ["NEVER-MADE", "IDLE-EARLY"]:
                check = f.material_check(
                    material_lot=f"ML-{batch}", supplier_code="UP", batch_no=batch
                )
                f.add(engine, clock, lid, "material_check", check)
                if batch != "IDLE-EARLY":
                    materials.append(f"ML-{batch}")
            late_idle = f.material_check(
                material_lot="ML-IDLE",
                supplier_code="UP",
                batch_no="IDLE",
                receipt_date="2026-03-03",
            )
            s.at(datetime(2026, 3, 3, 1, tzinfo=UTC), lid, "material_check", lambda c=late_idle: c)
        for d in range(DAYS):
            day = START.date() + timedelta(days=1 + d)
            _lot(s, rng, lid, f"L{d}", day, materials, ["DIST01", "DOWN"] if n else ["DIST01"])
            if n and d == DAYS - 1:  # a sale to enterprise 0, which never received it
                sale = f.sale(lot_code=f"L{d}", customer_code="DOWN", sale_date=day.isoformat())
                s.at(
                    datetime(day.year, day.month, day.day, 5, tzinfo=UTC),
                    lid,
                    "sale",
                    lambda x=sale: x,
                )
            if rng.random() < 0.5:
                when = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
                s.at(when, lid, "self_inspection", lambda day=day: f.self_inspection(
                    period_date=day.isoformat()))  # fmt: skip
    # two lots alone on their day, without readings: one whose entry is dated two days
    # earlier (its day has no record), one at a fraction of a second (its day is found
    # from an event time in another form only)
    for code, day, shift in (
        ("QUIET", date(2026, 3, 20), -timedelta(days=2)),
        ("MICRO", date(2026, 3, 24), timedelta(microseconds=5)),
    ):
        end = datetime(day.year, day.month, day.day, 3, tzinfo=UTC)
        lot = f.production_lot(
            lot_code=code,
            production_date=day.isoformat(),
            started_at=_text(end - timedelta(hours=3)),
            ended_at=_text(end),
            materials=[{"material_lot": "ML-OK", "quantity": "1", "unit": "kg"}],
            event_time=_text(end + shift),
        )
        s.at(end + timedelta(minutes=20), ids[0], "production_lot", lambda x=lot: x)
    s.run(engine, clock)
    # ML-REJ is found to be rejected after the lots used it (on a day without production)
    clock.set(datetime(2026, 3, 28, 1, tzinfo=UTC))
    for lid in ids:
        with read_session(engine) as session:
            seq = DbStore(session, lid).find("material_lots", code="ML-REJ")[0]["record_seq"]
        correction = {
            "corrects": seq,
            "reason": "复核不合格",
            "record": {**f.material_check(material_lot="ML-REJ"), "accepted": False},
        }
        f.add(engine, clock, lid, "correction", correction)
    return ids


PERIODS = [
    (date(2026, 3, 1), date(2026, 3, 31)),
    (date(2026, 3, 3), date(2026, 3, 4)),
]


@pytest.mark.parametrize("seed", [1, 2])
def test_the_sql_counts_give_the_row_by_row_report(engine, clock, seed: int) -> None:
    ids = generated_district(engine, clock, seed)
    failed: set[str] = set()
    with read_session(engine) as session:
        enterprises = [session.get(Enterprise, i) for i in ids]
        for since, until in PERIODS:
            new = _own_rules(session=session, enterprises=enterprises, since=since, until=until)
            old = reference._own_rules(
                session=session, enterprises=enterprises, since=since, until=until
            )
            assert new == old
            if since == PERIODS[0][0]:
                quiet = new[ids[0]]
                assert quiet.days_with_records == quiet.production_days - 1
            district = district_completeness(
                session=session, enterprise_ids=ids, since=since, until=until
            )
            assert district == reference.district_completeness(
                session=session, enterprise_ids=ids, since=since, until=until
            )
            failed |= {x.rule for r in district for x in r.findings}
        period = _read_period(session, ids, *PERIODS[0])
    # the district exercised the rules, and both ways of counting (SQL, and rows for the
    # lots with an instant SQL cannot compare as text)
    assert {"ccp_readings", "deviations_closed", "release_test", "timely"} <= failed
    assert {"receipt_without_sale", "sale_without_receipt"} <= failed
    assert {"materials_checked", "mass_balance"} & failed
    lots = {(eid, lot["record_seq"]) for eid, found in period.lots.items() for lot in found}
    assert period.odd
    assert period.odd < lots


# ---------------------------------------------------------------------------
# The SQL pieces against Python, on both databases.

_INSTANTS = st.datetimes(
    min_value=datetime(1900, 1, 2), max_value=datetime(9998, 12, 30), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))


def _one(engine, expr: Any) -> Any:
    with read_session(engine) as session:
        return session.execute(select(expr)).scalar_one()


@given(at=_INSTANTS, minutes=st.integers(-3000, 3000))
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_shifted_is_the_instant_moved(engine, at: datetime, minutes: int) -> None:
    moved = _one(engine, _shifted(literal(_text(at)), minutes))
    assert moved == _text(at + timedelta(minutes=minutes))


@given(
    ev=_INSTANTS,
    delta=st.one_of(st.integers(-90_000, 200_000), st.sampled_from([86_399, 86_400, 86_401])).map(
        lambda s: timedelta(seconds=s)
    ),
    micro=st.booleans(),
)
@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_every_late_entry_is_in_the_unusual_index(
    engine, ev: datetime, delta: timedelta, micro: bool
) -> None:
    """The partial index's condition holds for every entry recorded more than a day after
    its event (and for every time not in the canonical form)."""
    rec = ev + delta + timedelta(microseconds=250_000 if micro else 0)
    if not datetime(1900, 1, 2, tzinfo=UTC) <= rec <= datetime(9998, 12, 30, tzinfo=UTC):
        return
    entry = select(
        literal(_text(ev)).label("event_time"), literal(_text(rec)).label("recorded_at")
    ).subquery("entries")
    unusual = text(UNUSUAL_ENTRY[engine.dialect.name])
    with read_session(engine) as session:
        held = bool(session.execute(select(unusual).select_from(entry)).scalar_one())
    if rec - ev > LATE or micro:
        assert held


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("2026-03-02T10:30:00Z", True),
        ("2026-03-02T10:30:00.250000Z", False),
        ("2026-03-02T10:30:00+08:00", False),
        ("2026-03-02 10:30:00Z", False),
        ("2026-03-02t10:30:00z", False),
        ("2026-03-02T10:30:0Z", False),
    ],
)
def test_canonical_is_the_form_format_instant_gives(engine, text: str, canonical: bool) -> None:
    assert bool(_one(engine, _canonical(literal(text)))) is canonical
    assert bool(_one(engine, _canonical(literal(text), literal("2026-03-02T10:30:00Z")))) is (
        canonical
    )


@pytest.mark.db("postgresql")  # JIT is PostgreSQL's
def test_the_report_leaves_the_jit_setting_as_it_was(engine, clock) -> None:
    ids = generated_district(engine, clock, 3)
    with read_session(engine) as session:
        session.execute(text("SET LOCAL jit = on"))
        district_completeness(
            session=session,
            enterprise_ids=ids,
            since=START.date(),
            until=START.date() + timedelta(days=9),
        )
        assert session.execute(text("SELECT current_setting('jit')")).scalar_one() == "on"
