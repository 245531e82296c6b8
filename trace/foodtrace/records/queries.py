"""Reading the current view of records: lists, a lot with everything recorded about it."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from foodtrace.errors import NotFound
from foodtrace.ledger.models import Entry
from foodtrace.records.derive import dec, dec_str
from foodtrace.records.models import Correction
from foodtrace.records.projection import TABLES, DbStore
from schemas.api import EntryPublic, LotPublic

LISTABLE = ("products", "suppliers", "customers", "material_lots", "lots")


def list_rows(*, session: Session, enterprise_id: int, table: str) -> list[dict[str, Any]]:
    """Current rows of one derived table for one enterprise, oldest first."""
    if table not in LISTABLE:
        raise ValueError(table)
    t = TABLES[table]
    rows = session.execute(
        select(t).where(t.c.enterprise_id == enterprise_id).order_by(t.c.record_seq)
    )
    out = []
    for r in rows:
        row = dict(r._mapping)
        row.pop("enterprise_id", None)
        if "data" in row:
            row["data"] = json.loads(row["data"])
        out.append(row)
    return out


def entry_public(
    entry: Entry, *, corrected_by: list[int] | None = None, with_body: bool
) -> EntryPublic:
    env = json.loads(entry.body)
    return EntryPublic(
        seq=entry.seq,
        kind=entry.kind,
        event_time=entry.event_time,
        recorded_at=entry.recorded_at,
        actor=env.get("actor", ""),
        hash=entry.hash.hex(),
        prev_hash=entry.prev_hash.hex(),
        corrects=env.get("corrects"),
        corrected_by=corrected_by or [],
        body=env.get("body") if with_body else None,
    )


def corrections_of(
    *, session: Session, enterprise_id: int, seqs: list[int]
) -> dict[int, list[int]]:
    """For each seq, the seqs of the corrections that point at it, oldest first."""
    if not seqs:
        return {}
    rows = session.execute(
        select(Correction.corrects_seq, Correction.record_seq)
        .where(Correction.enterprise_id == enterprise_id, Correction.corrects_seq.in_(seqs))
        .order_by(Correction.record_seq)
    )
    out: dict[int, list[int]] = {}
    for target, seq in rows:
        out.setdefault(target, []).append(seq)
    return out


def _strip(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row.pop("enterprise_id", None)
    return row


def lot_view(*, session: Session, enterprise_id: int, lot_code: str) -> LotPublic:
    """A lot and its current records: materials, CCP readings, release tests, sales."""
    store = DbStore(session, enterprise_id)
    lots = store.find("lots", code=lot_code)
    if not lots:
        raise NotFound(f"no lot {lot_code!r}")
    lot = lots[0]
    product = store.find("products", record_seq=lot["product_seq"])[0]
    materials = []
    for use in sorted(
        store.find("lot_inputs", record_seq=lot["record_seq"]), key=lambda r: r["line"]
    ):
        ml = store.find("material_lots", record_seq=use["material_lot_seq"])[0]
        materials.append({**_strip(ml), "used_quantity": use["quantity"], "used_unit": use["unit"]})
    readings = sorted(
        store.find("ccp_readings", lot_seq=lot["record_seq"]), key=lambda r: r["measured_at"]
    )
    open_deviations = 0
    for r in readings:
        actions = store.find("corrective_actions", reading_seq=r["record_seq"])
        r["corrective_action_seqs"] = [a["record_seq"] for a in actions]
        r["open_deviation"] = bool(r["deviation"] and not r["corrective_action"] and not actions)
        open_deviations += r["open_deviation"]
    tests = sorted(
        store.find("release_tests", lot_seq=lot["record_seq"]), key=lambda r: r["tested_at"]
    )
    for t in tests:
        t["items"] = json.loads(t["items"])
    sales = sorted(
        store.find("sales", lot_seq=lot["record_seq"]),
        key=lambda r: (r["sale_date"], r["record_seq"]),
    )
    sold = sum((dec(s["quantity_base"]) for s in sales), Decimal(0))
    seqs = [
        lot["record_seq"],
        *(r["record_seq"] for r in readings),
        *(t["record_seq"] for t in tests),
        *(s["record_seq"] for s in sales),
    ]
    fixes = corrections_of(session=session, enterprise_id=enterprise_id, seqs=seqs)
    corrections = [
        {"seq": c, "corrects": target} for target, cs in sorted(fixes.items()) for c in cs
    ]
    pdata = json.loads(product["data"])
    return LotPublic(
        lot=_strip(lot),
        product={"record_seq": product["record_seq"], **pdata},
        materials=materials,
        ccp_readings=[_strip(r) for r in readings],
        release_tests=[_strip(t) for t in tests],
        sales=[_strip(s) for s in sales],
        corrections=corrections,
        balance={
            "unit": pdata["unit"],
            "produced": lot["quantity_base"],
            "sold": dec_str(sold),
            "held": dec_str(dec(lot["quantity_base"]) - sold),
        },
        open_deviations=open_deviations,
    )


def find_lots(
    *,
    session: Session,
    enterprise_ids: list[int],
    lot_code: str | None = None,
    gtin: str | None = None,
    product: str | None = None,
    production_date: str | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Lots of the given enterprises by (GTIN, lot), by lot code, or by product name and date.

    A GTIN-14 with a leading 0 also finds the GTIN-13 it writes; the product
    name matches a part of it (``石榴`` finds 石榴汁饮料).
    """
    from foodtrace.accounts.models import Enterprise
    from foodtrace.records.models import Lot, Product

    if not enterprise_ids:
        return []
    q = (
        select(Lot, Product.name, Enterprise)
        .join(
            Product,
            (Product.enterprise_id == Lot.enterprise_id) & (Product.record_seq == Lot.product_seq),
        )
        .join(Enterprise, Enterprise.id == Lot.enterprise_id)
        .where(Lot.enterprise_id.in_(enterprise_ids))
    )
    if lot_code:
        q = q.where(Lot.code == lot_code)
    if gtin:
        short = gtin[1:] if len(gtin) == 14 and gtin.startswith("0") else gtin
        q = q.where((Lot.gtin == gtin) | (Lot.gtin == short))
    if product:
        q = q.where(Product.name.contains(product, autoescape=True))
    if production_date:
        q = q.where(Lot.production_date == production_date)
    rows = session.execute(q.order_by(Lot.production_date.desc(), Lot.code).limit(limit)).all()
    return [
        {
            "credit_code": e.credit_code,
            "enterprise": e.name,
            "lot_code": lot.code,
            "product": name,
            "gtin": lot.gtin,
            "production_date": lot.production_date,
            "quantity": lot.quantity,
            "unit": lot.unit,
            "seq": lot.current_seq,
        }
        for lot, name, e in rows
    ]
