"""The completeness rules as they read every CCP reading and entry of the period row by row
(the implementation before the counts moved into SQL), kept to prove the SQL counts give
the same reports: ``tests/test_completeness_sql.py``."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import aliased
from sqlmodel import Session

from foodtrace.accounts.models import Enterprise
from foodtrace.clock import local_date
from foodtrace.completeness import (
    LATE,
    LATE_ENTRIES,
    NO_ACCEPTED_CHECK,
    NO_BUYER_NAME,
    NO_PASSING_TEST,
    NOT_RECEIVED_BY_BUYER,
    NOT_SOLD_BY_SUPPLIER,
    OPEN_DEVIATIONS,
    OVERSOLD,
    SOLD_BEFORE_TEST,
    TOO_FEW_READINGS,
    WINDOW_SLACK,
    EnterpriseResult,
    Finding,
    LotResult,
    OutsideLink,
    Reason,
)
from foodtrace.ledger.models import Entry
from foodtrace.records.derive import dec, instant
from foodtrace.records.models import Lot, LotInput, MaterialLot, Sale
from foodtrace.records.obligations import expected_readings
from foodtrace.records.projection import TABLES, DbStore


class PeriodRows:
    """The derived rows the lot rules read, for one enterprise, read for a whole district.

    ``find`` answers like :meth:`DbStore.find` for the lookups :func:`check_lot`
    makes (by one column, or every corrective action), from rows read with one
    query per table for every enterprise at once (:func:`_read_period`).
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


def check_lot(
    store: DbStore | PeriodRows, lot: dict[str, Any], entries: dict[int, tuple[str, str]]
) -> LotResult:
    """The rules within one enterprise's ledger for one lot.

    ``entries`` maps seq -> (event_time, recorded_at).
    """
    product = store.find("products", record_seq=lot["product_seq"])[0]
    data = json.loads(product["data"])
    result = LotResult(lot["code"], product["name"], lot["production_date"])
    seqs = [lot["current_seq"]]
    # materials
    for use in store.find("lot_inputs", record_seq=lot["record_seq"]):
        ml = store.find("material_lots", record_seq=use["material_lot_seq"])
        if not ml or not ml[0]["accepted"]:
            name = ml[0]["code"] if ml else f"#{use['material_lot_seq']}"
            result.fail("materials_checked", NO_ACCEPTED_CHECK, material_lot=name)
    # CCP readings inside the window, at the plan's frequency
    readings = store.find("ccp_readings", lot_seq=lot["record_seq"])
    start = instant(lot["started_at"]) - WINDOW_SLACK
    end = instant(lot["ended_at"]) + WINDOW_SLACK
    for point in data.get("ccp_plan", []):
        for param in point["parameters"]:
            have = sum(
                1
                for r in readings
                if r["ccp"] == point["code"]
                and r["parameter"] == param["code"]
                and start <= instant(r["measured_at"]) <= end
            )
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
    closed = {a["reading_seq"] for a in store.find("corrective_actions")}
    open_ = [
        r
        for r in readings
        if r["deviation"] and not r["corrective_action"] and r["record_seq"] not in closed
    ]
    if open_:
        result.fail("deviations_closed", OPEN_DEVIATIONS, count=len(open_))
    seqs += [r["current_seq"] for r in readings]
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
    seqs += [t["current_seq"] for t in store.find("release_tests", lot_seq=lot["record_seq"])]
    seqs += [s["current_seq"] for s in sales]
    if any(not s["buyer_name"] for s in sales):
        result.fail("buyer_fields", NO_BUYER_NAME)
    sold = sum((dec(s["quantity_base"]) for s in sales), Decimal(0))
    if sold > dec(lot["quantity_base"]):
        result.fail("mass_balance", OVERSOLD, sold=sold, produced=lot["quantity_base"])
    late = [
        s for s in seqs if s in entries and instant(entries[s][1]) - instant(entries[s][0]) > LATE
    ]
    if late:
        result.fail("timely", LATE_ENTRIES, count=len(late))
    return result


def _rows(session: Session, stmt: Any) -> list[dict[str, Any]]:
    result = session.connection().execute(stmt)
    cols = list(result.keys())
    return [dict(zip(cols, r, strict=True)) for r in result.all()]  # fetchall: not row by row


