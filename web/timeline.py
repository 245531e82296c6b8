"""A lot's records in time order, as both portals show them."""

from __future__ import annotations

from typing import Any

from schemas.api import LotPublic
from web.i18n import N_
from web.web import _local_time


def lot_timeline(view: LotPublic) -> tuple[list[dict[str, Any]], bool]:
    """The lot's records (material checks, the lot, CCP readings, release tests, sales) in
    time order, each with its ledger seq and a flag worth seeing; and whether it is released."""
    timeline: list[dict[str, Any]] = []
    for m in view.materials:
        timeline.append(
            {
                "sort": m["receipt_date"],
                "when": m["receipt_date"],
                "kind": N_("Incoming material check"),
                "text": f"{m['material_name']} {m['code']} · {m['used_quantity']} {m['used_unit']}",
                "seq": m["current_seq"],
            }
        )
    lot = view.lot
    timeline.append(
        {
            "sort": lot["started_at"],
            "when": lot["production_date"],
            "kind": N_("Production lot"),
            "text": f"{lot['quantity']} {lot['unit']}",
            "seq": lot["current_seq"],
        }
    )
    for r in view.ccp_readings:
        timeline.append(
            {
                "sort": r["measured_at"],
                "when": _local_time(r["measured_at"]),
                "kind": N_("CCP reading"),
                "text": f"{r['ccp']} {r['parameter']} "
                f"{r['value'] or r['result']} {r['unit'] or ''}",
                "seq": r["current_seq"],
                "flag": N_("Open deviation")
                if r["open_deviation"]
                else (N_("Deviation closed") if r["deviation"] else None),
                "flag_tone": "bad" if r["open_deviation"] else "warn",
            }
        )
    for t in view.release_tests:
        timeline.append(
            {
                "sort": t["tested_at"],
                "when": _local_time(t["tested_at"]),
                "kind": N_("Release test"),
                "text": f"{t['report_no']} · {t['conclusion']}",
                "seq": t["current_seq"],
                "flag": N_("Passed") if t["conclusion"] == "pass" else N_("Failed"),
                "flag_tone": "ok" if t["conclusion"] == "pass" else "bad",
            }
        )
    for s in view.sales:
        timeline.append(
            {
                "sort": s["sale_date"] + "T23",
                "when": s["sale_date"],
                "kind": N_("Sale"),
                "text": f"{s['quantity']} {s['unit']} → {s['buyer_name']}",
                "seq": s["current_seq"],
                "flag": None if s["released"] else N_("Sold untested"),
                "flag_tone": "bad",
            }
        )
    timeline.sort(key=lambda r: r["sort"])
    released = any(t["conclusion"] == "pass" for t in view.release_tests)
    return timeline, released
