"""The regulator's pages: enterprises in the jurisdiction, a lot's trail, record completeness."""

from __future__ import annotations

import time
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlmodel import Session

from foodtrace.accounts.models import Enterprise
from foodtrace.clock import CST
from foodtrace.completeness_queries import completeness_report, fitted_period
from foodtrace.db import FoodtraceSession
from foodtrace.errors import NotFound
from foodtrace.ledger.models import Entry, Ledger
from foodtrace.records import queries
from foodtrace.records.service import platform_name
from foodtrace.trail import export_rows, lot_trail
from regulator_view.api import trail_file
from regulator_view.charts import percent, sparkline, week_chart, week_text
from regulator_view.deps import Jurisdiction, PageJurisdictionDep
from regulator_view.graph import lot_link, svg
from regulator_view.lot_search import suggest_lots
from schemas.params import FormCount, FormDate
from web.deps import ClockDep, EngineDep, verify_against_signer
from web.i18n import N_, translations
from web.paging import first_part
from web.public import enterprise_public, verify_public
from web.timeline import lot_timeline
from web.web import WebUserDep, redirect, render, request_locale

router = APIRouter(include_in_schema=False)
RULE_LABELS = {
    "materials_checked": N_("Materials checked"),
    "ccp_readings": N_("CCP readings"),
    "deviations_closed": N_("Deviations closed"),
    "release_test": N_("Release test"),
    "buyer_fields": N_("Buyer fields"),
    "code_form": N_("Code form"),
    "mass_balance": N_("Mass balance"),
    "timely": N_("Entered in time"),
    "receipt_without_sale": N_("Receipt without sale"),
    "sale_without_receipt": N_("Sale without receipt"),
}
SEVERITY = {  # the colour of a finding's stripe (the Today page's s1…s5)
    "deviations_closed": 1,
    "release_test": 1,
    "receipt_without_sale": 2,
    "sale_without_receipt": 2,
}
# The core's reasons (foodtrace.completeness.MESSAGES), for the catalogue; the page
# shows each in the reader's language with its values filled in.
REASONS = (
    N_("material lot {material_lot} has no accepted check"),
    N_("{ccp} {parameter}: {have} of {need} readings"),
    N_("{count} open deviation(s)"),
    N_("no passing release test covering every required item"),
    N_("sold before the lot passed its release test"),
    N_("a sale without the buyer's name"),
    N_("sold {sold} of {produced} produced"),
    N_("{count} record(s) entered more than a day late"),
    N_(
        "material lot {material_lot}: {supplier} recorded no sale of batch {batch} "
        "to this enterprise"
    ),
    N_("sold {quantity} {unit} to {buyer} on {date}: no incoming check of it there"),
    N_("code {code} breaks the code rule: {problem}"),
)


BEHIND_BELOW = 0.95
"""An enterprise whose share of complete lots is below this is behind on its records."""


def local_today(now: datetime) -> date:
    return now.astimezone(CST).date()


def shortfalls(e: Any, today: date, until: date) -> list[dict[str, Any]]:
    """What an enterprise owes over the period, one item per obligation that is short: its
    lots' records, production days without records, daily self-inspections (today's is not
    owed yet while the day runs) and open CCP deviations. Empty when nothing is short."""
    out: list[dict[str, Any]] = []
    if e.lots_total and e.lots_complete < e.lots_total:
        out.append({"kind": "lots", "have": e.lots_complete, "need": e.lots_total})
    if e.days_with_records < e.production_days:
        out.append({"kind": "days", "have": e.days_with_records, "need": e.production_days})
    expected = max(0, e.days - (1 if until >= today else 0))
    if e.daily_inspections < expected:
        out.append({"kind": "daily", "have": e.daily_inspections, "need": expected})
    deviations = sum(
        int(r.params.get("count", 1))
        for x in e.findings
        if x.rule == "deviations_closed"
        for r in x.reasons
    )
    if deviations:
        out.append({"kind": "deviations", "have": deviations, "need": 0})
    return out


def behind(e: Any, short: list[dict[str, Any]]) -> bool:
    """Behind on its records: below the threshold of complete lots, or an obligation other
    than the lots' short (a production day without records, a daily check, a deviation)."""
    return e.complete_share < BEHIND_BELOW or any(s["kind"] != "lots" for s in short)


def _age_days(opened_at: str, now: datetime) -> int:
    opened = datetime.fromisoformat(opened_at.replace("Z", "+00:00"))
    return max(0, (local_today(now) - local_today(opened)).days)