def _read_period(
    session: Session, ids: list[int], since: date, until: date
) -> tuple[
    dict[int, PeriodRows],
    dict[int, list[dict[str, Any]]],
    dict[int, set[str]],
    dict[int, dict[int, tuple[str, str]]],
]:
    """The rows the lot rules need for every enterprise of ``ids``: one query per table.

    Returns the rows per enterprise, the lots produced in [since, until] per
    enterprise, the local days (CST) on which each enterprise recorded an event in
    the period, and (event time, recorded time) of the entries of the period by seq.
    """
    span = (since.isoformat(), until.isoformat())
    t = {name: TABLES[name] for name in TABLES}
    lots_t = t["lots"]
    period_lots = (
        select(lots_t.c.enterprise_id, lots_t.c.record_seq)
        .where(lots_t.c.enterprise_id.in_(ids), lots_t.c.production_date.between(*span))
        .subquery()
    )
    rows = {i: PeriodRows(i) for i in ids}
    lots: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    for lot in _rows(
        session,
        select(lots_t).where(
            lots_t.c.enterprise_id.in_(ids), lots_t.c.production_date.between(*span)
        ),
    ):
        lots[lot["enterprise_id"]].append(lot)

    def of_period_lots(table: str, column: str) -> Any:
        tab = t[table]
        return select(tab).join(
            period_lots,
            and_(
                period_lots.c.enterprise_id == tab.c.enterprise_id,
                period_lots.c.record_seq == tab.c[column],
            ),
        )

    for table, column in (
        ("lot_inputs", "record_seq"),
        ("ccp_readings", "lot_seq"),
        ("sales", "lot_seq"),
        ("release_tests", "lot_seq"),
    ):
        for row in _rows(session, of_period_lots(table, column)):
            rows[row["enterprise_id"]].add(table, row, column)
    inputs, mls = t["lot_inputs"], t["material_lots"]
    used = select(mls).where(
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
    for table, column in (("products", "record_seq"), ("corrective_actions", "reading_seq")):
        for row in _rows(session, select(t[table]).where(t[table].c.enterprise_id.in_(ids))):
            rows[row["enterprise_id"]].add(table, row, column)
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
    # Entries are read for the period only (event time within two days either side, as
    # text: every event time is an RFC 3339 instant), not the whole ledger.
    window = ((since - timedelta(days=2)).isoformat(), (until + timedelta(days=2)).isoformat())
    days: dict[int, set[str]] = {i: set() for i in ids}
    times: dict[int, dict[int, tuple[str, str]]] = {i: {} for i in ids}
    local: dict[str, str] = {}
    for eid, seq, ev, rec in session.execute(
        select(Entry.ledger_id, Entry.seq, Entry.event_time, Entry.recorded_at).where(
            Entry.ledger_id.in_(ids),  # type: ignore[attr-defined]
            Entry.event_time >= window[0],
            Entry.event_time < window[1],
        )
    ).all():
        times[eid][seq] = (ev, rec)
        # A UTC instant's day in China Standard Time (UTC+8, whole hours) follows from
        # its hour: worked out once per hour, not once per entry.
        key = ev[:13] if ev.endswith("Z") else ev
        day = local.get(key)
        if day is None:
            day = local[key] = local_date(instant(ev)).isoformat()
        days[eid].add(day)
    return rows, lots, days, times


def _record_times(
    session: Session, times: dict[int, dict[int, tuple[str, str]]], wanted: dict[int, set[int]]
) -> None:
    """Add to ``times`` the (event time, recorded time) of the ``wanted`` entries (seqs per
    ledger) that the period's read did not find: records of the period's lots entered
    for events outside it (a sale weeks later), one query per ledger that has any."""
    for eid, seqs in wanted.items():
        missing = sorted(seqs - times[eid].keys())
        for k in range(0, len(missing), 1000):
            for seq, ev, rec in session.execute(
                select(Entry.seq, Entry.event_time, Entry.recorded_at).where(
                    Entry.ledger_id == eid,
                    Entry.seq.in_(missing[k : k + 1000]),  # type: ignore[attr-defined]
                )
            ):
                times[eid][seq] = (ev, rec)


def _own_rules(
    *, session: Session, enterprises: list[Enterprise], since: date, until: date
) -> dict[int, EnterpriseResult]:
    """The rules within each enterprise's ledger, for its lots produced in [since, until]:
    one query per table for all the enterprises together, not one per enterprise."""
    ids = [e.id for e in enterprises if e.id is not None]
    if not ids:
        return {}
    rows, lots, recorded_days, times = _read_period(session, ids, since, until)
    # The entries each lot's records come from, for the timeliness rule.
    wanted: dict[int, set[int]] = {i: set() for i in ids}
    for eid, found in lots.items():
        store = rows[eid]
        for lot in found:
            seqs = wanted[eid]
            seqs.add(lot["current_seq"])
            for table in ("ccp_readings", "release_tests", "sales"):
                seqs.update(r["current_seq"] for r in store.find(table, lot_seq=lot["record_seq"]))
    _record_times(session, times, wanted)
    out = {}
    for e in enterprises:
        eid = e.id
        assert eid is not None
        found = lots[eid]
        results = [
            check_lot(rows[eid], lot, times[eid])
            for lot in sorted(found, key=lambda x: (x["production_date"], x["code"]))
        ]
        production_days = {lot["production_date"] for lot in found}
        daily = {s["period_date"] for s in rows[eid].find("self_inspections", period="daily")}
        out[eid] = EnterpriseResult(
            e.credit_code,
            e.name,
            results,
            len(production_days),
            len(production_days & recorded_days[eid]),
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
            Sale.enterprise_id.in_(sorted(results)),
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
    results: dict[int, EnterpriseResult],
    readable: set[int],
    since: date,
    until: date,
) -> None:
    """Incoming checks of the chosen enterprises naming a registered supplier and a batch
    it never sold to them; one query for the whole district. The finding goes to every
    lot produced in the period that used the material lot, or to the enterprise when no
    lot has used it yet and it was received in the period."""
    me, supplier = aliased(Enterprise), aliased(Enterprise)
    consumer, sold_lot = aliased(Lot), aliased(Lot)
    span = (since.isoformat(), until.isoformat())
    # only the ledgers of readable suppliers are looked into
    sold = (
        exists()
        .where(
            Sale.enterprise_id == supplier.id,
            Sale.enterprise_id.in_(sorted(readable)),
            Sale.buyer_credit_code == me.credit_code,
            sold_lot.enterprise_id == Sale.enterprise_id,
            sold_lot.record_seq == Sale.lot_seq,
            sold_lot.code == MaterialLot.batch_no,
        )
        .correlate(me, supplier, MaterialLot)
    )
    rows = session.execute(
        select(
            MaterialLot.enterprise_id,
            MaterialLot.code,
            MaterialLot.batch_no,
            MaterialLot.receipt_date,
            supplier.id,
            supplier.name,
            supplier.credit_code,
            consumer.code,
            sold.label("sold"),
        )
        .join(me, me.id == MaterialLot.enterprise_id)
        .join(supplier, supplier.credit_code == MaterialLot.supplier_credit_code)
        .outerjoin(
            LotInput,
            and_(
                LotInput.enterprise_id == MaterialLot.enterprise_id,
                LotInput.material_lot_seq == MaterialLot.record_seq,
            ),
        )
        .outerjoin(
            consumer,
            and_(
                consumer.enterprise_id == LotInput.enterprise_id,
                consumer.record_seq == LotInput.record_seq,
            ),
        )
        .where(
            MaterialLot.enterprise_id.in_(sorted(results)),
            MaterialLot.batch_no.is_not(None),
            MaterialLot.batch_no != "",
            or_(
                consumer.production_date.between(*span),
                and_(consumer.record_seq.is_(None), MaterialLot.receipt_date.between(*span)),
            ),
        )
        .order_by(MaterialLot.enterprise_id, MaterialLot.record_seq, consumer.code)
    ).all()
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
    """Every enterprise side by side, weakest records first.

    ``readable`` says which enterprises' records the reader may see: the
    cross-enterprise rules look into no other ledger.
    """
    everyone = session.execute(select(Enterprise)).scalars().all()
    by_id = {e.id: e for e in everyone}
    results = _own_rules(
        session=session,
        enterprises=[by_id[i] for i in dict.fromkeys(enterprise_ids)],
        since=since,
        until=until,
    )
    if results:
        seen = {e.id for e in everyone if readable(e)}
        _sales_without_receipt(session, results, seen, since, until)
        _receipts_without_sale(session, results, seen, since, until)
        for r in results.values():
            r.outside = list(dict.fromkeys(r.outside))  # once each, in order
    return sorted(results.values(), key=lambda r: (r.complete_share, r.credit_code))
