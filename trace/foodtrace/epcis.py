"""A lot's trail as a GS1 EPCIS 2.0 JSON-LD document (CBV 2.0 vocabulary).

Receiving a material lot (an incoming check) is an ``ObjectEvent`` with
``bizStep`` ``receiving``; making a lot from material lots is a
``TransformationEvent`` (``commissioning``) with the materials as inputs and
the lot as output; a sale or a cross-enterprise shipment is an ``ObjectEvent``
with ``bizStep`` ``shipping``. Lots are classes (``epcClass``) named by GS1
Digital Link URIs where the product has a GTIN (``https://<platform>/01/<GTIN-14>/10/<lot>``)
and by the platform's lot URL otherwise (``https://<platform>/lot/<credit code>/<lot>``).
Each event's ``eventID`` carries the ledger entry it comes from.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from foodtrace.digital_link import lot_path
from foodtrace.trail import Node, Trail

CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
# UN/ECE Recommendation 20 codes for the metric units records use; other units
# (箱, 瓶, 袋 …) are counts of packages and carry no uom.
UOM = {"kg": "KGM", "g": "GRM", "t": "TNE", "l": "LTR", "L": "LTR", "ml": "MLT", "mL": "MLT"}


def epc_class(platform: str, node: Node) -> str:
    """The class URI of a lot or material lot."""
    if node.type == "lot":  # the address printed on the package (foodtrace.digital_link)
        return f"https://{platform}" + lot_path(
            lot_code=node.code or "", gtin=node.gtin, credit_code=node.credit_code
        )
    return f"https://{platform}/material-lot/{node.credit_code}/{quote(node.code or '', safe='')}"


def _quantity(platform: str, node: Node, quantity: str | None, unit: str | None) -> dict[str, Any]:
    element: dict[str, Any] = {"epcClass": epc_class(platform, node)}
    if quantity:
        element["quantity"] = float(Decimal(quantity))
        if unit in UOM:
            element["uom"] = UOM[unit]
    return element


def _time(date: str | None) -> str:
    # Records keep calendar dates (local, China Standard Time); EPCIS wants an instant.
    return f"{date or '1970-01-01'}T00:00:00+08:00"


def _event_id(node: Node, seq: int | None, suffix: str) -> str:
    return f"urn:foodtrace:{node.credit_code}:entry:{seq or 0}:{suffix}"


def trail_document(trail: Trail, *, platform: str, now: datetime | None = None) -> dict[str, Any]:
    """The EPCIS document of a trail's traceability events."""
    events: list[dict[str, Any]] = []
    produced: dict[str, list[Any]] = defaultdict(list)
    for e in trail.edges:
        src, dst = trail.nodes[e.source], trail.nodes[e.target]
        if e.finding or src.outside or dst.outside:
            continue
        if e.type == "consumed":
            produced[e.target].append(e)
        elif e.type == "supplied":
            events.append(
                {
                    "type": "ObjectEvent",
                    "eventTime": _time(e.date),
                    "eventTimeZoneOffset": "+08:00",
                    "eventID": _event_id(dst, e.seq, "receiving"),
                    "action": "ADD",
                    "bizStep": "receiving",
                    "disposition": "in_progress",
                    "quantityList": [_quantity(platform, dst, e.quantity, e.unit)],
                }
            )
        elif e.type in ("sold", "shipped"):
            lot = src if src.type == "lot" else dst
            events.append(
                {
                    "type": "ObjectEvent",
                    "eventTime": _time(e.date),
                    "eventTimeZoneOffset": "+08:00",
                    "eventID": _event_id(lot, e.seq, "shipping"),
                    "action": "OBSERVE",
                    "bizStep": "shipping",
                    "disposition": "in_transit",
                    "quantityList": [_quantity(platform, lot, e.quantity, e.unit)],
                }
            )
    for lot_id, edges in produced.items():
        lot = trail.nodes[lot_id]
        events.append(
            {
                "type": "TransformationEvent",
                "eventTime": _time(edges[0].date),
                "eventTimeZoneOffset": "+08:00",
                "eventID": _event_id(lot, edges[0].seq, "production"),
                "bizStep": "commissioning",
                "disposition": "active",
                "inputQuantityList": [
                    _quantity(platform, trail.nodes[x.source], x.quantity, x.unit) for x in edges
                ],
                "outputQuantityList": [_quantity(platform, lot, None, None)],
            }
        )
    events.sort(key=lambda ev: (ev["eventTime"], ev["eventID"]))
    created = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "@context": [CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": created,
        "epcisBody": {"eventList": events},
    }
