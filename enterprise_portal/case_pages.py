"""The enterprise's recall pages: the cases that concern it, and a form for each recall action."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from enterprise_portal.cases_api import concerning
from foodtrace.accounts.models import Enterprise
from foodtrace.cases import service as cases
from foodtrace.clock import CST
from foodtrace.db import FoodtraceSession
from foodtrace.errors import RecordError
from web.deps import ClockDep, EngineDep, WriteSessionDep
from web.labels import ACTION_LABELS, OPEN_REASON_LABELS, STATE_LABELS
from web.public import case_public, case_summary_public
from web.web import CsrfUser, PageEnterpriseUser, redirect, render

router = APIRouter(include_in_schema=False)

FIELDS = ("action", "lot_code", "customer_code", "quantity", "unit", "method", "at", "note")


@router.get("/cases")
def cases_page(request: Request, pair: PageEnterpriseUser, engine: EngineDep) -> Response:
    with FoodtraceSession(engine) as session:
        ent = session.get(Enterprise, pair[1].enterprise_id)
        assert ent is not None
        found = [
            case_summary_public(r, c, n) for r, c, n in cases.list_cases(session, enterprise=ent)
        ]
    return render(
        request, "ent_cases.html", {"cases": found, "state_labels": STATE_LABELS}, user=pair[0]
    )


def _page(
    request: Request,
    pair: Any,
    engine: Any,
    ref: str,
    clock: Any,
    values: dict[str, str] | None = None,
    problems: list[dict[str, Any]] | None = None,
    status_code: int = 200,
) -> Response:
    with FoodtraceSession(engine) as session:
        ent = session.get(Enterprise, pair[1].enterprise_id)
        assert ent is not None
        view = concerning(session, ent, ref)
        case = case_public(session, view, next_states=[], only=ent.credit_code, with_trail=False)
    now = clock.now().astimezone(CST).strftime("%Y-%m-%dT%H:%M")
    return render(
        request,
        "ent_case.html",
        {
            "case": case,
            "customers": sorted({(s.customer_code, s.customer) for s in case.sales}),
            "state_labels": STATE_LABELS,
            "action_labels": ACTION_LABELS,
            "open_reason_labels": OPEN_REASON_LABELS,
            "open": case.state in ("notified", "recall_underway"),
            "done": ent.credit_code in view.completed,
            "values": values or {"action": "notification", "at": now},
            "problems": problems or [],
        },
        user=pair[0],
        status_code=status_code,
    )


@router.get("/cases/{case_id}")
def case_page(
    case_id: str, request: Request, pair: PageEnterpriseUser, engine: EngineDep, clock: ClockDep
) -> Response:
    return _page(request, pair, engine, case_id, clock)


@router.post("/cases/{case_id}/actions")
async def record_action(
    case_id: str,
    request: Request,
    pair: PageEnterpriseUser,
    user: CsrfUser,
    engine: EngineDep,
    session: WriteSessionDep,
    clock: ClockDep,
) -> Response:
    form = await request.form()
    values = {k: str(form.get(k) or "").strip() for k in FIELDS}
    data: dict[str, Any] = {k: v for k, v in values.items() if v}
    data["case"] = case_id
    if values["action"] == "completed":  # each open item's reason, from its select
        items = []
        for key, reason in form.multi_items():
            kind, _, code = key.removeprefix("reason:").partition(":")
            if key.startswith("reason:") and str(reason) and kind in ("customer", "lot"):
                item = {f"{kind}_code": code, "reason": str(reason)}
                note = str(form.get(f"note:{kind}:{code}") or "").strip()
                if note:
                    item["note"] = note
                items.append(item)
        if items:
            data["open_items"] = items
    if values["at"]:
        try:  # the browser's datetime-local is China Standard Time
            data["at"] = datetime.fromisoformat(values["at"]).replace(tzinfo=CST).isoformat()
        except ValueError:
            pass
    try:
        ent = session.get(Enterprise, pair[1].enterprise_id)
        assert ent is not None
        concerning(session, ent, case_id)
        if values["action"] == "notify_all":
            cases.notify_customers(
                session=session, enterprise=ent, case_ref=case_id,
                lot_code=values["lot_code"], at=data.get("at") or "", note=data.get("note"),
                actor=user.principal.username, clock=clock,
            )  # fmt: skip
        else:
            cases.record_recall_action(
                session=session, enterprise=ent, data=data, actor=user.principal.username,
                clock=clock,
            )  # fmt: skip
    except RecordError as exc:
        session.rollback()  # nothing of the refused action is written
        problems = [
            {"loc": list(p.loc), "msg": p.msg, "type": p.type, "ctx": p.ctx} for p in exc.problems
        ]
        return _page(request, pair, engine, case_id, clock, values, problems, status_code=422)
    return redirect(f"/cases/{case_id}?saved=1")
