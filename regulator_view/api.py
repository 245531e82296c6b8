"""The regulator's JSON API (first slice): enterprises in the jurisdiction, their ledgers."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from foodtrace.accounts.models import Enterprise
from foodtrace.accounts.service import covers
from foodtrace.ledger.models import Ledger
from foodtrace.verify import verify_consistently
from schemas.api import EnterprisesPublic, VerifyPublic
from webapp.deps import CurrentRegulator, EngineDep, RegulatedEnterprise, SessionDep
from webapp.public import enterprise_public, verify_public

router = APIRouter(prefix="/api/v1/regulator", tags=["regulator"])


@router.get("/enterprises", response_model=EnterprisesPublic)
def enterprises(regulator: CurrentRegulator, session: SessionDep) -> EnterprisesPublic:
    """The enterprises in the regulator's jurisdiction."""
    rows = session.execute(
        select(Enterprise, Ledger.size)
        .join(Ledger, Ledger.id == Enterprise.id)
        .order_by(Enterprise.name)
    ).all()
    data = [
        enterprise_public(e, size) for e, size in rows if covers(regulator.authority, e.region_code)
    ]
    return EnterprisesPublic(data=data, count=len(data))


@router.get("/enterprises/{credit_code}/verify", response_model=VerifyPublic)
def verify(enterprise: RegulatedEnterprise, engine: EngineDep) -> VerifyPublic:
    """Verify an enterprise's ledger from its stored bytes."""
    return verify_public(verify_consistently(engine=engine, ledger_id=enterprise.id)[0])
