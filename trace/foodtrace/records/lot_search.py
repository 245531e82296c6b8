"""An enterprise's own lots, searched and filtered in the database, a page at a time (the
portal's 批次 list; issue 24, item 14): by lot code (a part of it, any case), product,
production date range and release status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import and_, case, exists, func, select
from sqlmodel import Session

from foodtrace.records.models import Lot, ReleaseTest

STATUSES = ("released", "failed", "untested")
"""A lot's release status: a passing release test (released, Art. 52), tests but none
passing (failed), or no test yet (untested)."""


@dataclass(frozen=True)
class LotPage:
    rows: list[dict[str, Any]]
    count: int
    """Lots matching the filters, on every page."""


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def find_own_lots(
    *,
    session: Session,
    enterprise_id: int,
    code: str | None = None,
    product_seq: int | None = None,
    since: date | None = None,
    until: date | None = None,
    status: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> LotPage:
    """The enterprise's lots matching every filter given, newest production first, with each
    lot's ``status`` (one of :data:`STATUSES`)."""
    lots = Lot.__table__
    tests = ReleaseTest.__table__

    def tested(*more: Any) -> Any:
        return exists().where(
            # the literal ledger too: PostgreSQL prunes release_tests to its partition
            tests.c.enterprise_id == enterprise_id,
            tests.c.enterprise_id == lots.c.enterprise_id,
            tests.c.lot_seq == lots.c.record_seq,
            *more,
        )

    passed = tested(tests.c.conclusion == "pass")
    state = case((passed, "released"), (tested(), "failed"), else_="untested")
    conds: list[Any] = [lots.c.enterprise_id == enterprise_id]
    if code:
        conds.append(func.lower(lots.c.code).like(_like(code), escape="\\"))
    if product_seq is not None:
        conds.append(lots.c.product_seq == product_seq)
    if since is not None:
        conds.append(lots.c.production_date >= since.isoformat())
    if until is not None:
        conds.append(lots.c.production_date <= until.isoformat())
    if status == "released":
        conds.append(passed)
    elif status == "failed":
        conds.append(and_(tested(), ~passed))
    elif status == "untested":
        conds.append(~tested())
    where = and_(*conds)
    count = session.execute(select(func.count()).select_from(lots).where(where)).scalar_one()
    result = session.execute(
        select(lots, state.label("status"))
        .where(where)
        .order_by(lots.c.production_date.desc(), lots.c.record_seq.desc())
        .offset(offset)
        .limit(limit)
    )
    rows = [dict(r._mapping) for r in result]
    return LotPage(rows, count)
