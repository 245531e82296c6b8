"""What an enterprise still owes today, worst first (the portal's Today list).

Each obligation names what is missing and the form that settles it:
open CCP deviations (a reading outside its limits with no corrective action),
sales of lots that have no passing release test (Art. 52), lots produced in the
last 30 days without a passing release test, CCP parameters of the last week's lots
with fewer readings than the plan's frequency asks for, and the daily, weekly
and monthly self-inspections (SAMR Order 60: 日管控、周排查、月调度) not yet done.

The Today page shows them grouped (:func:`grouped`): one item per kind of
obligation and lot, with a count ("21 CCP readings missing for PJ-D31"), so that
a week's import owes a page of items, not thousands of rows (issue 24, item 4).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from sqlalchemy import func, select
from sqlmodel import Session

from foodtrace.clock import local_date
from foodtrace.ledger.models import Entry
from foodtrace.records.derive import dec, dec_str, instant
from foodtrace.records.kinds.release_test import passes
from foodtrace.records.projection import DbStore

RECENT_DAYS = 30
CCP_DAYS = 7
"""Lots produced in the last this many days (today included) are checked for missing CCP
readings: a week's records entered late are still owed until they are in."""


@dataclass
class Obligation:
    """One thing still owed. ``severity`` 1 is the worst."""

    severity: int
    code: str  # open_deviation | unreleased_sale | oversold | untested_lot | missing_ccp | …
    link: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Today:
    day: date
    recorded: list[dict[str, Any]]
    owed: list[Obligation]


