"""A printable sheet of QR labels for one of the enterprise's own lots (A4, cut and stick).

The lot is looked up in the signed-in user's own enterprise, so another
enterprise's lot is simply not found. The QR images themselves are public
(``/qr/…``): the code is printed on the package anyway.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from markupsafe import Markup

from foodtrace.consumer import lot_label
from foodtrace.qr import qr_svg
from web.deps import SessionDep, SettingsDep
from web.web import PageEnterpriseUser, render

router = APIRouter(include_in_schema=False)

COLUMNS, ROWS = 3, 4
PER_PAGE = COLUMNS * ROWS
"""Labels on one A4 sheet: 3 × 4 labels of 63 × 69 mm each, a 40 mm code on each."""
MAX_LABELS = 20 * PER_PAGE


@router.get("/lots/{lot_code}/labels")
def lot_labels(
    lot_code: str,
    request: Request,
    pair: PageEnterpriseUser,
    session: SessionDep,
    settings: SettingsDep,
    count: Annotated[int, Query(ge=1, le=MAX_LABELS)] = PER_PAGE,
) -> Response:
    """``count`` labels of the lot, ``PER_PAGE`` to an A4 page, ready to print."""
    label = lot_label(
        session=session,
        enterprise_id=pair[1].enterprise_id,
        lot_code=lot_code,
        base_url=settings.public_base_url,
    )
    pages = [range(start, min(start + PER_PAGE, count)) for start in range(0, count, PER_PAGE)]
    return render(
        request,
        "lot_labels.html",
        {
            "label": label,
            "svg": Markup(qr_svg(label.uri)),  # our own markup: path data and escaped title only
            "pages": pages,
            "count": count,
            "per_page": PER_PAGE,
            "max_labels": MAX_LABELS,
        },
        user=pair[0],
    )
