"""A sale of a lot to a customer (Art. 51)."""

from __future__ import annotations

from foodtrace.errors import RecordError
from foodtrace.records.derive import Ctx, Row, dec, dec_str, product_of, total_of, unit_factor
from foodtrace.records.kinds.base import N_, KindSpec, Owner, Snapshot
from foodtrace.records.kinds.columns import CODE, DATE, DECIMAL, EVENT_TIME, ImportSpec, col
from foodtrace.records.kinds.release_test import released as is_released
from foodtrace.records.models import Sale
from schemas.records import RecordKind, SaleCreate


def _sale(ctx: Ctx, b: Row) -> None:
    lot = ctx.one("lots", ("lot_code",), "lot", code=b["lot_code"])
    customer = ctx.one("customers", ("customer_code",), "customer", code=b["customer_code"])
    factor = unit_factor(product_of(ctx, lot), b["unit"], ("unit",))
    if b["sale_date"] < lot["production_date"]:
        raise RecordError.at(
            "sale_date",
            msg=f"lot {lot['code']!r} was produced on {lot['production_date']}; "
            "it cannot be sold before",
            type="before_lot",
            date=lot["production_date"],
        )
    released = is_released(ctx.store.find("release_tests", lot_seq=lot["record_seq"]))
    if not released:
        ctx.out.warn(
            "lot_code",
            msg=f"lot {lot['code']!r} has no passing release test: a product may leave the "
            "plant only after passing it (Art. 52). The sale is recorded as a finding.",
            type="unreleased_sale",
        )
    base_qty = dec(b["quantity"]) * factor
    sold = ctx.store.total("sales", "quantity_base", lot_seq=lot["record_seq"])
    if ctx.replace:  # a correction: the sale it corrects is not sold besides it
        sold -= total_of(
            (
                s
                for s in ctx.store.find("sales", record_seq=ctx.record_seq)
                if s["lot_seq"] == lot["record_seq"]
            ),
            "quantity_base",
        )
    if sold + base_qty > dec(lot["quantity_base"]):
        ctx.out.warn(
            "quantity",
            msg=f"lot {lot['code']!r} produced {lot['quantity_base']}; sales would reach "
            f"{dec_str(sold + base_qty)} (mass balance)",
            type="oversold",
        )
    ctx.put(
        "sales",
        {
            "lot_seq": lot["record_seq"],
            "quantity": b["quantity"],
            "unit": b["unit"],
            "quantity_base": dec_str(base_qty),
            "sale_date": b["sale_date"],
            "customer_seq": customer["record_seq"],
            "buyer_name": b["buyer"]["name"],
            "buyer_credit_code": b["buyer"].get("credit_code"),
            "released": released,
        },
    )


IMPORTS = ImportSpec(
    "销售台账",
    (
        col("lot_code", "生产批号", "Lot code", "20260301-01", type=CODE),
        col("quantity", "数量", "Quantity", "50", "数字，不带单位", type=DECIMAL),
        col("unit", "单位", "Unit", "箱", "产品的计量单位或包装单位"),
        col("sale_date", "销售日期", "Sale date", "2026-03-02", "YYYY-MM-DD", type=DATE),
        col(
            "customer_code",
            "客户编码",
            "Customer code",
            "KH-001",
            "须先在客户名录中登记",
            type=CODE,
        ),
        col(
            "document_no",
            "单据号",
            "Document no.",
            "CK-20260302-001",
            "出库单或发票号",
            req=False,
        ),
        col("notes", "备注", "Notes", "", req=False),
        EVENT_TIME,
    ),
)


SPEC = KindSpec(
    kind=RecordKind.SALE,
    schema=SaleCreate,
    owner=Owner.ENTERPRISE,
    tables=(Sale.__table__,),
    project=_sale,
    label=N_("Sale"),
    summary=N_("Art. 51: who bought how much of which lot."),
    snapshot=Snapshot(
        into="buyer",
        table="customers",
        code_field="customer_code",
        what="customer",
        keys=("name", "credit_code", "address", "contact"),
    ),
    imports=IMPORTS,
    api_path="/sales",
    api_summary="Record a sale (Art. 51)",
    lot_view="sales",
)
