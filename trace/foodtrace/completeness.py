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
- ``timely``             the lot's records were entered within a day of the event
                         (back-filling is a warning sign)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from foodtrace.accounts.models import Enterprise
from foodtrace.clock import local_date
from foodtrace.ledger.models import Entry
from foodtrace.records.obligations import expected_readings
from foodtrace.records.projection import DbStore, dec, instant

RULES = (
    "materials_checked",
    "ccp_readings",
    "deviations_closed",
    "release_test",
    "buyer_fields",
    "mass_balance",
    "timely",
)
LATE = timedelta(hours=24)
WINDOW_SLACK = timedelta(minutes=15)


@dataclass
class LotResult:
    lot: str
    product: str
    production_date: str
    failed: dict[str, str] = field(default_factory=dict)  # rule -> why

    @property
    def complete(self) -> bool:
        return not self.failed


@dataclass
class EnterpriseResult:
    credit_code: str
    name: str
    lots: list[LotResult]
    production_days: int
    days_with_records: int
    daily_inspections: int
    days: int

    @property
    def complete_share(self) -> float:
        return sum(lot.complete for lot in self.lots) / len(self.lots) if self.lots else 1.0

    @property
    def findings(self) -> list[tuple[str, str, str]]:
        """(rule, lot, why), worst rules first."""
        out = [(rule, lot.lot, why) for lot in self.lots for rule, why in lot.failed.items()]
        return sorted(out, key=lambda f: (RULES.index(f[0]), f[1]))


def check_lot(
    store: DbStore, lot: dict[str, Any], entries: dict[int, tuple[str, str]]
) -> LotResult:
    """Every rule for one lot. ``entries`` maps seq -> (event_time, recorded_at)."""
    product = store.find("products", record_seq=lot["product_seq"])[0]
    data = json.loads(product["data"])
    result = LotResult(lot["code"], product["name"], lot["production_date"])
    seqs = [lot["current_seq"]]
    # materials
    for use in store.find("lot_inputs", record_seq=lot["record_seq"]):
        ml = store.find("material_lots", record_seq=use["material_lot_seq"])
        if not ml or not ml[0]["accepted"]:
            result.failed["materials_checked"] = (
                f"material lot #{use['material_lot_seq']} has no accepted check"
            )
    # CCP readings inside the window, at the plan's frequency
    readings = store.find("ccp_readings", lot_seq=lot["record_seq"])
    start = instant(lot["started_at"]) - WINDOW_SLACK
    end = instant(lot["ended_at"]) + WINDOW_SLACK
    short = []
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
                short.append(f"{point['code']} {param['code']} {have}/{need}")
    if short:
        result.failed["ccp_readings"] = "; ".join(short)
    closed = {a["reading_seq"] for a in store.find("corrective_actions")}
    open_ = [
        r
        for r in readings
        if r["deviation"] and not r["corrective_action"] and r["record_seq"] not in closed
    ]
    if open_:
        result.failed["deviations_closed"] = f"{len(open_)} open deviation(s)"
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
        result.failed["release_test"] = "no passing release test covering every required item"
    elif any(not s["released"] for s in sales) or (
        first_sale
        and min(local_date(instant(t["tested_at"])).isoformat() for t in passing) > first_sale
    ):
        # ``released`` records whether a passing test existed when the sale was recorded
        result.failed["release_test"] = "sold before the lot passed its release test"
    seqs += [t["current_seq"] for t in store.find("release_tests", lot_seq=lot["record_seq"])]
    seqs += [s["current_seq"] for s in sales]
    if any(not s["buyer_name"] for s in sales):
        result.failed["buyer_fields"] = "a sale without the buyer's name"
    sold = sum((dec(s["quantity_base"]) for s in sales), Decimal(0))
    if sold > dec(lot["quantity_base"]):
        result.failed["mass_balance"] = f"sold {sold} of {lot['quantity_base']} produced"
    late = [
        s for s in seqs if s in entries and instant(entries[s][1]) - instant(entries[s][0]) > LATE
    ]
    if late:
        result.failed["timely"] = f"{len(late)} record(s) entered more than a day late"
    return result


def enterprise_completeness(
    *, session: Session, enterprise_id: int, since: date, until: date
) -> EnterpriseResult:
    """Completeness of one enterprise's lots produced in [since, until]."""
    store = DbStore(session, enterprise_id)
    ent = session.get(Enterprise, enterprise_id)
    assert ent is not None
    entries = {
        seq: (ev, rec)
        for seq, ev, rec in session.execute(
            select(Entry.seq, Entry.event_time, Entry.recorded_at).where(
                Entry.ledger_id == enterprise_id
            )
        )
    }
    lots = [
        lot
        for lot in store.find("lots")
        if since.isoformat() <= lot["production_date"] <= until.isoformat()
    ]
    results = [
        check_lot(store, lot, entries) for lot in sorted(lots, key=lambda x: x["production_date"])
    ]
    production_days = {lot["production_date"] for lot in lots}
    recorded_days = {local_date(instant(ev)).isoformat() for ev, _ in entries.values()}
    daily = {
        s["period_date"]
        for s in store.find("self_inspections", period="daily")
        if since.isoformat() <= s["period_date"] <= until.isoformat()
    }
    return EnterpriseResult(
        ent.credit_code,
        ent.name,
        results,
        len(production_days),
        len(production_days & recorded_days),
        len(daily),
        (until - since).days + 1,
    )


def district_completeness(
    *, session: Session, enterprise_ids: list[int], since: date, until: date
) -> list[EnterpriseResult]:
    """Every enterprise side by side, weakest records first."""
    out = [
        enterprise_completeness(session=session, enterprise_id=i, since=since, until=until)
        for i in enterprise_ids
    ]
    return sorted(out, key=lambda r: (r.complete_share, r.credit_code))


def period(now: datetime, days: int = 30) -> tuple[date, date]:
    today = local_date(now)
    return today - timedelta(days=days), today
