"""An enterprise's side of a case: the cases that concern it, and its recall actions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response, status
from sqlmodel import Session

from foodtrace.accounts.models import Enterprise
from foodtrace.cases import service as cases
from foodtrace.errors import NotFound
from schemas.api import CasePublic, CasesPublic, NotifyAllRequest, RecordedPublic
from schemas.records import CASE_ID_PATTERN, RecallActionCreate
from schemas.types import format_instant
from web.deps import (
    ClockDep,
    CurrentEnterpriseUser,
    IdempotencyKeyDep,
    SessionDep,
    WriteSessionDep,
)
from web.public import (
    SALES_PAGE,
    SalesAfter,
    SalesLimit,
    case_public,
    case_summary_public,
    page_sales,
    recorded_public,
)

router = APIRouter(prefix="/api/v1/enterprise", tags=["enterprise"])

CaseId = Annotated[str, Path(pattern=CASE_ID_PATTERN)]


def concerning(session: Session, enterprise: Enterprise, ref: str) -> cases.CaseView:
    """A case that concerns the enterprise and of which it was notified; 404 for any other."""
    try:
        _auth, head, case = cases.find_case(session, ref)
    except NotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no case {ref}") from None
    assert head.id is not None
    mine = {e.credit_code for e in cases.concerned(session, head.id, case)}
    if enterprise.credit_code not in mine or case.state == "opened":
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no case {ref}")
    return cases.case_view(session, ref, enterprise_id=enterprise.id)


@router.get("/cases", response_model=CasesPublic)
def my_cases(scope: CurrentEnterpriseUser, session: SessionDep) -> CasesPublic:
    """The cases that concern this enterprise, from the moment it was notified."""
    ent = session.get(Enterprise, scope.enterprise_id)
    assert ent is not None
    found = cases.list_cases(session, enterprise=ent)
    return CasesPublic(data=[case_summary_public(ref, c, name) for ref, c, name in found])


@router.get("/cases/{case_id}", response_model=CasePublic)
def my_case(
    case_id: CaseId,
    scope: CurrentEnterpriseUser,
    session: SessionDep,
    sales_limit: SalesLimit = SALES_PAGE,
    sales_after: SalesAfter = None,
) -> CasePublic:
    """A case as the enterprise sees it: its own lots in scope, its customers with the
    quantities to recall, and its recall actions so far. The sales come a page at a time
    (``sales_limit``: 1000, 5000 at most); ``sales_next`` is the next page's ``sales_after``.
    """
    ent = session.get(Enterprise, scope.enterprise_id)
    assert ent is not None
    view = concerning(session, ent, case_id)
    out = case_public(session, view, next_states=[], only=ent.credit_code, with_trail=False)
    return page_sales(out, sales_limit, sales_after)


@router.post(
    "/recall-actions",
    status_code=status.HTTP_201_CREATED,
    response_model=list[RecordedPublic],
    responses={200: {"description": "An idempotent retry: the first result"}},
)
def record_recall_action(
    data: RecallActionCreate,
    scope: CurrentEnterpriseUser,
    session: WriteSessionDep,
    clock: ClockDep,
    response: Response,
    idempotency_key: IdempotencyKeyDep = None,
) -> list[RecordedPublic]:
    """Record a recall action (Art. 63) for a case: a customer notified, a quantity recovered
    from a customer, a quantity disposed of, or the recall declared complete.

    The first action moves the case to "recall under way"; when every enterprise in
    scope has declared its recall complete, the case moves to "recall recorded".
    The answer lists the entries written: the action, then any case step.
    """
    ent = session.get(Enterprise, scope.enterprise_id)
    assert ent is not None
    try:
        concerning(session, ent, data.case)
    except HTTPException:
        from foodtrace.errors import RecordError

        raise RecordError.at(
            "case", msg=f"no case {data.case} concerns {ent.name}", type="not_found"
        ) from None
    written = cases.record_recall_action(
        session=session,
        enterprise=ent,
        data=data,
        actor=scope.actor,
        clock=clock,
        idempotency_key=idempotency_key,
    )
    if written[0].replayed:
        response.status_code = status.HTTP_200_OK
    return [recorded_public(r) for r in written]


@router.post(
    "/cases/{case_id}/notify-all",
    status_code=status.HTTP_201_CREATED,
    response_model=list[RecordedPublic],
    responses={200: {"description": "An idempotent retry: nothing more was written"}},
)
def notify_all(
    case_id: CaseId,
    data: NotifyAllRequest,
    scope: CurrentEnterpriseUser,
    session: WriteSessionDep,
    clock: ClockDep,
    response: Response,
    idempotency_key: IdempotencyKeyDep = None,
) -> list[RecordedPublic]:
    """Notify every customer of a lot of the case who was not notified of it yet: one
    notification entry per customer (the answer lists them, with any case step)."""
    ent = session.get(Enterprise, scope.enterprise_id)
    assert ent is not None
    concerning(session, ent, case_id)
    written = cases.notify_customers(
        session=session,
        enterprise=ent,
        case_ref=case_id,
        lot_code=data.lot_code,
        at=format_instant(data.at),
        note=data.note,
        actor=scope.actor,
        clock=clock,
        idempotency_key=idempotency_key,
    )
    if written and all(r.replayed for r in written):
        response.status_code = status.HTTP_200_OK
    return [recorded_public(r) for r in written]
