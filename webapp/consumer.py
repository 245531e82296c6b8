"""The consumer page of a lot (public, no login): GS1 Digital Link path and platform path.

HTML for a browser, JSON for a client that asks for ``application/json``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response

from foodtrace.consumer import find_public_lot, public_lot
from webapp.deps import SessionDep
from webapp.web import render

router = APIRouter(include_in_schema=False)

LotCode = Annotated[str, Path(min_length=1, max_length=64)]


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _answer(request: Request, found: Any, session: Any, what: str) -> Response:
    if found is None:
        if _wants_json(request):
            return JSONResponse({"detail": f"no lot {what}"}, status_code=404)
        return render(request, "consumer_lot.html", {"lot": None, "what": what}, status_code=404)
    data = public_lot(session, *found)
    if _wants_json(request):
        return JSONResponse(data)
    return render(request, "consumer_lot.html", {"lot": data, "what": what})


@router.get("/lot/{credit_code}/{lot_code}")
def lot_by_code(
    request: Request,
    session: SessionDep,
    credit_code: Annotated[str, Path(min_length=18, max_length=18)],
    lot_code: LotCode,
) -> Response:
    """A lot without a GTIN (common in small workshops), by the producer's credit code."""
    found = find_public_lot(session, credit_code=credit_code, lot_code=lot_code)
    return _answer(request, found, session, f"{credit_code}/{lot_code}")


@router.get("/01/{gtin}/10/{lot_code}")
def lot_by_gtin(
    request: Request,
    session: SessionDep,
    gtin: Annotated[str, Path(pattern=r"^[0-9]{14}$")],
    lot_code: LotCode,
) -> Response:
    """The GS1 Digital Link URI on the package: GTIN-14 and lot."""
    found = find_public_lot(session, gtin=gtin, lot_code=lot_code)
    return _answer(request, found, session, f"GTIN {gtin}, lot {lot_code}")
