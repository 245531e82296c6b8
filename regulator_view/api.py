"""The regulator's JSON API (first slice): enterprises in the jurisdiction, their ledgers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import select

from foodtrace.accounts.models import Enterprise
from foodtrace.completeness_queries import asked_period, completeness_report
from foodtrace.epcis import trail_document
from foodtrace.errors import RecordError
from foodtrace.ledger.models import Ledger
from foodtrace.records import queries
from foodtrace.records.service import platform_name
from foodtrace.trail import MAX_DEPTH, export_csv_chunks, export_xlsx_chunks, lot_trail
from regulator_view.deps import (
    Jurisdiction,
    JurisdictionDep,
    OptionalJurisdictionDep,
    RegulatedEnterprise,
)
from schemas.api import (
    CompletenessPublic,
    EnterprisesPublic,
    LotFoundPublic,
    TrailPublic,
    VerifyPublic,
)
from schemas.params import CalendarDate
from web.deps import ClockDep, CurrentPrincipal, SessionDep, verify_against_signer
from web.public import enterprise_public, trail_public, verify_public
from web.web import attachment

router = APIRouter(prefix="/api/v1/regulator", tags=["regulator"])
lots_router = APIRouter(prefix="/api/v1", tags=["regulator"])


@router.get("/enterprises", response_model=EnterprisesPublic)
def enterprises(jurisdiction: JurisdictionDep, session: SessionDep) -> EnterprisesPublic:
    """The enterprises in the regulator's jurisdiction."""
    rows = session.execute(
        select(Enterprise, Ledger.size)
        .join(Ledger, Ledger.id == Enterprise.id)
        .order_by(Enterprise.name)
    ).all()
    data = [enterprise_public(e, size) for e, size in rows if jurisdiction.covers(e)]
    return EnterprisesPublic(data=data, count=len(data))


@router.get("/enterprises/{credit_code}/verify", response_model=VerifyPublic)
def verify(
    request: Request,
    enterprise: RegulatedEnterprise,
    jurisdiction: JurisdictionDep,
) -> VerifyPublic:
    """Verify an enterprise's ledger from its stored bytes, and against what was signed."""
    (report,) = verify_against_signer(request, enterprise.id)
    jurisdiction.read({enterprise.id}, "verify the ledger")
    return verify_public(report)


TrailDirection = Literal["backward", "forward", "both"]


def _trail(
    enterprise: Enterprise,
    jurisdiction: Jurisdiction,
    session: Any,
    lot_code: str,
    direction: str,
    depth: int,
    what: str,
) -> Any:
    found = lot_trail(
        session=session,
        enterprise_id=enterprise.id,
        lot_code=lot_code,
        direction=direction,
        depth=depth,
        readable=jurisdiction.covers,
    )
    ids = {
        int(n.id.split(":")[1])
        for n in found.nodes.values()
        if not n.outside and n.type in ("lot", "material_lot")
    }
    jurisdiction.read(
        ids | {enterprise.id}, f"{what} of lot {lot_code} ({direction}, depth {depth})"
    )
    return found


LotCode = Annotated[str, Path(min_length=1, max_length=64)]
Depth = Annotated[int, Query(ge=1, le=MAX_DEPTH)]


@lots_router.get("/lots/{credit_code}/{lot_code}/trail", response_model=TrailPublic)
def trail(
    enterprise: RegulatedEnterprise,
    jurisdiction: JurisdictionDep,
    session: SessionDep,
    lot_code: LotCode,
    direction: TrailDirection = "both",
    depth: Depth = 6,
) -> TrailPublic:
    """A lot's trail backward to suppliers and forward to customers, across enterprises.

    Where the trail leads outside the regulator's jurisdiction it names the
    enterprise and stops: its records are not shown.
    """
    found = _trail(enterprise, jurisdiction, session, lot_code, direction, depth, "trail")
    return trail_public(found)


TrailFormat = Literal["csv", "xlsx", "epcis.jsonld"]
_MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "epcis.jsonld": "application/ld+json",
}


def trail_file(found: Any, fmt: str, *, platform: str, now: Any) -> Response:
    """A trail as a download: a sortable spreadsheet (one row per traceability event,
    after FSMA 204) or a GS1 EPCIS 2.0 JSON-LD document."""
    import json

    lot = found.nodes[found.start].code if found.start in found.nodes else None
    headers = {"Content-Disposition": attachment(f"{lot or 'trail'}-追溯", fmt, now)}
    if fmt in ("csv", "xlsx"):  # streamed: a lot with 22k sales is a large sheet
        chunks = export_csv_chunks(found) if fmt == "csv" else export_xlsx_chunks(found)
        return StreamingResponse(chunks, media_type=_MEDIA[fmt], headers=headers)
    document = trail_document(found, platform=platform, now=now)
    body = json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")
    return Response(body, media_type=_MEDIA[fmt], headers=headers)


