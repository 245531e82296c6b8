"""A product, with its CCP plan and release-test items."""

from __future__ import annotations

from foodtrace.records.derive import Ctx, Row, canonical_json
from foodtrace.records.kinds.base import N_, KindSpec, Owner
from foodtrace.records.models import Product
from schemas.records import ProductCreate, RecordKind


def _product(ctx: Ctx, b: Row) -> None:
    ctx.unique("products", ("code",), "product code", code=b["code"])
    if b.get("gtin"):
        ctx.unique("products", ("gtin",), "product with GTIN", gtin=b["gtin"])
    ctx.put(
        "products",
        {
            "code": b["code"],
            "name": b["name"],
            "gtin": b.get("gtin"),
            "unit": b["unit"],
            "shelf_life_days": b.get("shelf_life_days"),
            "data": canonical_json(b),
        },
    )


SPEC = KindSpec(
    kind=RecordKind.PRODUCT,
    schema=ProductCreate,
    owner=Owner.ENTERPRISE,
    tables=(Product.__table__,),
    project=_product,
    label=N_("Product"),
    summary=N_("Product, CCP plan and release-test items."),
    api_path="/products",
    api_summary="Record a product with its CCP plan and release-test items",
    declares=True,
)
