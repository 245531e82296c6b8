"""The regulator's case API: record a failed sample, read the case, move it to closure."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Response, status
from fastapi.responses import StreamingResponse
from sqlmodel import Session

from foodtrace.accounts.models import Authority
from foodtrace.cases import service as cases
from foodtrace.epcis import trail_document
from foodtrace.errors import NotFound
from foodtrace.records.service import platform_name
from foodtrace.sheets import Column, Kind, Sheet, xlsx_bytes, xlsx_chunks
from foodtrace.trail import export_sheet
from regulator_view.deps import Jurisdiction, JurisdictionDep
from schemas.api import CasePublic, CasesPublic, CaseStepRequest
from schemas.records import CASE_ID_PATTERN, CASE_TRANSITIONS, CaseState, FailedSampleCreate
from web.deps import ClockDep, IdempotencyKeyDep, SessionDep, WriteSessionDep
from web.public import (
    SALES_PAGE,
    SalesAfter,
    SalesLimit,
    case_public,
    case_summary_public,
    page_sales,
)
from web.web import attachment

router = APIRouter(prefix="/api/v1", tags=["cases"])

# One transaction per request: the routes that write take WriteSessionDep, which commits when
# the handler has returned (and its answer is built) or rolls back if it raised; they never
# commit themselves. Their read log is written after that, in a transaction of its own: each
# signature takes the jurisdiction (which holds the log) before the write session, and FastAPI
# closes dependencies in the reverse order, so the case is committed before the read of its
# scope is logged, as when the handlers committed. On SQLite the other order would have the
# log's transaction wait for this request's own write lock. (If the commit fails, the read is
# logged all the same, as for any handler that fails after reading.) tests/test_jurisdiction.py
# keeps the order.


CaseId = Annotated[str, Path(pattern=CASE_ID_PATTERN, description="e.g. 11370404004321071W-1")]


def regulator_next_states(case_state: str) -> list[str]:
    """The steps a regulator may take from a state (the others follow the enterprises' actions)."""
    allowed = CASE_TRANSITIONS[CaseState(case_state)] & cases.REGULATOR_STEPS
    if CaseState(case_state) is CaseState.NOTIFIED:
        allowed = frozenset()
    order = list(CaseState)
    return [s.value for s in sorted(allowed, key=order.index)]


def own_case(session: Session, authority: Authority, ref: str) -> cases.CaseView:
    """A case of the regulator's own authority, or one referred to it; 404 for any other."""
    try:
        owner, head, case = cases.find_case(session, ref)
    except NotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no case {ref}") from None
    if owner.credit_code != authority.credit_code and not cases.is_referred(
        session, ledger_id=head.id, case_seq=case.record_seq, to=authority
    ):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no case {ref}")
    return cases.case_view(session, ref, viewer=authority)


def _viewed(jurisdiction: Jurisdiction, view: cases.CaseView, what: str) -> None:
    """A case's answer reads the records of every enterprise with a lot in its scope."""
    jurisdiction.read({s.enterprise_id for s in view.scope.lots}, what)


@router.post(
    "/failed-samples",
    status_code=status.HTTP_201_CREATED,
    response_model=CasePublic,
    responses={200: {"description": "An idempotent retry: the case first opened"}},
)
def record_failed_sample(
    data: FailedSampleCreate,
    jurisdiction: JurisdictionDep,
    session: WriteSessionDep,
    clock: ClockDep,
    response: Response,
    idempotency_key: IdempotencyKeyDep = None,
) -> CasePublic:
    """Record a failed official sample (抽检不合格) and open its case.

    The answer is the case with its recall scope: the lot's trail, the lots
    sharing its suspect material lots or a CCP deviation window, every
    customer with quantities, and the mass balance of every lot in scope.
    Parts of the scope outside the jurisdiction are referred (协查) to the
    authority responsible.
    """
    opened = cases.open_case(
        session=session,
        authority=jurisdiction.authority,
        data=data,
        actor=jurisdiction.principal.username,
        clock=clock,
        idempotency_key=idempotency_key,
    )
    if opened.recorded.replayed:
        response.status_code = status.HTTP_200_OK
    view = cases.case_view(session, opened.case_id, viewer=jurisdiction.authority)
    response.headers["Location"] = f"/api/v1/cases/{opened.case_id}"
    out = page_sales(
        case_public(session, view, next_states=regulator_next_states(view.case.state)),
        SALES_PAGE,
        None,
    )
    # noted here, written once the case is committed (see the note at the top)
    _viewed(jurisdiction, view, f"case {opened.case_id}: recall scope")
    return out


@router.get("/cases", response_model=CasesPublic)
def list_cases(jurisdiction: JurisdictionDep, session: SessionDep) -> CasesPublic:
    """The authority's cases, newest first, and those other authorities referred to it."""
    own = cases.list_cases(session, authority=jurisdiction.authority)
    referred = []
    for ref, _r, case in cases.referrals_to(session, jurisdiction.authority):
        owner, _h, _c = cases.find_case(session, ref)
        referred.append(case_summary_public(ref, case, owner.name))
    return CasesPublic(
        data=[case_summary_public(ref, c, name) for ref, c, name in own], referred=referred
    )


@router.get("/cases/{case_id}", response_model=CasePublic)
def get_case(
    case_id: CaseId,
    jurisdiction: JurisdictionDep,
    session: SessionDep,
    sales_limit: SalesLimit = SALES_PAGE,
    sales_after: SalesAfter = None,
) -> CasePublic:
    """A case: the failed sample, the recall scope as it stands now, the steps so far, the
    referrals, and every recall action the enterprises recorded.

    The sales in scope come a page at a time (``sales_limit``: 1000, 5000 at most), in the
    scope's order; ``sales_next`` is the cursor of the next page (``sales_after``)."""
    view = own_case(session, jurisdiction.authority, case_id)
    mine = view.authority.credit_code == jurisdiction.authority.credit_code
    out = case_public(
        session, view, next_states=regulator_next_states(view.case.state) if mine else []
    )
    _viewed(jurisdiction, view, f"case {case_id}")
    return page_sales(out, sales_limit, sales_after)


def own_case_to_step(
    case_id: CaseId, jurisdiction: JurisdictionDep, session: SessionDep
) -> tuple[Authority, Any]:
    """A case of the regulator's own authority (404 for any other, before the body is read)."""
    try:
        owner, _h, case = cases.find_case(session, case_id)
    except NotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no case {case_id}") from None
    if owner.credit_code != jurisdiction.authority.credit_code:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no case {case_id}")
    return owner, case


@router.post("/cases/{case_id}/steps", response_model=CasePublic)
def case_step(
    case_id: CaseId,
    owned: Annotated[tuple[Authority, Any], Depends(own_case_to_step)],
    step: CaseStepRequest,
    jurisdiction: JurisdictionDep,
    session: WriteSessionDep,
    clock: ClockDep,
) -> CasePublic:
    """Move the case on: notify the enterprises (this publishes the recall notice for the
    consumer page), send an incomplete recall back, verify the recall, close the case."""
    case = owned[1]
    try:
        state = CaseState(step.state)
    except ValueError:
        from foodtrace.errors import RecordError

        raise RecordError.at(
            "state",
            msg=f"unknown state {step.state!r}; one of " + ", ".join(s.value for s in CaseState),
            type="enum",
        ) from None
    cases.advance(
        session=session,
        authority=jurisdiction.authority,
        case_seq=case.record_seq,
        state=state,
        note=step.note,
        actor=jurisdiction.principal.username,
        clock=clock,
    )
    view = cases.case_view(session, case_id, viewer=jurisdiction.authority)
    out = page_sales(
        case_public(session, view, next_states=regulator_next_states(view.case.state)),
        SALES_PAGE,
        None,
    )
    # noted here, written once the case is committed (see the note at the top)
    _viewed(jurisdiction, view, f"case {case_id}: {state}")
    return out


ScopeFormat = Literal["xlsx", "epcis.jsonld"]


@router.get("/cases/{case_id}/scope.{fmt}", response_class=Response)
def scope_export(
    case_id: CaseId,
    fmt: ScopeFormat,
    jurisdiction: JurisdictionDep,
    session: SessionDep,
    clock: ClockDep,
) -> Response:
    """The recall scope as a workbook (lots with mass balance, customers with quantities,
    trail events) or as a GS1 EPCIS 2.0 JSON-LD document of its trail."""
    view = own_case(session, jurisdiction.authority, case_id)
    _viewed(jurisdiction, view, f"case {case_id}: scope.{fmt}")
    return scope_file(session, view, fmt, now=clock.now())


def _scope_stem(view: cases.CaseView) -> str:
    return f"{view.case.lot_code}-召回范围-案件{view.case.record_seq}"


def scope_file(session: Session, view: cases.CaseView, fmt: str, *, now: Any) -> Response:
    """A case's recall scope as a download (the API's and the page's)."""
    if fmt == "xlsx":  # streamed from a spooled file: a large scope is a large workbook
        return StreamingResponse(
            xlsx_chunks(scope_sheets(session, view)),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": attachment(_scope_stem(view), "xlsx", now)},
        )
    else:
        doc = trail_document(view.scope.trail, platform=platform_name(session), now=now)
        body = json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8")
        media = "application/ld+json"
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": attachment(_scope_stem(view), fmt, now)},
    )


