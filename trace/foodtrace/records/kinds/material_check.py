"""An incoming-material check (Art. 50)."""

from __future__ import annotations

from foodtrace.records.derive import Ctx, Row
from foodtrace.records.kinds.base import N_, KindSpec, Owner, Snapshot
from foodtrace.records.kinds.columns import (
    BOOL,
    CODE,
    DATE,
    DECIMAL,
    ENUM,
    EVENT_TIME,
    OK_NG,
    YES_NO,
    ImportSpec,
    col,
)
from foodtrace.records.models import MaterialLot
from schemas.records import MaterialCheckCreate, RecordKind


def _material_check(ctx: Ctx, b: Row) -> None:
    supplier = ctx.one("suppliers", ("supplier_code",), "supplier", code=b["supplier_code"])
    ctx.unique("material_lots", ("material_lot",), "material lot", code=b["material_lot"])
    ctx.attachments(b)
    ctx.put(
        "material_lots",
        {
            "code": b["material_lot"],
            "material_name": b["material_name"],
            "material_type": b["material_type"],
            "quantity": b["quantity"],
            "unit": b["unit"],
            "batch_no": b.get("batch_no"),
            "production_date": b.get("production_date"),
            "receipt_date": b["receipt_date"],
            "supplier_seq": supplier["record_seq"],
            "supplier_credit_code": supplier["credit_code"],
            "accepted": b["accepted"],
        },
    )


IMPORTS = ImportSpec(
    "进货查验记录",
    (
        col(
            "material_lot",
            "物料批次编码",
            "Material lot",
            "ML-20260301-09",
            "本企业给这批进货的编号，生产投料时引用",
            type=CODE,
        ),
        col("material_name", "物料名称", "Material name", "柠檬酸"),
        col(
            "material_type",
            "物料类别",
            "Material type",
            "食品添加剂",
            "原料/食品添加剂/食品相关产品",
            type=ENUM,
            choices=(
                ("raw_material", "原料"),
                ("food_additive", "食品添加剂"),
                ("food_related_product", "食品相关产品"),
            ),
        ),
        col("specification", "规格", "Specification", "25 kg/袋"),
        col("quantity", "数量", "Quantity", "200", "数字，不带单位", type=DECIMAL),
        col("unit", "单位", "Unit", "kg"),
        col(
            "batch_no",
            "批号",
            "Batch no.",
            "CA20260210",
            "供应商的生产批号；与生产日期至少填一项",
            req=False,
            type=CODE,
        ),
        col(
            "production_date",
            "生产日期",
            "Production date",
            "2026-02-10",
            "YYYY-MM-DD；与批号至少填一项",
            req=False,
            type=DATE,
        ),
        col("shelf_life", "保质期", "Shelf life", "24个月", "如 24个月，或保质期至某日"),
        col("receipt_date", "进货日期", "Receipt date", "2026-03-01", "YYYY-MM-DD", type=DATE),
        col(
            "supplier_code",
            "供应商编码",
            "Supplier code",
            "GYS-001",
            "须先在供应商名录中登记",
            type=CODE,
        ),
        col(
            "supplier_licence_checked",
            "已查验许可证",
            "Licence checked",
            "是",
            "是/否",
            type=BOOL,
            choices=YES_NO,
        ),
        col(
            "supplier_licence_no",
            "供应商许可证编号",
            "Supplier licence no.",
            "SC10137040400011",
            "已查验时必填",
            req=False,
        ),
        col(
            "certificate_no",
            "合格证明编号",
            "Certificate no.",
            "HG-20260301-09",
            "合格证或检验报告编号",
        ),
        col(
            "accepted",
            "验收结论",
            "Accepted",
            "合格",
            "合格/不合格",
            type=BOOL,
            choices=OK_NG,
        ),
        col("inspector", "查验人", "Inspector", "王敏"),
        col("notes", "备注", "Notes", "", req=False),
        EVENT_TIME,
    ),
)


SPEC = KindSpec(
    kind=RecordKind.MATERIAL_CHECK,
    schema=MaterialCheckCreate,
    owner=Owner.ENTERPRISE,
    tables=(MaterialLot.__table__,),
    project=_material_check,
    label=N_("Incoming material check"),
    summary=N_("Art. 50: what came in, from whom, accepted or not."),
    snapshot=Snapshot(
        into="supplier",
        table="suppliers",
        code_field="supplier_code",
        what="supplier",
        keys=("name", "credit_code", "address", "contact", "licence_no"),
    ),
    imports=IMPORTS,
    api_path="/material-checks",
    api_summary="Record an incoming-material check (Art. 50)",
    declares=True,
    lot_view="materials",
)
