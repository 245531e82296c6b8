"""A supplier of materials (master data)."""

from __future__ import annotations

from foodtrace.records.derive import party
from foodtrace.records.kinds.base import N_, KindSpec, Owner
from foodtrace.records.kinds.columns import (
    BOOL,
    CODE,
    CREDIT,
    EVENT_TIME,
    YES_NO,
    ImportSpec,
    col,
)
from foodtrace.records.models import Supplier
from schemas.records import RecordKind, SupplierCreate

IMPORTS = ImportSpec(
    "供应商名录",
    (
        col("code", "供应商编码", "Supplier code", "GYS-001", "本企业给供应商的编码", type=CODE),
        col("name", "供应商名称", "Supplier name", "山东示例糖业有限公司"),
        *CREDIT,
        col(
            "licence_no",
            "许可证编号",
            "Licence no.",
            "SC10137040400011",
            "生产或经营许可证编号",
            req=False,
        ),
        col("address", "地址", "Address", "山东省枣庄市峄城区示例路 1 号"),
        col("contact", "联系方式", "Contact", "0632-7720000", "电话或联系人"),
        col(
            "inactive",
            "已停用",
            "Inactive",
            "否",
            "停用的供应商不再出现在表单的选择中；可不填",
            req=False,
            type=BOOL,
            choices=YES_NO,
        ),
        EVENT_TIME,
    ),
)


SPEC = KindSpec(
    kind=RecordKind.SUPPLIER,
    schema=SupplierCreate,
    owner=Owner.ENTERPRISE,
    tables=(Supplier.__table__,),
    project=party("suppliers", "supplier code"),
    label=N_("Supplier"),
    summary=N_("A supplier of materials."),
    imports=IMPORTS,
    api_path="/suppliers",
    api_summary="Record a supplier",
    declares=True,
)
