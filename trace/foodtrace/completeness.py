"""Record completeness (DESIGN.md, "Completeness"): per lot, per enterprise, per district.

A product lot is complete when every rule below holds; each failed rule is a
finding that names the lot and why:

- ``materials_checked``  every consumed material lot has an accepted incoming check
- ``ccp_readings``       every CCP parameter of the product's plan has its readings inside
                         the lot's production window at the plan's frequency
- ``deviations_closed``  every reading outside its limits is closed by a corrective action
- ``release_test``       a passing release test covering every required item exists and
                         precedes the first sale (Art. 51, 52)
- ``buyer_fields``       every sale carries the buyer's name, address and contact (Art. 51)
- ``mass_balance``       sold never exceeds produced
- ``code_form``          the lot's code, its product's and its material lots' codes keep
                         the code rule (``schemas.types.check_code``: no invisible or
                         fullwidth characters, no mixed lookalike scripts, not dots only);
                         codes written before the rule stay as they are and are listed here
- ``timely``             the lot's records were entered within a day of the event
                         (back-filling is a warning sign)

Two more rules follow a lot across enterprises, matched as the trail matches
them (DESIGN.md, "Lots and the trail"): by the supplier's credit code and the
batch number its buyer wrote on the incoming check.

- ``receipt_without_sale``  a material lot the lot consumed names a registered
                            supplier and a batch that supplier never sold to this
                            enterprise (a typo in the batch number, or an
                            unrecorded sale): the trail breaks going back
- ``sale_without_receipt``  the lot was sold to a registered enterprise that has
                            no incoming check naming this seller and lot code:
                            the trail breaks going forward; the buyer's records
                            are the likely gap, so the finding names the buyer

A receipt that breaks the first rule but has not been used by any lot yet is
a finding of the enterprise (no lot), counted under its receipt date. Both
rules look only into the ledgers of enterprises the reader may read
(``readable``): a link to a registered enterprise outside the reader's
jurisdiction is not checked, and is listed by the other enterprise's name
only, as the trail shows it (the authority responsible is asked, 协查).
Both are computed for the whole district at once, one query each.

Every reason is a message id (English, ``str.format`` fields) with its values,
so that the pages can show it in the reader's language.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic_core import PydanticCustomError
from sqlalchemy import (
    BindParameter,
    Boolean,
    ColumnElement,
    String,
    and_,
    bindparam,
    case,
    exists,
    func,
    literal_column,
    not_,
    null,
    or_,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Session

from foodtrace.accounts.models import Enterprise
from foodtrace.clock import local_date
from foodtrace.errors import RecordError
from foodtrace.ledger.models import UNUSUAL_ENTRY, Entry
from foodtrace.records.derive import dec, instant, product_data
from foodtrace.records.models import Lot, LotInput, MaterialLot, Sale
from foodtrace.records.obligations import expected_readings
from foodtrace.records.projection import TABLES, DbStore
from schemas.types import check_code

RULES = (
    "materials_checked",
    "ccp_readings",
    "deviations_closed",
    "release_test",
    "receipt_without_sale",
    "sale_without_receipt",
    "buyer_fields",
    "code_form",
    "mass_balance",
    "timely",
)
"""Worst first: the order findings are listed in."""
LATE = timedelta(hours=24)
WINDOW_SLACK = timedelta(minutes=15)

# Message ids of the reasons (the pages translate them; regulator_view lists them
# for the catalogue, and a test keeps both lists equal).
NO_ACCEPTED_CHECK = "material lot {material_lot} has no accepted check"
TOO_FEW_READINGS = "{ccp} {parameter}: {have} of {need} readings"
OPEN_DEVIATIONS = "{count} open deviation(s)"
NO_PASSING_TEST = "no passing release test covering every required item"
SOLD_BEFORE_TEST = "sold before the lot passed its release test"
NO_BUYER_NAME = "a sale without the buyer's name"
OVERSOLD = "sold {sold} of {produced} produced"
LATE_ENTRIES = "{count} record(s) entered more than a day late"
NOT_SOLD_BY_SUPPLIER = (
    "material lot {material_lot}: {supplier} recorded no sale of batch {batch} to this enterprise"
)
NOT_RECEIVED_BY_BUYER = "sold {quantity} {unit} to {buyer} on {date}: no incoming check of it there"
CODE_FORM = "code {code} breaks the code rule: {problem}"
MESSAGES = (
    NO_ACCEPTED_CHECK,
    TOO_FEW_READINGS,
    OPEN_DEVIATIONS,
    NO_PASSING_TEST,
    SOLD_BEFORE_TEST,
    NO_BUYER_NAME,
    OVERSOLD,
    LATE_ENTRIES,
    NOT_SOLD_BY_SUPPLIER,
    NOT_RECEIVED_BY_BUYER,
    CODE_FORM,
)


@dataclass(frozen=True)
class Reason:
    """Why a rule failed: a message id and its values."""

    message: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.message.format(**self.params)


def _why(reasons: Iterable[Reason]) -> str:
    return "; ".join(r.text for r in reasons)


@dataclass
class LotResult:
    lot: str
    product: str
    production_date: str
    reasons: dict[str, list[Reason]] = field(default_factory=dict)

    def fail(self, rule: str, message: str, **params: Any) -> None:
        self.reasons.setdefault(rule, []).append(
            Reason(message, {k: str(v) for k, v in params.items()})
        )

    @property
    def failed(self) -> dict[str, str]:
        """rule -> why (English), worst rule first."""
        return {rule: _why(self.reasons[rule]) for rule in sorted(self.reasons, key=RULES.index)}

    @property
    def complete(self) -> bool:
        return not self.reasons


@dataclass
class Finding:
    """A failed rule: of a lot, or of the enterprise's records when ``lot`` is None."""

    rule: str
    lot: str | None
    reasons: list[Reason]
    day: str
    """The date it counts under in the weekly trend: the lot's production date, or the
    receipt date of a material lot no lot has used."""
    material_lot: str | None = None

    @property
    def why(self) -> str:
        return _why(self.reasons)


