"""A lot's records in time order, as both portals show them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from foodtrace.records.kinds import REGISTRY
from foodtrace.records.kinds.release_test import released as is_released
from schemas.api import LotPublic
from schemas.records import RecordKind
from web.i18n import N_
from web.web import _local_time

Row = dict[str, Any]


def _material(m: Row) -> Row:
    return {
        "sort": m["receipt_date"],
        "when": m["receipt_date"],
        "text": f"{m['material_name']} {m['code']} · {m['used_quantity']} {m['used_unit']}",
        "seq": m["current_seq"],
    }


def _lot(lot: Row) -> Row:
    return {
        "sort": lot["started_at"],
        "when": lot["production_date"],
        "text": f"{lot['quantity']} {lot['unit']}",
        "seq": lot["current_seq"],
    }


def _reading(r: Row) -> Row:
    return {
        "sort": r["measured_at"],
        "when": _local_time(r["measured_at"]),
        "text": f"{r['ccp']} {r['parameter']} {r['value'] or r['result']} {r['unit'] or ''}",
        "seq": r["current_seq"],
        "flag": N_("Open deviation")
        if r["open_deviation"]
        else (N_("Deviation closed") if r["deviation"] else None),
        "flag_tone": "bad" if r["open_deviation"] else "warn",
    }


def _release_test(t: Row) -> Row:
    return {
        "sort": t["tested_at"],
        "when": _local_time(t["tested_at"]),
        "text": f"{t['report_no']} · {t['conclusion']}",
        "seq": t["current_seq"],
        "flag": N_("Passed") if t["conclusion"] == "pass" else N_("Failed"),
        "flag_tone": "ok" if t["conclusion"] == "pass" else "bad",
    }


def _sale(s: Row) -> Row:
    return {
        "sort": s["sale_date"] + "T23",
        "when": s["sale_date"],
        "text": f"{s['quantity']} {s['unit']} → {s['buyer_name']}",
        "seq": s["current_seq"],
        "flag": None if s["released"] else N_("Sold untested"),
        "flag_tone": "bad",
    }


ROWS: dict[str, Callable[[Row], Row]] = {
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
            timeline.append({**ROWS[kind.kind](row), "kind": kind.label})
    timeline.sort(key=lambda r: r["sort"])
    return timeline, is_released(view.release_tests)
