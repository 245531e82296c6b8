"""A self-inspection: the daily check, weekly review or monthly report."""

from __future__ import annotations

from foodtrace.records.derive import Ctx, Row
from foodtrace.records.kinds.base import N_, KindSpec, Owner
from foodtrace.records.kinds.columns import DATE, ENUM, EVENT_TIME, ImportSpec, col
from foodtrace.records.models import SelfInspection
from schemas.records import RecordKind, SelfInspectionCreate


def _self_inspection(ctx: Ctx, b: Row) -> None:
    ctx.put(
        "self_inspections",
        {
            "period": b["period"],
            "period_date": b["period_date"],
            "problems_found": sum(1 for i in b["items"] if i["result"] == "problem"),
        },
    )


IMPORTS = ImportSpec(
    "企业自查记录",
    (
        col(
            "period",
            "自查类型",
            "Period",
            "日管控",
            "日管控/周排查/月调度",
            type=ENUM,
            choices=(("daily", "日管控"), ("weekly", "周排查"), ("monthly", "月调度")),
        ),
        col(
            "period_date",
            "自查日期",
            "Period date",
            "2026-03-02",
            "日管控填当天，周排查填当周周一，月调度填当月1日；同类型同日期的相邻多行为同一次自查",
            type=DATE,
        ),
        col("inspector", "自查人", "Inspector", "赵丽"),
        col("items.item", "检查项目", "Check item", "原料库房温湿度"),
        col(
            "items.result",
            "检查结果",
            "Check result",
            "正常",
            "正常/有问题/不适用",
            type=ENUM,
            choices=(("ok", "正常"), ("problem", "有问题"), ("not_applicable", "不适用")),
        ),
        col("items.note", "检查说明", "Item note", "", req=False),
        col("problems", "发现的问题", "Problems", "", "检查结果有问题时必填", req=False),
        col("rectification", "整改情况", "Rectification", "", req=False),
        EVENT_TIME,
    ),
    group_by=("period", "period_date"),
    items="items",
)


SPEC = KindSpec(
    kind=RecordKind.SELF_INSPECTION,
    schema=SelfInspectionCreate,
    owner=Owner.ENTERPRISE,
    tables=(SelfInspection.__table__,),
    project=_self_inspection,
    label=N_("Self-inspection"),
    summary=N_("Daily check, weekly review, monthly report."),
    imports=IMPORTS,
    api_path="/self-inspections",
    api_summary="Record a self-inspection",
)