@dataclass(frozen=True)
class OutsideLink:
    """A sale to, or a receipt from, a registered enterprise whose records the reader may
    not see: not checked; the enterprise is named so that its authority can be asked."""

    kind: str  # sale | receipt
    record: str  # our lot code (a sale) or material lot code (a receipt)
    credit_code: str
    name: str


@dataclass
class Week:
    """One ISO week of a period (clipped to the period at either end)."""

    year: int
    week: int
    start: date
    end: date
    lots_total: int = 0
    lots_complete: int = 0
    findings: int = 0

    @property
    def complete_share(self) -> float | None:
        return self.lots_complete / self.lots_total if self.lots_total else None


@dataclass
class EnterpriseResult:
    credit_code: str
    name: str
    lots: list[LotResult]
    production_days: int
    days_with_records: int
    daily_inspections: int
    days: int
    since: date
    until: date
    others: list[Finding] = field(default_factory=list)
    """Findings about records that belong to no lot (a receipt no lot has used yet)."""
    outside: list[OutsideLink] = field(default_factory=list)
    consulted: set[int] = field(default_factory=set)
    """The other enterprises whose ledgers the cross-enterprise rules looked into (a
    regulator's read of them is logged like any other)."""

    @property
    def complete_share(self) -> float:
        return sum(lot.complete for lot in self.lots) / len(self.lots) if self.lots else 1.0

    @property
    def findings(self) -> list[Finding]:
        """Every finding, worst rules first."""
        out = [
            Finding(rule, lot.lot, reasons, lot.production_date)
            for lot in self.lots
            for rule, reasons in lot.reasons.items()
        ]
        out += self.others
        return sorted(out, key=lambda f: (RULES.index(f.rule), f.lot or "", f.material_lot or ""))

    @property
    def trend(self) -> list[Week]:
        return weekly_trend([self], self.since, self.until)


class PeriodRows:
    """The derived rows the lot rules read, for one enterprise, read for a whole district.

    ``find`` answers like :meth:`DbStore.find` for the lookups :func:`check_lot`
    and :func:`lot_facts` make (by one column, or every corrective action), from rows
    read with one query per table for every enterprise at once (:func:`_read_period`).
    """

    def __init__(self, enterprise_id: int) -> None:
        self.enterprise_id = enterprise_id
        self.by: dict[tuple[str, str, Any], list[dict[str, Any]]] = {}
        self.all: dict[str, list[dict[str, Any]]] = {}

    def add(self, table: str, row: dict[str, Any], *columns: str) -> None:
        self.all.setdefault(table, []).append(row)
        for col in columns:
            self.by.setdefault((table, col, row[col]), []).append(row)

    def find(self, table: str, **where: Any) -> list[dict[str, Any]]:
        if not where:
            return list(self.all.get(table, []))
        ((col, value),) = where.items()
        return list(self.by.get((table, col, value), []))


@dataclass
class LotFacts:
    """What the rules need of a lot's CCP readings and of its records' entries: counted
    in SQL for a district (:func:`_read_period`), or from the rows (:func:`lot_facts`)."""

    inside: dict[tuple[str, str], int] = field(default_factory=dict)
    """(ccp, parameter) -> readings inside the lot's production window (with the slack)"""
    open_deviations: int = 0
    """readings outside their limits closed by no corrective action"""
    late: int = 0
    """records of the lot (the lot, its readings, release tests, sales) entered late"""


def lot_facts(
    store: DbStore | PeriodRows, lot: dict[str, Any], entries: dict[int, tuple[str, str]]
) -> LotFacts:
    """The facts of one lot from its reading rows and its entries' times, row by row.

    ``entries`` maps seq -> (event_time, recorded_at).
    """
    readings = store.find("ccp_readings", lot_seq=lot["record_seq"])
    start = instant(lot["started_at"]) - WINDOW_SLACK
    end = instant(lot["ended_at"]) + WINDOW_SLACK
    inside: dict[tuple[str, str], int] = {}
    for r in readings:
        if start <= instant(r["measured_at"]) <= end:
            key = (r["ccp"], r["parameter"])
            inside[key] = inside.get(key, 0) + 1
    closed = {a["reading_seq"] for a in store.find("corrective_actions")}
    open_ = sum(
        1
        for r in readings
        if r["deviation"] and not r["corrective_action"] and r["record_seq"] not in closed
    )
    seqs = [lot["current_seq"]] + [r["current_seq"] for r in readings]
    for table in ("release_tests", "sales"):
        seqs += [r["current_seq"] for r in store.find(table, lot_seq=lot["record_seq"])]
    late = sum(
        1 for s in seqs if s in entries and instant(entries[s][1]) - instant(entries[s][0]) > LATE
    )
    return LotFacts(inside, open_, late)


