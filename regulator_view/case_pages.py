"""The regulator's case pages: record a failed sample, see the recall scope, take it to closure."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import Response
from sqlmodel import Session

from foodtrace.cases import service as cases
from foodtrace.db import write_session
from foodtrace.errors import RecordError
from regulator_view.cases_api import _REASONS, own_case, regulator_next_states, scope_file
from regulator_view.graph import lot_link, svg
from regulator_view.pages import _regulator, _Scope
from regulator_view.reads import RegulatorReadsDep
from schemas.records import CASE_ID_PATTERN
from webapp.deps import ClockDep, EngineDep
from webapp.i18n import N_
from webapp.labels import ACTION_LABELS, STATE_LABELS
from webapp.paging import first_part
from webapp.public import case_public, case_summary_public
from webapp.web import CsrfUser, WebUser, WebUserDep, redirect, render

router = APIRouter(include_in_schema=False)

STEP_BUTTONS = {
    "notified": N_("Notify the enterprises and publish the recall"),
    "recall_underway": N_("Send back: the recall is incomplete"),
    "verified": N_("Verify the recall"),
    "closed": N_("Close the case"),
}
REASON_LABELS = {
    "sampled": N_("Sampled lot"),
    "downstream": N_("Made from it"),
    "ccp_deviation": N_("Shares a CCP deviation"),
    "source": N_("Source of a suspect material"),
    "shared_material": N_("Shares a suspect material"),
}
FIELDS = (
    "credit_code",
    "lot_code",
    "product",
    "test_item",
    "result",
    "limit",
    "unit",
    "sampling_date",
    "report_no",
    "suspect_materials",
    "note",
)

assert set(_REASONS) == set(REASON_LABELS)


def _labels() -> dict[str, Any]:
    return {
        "state_labels": STATE_LABELS,
        "reason_labels": REASON_LABELS,
        "action_labels": ACTION_LABELS,
        "step_buttons": STEP_BUTTONS,
    }


def _list_context(session: Session, user: WebUser) -> dict[str, Any]:
    authority, ents = _regulator(user, session)
    own = cases.list_cases(session, authority=authority)
    referred = []
    for ref, _r, case in cases.referrals_to(session, authority):
        owner, _h, _c = cases.find_case(session, ref)
        referred.append(case_summary_public(ref, case, owner.name))
    return {
        "enterprises": ents,
        "cases": [case_summary_public(ref, c, name) for ref, c, name in own],
        "referred": referred,
        **_labels(),
    }


@router.get("/regulator/cases")
def cases_page(request: Request, user: WebUserDep, engine: EngineDep) -> Response:
    with Session(engine) as session:
        context = _list_context(session, user)
    context["values"] = {"credit_code": request.query_params.get("credit_code", "")}
    context["values"]["lot_code"] = request.query_params.get("lot", "")
    return render(request, "cases.html", context, user=user)


@router.post("/regulator/cases")
async def record_failed_sample(
    request: Request, user: CsrfUser, engine: EngineDep, clock: ClockDep
) -> Response:
    form = await request.form()
    values = {k: str(form.get(k) or "").strip() for k in FIELDS}
    data: dict[str, Any] = {k: v for k, v in values.items() if v and k != "suspect_materials"}
    if values["suspect_materials"]:
        data["suspect_materials"] = values["suspect_materials"].replace("，", ",").split(",")
        data["suspect_materials"] = [c.strip() for c in data["suspect_materials"] if c.strip()]
    try:
        with write_session(engine) as session:
            authority, _ents = _regulator(user, session)
            opened = cases.open_case(
                session=session,
                authority=authority,
                data=data,
                actor=user.principal.username,
                clock=clock,
            )
    except RecordError as exc:
        with Session(engine) as session:
            context = _list_context(session, user)
        context.update(
            values=values,
            problems=[
                {"loc": list(p.loc), "msg": p.msg, "type": p.type, "ctx": p.ctx}
                for p in exc.problems
            ],
        )
        return render(request, "cases.html", context, user=user, status_code=422)
    return redirect(f"/regulator/cases/{opened.case_id}")


def _case_id(case_id: str) -> str:
    import re

    if not re.match(CASE_ID_PATTERN, case_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    return case_id


@router.get("/regulator/cases/{case_id}")
def case_page(
    case_id: str, request: Request, user: WebUserDep, engine: EngineDep, reads: RegulatorReadsDep
) -> Response:
    with Session(engine) as session:
        authority, _ents = _regulator(user, session)
        view = own_case(session, authority, _case_id(case_id))
        mine = view.authority.credit_code == authority.credit_code
        case = case_public(
            session, view, next_states=regulator_next_states(view.case.state) if mine else []
        )
        graph = svg(view.scope.trail, lot_link)
    reads.read(
        _Scope(user, authority), {s.enterprise_id for s in view.scope.lots}, f"case {case_id}"
    )
    totals = {
        "lots": len(case.lots),
        "enterprises": len({x.credit_code for x in case.lots}),
        "customers": len({(s.credit_code, s.customer_code) for s in case.sales}),
    }
    return render(
        request,
        "case.html",
        {
            "case": case,
            "sales": first_part(request, case.sales, "sales"),
            "graph": graph,
            "totals": totals,
            "mine": mine,
            **_labels(),
        },
        user=user,
    )


@router.post("/regulator/cases/{case_id}/step")
async def case_step(
    case_id: str, request: Request, user: CsrfUser, engine: EngineDep, clock: ClockDep
) -> Response:
    form = await request.form()
    state = str(form.get("state") or "")
    note = str(form.get("note") or "").strip() or None
    ref = _case_id(case_id)
    try:
        with write_session(engine) as session:
            authority, _ents = _regulator(user, session)
            owner, _h, case = cases.find_case(session, ref)
            if owner.credit_code != authority.credit_code:
                raise HTTPException(status.HTTP_404_NOT_FOUND)
            cases.advance(
                session=session,
                authority=authority,
                case_seq=case.record_seq,
                state=state,
                note=note,
                actor=user.principal.username,
                clock=clock,
            )
    except (RecordError, ValueError) as exc:
        problems = exc.problems if isinstance(exc, RecordError) else []
        message = "; ".join(p.msg for p in problems) or str(exc)
        return render(
            request,
            "message.html",
            {
                "title": STATE_LABELS.get(state, state),
                "message": message,
                "back": f"/regulator/cases/{ref}",
            },
            user=user,
            status_code=422,
        )
    return redirect(f"/regulator/cases/{ref}")


@router.get("/regulator/cases/{case_id}/scope.{ext}")
def scope_export(
    case_id: str,
    ext: str,
    user: WebUserDep,
    engine: EngineDep,
    clock: ClockDep,
    reads: RegulatorReadsDep,
) -> Response:
    if ext not in ("xlsx", "epcis.jsonld"):
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    with Session(engine) as session:
        authority, _ents = _regulator(user, session)
        view = own_case(session, authority, _case_id(case_id))
        answer = scope_file(session, view, ext, now=clock.now())
    reads.read(
        _Scope(user, authority),
        {s.enterprise_id for s in view.scope.lots},
        f"case {case_id}: scope.{ext}",
    )
    return answer
