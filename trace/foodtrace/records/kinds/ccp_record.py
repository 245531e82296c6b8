"""A reading of a critical control point, checked against the product's plan."""

from __future__ import annotations

from datetime import timedelta

from foodtrace.errors import RecordError
from foodtrace.records.derive import Applied, Ctx, Row, dec, instant, product_data, product_of
from foodtrace.records.kinds.base import N_, KindSpec, Owner
from foodtrace.records.kinds.columns import CODE, DECIMAL, ENUM, INSTANT, PASS_FAIL, ImportSpec, col
from foodtrace.records.models import CcpReading
from schemas.records import CcpRecordCreate, RecordKind


def _ccp_record(ctx: Ctx, b: Row) -> None:
    lot = ctx.one("lots", ("lot_code",), "lot", code=b["lot_code"])
    plan = product_data(product_of(ctx, lot)).get("ccp_plan", [])
    point = next((p for p in plan if p["code"] == b["ccp"]), None)
    if point is None:
        codes = ", ".join(p["code"] for p in plan) or "none"
        raise RecordError.at(
            "ccp",
            msg=f"{b['ccp']!r} is not in the product's CCP plan (plan: {codes})",
            type="not_in_plan",
            allowed=codes,
        )
    param = next((p for p in point["parameters"] if p["code"] == b["parameter"]), None)
    if param is None:
        codes = ", ".join(p["code"] for p in point["parameters"])
        raise RecordError.at(
            "parameter",
            msg=f"{b['parameter']!r} is not a parameter of {point['code']} (plan: {codes})",
            type="not_in_plan",
            allowed=codes,
        )
    if param["kind"] == "numeric":
        if "value" not in b:
            raise RecordError.at(
                "value", msg=f"{param['code']} is measured: give value and unit", type="missing"
            )
        if b.get("unit") != param["unit"]:
            raise RecordError.at(
                "unit",
                msg=f"{param['code']} is measured in {param['unit']!r}, not {b.get('unit')!r}",
                type="unit_mismatch",
                allowed=param["unit"],
            )
        value = dec(b["value"])
        deviation = ("min" in param and value < dec(param["min"])) or (
            "max" in param and value > dec(param["max"])
        )
    else:
        if "result" not in b:
            raise RecordError.at(
                "result", msg=f"{param['code']} is a pass/fail check: give result", type="missing"
            )
        deviation = b["result"] == "fail"
    if instant(b["measured_at"]) < instant(lot["started_at"]) - timedelta(days=1):
        raise RecordError.at(
            "measured_at",
            msg=f"lot {lot['code']!r} started at {lot['started_at']}; "
            "a reading more than a day earlier cannot belong to it",
            type="before_lot",
            date=lot["started_at"],
        )
    if deviation:
        open_deviation(ctx.out, b)
    ctx.put("ccp_readings", _reading_row(b, lot["record_seq"], deviation))


def _reading_row(b: Row, lot_seq: int, deviation: bool) -> Row:
    """A reading's row in ``ccp_readings``, but for its owner and seqs."""
    return {
        "lot_seq": lot_seq,
        "ccp": b["ccp"],
        "parameter": b["parameter"],
        "value": b.get("value"),
        "unit": b.get("unit"),
        "result": b.get("result"),
        "measured_at": b["measured_at"],
        "deviation": deviation,
        "corrective_action": b.get("corrective_action"),
    }


def open_deviation(out: Applied, b: Row) -> None:
    """Warn of a reading outside its limits that names no corrective action."""
    if not b.get("corrective_action"):
        out.warn(
            "value" if "value" in b else "result",
            msg="outside the critical limits: recorded as an open deviation until a "
            "corrective action closes it",
            type="open_deviation",
        )


IMPORTS = ImportSpec(
    "关键控制点监控记录",
    (
        col("lot_code", "生产批号", "Lot code", "20260301-01", type=CODE),
        col("ccp", "关键控制点", "CCP", "CCP1", "产品CCP计划中的编号", type=CODE),
        col(
            "parameter",
            "监控参数",
            "Parameter",
            "temperature",
            "CCP计划中的参数编码",
            type=CODE,
        ),
        col(
            "value",
            "测量值",
            "Value",
            "86.5",
            "数值型参数填测量值（数字）和单位",
            req=False,
            type=DECIMAL,
        ),
        col("unit", "单位", "Unit", "°C", req=False),
        col(
            "result",
            "判定结果",
            "Result",
            "",
            "判定型参数（如封口完整性）填 合格/不合格",
            req=False,
            type=ENUM,
            choices=PASS_FAIL,
        ),
        col(
            "measured_at",
            "监控时间",
            "Measured at",
            "2026-03-01 08:30",
            "北京时间 YYYY-MM-DD HH:MM",
            type=INSTANT,
        ),
        col("operator", "监控人", "Operator", "李强"),
        col(
            "corrective_action",
            "纠偏措施",
            "Corrective action",
            "",
            "超出关键限值时采取的措施",
            req=False,
        ),
    ),
)


SPEC = KindSpec(
    kind=RecordKind.CCP_RECORD,
    schema=CcpRecordCreate,
    owner=Owner.ENTERPRISE,
    tables=(CcpReading.__table__,),
    project=_ccp_record,
    label=N_("CCP reading"),
    summary=N_("A reading of a critical control point, checked against its limits."),
    natural_time="measured_at",
    imports=IMPORTS,
    api_path="/ccp-records",
    api_summary="Record a CCP reading",
    lot_view="ccp_readings",
)