def check_lot(
    store: DbStore | PeriodRows,
    lot: dict[str, Any],
    facts: LotFacts,
) -> LotResult:
    """The rules within one enterprise's ledger for one lot.

    ``facts`` are the lot's readings and entries as the rules need them;
    """
    product = store.find("products", record_seq=lot["product_seq"])[0]
    data = product_data(product)
    result = LotResult(lot["code"], product["name"], lot["production_date"])
    _code_form(result, lot["code"], product["code"])
    # materials
    for use in store.find("lot_inputs", record_seq=lot["record_seq"]):
        ml = store.find("material_lots", record_seq=use["material_lot_seq"])
        if not ml or not ml[0]["accepted"]:
            name = ml[0]["code"] if ml else f"#{use['material_lot_seq']}"
            result.fail("materials_checked", NO_ACCEPTED_CHECK, material_lot=name)
        if ml:
            _code_form(result, ml[0]["code"])
    # CCP readings inside the window, at the plan's frequency
    for point in data.get("ccp_plan", []):
        for param in point["parameters"]:
            have = facts.inside.get((point["code"], param["code"]), 0)
            need = expected_readings(param, lot["started_at"], lot["ended_at"])
            if have < need:
                result.fail(
                    "ccp_readings",
                    TOO_FEW_READINGS,
                    ccp=point["code"],
                    parameter=param["code"],
                    have=have,
                    need=need,
                )
    if facts.open_deviations:
        result.fail("deviations_closed", OPEN_DEVIATIONS, count=facts.open_deviations)
    # release test before the first sale
    sales = store.find("sales", lot_seq=lot["record_seq"])
    required = {i["item"] for i in data.get("release_items", [])}
    passing = [
        t
        for t in store.find("release_tests", lot_seq=lot["record_seq"])
        if t["conclusion"] == "pass" and required <= {i for i, _ in json.loads(t["items"])}
    ]
    first_sale = min((s["sale_date"] for s in sales), default=None)
    if not passing:
        result.fail("release_test", NO_PASSING_TEST)
    elif any(not s["released"] for s in sales) or (
        first_sale
        and min(local_date(instant(t["tested_at"])).isoformat() for t in passing) > first_sale
    ):
        # ``released`` records whether a passing test existed when the sale was recorded
        result.fail("release_test", SOLD_BEFORE_TEST)
    if any(not s["buyer_name"] for s in sales):
        result.fail("buyer_fields", NO_BUYER_NAME)
    sold = sum((dec(s["quantity_base"]) for s in sales), Decimal(0))
    if sold > dec(lot["quantity_base"]):
        result.fail("mass_balance", OVERSOLD, sold=sold, produced=lot["quantity_base"])
    if facts.late:
        result.fail("timely", LATE_ENTRIES, count=facts.late)
    return result


def _code_form(result: LotResult, *codes: str) -> None:
    """Fail ``code_form`` for each code that the code rule would refuse today."""
    for code in codes:
        if code.isascii() and code.strip("."):
            continue  # the rule's fast path: an ASCII code that is not dots only keeps it
        try:
            check_code(code)
        except PydanticCustomError as exc:
            result.fail("code_form", CODE_FORM, code=ascii(code), problem=exc.message())


# The aggregates compare instants as text. That is exact for the form every record's
# instant is stored in (``format_instant``: UTC, whole seconds, ``YYYY-MM-DDTHH:MM:SSZ``):
# fixed width, so the text sorts as the time does. An instant in any other form (one with
# microseconds) is counted as odd, and its lot is checked from the rows instead.
CANONICAL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


class _canonical(FunctionElement[bool]):
    """SQL: every one of the columns has the layout of a whole-second UTC instant: one
    pattern match of their concatenation per row (PostgreSQL's LIKE is case-sensitive;
    SQLite's is not, so there GLOB, which also checks the digits)."""

    type = Boolean()
    name = "canonical"
    inherit_cache = True


@compiles(_canonical, "postgresql")
def _canonical_postgresql(element: _canonical, compiler: Any, **kw: Any) -> str:
    cols = [compiler.process(c, **kw) for c in element.clauses]
    return f"(({' || '.join(cols)}) LIKE '{'____-__-__T__:__:__Z' * len(cols)}')"


@compiles(_canonical, "sqlite")
def _canonical_sqlite(element: _canonical, compiler: Any, **kw: Any) -> str:
    cols = [compiler.process(c, **kw) for c in element.clauses]
    d = "[0-9]"
    one = f"{d * 4}-{d * 2}-{d * 2}T{d * 2}:{d * 2}:{d * 2}Z"
    return f"(({' || '.join(cols)}) GLOB '{one * len(cols)}')"


class _shifted(FunctionElement[str]):
    """SQL: a whole-second UTC instant (text) moved by whole minutes, as the same text.
    Date arithmetic is the one thing the two databases spell differently."""

    type = String()
    name = "shifted"
    inherit_cache = True

    def __init__(self, col: Any, minutes: int) -> None:
        super().__init__(col, literal_column(str(int(minutes))))


@compiles(_shifted, "postgresql")
def _shifted_postgresql(element: _shifted, compiler: Any, **kw: Any) -> str:
    col, minutes = (compiler.process(c, **kw) for c in element.clauses)
    return (
        f"to_char(CAST(substr({col}, 1, 19) AS TIMESTAMP) + make_interval(mins => {minutes}),"
        ' \'YYYY-MM-DD"T"HH24:MI:SS"Z"\')'
    )


@compiles(_shifted, "sqlite")
def _shifted_sqlite(element: _shifted, compiler: Any, **kw: Any) -> str:
    col, minutes = (compiler.process(c, **kw) for c in element.clauses)
    return f"strftime('%Y-%m-%dT%H:%M:%SZ', substr({col}, 1, 19), ({minutes}) || ' minutes')"


