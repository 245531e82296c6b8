"""A lot's release test (Art. 51)."""

from __future__ import annotations

from collections.abc import Iterable

from foodtrace.errors import RecordError
from foodtrace.records.derive import Ctx, Row, canonical_json, instant, product_data, product_of
from foodtrace.records.kinds.base import N_, KindSpec, Owner
from foodtrace.records.kinds.columns import (
    BOOL,
    CODE,
    DECIMAL,
    DECIMALS,
    ENUM,
    INSTANT,
    INT,
    OK_NG,
    PASS_FAIL,
    ImportSpec,
    col,
)
from foodtrace.records.models import ReleaseTest
from schemas.records import RecordKind, ReleaseTestCreate


def passes(test: Row) -> bool:
    """A release test (its derived row or its body) whose conclusion releases the lot."""
    return test["conclusion"] == "pass"


def released(tests: Iterable[Row]) -> bool:
    """The one definition of a released lot: one of its release tests passes (Art. 52: a
    product leaves the plant only after passing its release test)."""
    return any(passes(t) for t in tests)


def _release_test(ctx: Ctx, b: Row) -> None:
    lot = ctx.one("lots", ("lot_code",), "lot", code=b["lot_code"])
    if instant(b["tested_at"]) < instant(lot["started_at"]):
        raise RecordError.at(
            "tested_at",
            msg=f"lot {lot['code']!r} started at {lot['started_at']}; it cannot be tested earlier",
            type="before_lot",
            date=lot["started_at"],
        )
    ctx.attachments(b)
    required = [i["item"] for i in product_data(product_of(ctx, lot))["release_items"]]
    tested = {i["item"] for i in b["items"]}
    missing = [i for i in required if i not in tested]
    if missing:
        ctx.out.warn(
            "items",
            msg="the product's release test also requires: " + ", ".join(missing),
            type="missing_items",
            items=", ".join(missing),
        )
    ctx.put(
        "release_tests",
        {
            "lot_seq": lot["record_seq"],
            "tested_at": b["tested_at"],
            "conclusion": b["conclusion"],
            "report_no": b["report_no"],
            "items": canonical_json([[i["item"], i["passed"]] for i in b["items"]]),
        },
    )


IMPORTS = ImportSpec(
    "出厂检验记录",
    (
        col("lot_code", "生产批号", "Lot code", "20260301-01", type=CODE),
        col(
            "report_no",
            "检验报告编号",
            "Report no.",
            "JC-20260301-09",
            "同一批号、同一报告的相邻多行为同一次检验，每行填一个检验项目",
        ),
        col(
            "tested_at",
            "检验时间",
            "Tested at",
            "2026-03-01 15:00",
            "北京时间 YYYY-MM-DD HH:MM",
            type=INSTANT,
        ),
        col(
            "conclusion",
            "检验结论",
            "Conclusion",
            "合格",
            "合格/不合格",
            type=ENUM,
            choices=PASS_FAIL,
        ),
        col("inspector", "检验员", "Inspector", "赵丽"),
        col("items.item", "检验项目", "Test item", "菌落总数"),
        col("items.result", "检测结果", "Result", "30", "按报告填写，如 30、未检出"),
        col("items.unit", "计量单位", "Unit", "CFU/mL", req=False),
        col("items.limit", "标准要求", "Limit", "≤100", "如 ≤100"),
        col(
            "items.passed",
            "单项判定",
            "Item passed",
            "合格",
            "合格/不合格",
            type=BOOL,
            choices=OK_NG,
        ),
        col(
            "items.sampling.n",
            "采样方案n",
            "Sampling n",
            "",
            "微生物项目：样品数 n",
            req=False,
            type=INT,
        ),
        col(
            "items.sampling.c",
            "采样方案c",
            "Sampling c",
            "",
            "微生物项目：允许超过 m 的样品数 c",
            req=False,
            type=INT,
        ),
        col("items.sampling.m", "采样方案m", "Sampling m", "", "限量 m", req=False, type=DECIMAL),
        col(
            "items.sampling.M",
            "采样方案M",
            "Sampling M",
            "",
            "最高限量 M",
            req=False,
            type=DECIMAL,
        ),
        col(
            "items.sampling.results",
            "各样品结果",
            "Sample results",
            "",
            "n 个结果，用 / 分隔，如 10/20/10/30/10",
            req=False,
            type=DECIMALS,
        ),
    ),
    group_by=("lot_code", "report_no"),
    items="items",
)


SPEC = KindSpec(
    kind=RecordKind.RELEASE_TEST,
    schema=ReleaseTestCreate,
    owner=Owner.ENTERPRISE,
    tables=(ReleaseTest.__table__,),
    project=_release_test,
    label=N_("Release test"),
    summary=N_("Art. 51: the lot's test items and conclusion."),
    natural_time="tested_at",
    imports=IMPORTS,
    api_path="/release-tests",
    api_summary="Record a release test (Art. 51)",
    declares=True,
    lot_view="release_tests",
)