_REASONS = {
    "sampled": "抽检批次",
    "downstream": "下游批次",
    "ccp_deviation": "共用CCP偏离时段",
    "source": "可疑原料来源批次",
    "shared_material": "共用可疑原料",
}


_LOT_COLUMNS = [
    Column("企业"),
    Column("统一社会信用代码"),
    Column("批号"),
    Column("产品"),
    Column("原因"),
    Column("依据"),
    Column("生产日期", Kind.DATE),
    Column("单位"),
    Column("生产量", Kind.NUMBER),
    Column("已销售", Kind.NUMBER),
    Column("库存", Kind.NUMBER),
    Column("已召回", Kind.NUMBER),
    Column("已处置", Kind.NUMBER),
    Column("账本序号", Kind.NUMBER),
    Column("条目哈希"),
]
_SALE_COLUMNS = [
    Column("销售企业"),
    Column("批号"),
    Column("客户"),
    Column("客户信用代码"),
    Column("平台注册"),
    Column("数量", Kind.NUMBER),
    Column("单位"),
    Column("折合", Kind.NUMBER),
    Column("基本单位"),
    Column("销售日期", Kind.DATE),
    Column("已通知"),
    Column("已召回", Kind.NUMBER),
    Column("账本序号", Kind.NUMBER),
]
"""The scope's sheets: quantities in the base unit and seqs as numbers, dates as dates."""