def _minutes(delta: timedelta) -> int:
    assert delta % timedelta(minutes=1) == timedelta(0)
    return delta // timedelta(minutes=1)


def _rows(session: Session, stmt: Any) -> list[dict[str, Any]]:
    result = session.connection().execute(stmt)
    cols = list(result.keys())
    return [dict(zip(cols, r, strict=True)) for r in result.all()]  # fetchall: not row by row


@dataclass
class Period:
    """What :func:`_read_period` reads for the enterprises of a district."""

    rows: dict[int, PeriodRows]
    lots: dict[int, list[dict[str, Any]]]
    """the lots produced in the period, per enterprise"""
    days: dict[int, set[str]]
    """the production days (CST) of the period on which each enterprise recorded an event"""
    facts: dict[tuple[int, int], LotFacts]
    """(enterprise, lot record_seq) -> the lot's facts, counted in SQL"""
    odd: set[tuple[int, int]]
    """lots whose readings could not be counted in SQL (an instant not in canonical form)"""


_COLUMNS = {
    "lot_inputs": ("enterprise_id", "record_seq", "material_lot_seq"),
    "sales": (
        "enterprise_id",
        "lot_seq",
        "current_seq",
        "sale_date",
        "released",
        "buyer_name",
        "quantity_base",
    ),
    "release_tests": (
        "enterprise_id",
        "lot_seq",
        "current_seq",
        "conclusion",
        "items",
        "tested_at",
    ),
    "material_lots": ("enterprise_id", "record_seq", "code", "accepted"),
}
"""The columns :func:`check_lot` and :func:`lot_facts` read of the many rows of a period."""


def _read_period(session: Session, ids: list[int], since: date, until: date) -> Period:
    """What the lot rules need for every enterprise of ``ids``: one query per table, and
    the readings counted per lot in SQL rather than read row by row."""
    span = (since.isoformat(), until.isoformat())
    t = {name: TABLES[name] for name in TABLES}
    lots_t = t["lots"]
    in_period = and_(lots_t.c.enterprise_id.in_(ids), lots_t.c.production_date.between(*span))
    period_lots = select(lots_t.c.enterprise_id, lots_t.c.record_seq).where(in_period).subquery()
    rows = {i: PeriodRows(i) for i in ids}
    lots: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    odd: set[tuple[int, int]] = set()
    for lot in _rows(session, select(lots_t).where(in_period)):
        lots[lot["enterprise_id"]].append(lot)
        if not (CANONICAL.fullmatch(lot["started_at"]) and CANONICAL.fullmatch(lot["ended_at"])):
            odd.add((lot["enterprise_id"], lot["record_seq"]))

    def of_period_lots(table: str, column: str) -> Any:
        tab = t[table]
        return select(*(tab.c[c] for c in _COLUMNS[table])).join(
            period_lots,
            and_(
                period_lots.c.enterprise_id == tab.c.enterprise_id,
                period_lots.c.record_seq == tab.c[column],
            ),
        )

    for table, column in (
        ("lot_inputs", "record_seq"),
        ("sales", "lot_seq"),
        ("release_tests", "lot_seq"),
    ):
        for row in _rows(session, of_period_lots(table, column)):
            rows[row["enterprise_id"]].add(table, row, column)
    inputs, mls = t["lot_inputs"], t["material_lots"]
    used = select(*(mls.c[c] for c in _COLUMNS["material_lots"])).where(
        mls.c.enterprise_id.in_(ids),
        exists().where(
            inputs.c.enterprise_id == mls.c.enterprise_id,
            inputs.c.material_lot_seq == mls.c.record_seq,
            period_lots.c.enterprise_id == inputs.c.enterprise_id,
            period_lots.c.record_seq == inputs.c.record_seq,
        ),
    )
    for row in _rows(session, used):
        rows[row["enterprise_id"]].add("material_lots", row, "record_seq")
    products = t["products"]
    for row in _rows(session, select(products).where(products.c.enterprise_id.in_(ids))):
        rows[row["enterprise_id"]].add("products", row, "record_seq")
    si = t["self_inspections"]
    for row in _rows(
        session,
        select(si).where(
            si.c.enterprise_id.in_(ids),
            si.c.period == "daily",
            si.c.period_date.between(*span),
        ),
    ):
        rows[row["enterprise_id"]].add("self_inspections", row, "period")
    late, unusual_days = _unusual_entries(session, ids, since, until)
    facts: dict[tuple[int, int], LotFacts] = {}
    for eid, found in lots.items():
        store = rows[eid]
        for lot in found:
            seqs = [lot["current_seq"]]
            for table in ("release_tests", "sales"):
                seqs += [r["current_seq"] for r in store.find(table, lot_seq=lot["record_seq"])]
            facts[eid, lot["record_seq"]] = LotFacts(late=sum((eid, s) in late for s in seqs))
    _count_readings(session, ids, in_period, facts, odd, late)
    days = _recorded_days(session, ids, in_period, unusual_days)
    return Period(rows, lots, {i: days.get(i, set()) for i in ids}, facts, odd)


