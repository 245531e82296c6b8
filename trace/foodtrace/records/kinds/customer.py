"""A customer, the buyer of a sale (master data)."""

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
from foodtrace.records.models import Customer
from schemas.records import CustomerCreate, RecordKind

IMPORTS = ImportSpec(
    "客户名录",
    (
        col("code", "客户编码", "Customer code", "KH-001", "本企业给客户的编码", type=CODE),
        col("name", "客户名称", "Customer name", "枣庄示例商贸有限公司", "购货者名称"),
        *CREDIT,
        col("address", "地址", "Address", "山东省枣庄市市中区示例路 2 号"),
        col("contact", "联系方式", "Contact", "13800000000", "电话或联系人"),
        col(
            "inactive",
            "已停用",
            "Inactive",
            "否",
            "停用的客户不再出现在表单的选择中；可不填",
            req=False,
            type=BOOL,
            choices=YES_NO,
        ),
        EVENT_TIME,
    ),
)


SPEC = KindSpec(
    kind=RecordKind.CUSTOMER,
    schema=CustomerCreate,
    owner=Owner.ENTERPRISE,
    tables=(Customer.__table__,),
    project=party("customers", "customer code"),
    label=N_("Customer"),
    summary=N_("A buyer of your products."),
    imports=IMPORTS,
    api_path="/customers",
    api_summary="Record a customer (buyer)",
)