def scope_xlsx(session: Session, view: cases.CaseView) -> bytes:
    """Three sortable sheets: 受影响批次 (mass balance), 客户 (who bought), 追溯 (events)."""
    return xlsx_bytes(scope_sheets(session, view))


def scope_sheets(session: Session, view: cases.CaseView) -> list[Sheet]:
    """The sheets of :func:`scope_xlsx`."""
    public = case_public(session, view, next_states=[], with_trail=False)
    lots = Sheet(
        "受影响批次",
        _LOT_COLUMNS,
        [
            [x.enterprise, x.credit_code, x.lot_code, x.product,
             _REASONS.get(x.reason, x.reason), x.via, x.production_date, x.unit,
             x.produced, x.sold, x.held, x.recovered, x.disposed, x.seq, x.hash]
            for x in public.lots
        ],
    )  # fmt: skip
    sales = Sheet(
        "客户",
        _SALE_COLUMNS,
        [
            [s.enterprise, s.lot_code, s.customer, s.customer_credit_code or "",
             "是" if s.registered else "否", s.quantity, s.unit, s.quantity_base,
             s.base_unit, s.sale_date, "是" if s.notified else "否", s.recovered, s.seq]
            for s in public.sales
        ],
    )  # fmt: skip
    return [lots, sales, export_sheet(view.scope.trail)]