@router.get("/regulator")
def home(
    request: Request,
    user: WebUserDep,
    jurisdiction: PageJurisdictionDep,
    engine: EngineDep,
    clock: ClockDep,
) -> Response:
    """The regulator's desk: the open cases, the enterprises behind on their records, and a
    lot look-up across the jurisdiction."""
    from foodtrace.cases import service as cases
    from web.labels import STATE_LABELS
    from web.public import case_summary_public

    now = clock.now()
    today = local_today(now)
    since, until = fitted_period(now, None, None)
    with FoodtraceSession(engine) as session:
        ents = jurisdiction.enterprises(session)
        sizes = dict(session.execute(select(Ledger.id, Ledger.size)).all())
        data = [enterprise_public(e, sizes.get(e.id, 0)) for e in ents]
        own = [
            (case_summary_public(ref, c, name), False)
            for ref, c, name in cases.list_cases(session, authority=jurisdiction.authority)
        ]
        for ref, _r, case in cases.referrals_to(session, jurisdiction.authority):
            owner, _h, _c = cases.find_case(session, ref)
            own.append((case_summary_public(ref, case, owner.name), True))
        answer = completeness_report(
            session=session, readable=jurisdiction.covers, since=since, until=until
        )
    jurisdiction.read(answer.read, f"completeness {since}..{until}")
    open_cases = [  # the oldest first: the longest waiting
        {"case": c, "referred": referred, "age": _age_days(c.opened_at, now)}
        for c, referred in sorted(own, key=lambda pair: pair[0].opened_at)
        if c.state != "closed"
    ]
    late = []
    for e in answer.report.enterprises:
        short = shortfalls(e, today, until)
        if behind(e, short):
            late.append({"e": e, "short": short})
    return render(
        request,
        "regulator_home.html",
        {
            "enterprises": data,
            "open_cases": open_cases,
            "behind": late,
            "threshold": BEHIND_BELOW,
            "since": since,
            "until": until,
            "percent": percent,
            "state_labels": STATE_LABELS,
            "typed": (request.query_params.get("q") or "").strip(),
        },
        user=user,
    )


def _suggestions(session: Session, jurisdiction: Jurisdiction, typed: str) -> list[Any]:
    found = suggest_lots(session, [e.id for e in jurisdiction.enterprises(session)], typed)
    by_code = {e.credit_code: e.id for e in jurisdiction.enterprises(session)}
    jurisdiction.read({by_code[s.credit_code] for s in found}, f"find lots lot~{typed}")
    return found


