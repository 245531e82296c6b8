"""A case's public recall notice (the consumer page shows it)."""

from __future__ import annotations

from foodtrace.cases.models import RecalledLot
from foodtrace.records.derive import Ctx, Row, authority_row, case_row
from foodtrace.records.kinds.base import N_, KindSpec, Owner
from schemas.records import PublicRecallCreate, RecordKind


def _public_recall(ctx: Ctx, b: Row) -> None:
    case_row(ctx, b["case_seq"])
    for line, lot in enumerate(b["lots"], start=1):
        ctx.store.put(
            "recalled_lots",
            authority_row(
                ctx,
                line=line,
                case_seq=b["case_seq"],
                credit_code=lot["credit_code"],
                lot_code=lot["lot_code"],
                gtin=lot.get("gtin"),
            ),
            replace=ctx.replace,
        )


SPEC = KindSpec(
    kind=RecordKind.PUBLIC_RECALL,
    schema=PublicRecallCreate,
    owner=Owner.AUTHORITY,
    tables=(RecalledLot.__table__,),
    project=_public_recall,
    label=N_("Public recall"),
    public=True,
    form=False,
)
