"""An enterprise's own records of a period, for the bureau (issue 24, item 14): a page that
asks for the period, and the XLSX and PDF it gives (``foodtrace.records.own_export``)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from foodtrace.accounts.models import Enterprise
from foodtrace.clock import CST
from foodtrace.db import FoodtraceSession
from foodtrace.errors import NotFound
from foodtrace.records import own_export
from foodtrace.sheets import xlsx_bytes
from schemas.params import FormDate
from schemas.types import format_instant
from web.deps import ClockDep, EngineDep
from web.i18n import N_
from web.web import PageEnterpriseUser, attachment, render

router = APIRouter(include_in_schema=False)

MOST_DAYS = {"xlsx": 366, "pdf": 62}
"""The longest period one export covers (a PDF of a plant's year would be thousands of
pages: the spreadsheet holds it)."""
FORMATS = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}
PROBLEMS = {
    "missing": N_("Give the first and the last day of the period."),
    "order": N_("The period ends before it begins."),
    "future": N_("The period begins after today."),
    "long": N_("One export covers at most %(n)s days; choose a shorter period."),
}


def last_month(today: date) -> tuple[date, date]:
    """The calendar month before ``today``'s: the usual period for the bureau."""
    end = today.replace(day=1) - timedelta(days=1)
    return end.replace(day=1), end


def _page(
    request: Request, pair: Any, today: date, values: dict[str, str], problem: Any = None
) -> Response:
    start, end = last_month(today)
    months = []
    first = today.replace(day=1)
    for _ in range(12):
        last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        months.append((first.isoformat(), min(last, today).isoformat(), f"{first:%Y-%m}"))
        first = (first - timedelta(days=1)).replace(day=1)
    return render(
        request,
        "exports.html",
        {
            "since": values.get("since") or start.isoformat(),
            "until": values.get("until") or end.isoformat(),
            "months": months,
            "problem": problem,
            "most": MOST_DAYS,
        },
        user=pair[0],
        status_code=422 if problem else 200,
    )


@router.get("/exports")
def exports_page(request: Request, pair: PageEnterpriseUser, clock: ClockDep) -> Response:
    today = clock.now().astimezone(CST).date()
    return _page(request, pair, today, dict(request.query_params))


@router.get("/exports/records.{ext}")
def export_records(
    ext: Annotated[str, Path()],
    request: Request,
    pair: PageEnterpriseUser,
    engine: EngineDep,
    clock: ClockDep,
    since: Annotated[FormDate, Query()] = None,
    until: Annotated[FormDate, Query()] = None,
) -> Response:
    if ext not in FORMATS:
        raise NotFound(ext)
    now = clock.now()
    today = now.astimezone(CST).date()
    values = {k: v for k, v in request.query_params.items() if isinstance(v, str)}
    problem: tuple[str, dict[str, Any]] | None = None
    if since is None or until is None:
        problem = (PROBLEMS["missing"], {})
    elif until < since:
        problem = (PROBLEMS["order"], {})
    elif since > today:
        problem = (PROBLEMS["future"], {})
    elif (until - since).days + 1 > MOST_DAYS[ext]:
        problem = (PROBLEMS["long"], {"n": MOST_DAYS[ext]})
    if problem is not None or since is None or until is None:
        return _page(request, pair, today, values, problem)
    eid = pair[1].enterprise_id
    with FoodtraceSession(engine) as session:
        ent = session.get(Enterprise, eid)
        if ent is None:
            raise NotFound("enterprise")
        sheets = own_export.own_records(
            session=session, enterprise_id=eid, since=since, until=until
        )
    stamp = format_instant(now)
    name, code = ent.name, ent.credit_code
    if ext == "xlsx":
        summary = own_export.summary_sheet(
            sheets, name=name, credit_code=code, since=since, until=until, now=stamp
        )
        data = xlsx_bytes([summary, *sheets])
    else:
        data = own_export.records_pdf(
            sheets, name=name, credit_code=code, since=since, until=until, now=stamp
        )
    stem = f"{ent.credit_code}-记录-{since.isoformat()}至{until.isoformat()}"
    return Response(
        data,
        media_type=FORMATS[ext],
        headers={"Content-Disposition": attachment(stem, ext, now)},
    )