def _unusual_entries(
    session: Session, ids: list[int], since: date, until: date
) -> tuple[set[tuple[int, int]], dict[int, set[str]]]:
    """The entries of the ledgers ``ids`` recorded more than a day after their event, as
    (ledger, seq); and the local days of the period's event times (within two days
    either side, as text) not in canonical form, per ledger. Read through the partial
    index of the entries recorded on a later day (``ledger.models.UNUSUAL_ENTRY``).

    Where both times are in canonical form the database decides lateness (text compare
    with the event time moved by a day) and returns only the late ones: parsing every
    entry of the index in Python took seconds once a ledger held a year of paper records
    imported at once. Times in another form are few, and decided here."""
    e = Entry.__table__
    unusual = text(f"({UNUSUAL_ENTRY[session.get_bind().dialect.name]})")
    window = ((since - timedelta(days=2)).isoformat(), (until + timedelta(days=2)).isoformat())
    both_canonical = _canonical(e.c.event_time, e.c.recorded_at)
    late: set[tuple[int, int]] = set()
    days: dict[int, set[str]] = {}
    # PostgreSQL keeps no statistics of the index's predicate and guesses that most entries
    # match it, so it reads the whole table (2.4 s at district scale) rather than the index
    # (48 ms for its 65,000 of 4.2 M entries): the table scan is off for this statement.
    with _pg_settings(session, enable_seqscan="off"):
        rows = session.execute(
            select(e.c.ledger_id, e.c.seq, e.c.event_time, e.c.recorded_at, both_canonical).where(
                e.c.ledger_id.in_(ids),
                unusual,
                or_(
                    not_(both_canonical),
                    e.c.recorded_at > _shifted(e.c.event_time, _minutes(LATE)),
                ),
            )
        ).all()
    for lid, seq, ev, rec, canonical in rows:
        if canonical:
            late.add((lid, seq))  # decided by the database
            continue
        if instant(rec) - instant(ev) > LATE:
            late.add((lid, seq))
        if not CANONICAL.fullmatch(ev) and window[0] <= ev < window[1]:
            days.setdefault(lid, set()).add(local_date(instant(ev)).isoformat())
    return late, days


