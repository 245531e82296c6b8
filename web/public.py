"""Turning the core's results into the API's ``*Public`` shapes."""

from __future__ import annotations

import json
from typing import Annotated, Any, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import select
from sqlmodel import Session

from foodtrace.accounts.models import Enterprise, User
from foodtrace.accounts.service import user_codes
from foodtrace.cases import service as cases
from foodtrace.cases.models import Case
from foodtrace.cases.scope import quantity
from foodtrace.cases.service import CaseView, Recovery
from foodtrace.records.service import Recorded
from foodtrace.trail import Trail
from foodtrace.verify import Report
from schemas.api import (
    CaseDeviationPublic,
    CaseLotPublic,
    CasePublic,
    CaseSalePublic,
    CaseStepPublic,
    CaseSummaryPublic,
    ConcernedPublic,
    EnterprisePublic,
    OpenItemPublic,
    ProblemPublic,
    RecallActionPublic,
    RecallProgressPublic,
    RecordedPublic,
    ReferralPublic,
    TrailEdgePublic,
    TrailNodePublic,
    TrailPublic,
    UserPublic,
    VerifyProblemPublic,
    VerifyPublic,
)


def recorded_public(r: Recorded) -> RecordedPublic:
    return RecordedPublic(
        seq=r.seq,
        kind=r.kind,
        hash=r.hash,
        prev_hash=r.prev_hash,
        recorded_at=r.recorded_at,
        event_time=r.event_time,
        body=r.body,
        warnings=[ProblemPublic(loc=list(w.loc), msg=w.msg, type=w.type) for w in r.warnings],
        replayed=r.replayed,
        followed_by=r.followed_by,
    )


def verify_public(report: Report, *, limit: int = 100) -> VerifyPublic:
    first = report.first
    ordered = sorted(report.problems, key=lambda p: (p.seq is None, p.seq or 0))
    return VerifyPublic(
        credit_code=report.credit_code,
        ok=report.ok,
        size=report.size,
        entries_checked=report.entries_checked,
        first_bad_seq=first.seq if first else None,
        problems=[
            VerifyProblemPublic(seq=p.seq, check=p.check, message=p.message)
            for p in ordered[:limit]
        ],
    )


def enterprise_public(e: Enterprise, ledger_size: int) -> EnterprisePublic:
    return EnterprisePublic(
        credit_code=e.credit_code,
        name=e.name,
        kind=e.kind,
        region_code=e.region_code,
        licence_no=e.licence_no,
        address=e.address,
        contact=e.contact,
        ledger_size=ledger_size,
    )


def user_public(session: Session, u: User) -> UserPublic:
    ent, auth = user_codes(session=session, user=u)
    return UserPublic(
        username=u.username,
        display_name=u.display_name,
        role=u.role,
        active=u.active,
        enterprise_credit_code=ent,
        authority_credit_code=auth,
    )


def case_summary_public(ref: str, case: Case, authority: str) -> CaseSummaryPublic:
    return CaseSummaryPublic(
        id=ref,
        authority=authority,
        state=case.state,
        credit_code=case.credit_code,
        enterprise=case.enterprise,
        lot_code=case.lot_code,
        product=case.product,
        test_item=case.test_item,
        report_no=case.report_no,
        opened_at=case.opened_at,
    )


Paged = TypeVar("Paged", bound=BaseModel)

MAX_SALES_PAGE = 5000
"""The longest page of sales in an answer (a lot with 22k sales made the case JSON 11 MB)."""
SALES_PAGE = 1000
"""A page of sales unless ``sales_limit`` says otherwise."""


SalesLimit = Annotated[
    int, Query(ge=1, le=MAX_SALES_PAGE, description="sales a page (1000; 5000 at most)")
]
SalesAfter = Annotated[
    int | None, Query(ge=0, le=10**7, description="the cursor of the sales: `sales_next`")
]


def page_sales(answer: Paged, limit: int, after: int | None) -> Paged:
    """A page of an answer's sales (a case's, a lot's): those after position ``after`` (the
    cursor a page gives as ``sales_next``), ``limit`` of them, with ``sales_count``; the
    order is a stable one, so a cursor stays valid while the sales do not change."""
    sales = answer.sales  # type: ignore[attr-defined]
    start = after or 0
    page = sales[start : start + limit]
    end = start + len(page)
    return answer.model_copy(
        update={
            "sales": page,
            "sales_count": len(sales),
            "sales_next": end if end < len(sales) else None,
        }
    )


