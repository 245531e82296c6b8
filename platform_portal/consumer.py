"""The consumer page of a lot (public, no login) and the QR codes that lead to it.

The page is served at the lot's GS1 Digital Link path ``/01/<GTIN-14>/10/<lot>``
or its platform path ``/lot/<credit code>/<lot>``: HTML for a browser, JSON for a
client that asks for ``application/json``. ``/qr/…`` draws the code of the same
address (public too: the code is printed on the package anyway).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from foodtrace.accounts.models import Enterprise
from foodtrace.clock import CST
from foodtrace.consumer import (
    PublicLotRead,
    PublicProver,
    find_public_lot,
    public_facts,
    public_uri,
    read_public_lot,
)
from foodtrace.digital_link import ai10_problem, lot_path
from foodtrace.qr import qr_png, qr_svg
from foodtrace.records.models import Lot
from web.deps import ClockDep, EngineDep, SettingsDep, public_session
from web.web import render

router = APIRouter(include_in_schema=False)

# Any text within reason: a malformed code (a GTIN typed with 13 digits or a typo, a
# credit code of the wrong length) gets the same clear not-found page as an unknown one.
LotCode = Annotated[str, Path(min_length=1, max_length=200)]
Gtin = Annotated[str, Path(min_length=1, max_length=64)]
CreditCode = Annotated[str, Path(min_length=1, max_length=64)]

# The QR image of a lot never changes; a day's cache spares a label printer's rereads.
IMAGE_CACHE = "public, max-age=86400"


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


# The page loads its own stylesheet and script only; the proofs travel in a JSON data block
# (not executed, so not a script to CSP). Nothing may frame it or load from elsewhere.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _answer(
    request: Request,
    found: PublicLotRead | None,
    session: Any,
    now: datetime,
    what: str,
    not_gs1: tuple[str, str | None] | None = None,
) -> Response:
    """The consumer page (or JSON) of ``found``; a not-found page when it is None.

    ``not_gs1``: the GS1 path named a lot code that is not a GS1 AI 10 value (why, and
    the lot's platform path where such a lot exists): its QR code carries that path.
    """
    headers = {"Content-Security-Policy": CSP}
    if found is None:
        if _wants_json(request):
            detail = f"no lot {what}"
            if not_gs1 is not None:
                detail = (
                    f"{what}: the lot code is not a GS1 batch/lot number ({not_gs1[0]}), so no "
                    "GS1 Digital Link names it; such a lot is at /lot/<credit code>/<lot>"
                    + (f": {not_gs1[1]}" if not_gs1[1] else "")
                )
            return JSONResponse({"detail": detail}, status_code=404)
        page = render(
            request,
            "consumer_lot.html",
            {"lot": None, "what": what, "not_gs1": not_gs1},
            status_code=404,
        )
        page.headers.update(headers)
        return page
    prover: PublicProver = request.app.state.prover
    data = public_facts(session, found, prover=prover)
    if _wants_json(request):
        return JSONResponse(data)
    today = now.astimezone(CST).date().isoformat()
    expired = bool(data["best_before"]) and data["best_before"] < today
    page = render(
        request,
        "consumer_lot.html",
        {"lot": data, "what": what, "expired": expired, "verifier_key": prover.verifier_key},
    )
    page.headers.update(headers)
    return page


@router.get("/lookup")
def lookup(
    request: Request,
    engine: EngineDep,
    clock: ClockDep,
    code: Annotated[str, Query(max_length=64)] = "",
    lot: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """The home page's look-up: a GTIN (the barcode's digits) or a producer's credit code,
    and a lot number, lead to the lot's consumer page (303), or to a page saying no such lot
    is recorded (404)."""
    code, lot = code.strip().replace(" ", ""), lot.strip()
    what = f"{code} / {lot}"
    with public_session(engine) as session:
        found = None
        if code and lot:
            if code.isdigit():
                found = find_public_lot(session, gtin=code, lot_code=lot)
            else:
                found = find_public_lot(session, credit_code=code.upper(), lot_code=lot)
        if found is None:
            return _answer(request, None, session, clock.now(), what)
    return RedirectResponse(public_uri(*found, ""), status_code=303)


@router.get("/lot/{credit_code}/{lot_code}")
def lot_by_code(
    request: Request,
    engine: EngineDep,
    clock: ClockDep,
    credit_code: CreditCode,
    lot_code: LotCode,
) -> Response:
    """A lot without a GTIN (common in small workshops), by the producer's credit code."""
    with public_session(engine) as session:
        found = read_public_lot(session, credit_code=credit_code, lot_code=lot_code)
        return _answer(request, found, session, clock.now(), f"{credit_code} / {lot_code}")


