"""A production lot and the material lots it used (Art. 46)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from foodtrace.digital_link import ai10_problem
from foodtrace.errors import RecordError
from foodtrace.records.derive import Ctx, Row, dec, dec_str, unit_factor
from foodtrace.records.kinds.base import N_, KindSpec, Owner
from foodtrace.records.kinds.columns import CODE, DATE, DECIMAL, INSTANT, ImportSpec, col
from foodtrace.records.models import Lot, LotInput
from schemas.records import ProductionLotCreate, RecordKind


def _production_lot(ctx: Ctx, b: Row) -> None:
    product = ctx.one("products", ("product_code",), "product", code=b["product_code"])
    ctx.unique("lots", ("lot_code",), "lot code", code=b["lot_code"])
    not_gs1 = ai10_problem(b["lot_code"]) if product["gtin"] else None
    if not_gs1 is not None:  # accepted (factories use such codes), but not in a GS1 code
        ctx.out.warn(
            "lot_code",
            msg=f"lot code {b['lot_code']!r} is not a GS1 batch/lot number ({not_gs1}): its QR "
            "code carries the platform address /lot/<credit code>/<lot>, not the GS1 Digital "
            "Link of the product's GTIN",
            type="not_gs1_lot",
        )
    factor = unit_factor(product, b["unit"], ("unit",))
    inputs = []
    for i, use in enumerate(b["materials"]):
        loc: tuple[str | int, ...] = ("materials", i)
        ml = ctx.one(
            "material_lots", (*loc, "material_lot"), "material lot", code=use["material_lot"]
        )
        if not ml["accepted"]:
            raise RecordError.at(
                *loc,
                "material_lot",
                msg=f"material lot {ml['code']!r} was rejected at its incoming check "
                f"(entry {ml['record_seq']}) and cannot be used",
                type="rejected_material",
                value=ml["code"],
            )
        if use["unit"] != ml["unit"]:
            raise RecordError.at(
                *loc,
                "unit",
                msg=f"material lot {ml['code']!r} is counted in {ml['unit']!r}, not "
                f"{use['unit']!r} (units never change silently)",
                type="unit_mismatch",
                allowed=ml["unit"],
            )
        if ml["receipt_date"] > b["production_date"]:
            raise RecordError.at(
                *loc,
                "material_lot",
                msg=f"material lot {ml['code']!r} was received on {ml['receipt_date']}, "
                f"after the lot's production date {b['production_date']}",
                type="received_after_production",
                date=ml["receipt_date"],
            )
        used = sum(
            (
                dec(e["quantity"])
                for e in ctx.store.find("lot_inputs", material_lot_seq=ml["record_seq"])
                if e["record_seq"] != ctx.record_seq
            ),
            Decimal(0),
        )
        if used + dec(use["quantity"]) > dec(ml["quantity"]):
            ctx.out.warn(
                *loc,
                "quantity",
                msg=f"material lot {ml['code']!r} had {dec_str(dec(ml['quantity']) - used)} "
                f"{ml['unit']} left; this uses {use['quantity']}",
                type="over_consumption",
            )
        inputs.append((i, ml["record_seq"], use))
    best_before = None
    if product["shelf_life_days"]:
        best_before = (
            date.fromisoformat(b["production_date"]) + timedelta(days=product["shelf_life_days"])
        ).isoformat()
    ctx.put(
        "lots",
        {
            "code": b["lot_code"],
            "product_seq": product["record_seq"],
            "gtin": product["gtin"],
            "production_date": b["production_date"],
            "started_at": b["started_at"],
            "ended_at": b["ended_at"],
            "quantity": b["quantity"],
            "unit": b["unit"],
            "quantity_base": dec_str(dec(b["quantity"]) * factor),
            "best_before": best_before,
        },
    )
    ctx.store.delete("lot_inputs", record_seq=ctx.record_seq)
    for line, ml_seq, use in inputs:
        ctx.store.put(
            "lot_inputs",
            {
                **ctx.base(),
                "line": line,
                "material_lot_seq": ml_seq,
                "quantity": use["quantity"],
                "unit": use["unit"],
            },
            replace=False,
        )


IMPORTS = ImportSpec(
    "生产批次记录",
    (
        col("product_code", "产品编码", "Product code", "CP-500", "须先登记产品", type=CODE),
        col(
            "lot_code",
            "生产批号",
            "Lot code",
            "20260301-01",
            "同一批号的相邻多行为同一批次，每行填一种物料",
            type=CODE,
        ),
        col(
            "production_date",
            "生产日期",
            "Production date",
            "2026-03-01",
            "YYYY-MM-DD",
            type=DATE,
        ),
        col(
            "started_at",
            "开始时间",
            "Started at",
            "2026-03-01 08:00",
            "北京时间 YYYY-MM-DD HH:MM",
            type=INSTANT,
        ),
        col(
            "ended_at",
            "结束时间",
            "Ended at",
            "2026-03-01 11:00",
            "北京时间 YYYY-MM-DD HH:MM",
            type=INSTANT,
        ),
        col("quantity", "产量", "Lot quantity", "400", "本批产量，数字", type=DECIMAL),
        col("unit", "产量单位", "Lot unit", "箱", "产品的计量单位或包装单位"),
        col(
            "materials.material_lot",
            "物料批次编码",
            "Material lot",
            "ML-20260301-09",
            "进货查验记录中的物料批次编码",
            type=CODE,
        ),
        col(
            "materials.quantity",
            "数量",
            "Quantity used",
            "1.5",
            "该物料的用量，数字",
            type=DECIMAL,
        ),
        col("materials.unit", "单位", "Unit used", "kg", "与进货时的单位一致"),
        col("notes", "备注", "Notes", "", req=False),
    ),
    group_by=("lot_code",),
    items="materials",
)


SPEC = KindSpec(
    kind=RecordKind.PRODUCTION_LOT,
    schema=ProductionLotCreate,
    owner=Owner.ENTERPRISE,
    tables=(Lot.__table__, LotInput.__table__),
    project=_production_lot,
    label=N_("Production lot"),
    summary=N_("Art. 46: the lot and the material lots it used."),
    natural_time="ended_at",
    imports=IMPORTS,
    api_path="/production-lots",
    api_summary="Record a production lot and its materials",
    declares=True,
    lot_view="lot",
)
