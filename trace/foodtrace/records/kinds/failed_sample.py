"""A failed official sample: it opens a case in the authority's ledger."""

from __future__ import annotations

from foodtrace.cases.models import Case, CaseLot
from foodtrace.records.derive import Ctx, Row, authority_row
from foodtrace.records.kinds.base import N_, KindSpec, Owner
from schemas.records import CaseState, FailedSampleCreate, RecordKind


def _failed_sample(ctx: Ctx, b: Row) -> None:
    ctx.store.put(
        "cases",
        authority_row(
            ctx,
            credit_code=b["credit_code"],
            enterprise=b["enterprise"]["name"],
            lot_code=b["lot_code"],
            product=b["product"],
            test_item=b["test_item"],
            result=b["result"],
            limit=b["limit"],
            report_no=b["report_no"],
            sampling_date=b["sampling_date"],
            state=CaseState.OPENED,
            opened_at=b["opened_at"],
        ),
        replace=ctx.replace,
    )
    for line, lot in enumerate(b["scope"]["lots"], start=1):
        ctx.store.put(
            "case_lots",
            authority_row(
                ctx,
                line=line,
                credit_code=lot["credit_code"],
                lot_code=lot["lot_code"],
                reason=lot["reason"],
            ),
            replace=ctx.replace,
        )


SPEC = KindSpec(
    kind=RecordKind.FAILED_SAMPLE,
    schema=FailedSampleCreate,
    owner=Owner.AUTHORITY,
    tables=(Case.__table__, CaseLot.__table__),
    project=_failed_sample,
    label=N_("Failed sample"),
    form=False,
)