def case_public(
    session: Session,
    view: CaseView,
    *,
    next_states: list[str],
    only: str | None = None,
    with_trail: bool = True,
) -> CasePublic:
    """A case for the API. ``only`` (an enterprise's credit code) keeps that enterprise's lots,
    sales and actions: an enterprise does not see another's customers."""
    from foodtrace.accounts.service import covers
    from foodtrace.ledger.models import Entry

    def mine(code: str) -> bool:
        return only is None or code == only

    scope, case = view.scope, view.case
    recalled = {(r.credit_code, r.lot_code) for r in view.recalled}
    lots = [
        CaseLotPublic(
            credit_code=s.credit_code,
            enterprise=s.enterprise,
            lot_code=s.lot_code,
            product=s.product,
            gtin=s.gtin,
            reason=s.reason,
            via=s.via,
            production_date=s.production_date,
            unit=s.unit,
            produced=quantity(s.produced),
            sold=quantity(s.sold),
            held=quantity(s.held),
            recovered=quantity(
                view.lot_recovery.get((s.credit_code, s.lot_code), Recovery()).recovered
            ),
            disposed=quantity(
                view.lot_recovery.get((s.credit_code, s.lot_code), Recovery()).disposed
            ),
            recalled=(s.credit_code, s.lot_code) in recalled,
            seq=s.seq,
            hash=s.hash,
        )
        for s in scope.lots
        if mine(s.credit_code)
    ]
    names = {s.credit_code: s.enterprise for s in scope.lots}
    sales = []
    for x in scope.sales:
        if not mine(x.credit_code):
            continue
        got = view.recovery.get((x.credit_code, x.lot_code, x.customer_code), Recovery())
        told = view.recovery.get((x.credit_code, "*", x.customer_code), Recovery())
        sales.append(
            CaseSalePublic(
                credit_code=x.credit_code,
                enterprise=names.get(x.credit_code, ""),
                lot_code=x.lot_code,
                customer=x.customer,
                customer_code=x.customer_code,
                customer_credit_code=x.customer_credit_code,
                registered=x.registered,
                quantity=x.quantity,
                unit=x.unit,
                quantity_base=quantity(x.quantity_base),
                base_unit=x.base_unit,
                sale_date=x.sale_date,
                seq=x.seq,
                notified=got.notified or told.notified,
                recovered=quantity(got.recovered),
            )
        )
    at = {
        e.seq: e.recorded_at
        for e in session.execute(
            select(Entry).where(
                Entry.ledger_id == case.ledger_id,
                Entry.seq.in_([s.record_seq for s in view.steps] or [0]),
            )
        ).scalars()
    }
    items = cases.open_items(view, only)
    trail = None
    if with_trail and only is None:
        trail = trail_public(scope.trail)
    return CasePublic(
        **case_summary_public(view.id, case, view.authority.name).model_dump(),
        authority_credit_code=view.authority.credit_code,
        result=case.result,
        limit=case.limit,
        sampling_date=case.sampling_date,
        seq=case.record_seq,
        suspect_materials=scope.suspect_materials,
        lots=lots,
        sales=sales,
        deviations=[CaseDeviationPublic(**vars(d)) for d in scope.deviations if mine(d.credit_code)]
        if only is None or only == case.credit_code
        else [],
        outside=[
            {"credit_code": n.credit_code or "", "name": n.enterprise or ""} for n in scope.outside
        ]
        if only is None
        else [],
        steps=[
            CaseStepPublic(
                seq=s.record_seq,
                state=s.state,
                note=s.note,
                by_role=s.by_role,
                by_code=s.by_code,
                at=at.get(s.record_seq, ""),
            )
            for s in view.steps
        ],
        referrals=[
            ReferralPublic(
                seq=r.record_seq,
                to_authority=r.to_authority,
                to_name=view.referral_names.get(r.record_seq),
                enterprises=json.loads(r.data),
            )
            for r in view.referrals
        ]
        if only is None
        else [],
        actions=[RecallActionPublic(**a) for a in view.actions if mine(a["credit_code"])],
        concerned=[
            ConcernedPublic(
                credit_code=e.credit_code,
                name=e.name,
                in_jurisdiction=covers(view.authority, e.region_code),
                completed=e.credit_code in view.completed,
            )
            for e in view.concerned
            if mine(e.credit_code)
        ],
        progress=_progress(view, only, items),
        open_items=_open_items(items, _reasons(view)),
        next_states=next_states,
        trail=trail,
    )


def _reasons(view: CaseView) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(credit code, kind, code) → the reason a completion gave for leaving it open."""
    out = {}
    for a in view.actions:
        for item in a.get("open_items") or []:
            kind = "customer" if item.get("customer_code") else "lot"
            code = item.get("customer_code") or item.get("lot_code")
            out[(a["credit_code"], kind, code)] = item
    return out


def _open_items(
    items: list[cases.OpenItem], reasons: dict[tuple[str, str, str], dict[str, Any]]
) -> list[OpenItemPublic]:
    out = []
    for x in items:
        given = reasons.get((x.credit_code, x.kind, x.code), {})
        out.append(OpenItemPublic(**vars(x), reason=given.get("reason"), note=given.get("note")))
    return out


def _progress(
    view: CaseView, only: str | None, items: list[cases.OpenItem]
) -> list[RecallProgressPublic]:
    names = {e.credit_code: e.name for e in view.concerned}
    out = []
    for code in sorted({s.credit_code for s in view.scope.lots}):
        if only is not None and code != only:
            continue
        customers = {x.customer_code for x in view.scope.sales if x.credit_code == code}
        lots = [s for s in view.scope.lots if s.credit_code == code]
        mine = [x for x in items if x.credit_code == code]
        out.append(
            RecallProgressPublic(
                credit_code=code,
                enterprise=names.get(code, lots[0].enterprise),
                customers=len(customers),
                customers_notified=len(customers) - sum(x.kind == "customer" for x in mine),
                lots=len(lots),
                lots_disposed=len(lots) - sum(x.kind == "lot" for x in mine),
                completed=code in view.completed,
            )
        )
    return out


def trail_public(trail: Trail) -> TrailPublic:
    return TrailPublic(
        start=trail.start,
        nodes=[TrailNodePublic(**vars(n)) for n in trail.nodes.values()],
        edges=[TrailEdgePublic(**vars(e)) for e in trail.edges],
    )
