"""The regulator's pages (first slice): the enterprises in the jurisdiction."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import Response
from sqlalchemy import select
from sqlmodel import Session

from foodtrace.accounts.models import Authority, Enterprise
from foodtrace.accounts.service import Role, covers
from foodtrace.ledger.models import Ledger
from webapp.deps import EngineDep
from webapp.public import enterprise_public
from webapp.web import WebUserDep, render

router = APIRouter(include_in_schema=False)


@router.get("/regulator")
def home(request: Request, user: WebUserDep, engine: EngineDep) -> Response:
    if user.principal.role is not Role.REGULATOR or user.principal.authority_id is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN)
    with Session(engine) as session:
        authority = session.get(Authority, user.principal.authority_id)
        rows = session.execute(
            select(Enterprise, Ledger.size)
            .join(Ledger, Ledger.id == Enterprise.id)
            .order_by(Enterprise.name)
        ).all()
        data = [
            enterprise_public(e, n)
            for e, n in rows
            if authority and covers(authority, e.region_code)
        ]
    return render(request, "regulator_home.html", {"enterprises": data}, user=user)
