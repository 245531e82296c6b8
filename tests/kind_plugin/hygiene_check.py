"""A throwaway record kind, as a new kind's module would be (tests/test_kinds.py): a daily
hygiene check of a production area. It is this module, its table (a migration, here
created by the test), and one line in the registry; its form is the generic one."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field
from sqlalchemy import Boolean, Column, Integer, MetaData, String, Table

from foodtrace.records.derive import Ctx, Row
from foodtrace.records.kinds.base import N_, KindSpec, Owner
from foodtrace.records.kinds.columns import CODE, DATE, ENUM, EVENT_TIME, ImportSpec, col
from schemas.records import _Record

TABLE = Table(
    "hygiene_checks",
    MetaData(),
    Column("enterprise_id", Integer, primary_key=True),
    Column("record_seq", Integer, primary_key=True),
    Column("current_seq", Integer, nullable=False),
    Column("area", String(64), nullable=False),
    Column("check_date", String(10), nullable=False),
    Column("clean", Boolean, nullable=False),
)


class HygieneCheckCreate(_Record):
    """A production area's hygiene, checked once a day."""

    area: str = Field(min_length=1, max_length=64, title="Area")
    check_date: date = Field(title="Date")
    result: Literal["ok", "problem"] = Field(title="Result")
    inspector: str = Field(min_length=1, max_length=64, title="Inspector")


def _hygiene_check(ctx: Ctx, b: Row) -> None:
    ctx.put(
        "hygiene_checks",
        {"area": b["area"], "check_date": b["check_date"], "clean": b["result"] == "ok"},
    )


IMPORTS = ImportSpec(
    "卫生检查记录",
    (
        col("area", "区域", "Area", "灌装车间", type=CODE),
        col("check_date", "检查日期", "Date", "2026-03-01", "YYYY-MM-DD", type=DATE),
        col(
            "result",
            "结果",
            "Result",
            "正常",
            type=ENUM,
            choices=(("ok", "正常"), ("problem", "问题")),
        ),  # fmt: skip
        col("inspector", "检查人", "Inspector", "王敏"),
        EVENT_TIME,
    ),
)

SPEC = KindSpec(
    kind="hygiene_check",
    schema=HygieneCheckCreate,
    owner=Owner.ENTERPRISE,
    tables=(TABLE,),
    project=_hygiene_check,
    label=N_("Hygiene check"),
    summary=N_("A production area's daily hygiene."),
    imports=IMPORTS,
    api_path="/hygiene-checks",
    api_summary="Record a hygiene check",
)