@router.get("/01/{gtin}/10/{lot_code}")
def lot_by_gtin(
    request: Request, engine: EngineDep, clock: ClockDep, gtin: Gtin, lot_code: LotCode
) -> Response:
    """The GS1 Digital Link URI on the package: GTIN-14 and lot.

    Only for a lot code that is a GS1 AI 10 value: a lot whose code is not one has its QR
    code (and page) at the platform path, and this path answers 404 saying so.
    """
    what = f"GTIN {gtin} / {lot_code}"
    with public_session(engine) as session:
        problem = ai10_problem(lot_code)
        if problem is not None:
            lot = find_public_lot(session, gtin=gtin, lot_code=lot_code)
            path = lot_path(lot_code=lot_code, credit_code=lot[0].credit_code) if lot else None
            return _answer(request, None, session, clock.now(), what, not_gs1=(problem, path))
        found = read_public_lot(session, gtin=gtin, lot_code=lot_code)
        return _answer(request, found, session, clock.now(), what)


def _image(found: tuple[Enterprise, Lot] | None, base_url: str, fmt: str, what: str) -> Response:
    if fmt not in ("png", "svg"):
        return JSONResponse({"detail": "a QR code is served as .png or .svg"}, status_code=404)
    if found is None:
        return JSONResponse({"detail": f"no lot {what}: no QR code"}, status_code=404)
    uri = public_uri(*found, base_url)
    if fmt == "png":
        body: bytes | str = qr_png(uri)
        media = "image/png"
    else:
        body = qr_svg(uri, size="40mm", title=uri)
        media = "image/svg+xml"
    return Response(body, media_type=media, headers={"Cache-Control": IMAGE_CACHE})


@router.get("/qr/01/{gtin}/10/{lot_code}.{fmt}")
def qr_by_gtin(
    engine: EngineDep, settings: SettingsDep, gtin: Gtin, lot_code: LotCode, fmt: str
) -> Response:
    """The QR code of a lot's GS1 Digital Link URI, as PNG or SVG (none for a lot code that
    is not a GS1 batch/lot number: that lot's code is at /qr/lot/…)."""
    if ai10_problem(lot_code) is not None:
        return JSONResponse(
            {"detail": f"{lot_code!r} is not a GS1 batch/lot number: {ai10_problem(lot_code)}; "
             "its QR code is at /qr/lot/<credit code>/<lot>"},
            status_code=404,
        )  # fmt: skip
    with public_session(engine) as session:
        found = find_public_lot(session, gtin=gtin, lot_code=lot_code)
    return _image(found, settings.public_base_url, fmt, f"GTIN {gtin} / {lot_code}")


@router.get("/qr/lot/{credit_code}/{lot_code}.{fmt}")
def qr_by_code(
    engine: EngineDep,
    settings: SettingsDep,
    credit_code: CreditCode,
    lot_code: LotCode,
    fmt: str,
) -> Response:
    """The QR code of a lot named by its producer's credit code (its GS1 URI if it has a GTIN)."""
    with public_session(engine) as session:
        found = find_public_lot(session, credit_code=credit_code, lot_code=lot_code)
    return _image(found, settings.public_base_url, fmt, f"{credit_code} / {lot_code}")
