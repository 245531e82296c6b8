"""What a consumer may see of a lot: the public facts, and any recall notice naming it.

Only consumer-facing facts leave this module (DESIGN.md, "QR codes and the
consumer page"): product, specification, producer and licence, lot, dates,
the release test's conclusion and items, and the public recall notices. Never
customers, quantities sold, prices, users or internal notes.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlmodel import Session

from foodtrace.accounts.models import Enterprise
from foodtrace.cases.service import recalls_of_lot
from foodtrace.records.models import Lot, Product, ReleaseTest


def find_public_lot(
    session: Session, *, credit_code: str | None = None, gtin: str | None = None, lot_code: str
) -> tuple[Enterprise, Lot] | None:
    """A lot by (credit code, lot code), or by (GTIN, lot code) as a GS1 Digital Link names it."""
    q = select(Enterprise, Lot).join(Lot, Lot.enterprise_id == Enterprise.id)
    q = q.where(Lot.code == lot_code)
    if credit_code is not None:
        q = q.where(Enterprise.credit_code == credit_code.upper())
    elif gtin is not None:
        short = gtin[1:] if len(gtin) == 14 and gtin.startswith("0") else gtin
        q = q.where(or_(Lot.gtin == gtin, Lot.gtin == short))
    else:
        return None
    row = session.execute(q).first()
    return (row[0], row[1]) if row else None


def public_lot(session: Session, enterprise: Enterprise, lot: Lot) -> dict[str, Any]:
    product = session.get(Product, (enterprise.id, lot.product_seq))
    assert product is not None
    data = json.loads(product.data)
    tests = session.execute(
        select(ReleaseTest)
        .where(ReleaseTest.enterprise_id == enterprise.id, ReleaseTest.lot_seq == lot.record_seq)
        .order_by(ReleaseTest.tested_at)
    ).scalars()
    passed = [t for t in tests if t.conclusion == "pass"]
    best_before = lot.best_before
    if best_before is None and product.shelf_life_days:
        made = date.fromisoformat(lot.production_date)
        best_before = (made + timedelta(days=product.shelf_life_days)).isoformat()
    return {
        "product": product.name,
        "specification": data.get("specification"),
        "standard": data.get("standard"),
        "gtin": lot.gtin,
        "lot": lot.code,
        "production_date": lot.production_date,
        "best_before": best_before,
        "producer": {
            "name": enterprise.name,
            "credit_code": enterprise.credit_code,
            "licence_no": enterprise.licence_no,
            "address": enterprise.address,
        },
        "release_test": (
            {"passed": True, "items": [i for i, ok in json.loads(passed[-1].items) if ok]}
            if passed
            else None
        ),
        "recalls": [
            {k: r[k] for k in ("case", "authority", "announced_at", "reason", "state")}
            for r in recalls_of_lot(session, enterprise.credit_code, lot.code)
        ],
    }