@lots_router.get("/lots/{credit_code}/{lot_code}/trail.{fmt}", response_class=Response)
def trail_export(
    enterprise: RegulatedEnterprise,
    jurisdiction: JurisdictionDep,
    session: SessionDep,
    clock: ClockDep,
    lot_code: LotCode,
    fmt: TrailFormat,
    direction: TrailDirection = "both",
    depth: Depth = 6,
) -> Response:
    """The trail as CSV or XLSX (one row per traceability event, with its ledger seq and
    hash) or as a GS1 EPCIS 2.0 JSON-LD document (CBV 2.0 business steps)."""
    found = _trail(enterprise, jurisdiction, session, lot_code, direction, depth, f"trail.{fmt}")
    return trail_file(found, fmt, platform=platform_name(session), now=clock.now())


@router.get("/lots", response_model=list[LotFoundPublic])
def find_lots(
    jurisdiction: JurisdictionDep,
    session: SessionDep,
    lot: Annotated[str | None, Query(max_length=64)] = None,
    gtin: Annotated[str | None, Query(pattern=r"^[0-9]{8,14}$")] = None,
    product: Annotated[str | None, Query(max_length=200)] = None,
    date: Annotated[CalendarDate | None, Query(description="production date")] = None,
) -> list[LotFoundPublic]:
    """Find lots in the jurisdiction: by (GTIN, lot) as on the package, by lot code, or by
    product name (a part of it) and production date. Then trace one by credit code and lot."""
    if not (lot or gtin or product):
        raise RecordError.at("lot", msg="give a lot code, a GTIN or a product name", type="missing")
    ents = {e.credit_code: e.id for e in jurisdiction.enterprises(session)}
    found = queries.find_lots(
        session=session,
        enterprise_ids=list(ents.values()),
        lot_code=lot,
        gtin=gtin,
        product=product,
        production_date=date.isoformat() if date else None,
    )
    asked = " ".join(f"{k}={v}" for k, v in (("lot", lot), ("gtin", gtin), ("product", product),
                                              ("date", date)) if v)  # fmt: skip
    jurisdiction.read({ents[row["credit_code"]] for row in found}, f"find lots {asked}")
    return [LotFoundPublic(**row) for row in found]


@lots_router.get("/completeness", response_model=CompletenessPublic)
def completeness(
    principal: CurrentPrincipal,
    jurisdiction: OptionalJurisdictionDep,
    session: SessionDep,
    clock: ClockDep,
    enterprise: Annotated[str | None, Query(max_length=18, description="a credit code")] = None,
    region: Annotated[
        str | None, Query(pattern=r"^[0-9]{2,6}$", description="a region code prefix")
    ] = None,
    since: Annotated[
        CalendarDate | None, Query(description="first production date (default: 30 days ago)")
    ] = None,
    until: Annotated[
        CalendarDate | None, Query(description="last production date (default: today)")
    ] = None,
) -> CompletenessPublic:
    """Record completeness per lot, per enterprise and for the district (DESIGN.md rules),
    with the week-by-week trend.

    A regulator sees the enterprises of their jurisdiction (narrowed by
    ``region`` prefix or ``enterprise``), weakest records first; an enterprise
    user sees their own enterprise. Cross-enterprise links are checked only
    against ledgers the reader may see; the others are listed as
    ``outside_links``, by the other enterprise's name.
    """
    since, until = asked_period(clock.now(), since, until)
    readable: Callable[[Enterprise], bool]
    if jurisdiction is not None:
        readable = jurisdiction.covers
    elif principal.enterprise_id is not None:
        readable = _own(principal.enterprise_id)
    else:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="for regulators and enterprises")
    answer = completeness_report(
        session=session,
        readable=readable,
        since=since,
        until=until,
        credit_code=enterprise,
        region=region,
    )
    if jurisdiction is not None:
        jurisdiction.read(answer.read, f"completeness {since}..{until}")
    return answer.report


def _own(enterprise_id: int) -> Callable[[Enterprise], bool]:
    """What an enterprise user may read: their own enterprise."""
    return lambda e: e.id == enterprise_id


@router.get("/verify", response_model=list[VerifyPublic])
def verify_district(
    request: Request,
    jurisdiction: JurisdictionDep,
    session: SessionDep,
) -> list[VerifyPublic]:
    """Verify every ledger in the jurisdiction from its stored bytes: a report per enterprise,
    and one for the authority's own ledger (last)."""
    chosen = jurisdiction.enterprises(session)
    own = session.execute(
        select(Ledger.id).where(Ledger.credit_code == jurisdiction.authority.credit_code)
    ).scalar_one_or_none()
    # the authority's own ledger (its cases, referrals and recalls) last
    ids = [e.id for e in chosen] + ([own] if own is not None else [])
    reports = verify_against_signer(request, *ids)
    jurisdiction.read({e.id for e in chosen}, "verify the ledger")
    return [verify_public(r) for r in reports]