def _count_readings(
    session: Session,
    ids: list[int],
    in_period: Any,
    facts: dict[tuple[int, int], LotFacts],
    odd: set[tuple[int, int]],
    late: set[tuple[int, int]],
) -> None:
    """Per lot and CCP parameter: the readings inside the production window, the open
    deviations, and the readings entered late (of ``late``); one query for the district."""
    lots_t, r = TABLES["lots"], TABLES["ccp_readings"]
    ca = TABLES["corrective_actions"]
    slack = _minutes(WINDOW_SLACK)
    # The window of each lot, worked out once per lot (not once per reading).
    window = (
        select(
            lots_t.c.enterprise_id,
            lots_t.c.record_seq,
            case((_canonical(lots_t.c.started_at), _shifted(lots_t.c.started_at, -slack))).label(
                "lo"
            ),
            case((_canonical(lots_t.c.ended_at), _shifted(lots_t.c.ended_at, slack))).label("hi"),
        )
        .where(in_period)
        .cte("lot_windows")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    closed = exists().where(
        ca.c.enterprise_id == r.c.enterprise_id,
        _in_shards(ca.c.enterprise_id, ids),
        ca.c.reading_seq == r.c.record_seq,
    )
    if late:
        # one number per (ledger, seq): a hashed IN list, whatever the number of ledgers
        key = r.c.enterprise_id * literal_column(str(_KEY)) + r.c.current_seq
        keys: BindParameter[list[int]] = bindparam(
            "late",
            sorted(lid * _KEY + seq for lid, seq in late),
            expanding=True,
            literal_execute=True,
        )
        entered_late: ColumnElement[Any] = func.sum(case((key.in_(keys), 1), else_=0))
    else:
        entered_late = literal_column("0")
    stmt = (
        select(
            r.c.enterprise_id,
            r.c.lot_seq,
            r.c.ccp,
            r.c.parameter,
            func.sum(case((r.c.measured_at.between(window.c.lo, window.c.hi), 1), else_=0)).label(
                "inside"
            ),
            func.sum(
                case(
                    (
                        and_(
                            r.c.deviation.is_(True),
                            or_(r.c.corrective_action.is_(None), r.c.corrective_action == ""),
                        ),
                        case((closed, 0), else_=1),
                    ),
                    else_=0,
                )
            ).label("open"),
            entered_late.label("late"),
            func.sum(case((_canonical(r.c.measured_at), 0), else_=1)).label("odd"),
        )
        .join(
            window,
            and_(window.c.enterprise_id == r.c.enterprise_id, window.c.record_seq == r.c.lot_seq),
        )
        .where(_in_shards(r.c.enterprise_id, ids))
        .group_by(r.c.enterprise_id, r.c.lot_seq, r.c.ccp, r.c.parameter)
    )
    for eid, lot_seq, ccp, parameter, inside, open_, n_late, n_odd in session.execute(stmt):
        lot = facts.setdefault((eid, lot_seq), LotFacts())
        if inside:
            lot.inside[ccp, parameter] = int(inside)
        lot.open_deviations += int(open_)
        lot.late += int(n_late)
        if n_odd:
            odd.add((eid, lot_seq))


_KEY = 2**32
"""(ledger, seq) as one number: ledger * _KEY + seq (a seq is below 2**31)."""


SHARD_LIST_MAX = 32
"""Up to this many ledgers, a report's reads name them on every enterprise-owned table."""


def _in_shards(column: Any, ids: list[int]) -> Any:
    """``column IN ids`` for a report over a few ledgers, so that each read of a table
    partitioned or sharded by ledger (docs/scaling.md) goes to those ledgers' partitions
    only, which a join or a correlated lookup by ledger does not tell the planner. Over a
    district's hundreds it is left out: the report reads every shard anyway, and the list
    would make each index probe one per ledger."""
    return column.in_(ids) if len(ids) <= SHARD_LIST_MAX else true()


def _recorded_days(
    session: Session, ids: list[int], in_period: Any, unusual: dict[int, set[str]]
) -> dict[int, set[str]]:
    """The production days of the period on which each enterprise recorded an event.

    A day in CST (UTC+8) is [day-1 16:00Z, day 16:00Z) in UTC: for each lot, the first
    event time in that range is read from the index on (ledger, event time). One in the
    canonical form shows an event that day; a day whose first time is in another form is
    looked at entry by entry. Event times in other forms come from ``unusual``.
    """
    lots_t, e = TABLES["lots"], Entry.__table__
    day = lots_t.c.production_date
    first = (
        select(func.min(e.c.event_time))
        .where(
            e.c.ledger_id == lots_t.c.enterprise_id,
            _in_shards(e.c.ledger_id, ids),
            e.c.event_time >= _shifted(day.concat("T00:00:00Z"), -8 * 60),
            e.c.event_time < day.concat("T16:00:00Z"),
        )
        .scalar_subquery()
    )
    days = {eid: set(found) for eid, found in unusual.items()}
    for eid, production_date, ev in session.execute(
        select(lots_t.c.enterprise_id, day, first).where(in_period).distinct()
    ):
        if ev is None:
            continue
        if not CANONICAL.fullmatch(ev):
            lo = f"{date.fromisoformat(production_date) - timedelta(days=1)}T16:00:00Z"
            hi = f"{production_date}T16:00:00Z"
            found = session.execute(
                select(e.c.event_time).where(
                    e.c.ledger_id == eid, e.c.event_time >= lo, e.c.event_time < hi
                )
            ).scalars()
            if not any(CANONICAL.fullmatch(x) for x in found):
                continue
        days.setdefault(eid, set()).add(production_date)
    return days


def _record_times(
    session: Session, times: dict[int, dict[int, tuple[str, str]]], wanted: dict[int, set[int]]
) -> None:
    """Add to ``times`` the (event time, recorded time) of the ``wanted`` entries (seqs per
    ledger), one query per ledger that has any."""
    for eid, seqs in wanted.items():
        missing = sorted(seqs - times.setdefault(eid, {}).keys())
        for k in range(0, len(missing), 1000):
            for seq, ev, rec in session.execute(
                select(Entry.seq, Entry.event_time, Entry.recorded_at).where(
                    Entry.ledger_id == eid,
                    Entry.seq.in_(missing[k : k + 1000]),  # type: ignore[attr-defined]
                )
            ):
                times[eid][seq] = (ev, rec)


def _facts_from_rows(session: Session, period: Period) -> None:
    """The facts of the odd lots (an instant SQL cannot compare as text), from their
    reading rows and entries, as :func:`lot_facts` counts them."""
    by_enterprise: dict[int, list[int]] = {}
    for eid, seq in sorted(period.odd):
        by_enterprise.setdefault(eid, []).append(seq)
    readings, actions = TABLES["ccp_readings"], TABLES["corrective_actions"]
    wanted: dict[int, set[int]] = {}
    for eid, seqs in by_enterprise.items():
        store = period.rows[eid]
        for row in _rows(
            session,
            select(readings).where(readings.c.enterprise_id == eid, readings.c.lot_seq.in_(seqs)),
        ):
            store.add("ccp_readings", row, "lot_seq")
        for row in _rows(session, select(actions).where(actions.c.enterprise_id == eid)):
            store.add("corrective_actions", row, "reading_seq")
        found = wanted[eid] = set()
        for lot in period.lots[eid]:
            if lot["record_seq"] in seqs:
                found.add(lot["current_seq"])
                for table in ("ccp_readings", "release_tests", "sales"):
                    found.update(
                        r["current_seq"] for r in store.find(table, lot_seq=lot["record_seq"])
                    )
    times: dict[int, dict[int, tuple[str, str]]] = {}
    _record_times(session, times, wanted)
    for eid in by_enterprise:
        for lot in period.lots[eid]:
            if (eid, lot["record_seq"]) in period.odd:
                period.facts[eid, lot["record_seq"]] = lot_facts(period.rows[eid], lot, times[eid])


def _own_rules(
    *, session: Session, enterprises: list[Enterprise], since: date, until: date
) -> dict[int, EnterpriseResult]:
    """The rules within each enterprise's ledger, for its lots produced in [since, until]:
    one query per table for all the enterprises together, not one per enterprise."""
    ids = [e.id for e in enterprises if e.id is not None]
    if not ids:
        return {}
    period = _read_period(session, ids, since, until)
    if period.odd:
        _facts_from_rows(session, period)
    out = {}
    for e in enterprises:
        eid = e.id
        assert eid is not None
        found = period.lots[eid]
        results = [
            check_lot(
                period.rows[eid],
                lot,
                period.facts.get((eid, lot["record_seq"])) or LotFacts(),
            )
            for lot in sorted(found, key=lambda x: (x["production_date"], x["code"]))
        ]
        production_days = {lot["production_date"] for lot in found}
        daily = {
            s["period_date"] for s in period.rows[eid].find("self_inspections", period="daily")
        }
        out[eid] = EnterpriseResult(
            e.credit_code,
            e.name,
            results,
            len(production_days),
            len(production_days & period.days[eid]),
            len(daily),
            (until - since).days + 1,
            since,
            until,
        )
    return out


def _sales_without_receipt(
    session: Session,
    results: dict[int, EnterpriseResult],
    readable: set[int],
    since: date,
    until: date,
) -> None:
    """Sales of the chosen enterprises' lots to registered enterprises, each with whether
    the buyer recorded its incoming check; one query for the whole district."""
    seller, buyer = aliased(Enterprise), aliased(Enterprise)
    # only the ledgers of readable buyers are looked into
    received = (
        exists()
        .where(
            MaterialLot.enterprise_id == buyer.id,
            MaterialLot.enterprise_id.in_(sorted(readable)),
            MaterialLot.supplier_credit_code == seller.credit_code,
            MaterialLot.batch_no == Lot.code,
        )
        .correlate(seller, buyer, Lot)
    )
    rows = session.execute(
        select(
            Sale.enterprise_id,
            Lot.code,
            Sale.quantity,
            Sale.unit,
            Sale.sale_date,
            buyer.id,
            buyer.name,
            buyer.credit_code,
            received.label("received"),
        )
        .join(Lot, and_(Lot.enterprise_id == Sale.enterprise_id, Lot.record_seq == Sale.lot_seq))
        .join(seller, seller.id == Sale.enterprise_id)
        .join(buyer, buyer.credit_code == Sale.buyer_credit_code)
        .where(
            Lot.enterprise_id.in_(sorted(results)),  # (sales: by the lot, one probe each)
            Lot.production_date.between(since.isoformat(), until.isoformat()),
        )
        .order_by(Sale.enterprise_id, Sale.sale_date, Sale.record_seq)
    ).all()
    lots = _lots_by_code(results)
    for eid, lot_code, quantity, unit, sale_date, buyer_id, buyer_name, buyer_code, ok in rows:
        if buyer_id not in readable:
            results[eid].outside.append(OutsideLink("sale", lot_code, buyer_code, buyer_name))
            continue
        results[eid].consulted.add(buyer_id)
        if ok:
            continue
        lots[eid, lot_code].fail(
            "sale_without_receipt",
            NOT_RECEIVED_BY_BUYER,
            quantity=quantity,
            unit=unit,
            buyer=buyer_name,
            date=sale_date,
        )


def _receipts_without_sale(
    session: Session,
    everyone: Sequence[Enterprise],
    results: dict[int, EnterpriseResult],
    readable: set[int],
    since: date,
    until: date,
) -> None:
    """Incoming checks of the chosen enterprises naming a registered supplier and a batch
    it never sold to them; one query for the whole district. The finding goes to every
    lot produced in the period that used the material lot, or to the enterprise when no
    lot has used it yet and it was received in the period."""
    consumer, sold_lot = aliased(Lot), aliased(Lot)
    span = (since.isoformat(), until.isoformat())
    registered = {e.credit_code: (e.id, e.name) for e in everyone}
    # Each row finds its supplier's and its own enterprise's row by key (a join with the
    # enterprises was planned as a scan of them per receipt where statistics were missing).
    supplier_of = (
        select(Enterprise.id)
        .where(Enterprise.credit_code == MaterialLot.supplier_credit_code)
        .correlate(MaterialLot)
        .scalar_subquery()
    )
    my_code = (
        select(Enterprise.credit_code)
        .where(Enterprise.id == MaterialLot.enterprise_id)
        .correlate(MaterialLot)
        .scalar_subquery()
    )
    # only the ledgers of readable suppliers are looked into
    sold = (
        exists()
        .where(
            # (on the receipt's own column: as a condition on the sales' ledger it was
            # made part of each index probe, once per readable ledger)
            MaterialLot.supplier_credit_code.in_(
                sorted(code for code, (eid, _) in registered.items() if eid in readable)
            ),
            Sale.enterprise_id == supplier_of,
            _in_shards(Sale.enterprise_id, sorted(readable)),
            Sale.buyer_credit_code == my_code,
            sold_lot.enterprise_id == Sale.enterprise_id,
            sold_lot.record_seq == Sale.lot_seq,
            sold_lot.code == MaterialLot.batch_no,
        )
        .correlate(MaterialLot)
    )
    columns = (
        MaterialLot.enterprise_id,
        MaterialLot.code,
        MaterialLot.batch_no,
        MaterialLot.receipt_date,
        MaterialLot.supplier_credit_code,
    )
    checked = and_(
        MaterialLot.enterprise_id.in_(sorted(results)),
        MaterialLot.batch_no.is_not(None),
        MaterialLot.batch_no != "",
        MaterialLot.supplier_credit_code.in_(sorted(registered)),
    )
    # Two parts, each driven by the period (not by every receipt of the ledgers): the
    # material lots the period's lots used, one row per use; and those received in the
    # period that no lot has used.
    used = (
        select(
            *columns, consumer.code.label("lot_code"), sold.label("sold"), MaterialLot.record_seq
        )
        .select_from(consumer)
        .join(
            LotInput,
            and_(
                LotInput.enterprise_id == consumer.enterprise_id,
                LotInput.record_seq == consumer.record_seq,
            ),
        )
        .join(
            MaterialLot,
            and_(
                MaterialLot.enterprise_id == LotInput.enterprise_id,
                MaterialLot.record_seq == LotInput.material_lot_seq,
            ),
        )
        .where(
            consumer.enterprise_id.in_(sorted(results)),
            consumer.production_date.between(*span),
            checked,
        )
    )
    idle = select(
        *columns,
        null().cast(String).label("lot_code"),
        sold.label("sold"),
        MaterialLot.record_seq,
    ).where(
        checked,
        MaterialLot.receipt_date.between(*span),
        ~exists().where(
            LotInput.enterprise_id == MaterialLot.enterprise_id,
            LotInput.material_lot_seq == MaterialLot.record_seq,
        ),
    )
    both = union_all(used, idle).subquery()
    found = session.execute(
        select(*list(both.c)[:-1]).order_by(
            both.c.enterprise_id, both.c.record_seq, both.c.lot_code
        )
    ).all()
    rows = [
        (eid, code, batch, received_on, *registered[credit_code], credit_code, lot_code, ok)
        for eid, code, batch, received_on, credit_code, lot_code, ok in found
    ]
    lots = _lots_by_code(results)
    done = set()  # a lot may use one material lot on several lines
    for eid, code, batch, received_on, supplier_id, name, credit_code, lot_code, ok in rows:
        result = results[eid]
        if supplier_id not in readable:
            result.outside.append(OutsideLink("receipt", code, credit_code, name))
            continue
        result.consulted.add(supplier_id)
        if ok or (eid, code, lot_code) in done:
            continue
        done.add((eid, code, lot_code))
        params = {"material_lot": code, "supplier": name, "batch": batch}
        if lot_code is None:
            reason = Reason(NOT_SOLD_BY_SUPPLIER, params)
            result.others.append(
                Finding("receipt_without_sale", None, [reason], received_on, material_lot=code)
            )
        else:
            lots[eid, lot_code].fail("receipt_without_sale", NOT_SOLD_BY_SUPPLIER, **params)


def _lots_by_code(results: dict[int, EnterpriseResult]) -> dict[tuple[int, str], LotResult]:
    return {(eid, lot.lot): lot for eid, r in results.items() for lot in r.lots}


def district_completeness(
    *,
    session: Session,
    enterprise_ids: list[int],
    since: date,
    until: date,
    readable: Callable[[Enterprise], bool] = lambda _e: True,
) -> list[EnterpriseResult]:
    """Every enterprise side by side, weakest records first. A period that ends before it
    begins, or is longer than ``MAX_PERIOD_DAYS``, is refused (``RecordError``).

    ``readable`` says which enterprises' records the reader may see: the
    cross-enterprise rules look into no other ledger.
    """
    if since > until:
        raise RecordError.at("since", msg="since is after until", type="date_order")
    if (until - since).days >= MAX_PERIOD_DAYS:
        raise RecordError.at(
            "since",
            msg=f"a report covers at most {MAX_PERIOD_DAYS} days; ask for a shorter period",
            type="period_too_long",
        )
    everyone = session.execute(select(Enterprise)).scalars().all()
    by_id = {e.id: e for e in everyone}
    # PostgreSQL compiles a query it expects to be costly (JIT); for these few, each run
    # once, compiling took longer than running (1.3 s of a 4 s aggregate at district scale)
    with _pg_settings(session, jit="off"):
        results = _own_rules(
            session=session,
            enterprises=[by_id[i] for i in dict.fromkeys(enterprise_ids)],
            since=since,
            until=until,
        )
        if results:
            seen = {e.id for e in everyone if readable(e)}
            _sales_without_receipt(session, results, seen, since, until)
            _receipts_without_sale(session, everyone, results, seen, since, until)
    for r in results.values():
        r.outside = list(dict.fromkeys(r.outside))  # once each, in order
    return sorted(results.values(), key=lambda r: (r.complete_share, r.credit_code))


@contextmanager
def _pg_settings(session: Session, **values: str) -> Iterator[None]:
    """PostgreSQL planner settings for this transaction only, then back as they were
    (nothing on SQLite)."""
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    was = {
        name: session.execute(text("SELECT current_setting(:n)"), {"n": name}).scalar_one()
        for name in values
    }
    for name, value in values.items():
        session.execute(text("SELECT set_config(:n, :v, true)"), {"n": name, "v": value})
    yield
    # not on an error: the transaction is then rolled back, and the settings with it (and a
    # statement in a failed transaction would hide the error)
    for name, value in was.items():
        session.execute(text("SELECT set_config(:n, :v, true)"), {"n": name, "v": value})


def enterprise_completeness(
    *,
    session: Session,
    enterprise_id: int,
    since: date,
    until: date,
    readable: Callable[[Enterprise], bool] = lambda _e: True,
) -> EnterpriseResult:
    """Completeness of one enterprise's lots produced in [since, until]."""
    return district_completeness(
        session=session,
        enterprise_ids=[enterprise_id],
        since=since,
        until=until,
        readable=readable,
    )[0]


def weeks(since: date, until: date) -> list[Week]:
    """The ISO weeks of [since, until], the first and last clipped to the period."""
    out = []
    monday = since - timedelta(days=since.weekday())
    while monday <= until:
        year, week, _ = monday.isocalendar()
        out.append(Week(year, week, max(monday, since), min(monday + timedelta(days=6), until)))
        monday += timedelta(days=7)
    return out


def weekly_trend(results: list[EnterpriseResult], since: date, until: date) -> list[Week]:
    """Per ISO week: lots produced, complete lots and findings, over ``results`` together
    (one enterprise, or the district: a share of all its lots, not a mean of shares)."""
    out = weeks(since, until)
    first_monday = since - timedelta(days=since.weekday())

    def week_of(day: str) -> Week | None:
        d = date.fromisoformat(day)
        return out[(d - first_monday).days // 7] if since <= d <= until else None

    for r in results:
        for lot in r.lots:
            w = week_of(lot.production_date)
            if w is not None:
                w.lots_total += 1
                w.lots_complete += lot.complete
        for finding in r.findings:
            w = week_of(finding.day)
            if w is not None:
                w.findings += 1
    return out


MAX_PERIOD_DAYS = 366
"""The longest period one completeness report covers (a year): its rules walk every day."""


def period(now: datetime, days: int = 30) -> tuple[date, date]:
    today = local_date(now)
    return today - timedelta(days=days), today
