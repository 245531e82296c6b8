"""The regulator's pages: enterprises in the jurisdiction, a lot's trail, record completeness."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlmodel import Session

from foodtrace.accounts.models import Enterprise
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
from schemas.params import FormCount, FormDate
from web.deps import ClockDep, EngineDep, verify_against_signer
from web.i18n import N_, translations
from web.paging import first_part
from web.public import enterprise_public, verify_public
from web.timeline import lot_timeline
from web.web import WebUserDep, render, request_locale

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


@router.get("/regulator")
def home(
    request: Request, user: WebUserDep, jurisdiction: PageJurisdictionDep, engine: EngineDep
) -> Response:
    with FoodtraceSession(engine) as session:
        ents = jurisdiction.enterprises(session)
        sizes = dict(session.execute(select(Ledger.id, Ledger.size)).all())
        data = [enterprise_public(e, sizes.get(e.id, 0)) for e in ents]
    return render(request, "regulator_home.html", {"enterprises": data}, user=user)


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
        if q["lot"]:
            try:
                found = _trail_for(session, jurisdiction, q, "trail")
            except NotFound as exc:
                context["error"] = str(exc)
            else:
                part = first_part(request, export_rows(found), "rows")
                context.update(
                    trail=found,
                    graph=svg(found, lot_link),
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
    jurisdiction.read(answer.read, f"completeness {since}..{until}")
    data = answer.report
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
            "week_text": lambda w: week_text(w, gettext),
            "percent": percent,
            "district_charts": _charts(data.trend, gettext, height=190),
            "charts": {
                e.credit_code: _charts(e.trend, gettext, height=140, most=most)
                for e in data.enterprises
            },
            "sparklines": {
                e.credit_code: sparkline(
                    e.trend, title=gettext("Complete lots by week"), gettext=gettext
                )
                for e in data.enterprises
            },
        },
        user=user,
    )


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


def _charts(weeks: list[Any], gettext: Any, height: int, most: int = 0) -> list[str]:
    """The share of complete lots and the count of findings, week by week."""
    return [
        week_chart(
            weeks,
            metric="share",
            title=gettext("Complete lots by week"),
            gettext=gettext,
            height=height,
        ),
        week_chart(
            weeks,
            metric="findings",
            title=gettext("Findings by week"),
            gettext=gettext,
            height=height,
            most=most,
        ),
    ]
