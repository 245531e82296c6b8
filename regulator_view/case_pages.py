"""The regulator's case pages: record a failed sample, see the recall scope, take it to closure."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import Response
from sqlmodel import Session

from foodtrace.cases import service as cases
from foodtrace.db import FoodtraceSession
from foodtrace.errors import RecordError
from regulator_view.cases_api import _REASONS, own_case, regulator_next_states, scope_file
from regulator_view.deps import Jurisdiction, PageJurisdictionDep
from regulator_view.graph import lot_link, svg
from schemas.records import CASE_ID_PATTERN
from web.deps import ClockDep, EngineDep, WriteSessionDep
from web.i18n import N_, translations
from web.labels import ACTION_LABELS, OPEN_REASON_LABELS, STATE_LABELS
from web.paging import first_part
from web.public import case_public, case_summary_public
from web.web import CsrfUser, WebUser, WebUserDep, redirect, render, request_locale

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

STEP_NOTES = (N_("every enterprise in scope has declared its recall complete"),)
"""The notes the core writes on the steps it takes itself (shown in the reader's language)."""
FIELD_LABELS = {
    "credit_code": N_("Enterprise"),
    "lot_code": N_("Lot code"),
    "product": N_("Product (as on the report)"),
    "test_item": N_("Test item"),
    "result": N_("Result"),
    "limit": N_("Limit"),
    "unit": N_("Unit"),
    "sampling_date": N_("Sampling date"),
    "report_no": N_("Report number"),
    "suspect_materials": N_("Suspect material lots"),
    "note": N_("Note"),
}
"""A refused failed sample's problems name the field as the form labels it."""

assert set(_REASONS) == set(REASON_LABELS)
assert set(FIELDS) == set(FIELD_LABELS)


def _labels() -> dict[str, Any]:
    return {
        "state_labels": STATE_LABELS,
        "reason_labels": REASON_LABELS,
        "action_labels": ACTION_LABELS,
        "step_buttons": STEP_BUTTONS,
        "open_reason_labels": OPEN_REASON_LABELS,
        "step_notes": STEP_NOTES,
        "field_labels": FIELD_LABELS,
    }


def _list_context(session: Session, jurisdiction: Jurisdiction) -> dict[str, Any]:
    ents = jurisdiction.enterprises(session)
    own = cases.list_cases(session, authority=jurisdiction.authority)
    referred = []
    for ref, _r, case in cases.referrals_to(session, jurisdiction.authority):
        owner, _h, _c = cases.find_case(session, ref)
        referred.append(case_summary_public(ref, case, owner.name))
    return {
        "enterprises": ents,
        "cases": [case_summary_public(ref, c, name) for ref, c, name in own],
        "referred": referred,
        **_labels(),
    }


@router.get("/regulator/cases")
def cases_page(
    request: Request, user: WebUserDep, jurisdiction: PageJurisdictionDep, engine: EngineDep
) -> Response:
    with FoodtraceSession(engine) as session:
        context = _list_context(session, jurisdiction)
        context["values"] = {"credit_code": request.query_params.get("credit_code", "")}
        context["values"]["lot_code"] = request.query_params.get("lot", "")
        context["materials"] = _materials(session, context, context["values"])
    return render(request, "cases.html", context, user=user)


def _materials(session: Session, context: dict[str, Any], values: dict[str, Any]) -> list[Any]:
    """The material lots the named lot consumed, offered as the suspects to choose from (a
    lot of an enterprise in the jurisdiction only)."""
    from foodtrace.records.projection import DbStore

    ent = next(
        (e for e in context["enterprises"] if e.credit_code == values.get("credit_code")), None
    )
    if ent is None or not values.get("lot_code"):
        return []
    store = DbStore(session, ent.id)
    lots = store.find("lots", code=values["lot_code"])
    if not lots:
        return []
    out = []
    for use in store.find("lot_inputs", record_seq=lots[0]["record_seq"]):
        ml = store.find("material_lots", record_seq=use["material_lot_seq"])[0]
        out.append(
            {"code": ml["code"], "name": ml["material_name"], "batch_no": ml.get("batch_no")}
        )
    return sorted(out, key=lambda m: m["code"])


@router.post("/regulator/cases")
async def record_failed_sample(
    request: Request,
    user: CsrfUser,
    jurisdiction: PageJurisdictionDep,
    session: WriteSessionDep,
    engine: EngineDep,
    clock: ClockDep,
) -> Response:
    """Open a case: committed by ``WriteSessionDep`` before the redirect to it is sent."""
    form = await request.form()
    values = {k: str(form.get(k) or "").strip() for k in FIELDS}
    data: dict[str, Any] = {k: v for k, v in values.items() if v and k != "suspect_materials"}
    chosen = [str(v).strip() for v in form.getlist("suspect_material") if str(v).strip()]
    typed = values["suspect_materials"].replace("，", ",").split(",")
    suspects = list(dict.fromkeys(chosen + [c.strip() for c in typed if c.strip()]))
    if suspects:
        data["suspect_materials"] = suspects
    try:
        opened = cases.open_case(
            session=session,
            authority=jurisdiction.authority,
            data=data,
            actor=user.principal.username,
            clock=clock,
        )
    except RecordError as exc:
        # A refused sample writes nothing: the dependency commits whatever a handler that
        # returns leaves in its session, and this one returns a page.
        session.rollback()
        with FoodtraceSession(engine) as read:
            context = _list_context(read, jurisdiction)
            context["materials"] = _materials(read, context, values)
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
    case_id: str,
    request: Request,
    user: WebUserDep,
    jurisdiction: PageJurisdictionDep,
    engine: EngineDep,
) -> Response:
    authority = jurisdiction.authority
    with FoodtraceSession(engine) as session:
        view = own_case(session, authority, _case_id(case_id))
        mine = view.authority.credit_code == authority.credit_code
        case = case_public(
            session, view, next_states=regulator_next_states(view.case.state) if mine else []
        )
        gettext = translations(request_locale(request)).gettext
        graph = svg(
            view.scope.trail,
            lot_link,
            title=gettext("Trail of lot %(code)s") % {"code": view.case.lot_code},
            gettext=gettext,
        )
    jurisdiction.read({s.enterprise_id for s in view.scope.lots}, f"case {case_id}")
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


