"""What a consumer may see of a lot: the public facts, and any recall notice naming it.

Only consumer-facing facts leave this module (DESIGN.md, "QR codes and the
consumer page"): product, specification, producer and licence, lot, dates,
the release test's conclusion and items, and the public recall notices. Never
customers, quantities sold, prices, users or internal notes.

The same module gives a lot's label (what is printed under its QR code) and the
place where the lot's public proofs will come from (:func:`public_proofs`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlmodel import Session

from foodtrace.accounts.models import Enterprise
from foodtrace.cases.service import recalls_of_lot
from foodtrace.digital_link import lot_uri
from foodtrace.errors import NotFound
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
        if not gtin.isascii() or not gtin.isdigit() or len(gtin) not in (8, 12, 13, 14):
            return None
        # Stored GTINs are GTIN-14; a URI may write a GTIN-13 without its leading 0.
        full = gtin.zfill(14)
        q = q.where(or_(Lot.gtin == full, Lot.gtin == full.lstrip("0")))
    else:
        return None
    row = session.execute(q).first()
    return (row[0], row[1]) if row else None


def _best_before(lot: Lot, product: Product) -> str | None:
    """The lot's best-before date: as recorded, else production date + shelf life."""
    if lot.best_before is not None or not product.shelf_life_days:
        return lot.best_before
    made = date.fromisoformat(lot.production_date)
    return (made + timedelta(days=product.shelf_life_days)).isoformat()


def public_proofs(session: Session, enterprise: Enterprise, lot: Lot) -> list[dict[str, Any]]:
    """The proofs of the lot's public entries, for anyone to verify.

    Filled by the Merkle-proof work (issue 5): one C2SP ``tlog-proof@v1`` bundle per
    public entry of the lot (its public declaration, any public recall notice),
    whose ``extra`` line carries the entry's canonical bytes. Empty until then, and
    never a private entry (DESIGN.md, "QR codes and the consumer page").
    """
    return []


def public_lot(session: Session, enterprise: Enterprise, lot: Lot) -> dict[str, Any]:
    """The consumer page's facts of a lot; ``recalls`` and ``proofs`` are lists, maybe empty."""
    product = session.get(Product, (enterprise.id, lot.product_seq))
    assert product is not None
    data = json.loads(product.data)
    tests = session.execute(
        select(ReleaseTest)
        .where(ReleaseTest.enterprise_id == enterprise.id, ReleaseTest.lot_seq == lot.record_seq)
        .order_by(ReleaseTest.tested_at)
    ).scalars()
    passed = [t for t in tests if t.conclusion == "pass"]
    return {
        "product": product.name,
        "specification": data.get("specification"),
        "standard": data.get("standard"),
        "gtin": lot.gtin,
        "lot": lot.code,
        "production_date": lot.production_date,
        "best_before": _best_before(lot, product),
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
        "proofs": public_proofs(session, enterprise, lot),
    }


def public_uri(enterprise: Enterprise, lot: Lot, base_url: str) -> str:
    """The URI of the lot's QR code: its GS1 Digital Link with a GTIN, else the platform path."""
    return lot_uri(base_url, lot_code=lot.code, gtin=lot.gtin, credit_code=enterprise.credit_code)


@dataclass(frozen=True)
class LotLabel:
    """What is printed on a lot's label: its QR code's URI and the words under it."""

    uri: str
    product: str
    specification: str | None
    lot: str
    production_date: str
    best_before: str | None


def lot_label(*, session: Session, enterprise_id: int, lot_code: str, base_url: str) -> LotLabel:
    """The label of one of an enterprise's own lots; NotFound when it has no such lot."""
    row = session.execute(
        select(Enterprise, Lot)
        .join(Lot, Lot.enterprise_id == Enterprise.id)
        .where(Enterprise.id == enterprise_id, Lot.code == lot_code)
    ).first()
    if row is None:
        raise NotFound(f"no lot {lot_code!r}")
    enterprise, lot = row
    product = session.get(Product, (enterprise.id, lot.product_seq))
    assert product is not None
    return LotLabel(
        uri=public_uri(enterprise, lot, base_url),
        product=product.name,
        specification=json.loads(product.data).get("specification"),
        lot=lot.code,
        production_date=lot.production_date,
        best_before=_best_before(lot, product),
    )
