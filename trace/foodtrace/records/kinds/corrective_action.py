"""A corrective action that closes a CCP deviation."""

from __future__ import annotations

from foodtrace.errors import RecordError
from foodtrace.records.derive import Ctx, Row, instant
from foodtrace.records.kinds.base import N_, KindSpec, Owner
from foodtrace.records.kinds.columns import INSTANT, INT, ImportSpec, col
from foodtrace.records.models import CorrectiveAction
from schemas.records import CorrectiveActionCreate, RecordKind


def _corrective_action(ctx: Ctx, b: Row) -> None:
    reading = ctx.one("ccp_readings", ("reading_seq",), "CCP reading", record_seq=b["reading_seq"])
    if not reading["deviation"]:
        raise RecordError.at(
            "reading_seq",
            msg=f"reading {b['reading_seq']} is within its limits: there is no deviation to close",
            type="no_deviation",
        )
    if instant(b["taken_at"]) < instant(reading["measured_at"]):
        raise RecordError.at(
            "taken_at", msg="a corrective action cannot precede the reading", type="date_order"
        )
    ctx.put("corrective_actions", {"reading_seq": b["reading_seq"], "taken_at": b["taken_at"]})


IMPORTS = ImportSpec(
    "纠偏措施记录",
    (
        col(
            "reading_seq",
            "偏差记录序号",
            "Reading seq",
            "12",
            "超出关键限值的CCP监控记录在台账中的序号",
            type=INT,
        ),
        col("action", "纠偏措施", "Action", "重新杀菌，复测 86.2 °C"),
        col(
            "taken_at",
            "纠偏时间",
            "Taken at",
            "2026-03-01 08:45",
            "北京时间 YYYY-MM-DD HH:MM",
            type=INSTANT,
        ),
        col("operator", "操作人", "Operator", "李强"),
    ),
)


SPEC = KindSpec(
    kind=RecordKind.CORRECTIVE_ACTION,
    schema=CorrectiveActionCreate,
    owner=Owner.ENTERPRISE,
    tables=(CorrectiveAction.__table__,),
    project=_corrective_action,
    label=N_("Corrective action"),
    summary=N_("Close a CCP deviation."),
    natural_time="taken_at",
    imports=IMPORTS,
    api_path="/corrective-actions",
    api_summary="Close a CCP deviation",
)