CONFIRMED = ("notified", "verified", "closed")
"""Steps that cannot be undone: the page asks again, saying what they will do."""


def _confirm(
    request: Request,
    user: WebUser,
    jurisdiction: Jurisdiction,
    engine: Any,
    ref: str,
    state: str,
    note: str | None,
) -> Response:
    """What a step will do, before it is taken: how many consumer pages a notification
    publishes the recall on; what is still open in the recall before verifying or closing."""
    authority = jurisdiction.authority
    with FoodtraceSession(engine) as session:
        view = own_case(session, authority, ref)
        if view.authority.credit_code != authority.credit_code:
            raise HTTPException(status.HTTP_404_NOT_FOUND)
        case = case_public(session, view, next_states=regulator_next_states(view.case.state))
        pages = (
            cases.recall_preview(session, authority, view.case.record_seq)
            if state == "notified"
            else []
        )
    return render(
        request,
        "case_confirm.html",
        {"case": case, "state": state, "note": note or "", "pages": pages, **_labels()},
        user=user,
    )


@router.post("/regulator/cases/{case_id}/step")
async def case_step(
    case_id: str,
    request: Request,
    user: CsrfUser,
    jurisdiction: PageJurisdictionDep,
    session: WriteSessionDep,
    engine: EngineDep,
    clock: ClockDep,
) -> Response:
    """Take a step: committed by ``WriteSessionDep`` before the redirect to the case is sent
    (the confirmation page before an irreversible one writes nothing)."""
    form = await request.form()
    state = str(form.get("state") or "")
    note = str(form.get("note") or "").strip() or None
    ref = _case_id(case_id)
    if state in CONFIRMED and form.get("confirm") != "1":
        return _confirm(request, user, jurisdiction, engine, ref, state, note)
    try:
        owner, _h, case = cases.find_case(session, ref)
        if owner.credit_code != jurisdiction.authority.credit_code:
            raise HTTPException(status.HTTP_404_NOT_FOUND)
        cases.advance(
            session=session,
            authority=jurisdiction.authority,
            case_seq=case.record_seq,
            state=state,
            note=note,
            actor=user.principal.username,
            clock=clock,
        )
    except (RecordError, ValueError) as exc:
        # A refused step changes nothing (``advance`` may have begun writing, e.g. the
        # authority's ledger): the dependency would commit what a returning handler leaves.
        session.rollback()
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
    jurisdiction: PageJurisdictionDep,
    engine: EngineDep,
    clock: ClockDep,
) -> Response:
    if ext not in ("xlsx", "epcis.jsonld"):
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    with FoodtraceSession(engine) as session:
        view = own_case(session, jurisdiction.authority, _case_id(case_id))
        answer = scope_file(session, view, ext, now=clock.now())
    jurisdiction.read({s.enterprise_id for s in view.scope.lots}, f"case {case_id}: scope.{ext}")
    return answer
