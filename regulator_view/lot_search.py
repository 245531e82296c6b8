"""A regulator's lot look-up by code across the jurisdiction: exact, prefix and near matches.

A sampling report gives a lot code as the label prints it, and a regulator types it as it
comes: ``pj-d12``, ``PJD12``, ``PJ D12`` or ``PJ-D21`` for PJ-D12 all offer PJ-D12. Codes
are compared by their letters and digits only, without case; a code that is one or two
edits away from what was typed (a swapped, missing or extra character) is offered after the
codes that start with it. Only the lots of enterprises in the jurisdiction are searched (the
caller passes their ids, from ``Jurisdiction.enterprises``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from foodtrace.accounts.models import Enterprise
from foodtrace.records.models import Lot, Product

SCANNED = 20_000
"""The most recent lots whose codes a near match compares (a district's few months)."""


@dataclass(frozen=True)
class Suggestion:
    credit_code: str
    enterprise: str
    lot_code: str
    product: str
    production_date: str
    rank: int
    """0 the same code, 1 a code starting with what was typed, 2 one containing it, 3+ near."""

    def public(self) -> dict[str, Any]:
        return {
            "credit_code": self.credit_code,
            "enterprise": self.enterprise,
            "lot_code": self.lot_code,
            "product": self.product,
            "production_date": self.production_date,
            "exact": self.rank == 0,
        }


def key(code: str) -> str:
    """A code as compared: its letters and digits, upper case (``pj-d12`` -> ``PJD12``)."""
    return re.sub(r"[\W_]+", "", code).upper()


def _distance(a: str, b: str, most: int) -> int:
    """Optimal-string-alignment distance of a and b (a swap counts one), or ``most + 1`` once
    it is certain to exceed ``most``."""
    if abs(len(a) - len(b)) > most:
        return most + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], prev2[j - 2] + 1)
        if min(row) > most:
            return most + 1
        prev2, prev = prev, row
    return prev[-1]


def _rank(typed: str, code: str) -> int | None:
    k = key(code)
    if k == typed:
        return 0
    if k.startswith(typed):
        return 1
    if len(typed) >= 3 and typed in k:
        return 2
    if len(typed) < 3:
        return None
    most = 1 if len(typed) < 6 else 2
    d = _distance(typed, k, most)
    return 2 + d if d <= most else None


def suggest_lots(
    session: Session, enterprise_ids: list[int], typed: str, limit: int = 8
) -> list[Suggestion]:
    """The lots of these enterprises whose code matches ``typed``: the same code first, then
    the codes starting with it and containing it; the codes one or two edits away only when
    none of those is found. Newest first within each; nothing for fewer than two letters or
    digits."""
    wanted = key(typed)
    if len(wanted) < 2 or not enterprise_ids:
        return []
    rows = session.execute(
        select(Lot.code, Lot.enterprise_id, Lot.product_seq, Lot.production_date)
        .where(Lot.enterprise_id.in_(enterprise_ids))
        .order_by(Lot.production_date.desc(), Lot.code)
        .limit(SCANNED)
    ).all()
    ranked: list[tuple[int, int, Any]] = []
    for order, row in enumerate(rows):
        rank = _rank(wanted, row.code)
        if rank is not None:
            ranked.append((rank, order, row))
    ranked.sort(key=lambda t: (t[0], t[1]))
    if ranked and ranked[0][0] < 3:  # near codes only when nothing has the typed code
        ranked = [t for t in ranked if t[0] < 3]
    chosen = ranked[:limit]
    if not chosen:
        return []
    ents = {
        e.id: e
        for e in session.execute(
            select(Enterprise).where(Enterprise.id.in_({r.enterprise_id for _k, _o, r in chosen}))
        ).scalars()
    }
    names = {
        (eid, seq): name
        for eid, seq, name in session.execute(
            select(Product.enterprise_id, Product.record_seq, Product.name).where(
                Product.enterprise_id.in_(ents)
            )
        ).all()
    }
    return [
        Suggestion(
            credit_code=ents[r.enterprise_id].credit_code,
            enterprise=ents[r.enterprise_id].name,
            lot_code=r.code,
            product=names.get((r.enterprise_id, r.product_seq), ""),
            production_date=r.production_date,
            rank=rank,
        )
        for rank, _o, r in chosen
    ]