def expected_readings(param: dict[str, Any], started_at: str, ended_at: str) -> int:
    """Readings a parameter needs in a production window: once per lot, or one per interval."""
    freq = param.get("frequency_minutes")
    if not freq:
        return 1
    minutes = (instant(ended_at) - instant(started_at)).total_seconds() / 60
    return max(1, int(minutes // freq))


def owed(*, session: Session, enterprise_id: int, now: datetime) -> list[Obligation]:
    """Everything the enterprise still owes, worst first."""
    store = DbStore(session, enterprise_id)
    today = local_date(now)
    out: list[Obligation] = []
    lots = {lot["record_seq"]: lot for lot in store.find("lots")}
    closed = {a["reading_seq"] for a in store.find("corrective_actions")}
    plans: dict[int, dict[tuple[str, str], tuple[str, str]]] = {}
    for r in store.find("ccp_readings", deviation=True):
        if r["corrective_action"] or r["record_seq"] in closed:
            continue
        lot = lots.get(r["lot_seq"], {})
        names = plans.get(lot.get("product_seq", -1))
        if names is None:
            names = plans[lot.get("product_seq", -1)] = _plan_names(store, lot.get("product_seq"))
        ccp_name, parameter_name = names.get((r["ccp"], r["parameter"]), ("", ""))
        out.append(
            Obligation(
                1,
                "open_deviation",
                f"/records/corrective_action/new?reading={r['record_seq']}",
                {
                    "lot": lot.get("code"),
                    "ccp": r["ccp"],
                    "parameter": r["parameter"],
                    "ccp_name": ccp_name,
                    "parameter_name": parameter_name,
                    "value": r["value"] or r["result"],
                    "unit": r["unit"] or "",
                    "seq": r["record_seq"],
                    "at": r["measured_at"],
                },
            )
        )
    passed = {t["lot_seq"] for t in store.find("release_tests") if passes(t)}
    for s in store.find("sales"):
        if s["lot_seq"] in passed:
            continue
        lot = lots.get(s["lot_seq"], {})
        out.append(
            Obligation(
                2,
                "unreleased_sale",
                f"/records/release_test/new?lot={lot.get('code', '')}",
                {
                    "lot": lot.get("code"),
                    "quantity": s["quantity"],
                    "unit": s["unit"],
                    "buyer": s["buyer_name"],
                    "date": s["sale_date"],
                    "seq": s["record_seq"],
                },
            )
        )
    products = {p["record_seq"]: p for p in store.find("products")}
    # A sale beyond what the lot made (its mass balance broken) stays owed until a
    # correction of a sale or of the lot mends it.
    sold: dict[int, Decimal] = {}
    for s in store.find("sales"):
        sold[s["lot_seq"]] = sold.get(s["lot_seq"], Decimal(0)) + dec(s["quantity_base"])
    for seq, total in sorted(sold.items()):
        made = lots.get(seq)
        if made is None or total <= dec(made["quantity_base"]):
            continue
        unit = json.loads(products[made["product_seq"]]["data"])["unit"]
        out.append(
            Obligation(
                2,
                "oversold",
                f"/lots/{quote(made['code'], safe='')}",
                {
                    "lot": made["code"],
                    "sold": dec_str(total),
                    "produced": dec_str(dec(made["quantity_base"])),
                    "unit": unit,
                },
            )
        )
    since = (today - timedelta(days=RECENT_DAYS)).isoformat()
    ccp_since = (today - timedelta(days=CCP_DAYS - 1)).isoformat()
    for lot in sorted(lots.values(), key=lambda x: x["production_date"]):
        if lot["production_date"] < since:
            continue
        if lot["record_seq"] not in passed:
            out.append(
                Obligation(
                    3,
                    "untested_lot",
                    f"/records/release_test/new?lot={lot['code']}",
                    {"lot": lot["code"], "date": lot["production_date"]},
                )
            )
        if lot["production_date"] < ccp_since:
            continue
        plan = json.loads(products[lot["product_seq"]]["data"]).get("ccp_plan", [])
        if not plan:
            continue
        readings = store.find("ccp_readings", lot_seq=lot["record_seq"])
        for point in plan:
            for param in point["parameters"]:
                have = sum(
                    1
                    for r in readings
                    if r["ccp"] == point["code"] and r["parameter"] == param["code"]
                )
                need = expected_readings(param, lot["started_at"], lot["ended_at"])
                if have < need:
                    out.append(
                        Obligation(
                            4,
                            "missing_ccp",
                            f"/records/ccp_record/new?lot={lot['code']}&point={point['code']}/{param['code']}",
                            {
                                "lot": lot["code"],
                                "ccp": point["code"],
                                "ccp_name": point["name"],
                                "parameter": param["name"],
                                "have": have,
                                "need": need,
                            },
                        )
                    )
    done = {(s["period"], s["period_date"]) for s in store.find("self_inspections")}
    periods = (
        ("daily", today),
        ("weekly", today - timedelta(days=today.weekday())),
        ("monthly", today.replace(day=1)),
    )
    for period, start in periods:
        if (period, start.isoformat()) not in done:
            out.append(
                Obligation(
                    5,
                    "self_inspection",
                    f"/records/self_inspection/new?period={period}",
                    {"period": period, "date": start.isoformat()},
                )
            )
    out.sort(key=lambda o: o.severity)
    return out


def _plan_names(store: DbStore, product_seq: int | None) -> dict[tuple[str, str], tuple[str, str]]:
    """(CCP code, parameter code) -> their names in the product's plan (a reading names
    them by code; the list says what the plan calls them)."""
    found = store.find("products", record_seq=product_seq) if product_seq is not None else []
    if not found:
        return {}
    out = {}
    for point in json.loads(found[0]["data"]).get("ccp_plan", []):
        for param in point["parameters"]:
            out[(point["code"], param["code"])] = (point["name"], param["name"])
    return out


def _today_since(now: datetime) -> str:
    from foodtrace.clock import CST
    from schemas.types import format_instant

    start_local = datetime.combine(local_date(now), datetime.min.time())
    return format_instant(start_local.replace(tzinfo=CST))


def recorded_today_count(*, session: Session, enterprise_id: int, now: datetime) -> int:
    """How many entries were recorded since local midnight."""
    return session.execute(
        select(func.count())
        .select_from(Entry)
        .where(Entry.ledger_id == enterprise_id, Entry.recorded_at >= _today_since(now))
    ).scalar_one()


def recorded_today(
    *,
    session: Session,
    enterprise_id: int,
    now: datetime,
    limit: int | None = None,
    before: int | None = None,
) -> list[dict[str, Any]]:
    """Entries recorded since local midnight, newest first; at most ``limit`` of them, and
    only those older than seq ``before`` (a keyset cursor) when given."""
    conds = [Entry.ledger_id == enterprise_id, Entry.recorded_at >= _today_since(now)]
    if before is not None:
        conds.append(Entry.seq < before)
    rows = session.execute(
        select(Entry).where(*conds).order_by(Entry.seq.desc()).limit(limit)
    ).scalars()
    out = []
    for e in rows:
        env = json.loads(e.body)
        out.append(
            {
                "seq": e.seq,
                "kind": e.kind,
                "recorded_at": e.recorded_at,
                "actor": env.get("actor"),
                "summary": summary(e.kind, env.get("body", {})),
            }
        )
    return out


def summary(kind: str, body: dict[str, Any]) -> str:
    """A one-line description of a record for lists."""
    if kind == "correction":
        return f"#{body.get('corrects')} · {body.get('reason', '')}"[:80]
    keys = (
        "lot_code",
        "material_lot",
        "code",
        "name",
        "material_name",
        "ccp",
        "parameter",
        "value",
        "result",
        "quantity",
        "unit",
        "conclusion",
        "period",
        "period_date",
    )
    return " · ".join(str(body[k]) for k in keys if body.get(k) not in (None, ""))[:80]


def today_view(
    *,
    session: Session,
    enterprise_id: int,
    now: datetime,
    limit: int | None = None,
    before: int | None = None,
) -> Today:
    """Today's entries (a page of them: ``limit``, ``before``) and what is still owed."""
    return Today(
        local_date(now),
        recorded_today(
            session=session, enterprise_id=enterprise_id, now=now, limit=limit, before=before
        ),
        owed(session=session, enterprise_id=enterprise_id, now=now),
    )


# ------------------------------------------------------------------ grouped for the page


@dataclass
class Group:
    """What is owed of one kind for one lot (or, without a lot, one obligation): ``count``
    things, settled on the form at ``link``. ``first`` is the group's first obligation
    (its params name the lot, a reading, a date)."""

    severity: int
    code: str
    lot: str | None
    count: int
    link: str
    first: Obligation
    params: dict[str, Any] = field(default_factory=dict)


def _counted(o: Obligation) -> int:
    """How many things one obligation stands for: the readings a parameter still needs."""
    if o.code == "missing_ccp":
        return max(1, int(o.params["need"]) - int(o.params["have"]))
    return 1


def grouped(owed_items: list[Obligation]) -> list[Group]:
    """``owed_items`` (worst first) as one item per kind and lot, worst first, in the order
    of each group's first obligation.

    A lot's missing CCP readings are one item (their count summed over its parameters, the
    parameters listed); its open deviations, one item linking to the first; its sales
    without a passing release test, one item (the count, the dates sold, the buyers). A lot
    that has such a sale is not listed again as a lot without a release test: the sale's
    item already asks for the test, on the same form.
    """
    groups: dict[tuple[str, str | None], Group] = {}
    for o in owed_items:
        lot = o.params.get("lot") if o.code != "self_inspection" else None
        key = (o.code, lot if lot is not None else f"#{len(groups)}")
        g = groups.get(key)
        if g is None:
            g = groups[key] = Group(o.severity, o.code, lot, 0, o.link, o, {})
        g.count += _counted(o)
        p = g.params
        if o.code == "missing_ccp":
            p.setdefault("parameters", []).append(f"{o.params['ccp_name']} {o.params['parameter']}")
            p["link"] = f"/records/ccp_record/new?lot={quote(str(lot or ''), safe='')}"
        elif o.code == "unreleased_sale":
            day = str(o.params.get("date") or "")
            p["since"] = min(p.get("since", day), day)
            p["until"] = max(p.get("until", day), day)
            buyers = p.setdefault("buyers", [])
            if o.params.get("buyer") not in buyers:
                buyers.append(o.params.get("buyer"))
    sold_untested = {g.lot for g in groups.values() if g.code == "unreleased_sale"}
    out = [g for g in groups.values() if not (g.code == "untested_lot" and g.lot in sold_untested)]
    for g in out:
        if g.code == "missing_ccp":
            # one parameter short: its own form; several: the lot's CCP form
            g.link = g.first.link if len(g.params["parameters"]) == 1 else g.params["link"]
    out.sort(key=lambda g: g.severity)  # stable: within a severity, as the obligations came
    return out


def counts_by_code(groups: list[Group]) -> dict[str, tuple[int, int]]:
    """Per kind of obligation: (things owed, items), in the order of the groups."""
    out: dict[str, tuple[int, int]] = {}
    for g in groups:
        things, items = out.get(g.code, (0, 0))
        out[g.code] = (things + g.count, items + 1)
    return out
