"""A lot's records in time order, as both portals show them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from foodtrace.records.kinds import REGISTRY
from foodtrace.records.kinds.release_test import released as is_released
from schemas.api import LotPublic
from schemas.records import RecordKind
from web.i18n import N_
from web.values import VALUE_LABELS
from web.web import _local_time

Row = dict[str, Any]


def _material(m: Row, view: LotPublic) -> Row:
    return {
        "sort": m["receipt_date"],
        "when": m["receipt_date"],
        "text": f"{m['material_name']} {m['code']} · {m['used_quantity']} {m['used_unit']}",
        "seq": m["current_seq"],
    }


def _lot(lot: Row, view: LotPublic) -> Row:
    return {
        "sort": lot["started_at"],
        "when": lot["production_date"],
        "text": f"{lot['quantity']} {lot['unit']}",
        "seq": lot["current_seq"],
    }


def _reading(r: Row, view: LotPublic) -> Row:
    ccp, param = _plan_names(view).get((r["ccp"], r["parameter"]), (r["ccp"], r["parameter"]))
    measured = f" {r['value']} {r['unit'] or ''}" if r["value"] is not None else ""
    return {
        "sort": r["measured_at"],
        "when": _local_time(r["measured_at"]),
        "text": f"{ccp} {param}{measured}".rstrip(),
        "word": VALUE_LABELS.get(r["result"] or ""),
        "seq": r["current_seq"],
        "flag": N_("Open deviation")
        if r["open_deviation"]
        else (N_("Deviation closed") if r["deviation"] else None),
        "flag_tone": "bad" if r["open_deviation"] else "warn",
    }


def _plan_names(view: LotPublic) -> dict[tuple[str, str], tuple[str, str]]:
    """(CCP code, parameter code) → their names, from the lot's product's plan."""
    return {
        (c["code"], p["code"]): (c.get("name") or c["code"], p.get("name") or p["code"])
        for c in view.product.get("ccp_plan") or []
        for p in c.get("parameters") or []
    }


def _release_test(t: Row, view: LotPublic) -> Row:
    return {
        "sort": t["tested_at"],
        "when": _local_time(t["tested_at"]),
        "text": t["report_no"],
        "seq": t["current_seq"],
        "flag": N_("Passed") if t["conclusion"] == "pass" else N_("Failed"),
        "flag_tone": "ok" if t["conclusion"] == "pass" else "bad",
    }


def _sale(s: Row, view: LotPublic) -> Row:
    return {
        "sort": s["sale_date"] + "T23",
        "when": s["sale_date"],
        "text": f"{s['quantity']} {s['unit']} → {s['buyer_name']}",
        "seq": s["current_seq"],
        "flag": None if s["released"] else N_("Sold untested"),
        "flag_tone": "bad",
    }


ROWS: dict[str, Callable[[Row, LotPublic], Row]] = {
    RecordKind.MATERIAL_CHECK: _material,
    RecordKind.PRODUCTION_LOT: _lot,
    RecordKind.CCP_RECORD: _reading,
    RecordKind.RELEASE_TEST: _release_test,
    RecordKind.SALE: _sale,
}
"""A timeline row for each row of a kind's ``lot_view`` (the kinds of ``records/kinds``)."""


def lot_timeline(view: LotPublic) -> tuple[list[dict[str, Any]], bool]:
    """The lot's records (of every kind with rows in a lot's view: material checks, the
    lot, CCP readings, release tests, sales) in time order, each with its ledger seq and a
    flag worth seeing; and whether it is released."""
    timeline: list[dict[str, Any]] = []
    for kind in REGISTRY:
        if kind.lot_view is None:
            continue
        rows = getattr(view, kind.lot_view)
        for row in [rows] if isinstance(rows, dict) else rows:
            timeline.append({**ROWS[kind.kind](row, view), "kind": kind.label})
    timeline.sort(key=lambda r: r["sort"])
    return timeline, is_released(view.release_tests)
