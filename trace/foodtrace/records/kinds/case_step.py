"""A case moves to its next state."""

from __future__ import annotations

from foodtrace.cases.models import CaseStep
from foodtrace.errors import RecordError
from foodtrace.records.derive import Ctx, Row, authority_row, case_row
from foodtrace.records.kinds.base import N_, KindSpec, Owner
from schemas.records import CASE_TRANSITIONS, CaseState, CaseStepCreate, RecordKind


def _case_step(ctx: Ctx, b: Row) -> None:
    case = case_row(ctx, b["case_seq"])
    state, target = CaseState(case["state"]), CaseState(b["state"])
    if target not in CASE_TRANSITIONS[state]:
        raise RecordError.at(
            "state",
            msg=f"case {case['record_seq']} is {state}; it cannot move to {target}",
            type="bad_transition",
            state=state,
        )
    if state is CaseState.OPENED and target is CaseState.CLOSED and not b.get("note"):
        raise RecordError.at(
            "note", msg="closing a case before any recall needs a note saying why", type="missing"
        )
    ctx.store.put("cases", {**case, "state": target, "current_seq": ctx.current_seq}, replace=True)
    by = b.get("by") or {}
    ctx.store.put(
        "case_steps",
        authority_row(
            ctx,
            case_seq=b["case_seq"],
            state=target,
            note=b.get("note"),
            by_role=by.get("role", "regulator"),
            by_code=by.get("credit_code"),
        ),
        replace=ctx.replace,
    )


SPEC = KindSpec(
    kind=RecordKind.CASE_STEP,
    schema=CaseStepCreate,
    owner=Owner.AUTHORITY,
    tables=(CaseStep.__table__,),
    project=_case_step,
    label=N_("Case step"),
    form=False,
)