@router.get("/regulator/lots")
def lot_search_page(
    request: Request,
    user: WebUserDep,
    jurisdiction: PageJurisdictionDep,
    engine: EngineDep,
    q: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """Lots of the jurisdiction by code, as typed: the same code, then near ones (the desk's
    look-up without JavaScript). One exact match at one enterprise opens its trail."""
    typed = q.strip()
    with FoodtraceSession(engine) as session:
        found = _suggestions(session, jurisdiction, typed) if typed else []
    exact = [s for s in found if s.rank == 0]
    if len(exact) == 1 and request.query_params.get("go") == "1":
        s = exact[0]
        return redirect(f"/regulator/trail?credit_code={s.credit_code}&lot={quote(s.lot_code)}")
    return render(
        request, "lot_search.html", {"typed": typed, "found": found, "exact": exact}, user=user
    )


@router.get("/regulator/lots/suggest")
def lot_suggest(
    jurisdiction: PageJurisdictionDep,
    engine: EngineDep,
    q: Annotated[str, Query(max_length=64)] = "",
) -> JSONResponse:
    """The look-up's suggestions as the regulator types (the desk's script asks)."""
    with FoodtraceSession(engine) as session:
        found = _suggestions(session, jurisdiction, q.strip())
    return JSONResponse([s.public() for s in found])


def _query(request: Request, ents: list[Enterprise], depth: int | None) -> dict[str, Any]:
    q = request.query_params
    return {
        "credit_code": q.get("credit_code") or (ents[0].credit_code if ents else ""),
        "lot": (q.get("lot") or "").strip(),
        "direction": q.get("direction")
        if q.get("direction") in ("backward", "forward")
        else "both",
        "depth": 6 if depth is None else max(1, min(12, depth)),
    }


def _trail_for(session: Session, jurisdiction: Jurisdiction, q: dict[str, Any], what: str) -> Any:
    ent = jurisdiction.enterprise(session, q["credit_code"])
    found = lot_trail(
        session=session,
        enterprise_id=ent.id,
        lot_code=q["lot"],
        direction=q["direction"],
        depth=q["depth"],
        readable=jurisdiction.covers,
    )
    ids = {
        int(n.id.split(":")[1])
        for n in found.nodes.values()
        if not n.outside and n.type in ("lot", "material_lot")
    }
    jurisdiction.read(ids | {ent.id}, f"{what} of lot {q['lot']}")
    return found


@router.get("/regulator/trail")
def trail_page(
    request: Request,
    user: WebUserDep,
    jurisdiction: PageJurisdictionDep,
    engine: EngineDep,
    depth: Annotated[FormCount, Query()] = None,
    date: Annotated[FormDate, Query()] = None,
) -> Response:
    with FoodtraceSession(engine) as session:
        ents = jurisdiction.enterprises(session)
        q = _query(request, ents, depth)
        context: dict[str, Any] = {"enterprises": ents, "q": q, "trail": None}
        find = {k: (request.query_params.get(k) or "").strip() for k in ("gtin", "product")}
        find["date"] = date.isoformat() if date else ""
        context["find"] = find
        if find["gtin"] or find["product"]:
            context["found"] = queries.find_lots(
                session=session,
                enterprise_ids=[e.id for e in ents],
                lot_code=q["lot"] or None,
                gtin=find["gtin"] or None,
                product=find["product"] or None,
                production_date=find["date"] or None,
            )
            by_code = {e.credit_code: e.id for e in ents}
            asked = " ".join(f"{k}={v}" for k, v in find.items() if v)
            jurisdiction.read(
                {by_code[row["credit_code"]] for row in context["found"]}, f"find lots {asked}"
            )
            q["lot"] = ""
        gettext = translations(request_locale(request)).gettext
        if q["lot"]:
            try:
                found = _trail_for(session, jurisdiction, q, "trail")
            except NotFound:
                # in the same words for an enterprise outside the jurisdiction as for none
                name = next((e.name for e in ents if e.credit_code == q["credit_code"]), None)
                if name is None:
                    context["error"] = gettext("No enterprise %(code)s in your jurisdiction.") % {
                        "code": q["credit_code"]
                    }
                else:
                    context["error"] = gettext("No lot %(code)s in the records of %(name)s.") % {
                        "code": q["lot"],
                        "name": name,
                    }
                    context["near"] = _suggestions(session, jurisdiction, q["lot"])
            else:
                part = first_part(request, export_rows(found), "rows")
                context.update(
                    trail=found,
                    graph=svg(
                        found,
                        lot_link,
                        title=gettext("Trail of lot %(code)s") % {"code": q["lot"]},
                        gettext=gettext,
                    ),
                    rows=part.items,
                    part=part,
                    outside=", ".join(
                        n.enterprise or "" for n in found.nodes.values() if n.outside
                    ),
                )
    return render(request, "trail.html", context, user=user)


@router.get("/regulator/trail/export.{ext}")
def trail_export(
    ext: str,
    request: Request,
    jurisdiction: PageJurisdictionDep,
    engine: EngineDep,
    clock: ClockDep,
    depth: Annotated[FormCount, Query()] = None,
) -> Response:
    with FoodtraceSession(engine) as session:
        ents = jurisdiction.enterprises(session)
        q = _query(request, ents, depth)
        if ext not in ("csv", "xlsx", "epcis.jsonld"):
            raise NotFound(ext)
        found = _trail_for(session, jurisdiction, q, f"trail.{ext}")
        return trail_file(found, ext, platform=platform_name(session), now=clock.now())


@router.get("/regulator/completeness")
def completeness_page(
    request: Request,
    user: WebUserDep,
    jurisdiction: PageJurisdictionDep,
    engine: EngineDep,
    clock: ClockDep,
    since: Annotated[FormDate, Query()] = None,
    until: Annotated[FormDate, Query()] = None,
) -> Response:
    since, until = fitted_period(clock.now(), since, until)
    with FoodtraceSession(engine) as session:
        answer = completeness_report(
            session=session, readable=jurisdiction.covers, since=since, until=until
        )
        _name_ccps(session, answer.report.enterprises)
    jurisdiction.read(answer.read, f"completeness {since}..{until}")
    data = answer.report
    today = local_today(clock.now())
    day = today.isoformat()
    # one findings scale for every enterprise, so that their charts compare at a glance
    most = max((w.findings for e in data.enterprises for w in e.trend), default=0)
    gettext = translations(request_locale(request)).gettext
    return render(
        request,
        "completeness.html",
        {
            "data": data,
            "rule_labels": RULE_LABELS,
            "severity": SEVERITY,
            "week_text": lambda w: week_text(w, gettext, day),
            "percent": percent,
            "running": until >= today,
            "today": day,
            "short": {e.credit_code: shortfalls(e, today, until) for e in data.enterprises},
            "district_charts": _charts(data.trend, gettext, height=190, today=day),
            "charts": {
                e.credit_code: _charts(e.trend, gettext, height=140, most=most, today=day)
                for e in data.enterprises
            },
            "sparklines": {
                e.credit_code: sparkline(
                    e.trend, title=gettext("Complete lots by week"), gettext=gettext, today=day
                )
                for e in data.enterprises
            },
        },
        user=user,
    )


def _name_ccps(session: Session, enterprises: list[Any]) -> None:
    """A finding's CCP and parameter by the names of the enterprise's plans (``CCP2 冷却``,
    ``冷却时间``), not their codes (``cooling_time``), where a plan names them."""
    import json

    from foodtrace.records.models import Product

    codes = {e.credit_code for e in enterprises}
    names: dict[tuple[str, str, str], tuple[str, str]] = {}
    rows = session.execute(
        select(Enterprise.credit_code, Product.data)
        .join(Product, Product.enterprise_id == Enterprise.id)
        .where(Enterprise.credit_code.in_(codes))
    ).all()
    for code, data in rows:
        for ccp in json.loads(data).get("ccp_plan") or []:
            for p in ccp.get("parameters") or []:
                names.setdefault(
                    (code, ccp["code"], p["code"]),
                    (f"{ccp['code']} {ccp.get('name') or ''}".strip(), p.get("name") or p["code"]),
                )
    for e in enterprises:
        for x in e.findings:
            for r in x.reasons:
                key = (e.credit_code, r.params.get("ccp"), r.params.get("parameter"))
                if key in names:
                    r.params["ccp"], r.params["parameter"] = names[key]


@router.get("/regulator/verify")
def verify_page(
    request: Request,
    user: WebUserDep,
    jurisdiction: PageJurisdictionDep,
    engine: EngineDep,
    clock: ClockDep,
) -> Response:
    """Verification on demand: every ledger of the jurisdiction and the authority's, or one."""
    run = request.query_params.get("run")
    only = request.query_params.get("credit_code")
    authority = jurisdiction.authority
    with FoodtraceSession(engine) as session:
        ents = jurisdiction.enterprises(session)
        sizes = dict(session.execute(select(Ledger.id, Ledger.size)).all())
        own = session.execute(
            select(Ledger.id).where(Ledger.credit_code == authority.credit_code)
        ).scalar_one_or_none()
    chosen = [e for e in ents if not only or e.credit_code == only]
    reports: list[tuple[str, Any]] = []
    if run:
        began = time.monotonic()
        named = [(e.name, e.id) for e in chosen]
        if own is not None and not only:
            named.append((authority.name, own))
        found = verify_against_signer(request, *(i for _n, i in named))
        reports = [(n, verify_public(r)) for (n, _i), r in zip(named, found, strict=True)]
        elapsed = time.monotonic() - began
        jurisdiction.read({e.id for e in chosen}, "verify the ledger")
    else:
        elapsed = 0.0
    return render(
        request,
        "verify.html",
        {
            "enterprises": [(e, sizes.get(e.id, 0)) for e in ents],
            "reports": reports,
            "run": bool(run),
            "only": only,
            "elapsed": f"{elapsed:.1f}",
            "checked_at": clock.now(),
        },
        user=user,
    )


@router.get("/regulator/lots/{credit_code}/{lot_code}")
def lot_page(
    credit_code: str,
    lot_code: str,
    request: Request,
    user: WebUserDep,
    jurisdiction: PageJurisdictionDep,
    engine: EngineDep,
) -> Response:
    """A lot's records in time order, each with its ledger seq and hash (read-only)."""
    with FoodtraceSession(engine) as session:
        ent = jurisdiction.enterprise(session, credit_code)
        view = queries.lot_view(session=session, enterprise_id=ent.id, lot_code=lot_code)
        timeline, released = lot_timeline(view)
        seqs = [r["seq"] for r in timeline]
        hashes = {
            seq: bytes(digest).hex()
            for seq, digest in session.execute(
                select(Entry.seq, Entry.hash).where(Entry.ledger_id == ent.id, Entry.seq.in_(seqs))
            )
        }
    jurisdiction.read({ent.id}, f"records of lot {lot_code}")
    return render(
        request,
        "reg_lot.html",
        {
            "lot": view,
            "timeline": timeline,
            "released": released,
            "hashes": hashes,
            "enterprise": ent,
        },
        user=user,
    )


def _charts(
    weeks: list[Any], gettext: Any, height: int, most: int = 0, today: str | None = None
) -> list[str]:
    """The share of complete lots and the count of findings, week by week."""
    return [
        week_chart(
            weeks,
            metric="share",
            title=gettext("Complete lots by week"),
            gettext=gettext,
            height=height,
            today=today,
        ),
        week_chart(
            weeks,
            metric="findings",
            title=gettext("Findings by week"),
            gettext=gettext,
            height=height,
            most=most,
            today=today,
        ),
    ]
