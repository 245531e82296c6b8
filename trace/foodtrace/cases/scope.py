"""The recall scope of a failed sample (DESIGN.md, "A failed sample and its case").

Given the sampled lot L of enterprise E, the scope is:

- **the lot's trail**, backward to its suppliers and forward to its customers;
- **lots sharing its suspect material lots**: the material lots L consumed
  (all of them, or the ones the regulator names) are suspect. Where a suspect
  material came from a registered supplier who recorded the sale, the
  supplier's lot S is the source, and every lot downstream of S is in scope,
  in any enterprise (other manufacturers that bought S too); otherwise every
  lot of E that consumed the material lot;
- **lots sharing a CCP deviation window**: every deviation of E's CCP readings
  taken while L was in production opens a window (from the reading until its
  corrective action, or until the end of the deviating lot's production when
  none was recorded; an action given with the reading closes it at once);
  every lot of E whose production window overlaps it, and whose product's
  CCP plan monitors the same CCP, is in scope;
- and, forward from each of these lots, the lots that registered customers
  made from them.

For every lot in scope: every customer with quantities, and the mass balance
(produced, sold, still held), in the product's base unit. Lots that lie with
an enterprise outside the reader's jurisdiction are not opened: the trail
names the enterprise, and the case refers it to its authority (协查).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial

from sqlalchemy import Select, select
from sqlmodel import Session

from foodtrace.accounts.models import Enterprise
from foodtrace.errors import NotFound, RecordError
from foodtrace.records.derive import dec, dec_str
from foodtrace.records.projection import TABLES
from foodtrace.trail import MAX_DEPTH, Node, Trail, _Walker
from schemas.types import format_instant

REASONS = ("sampled", "downstream", "ccp_deviation", "source", "shared_material")
"""Why a lot is in scope, in the order they are looked for (the first one found names it)."""


@dataclass
class ScopeLot:
    node: str
    enterprise_id: int
    credit_code: str
    enterprise: str
    lot_code: str
    product: str
    gtin: str | None
    reason: str
    via: str
    produced: Decimal
    sold: Decimal
    unit: str
    production_date: str
    seq: int
    hash: str

    @property
    def held(self) -> Decimal:
        return self.produced - self.sold


@dataclass
class ScopeSale:
    """One sale of a lot in scope: who bought how much, and when."""

    enterprise_id: int
    credit_code: str
    lot_code: str
    customer_seq: int
    customer_code: str
    customer: str
    customer_credit_code: str | None
    registered: bool
    quantity: str
    unit: str
    quantity_base: Decimal
    base_unit: str
    sale_date: str
    seq: int


@dataclass
class Deviation:
    credit_code: str
    lot_code: str
    ccp: str
    parameter: str
    measured_at: str
    closed_at: str | None
    seq: int


@dataclass
class Scope:
    trail: Trail
    lots: list[ScopeLot] = field(default_factory=list)
    sales: list[ScopeSale] = field(default_factory=list)
    deviations: list[Deviation] = field(default_factory=list)
    outside: list[Node] = field(default_factory=list)
    """Enterprises the trail reaches but the reader may not open (to refer, 协查)."""
    suspect_materials: list[str] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)
    """Lots of the recorded scope (credit code, lot code) no longer found under that code."""

    def lot(self, credit_code: str, lot_code: str) -> ScopeLot | None:
        for lot in self.lots:
            if lot.credit_code == credit_code and lot.lot_code == lot_code:
                return lot
        return None


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def recall_scope(
    *,
    session: Session,
    enterprise_id: int,
    lot_code: str,
    readable: Callable[[Enterprise], bool] = lambda _e: True,
    suspect_materials: list[str] | None = None,
    depth: int = 6,
    pinned: Sequence[tuple[str, str, str]] | None = None,
) -> Scope:
    """The recall scope of lot ``lot_code`` of enterprise ``enterprise_id``; see the module.

    ``pinned``: the lots a case recorded as its scope when it was opened, as (credit code,
    lot code, reason). The scope's lots are then exactly those, whatever the walk finds now:
    the authority decided the scope once, in its ledger, and everyone who acts on the case
    (the regulator and each enterprise) reads that decision. The walk still gives each lot
    its trail node and why it is in scope; sales and mass balances are read live.
    """
    depth = max(1, min(depth, MAX_DEPTH))
    walker = _Walker(session, readable)
    store = walker.store(enterprise_id)
    found = store.find("lots", code=lot_code)
    if not found:
        raise NotFound(f"no lot {lot_code!r}")
    lot = found[0]
    trail = Trail(f"lot:{enterprise_id}:{lot['record_seq']}")
    walker.lot_node(trail, enterprise_id, lot)
    walker.backward(trail, enterprise_id, lot, depth)

    reasons: dict[str, tuple[str, str]] = {}

    def forward(reason: str, via: str, run: Callable[[], None]) -> None:
        before = {k for k in walker.seen if k[0] == "f"}
        run()
        for kind, key in walker.seen - before:
            if kind == "f":
                reasons.setdefault(f"lot:{key}", (reason, via))

    # 1. The sampled lot and everything downstream of it.
    reasons[trail.start] = ("sampled", lot_code)
    forward("downstream", lot_code, lambda: walker.forward_lot(trail, enterprise_id, lot, depth))

    # 2. Lots sharing a CCP deviation window with it.
    deviations = _deviations(session, store, enterprise_id, lot)
    lots_by_seq = {d["lot_seq"]: store.find("lots", record_seq=d["lot_seq"])[0] for d in deviations}
    plan_ccps = _plan_ccps(store) if deviations else {}
    for d in deviations:
        start, end = _instant(d["measured_at"]), _instant(d["closed_at"])
        for other in _lots_between(session, enterprise_id, d["measured_at"], d["closed_at"]):
            if _instant(other["started_at"]) > end or _instant(other["ended_at"]) < start:
                continue
            if d["ccp"] not in plan_ccps.get(other["product_seq"], set()):
                continue
            forward(
                "ccp_deviation",
                f"{d['ccp']}/{d['parameter']} {d['measured_at']}",
                partial(walker.forward_lot, trail, enterprise_id, other, depth),
            )

    # 3. Lots sharing its suspect material lots, from the source batch on.
    inputs = store.find("lot_inputs", record_seq=lot["record_seq"])
    materials = [store.find("material_lots", record_seq=u["material_lot_seq"])[0] for u in inputs]
    codes = {m["code"] for m in materials}
    if suspect_materials is None:
        suspects = materials
    else:
        unknown = [c for c in suspect_materials if c not in codes]
        if unknown:
            raise RecordError.at(
                "suspect_materials",
                msg=f"lot {lot_code!r} did not consume {', '.join(unknown)}; it consumed "
                + (", ".join(sorted(codes)) or "nothing"),
                type="not_found",
            )
        suspects = [m for m in materials if m["code"] in set(suspect_materials)]
    me = walker.ent(enterprise_id)
    for ml in suspects:
        via = f"{ml['material_name']} {ml['code']}"
        source = _source_lot(walker, me, ml)
        if source is not None:
            seller, slot = source
            reasons.setdefault(f"lot:{seller.id}:{slot['record_seq']}", ("source", via))
            forward(
                "shared_material",
                via,
                partial(walker.forward_lot, trail, seller.id, slot, depth),
            )
        else:
            forward(
                "shared_material",
                via,
                partial(walker.forward_material, trail, enterprise_id, ml, depth),
            )

    walker.fill_hashes(trail)
    scope = Scope(trail=trail, suspect_materials=[m["code"] for m in suspects])
    scope.deviations = [
        Deviation(
            me.credit_code,
            lots_by_seq[d["lot_seq"]]["code"],
            d["ccp"],
            d["parameter"],
            d["measured_at"],
            d["corrected_at"],
            d["current_seq"],
        )
        for d in deviations
    ]
    scope.outside = [n for n in trail.nodes.values() if n.outside]
    for node_id, (reason, via) in reasons.items():
        _, eid, seq = node_id.split(":")
        scope.lots.append(_scope_lot(walker, trail, int(eid), int(seq), reason, via))
        scope.sales += _sales(walker, int(eid), int(seq))
    if pinned is not None:
        scope.lots, scope.sales = [], []
        for credit_code, code, reason in pinned:
            ent = walker.enterprise(credit_code)
            found = walker.store(ent.id).find("lots", code=code) if ent is not None else []
            if ent is None or not found:  # its code was corrected since the case opened
                scope.missing.append((credit_code, code))
                continue
            seq = found[0]["record_seq"]
            live = reasons.get(f"lot:{ent.id}:{seq}")
            via = live[1] if live is not None and live[0] == reason else ""
            scope.lots.append(_scope_lot(walker, trail, ent.id, seq, reason, via))
            scope.sales += _sales(walker, ent.id, seq)
    order = {r: i for i, r in enumerate(REASONS)}
    scope.lots.sort(key=lambda s: (order[s.reason], s.credit_code, s.production_date, s.lot_code))
    scope.sales.sort(key=lambda s: (s.credit_code, s.lot_code, s.sale_date, s.seq))
    return scope


def recorded_scope(
    *,
    session: Session,
    enterprise_id: int,
    pinned: Sequence[tuple[str, str, str]],
    suspect_materials: list[str],
    sampled_lot: str | None = None,
) -> Scope:
    """One enterprise's part of a case's recorded scope, read from its own ledger only.

    ``pinned``: the case's recorded lots (credit code, lot code, reason); the enterprise's
    own are kept, with their live sales and mass balances. No walk is made: the authority
    decided the scope when it opened the case, and an enterprise's queries stay in its own
    ledger (docs/scaling.md). ``sampled_lot``: the sampled lot's code when the enterprise
    made it, whose CCP deviations the enterprise sees.
    """
    me_reads = {enterprise_id}
    walker = _Walker(session, lambda e: e.id in me_reads)
    me = walker.ent(enterprise_id)
    store = walker.store(enterprise_id)
    scope = Scope(trail=Trail(""), suspect_materials=list(suspect_materials))
    for credit_code, code, reason in pinned:
        if credit_code != me.credit_code:
            continue
        found = store.find("lots", code=code)
        if not found:  # its code was corrected since the case opened
            scope.missing.append((credit_code, code))
            continue
        seq = found[0]["record_seq"]
        via = ", ".join(suspect_materials) if reason in ("shared_material", "source") else ""
        scope.lots.append(_scope_lot(walker, scope.trail, enterprise_id, seq, reason, via))
        scope.sales += _sales(walker, enterprise_id, seq)
    if sampled_lot is not None:
        lots = store.find("lots", code=sampled_lot)
        if lots:
            scope.deviations = [  # each deviation's own lot, not every lot of the ledger
                Deviation(
                    me.credit_code,
                    store.find("lots", record_seq=d["lot_seq"])[0]["code"],
                    d["ccp"],
                    d["parameter"],
                    d["measured_at"],
                    d["corrected_at"],
                    d["current_seq"],
                )
                for d in _deviations(session, store, enterprise_id, lots[0])
            ]
    order = {r: i for i, r in enumerate(REASONS)}
    scope.lots.sort(key=lambda s: (order[s.reason], s.credit_code, s.production_date, s.lot_code))
    scope.sales.sort(key=lambda s: (s.credit_code, s.lot_code, s.sale_date, s.seq))
    return scope


# Instants are compared as text in SQL only to narrow the rows read, with a margin: a
# stored instant is RFC 3339 UTC ("…T08:30:00Z", or with a fraction, "…T08:30:00.5Z", which
# sorts before the whole second as text); the exact comparison is made on the parsed values.
_MARGIN = timedelta(seconds=2)


def _widened(first: str, last: str) -> tuple[str, str]:
    return (
        format_instant(_instant(first) - _MARGIN),
        format_instant(_instant(last) + _MARGIN),
    )


def _lots_between(session: Session, eid: int, first: str, last: str) -> list[dict]:
    """E's lots whose production window may overlap [first, last] (a superset: the caller
    compares the parsed instants), not every lot E ever made (a case costs what it finds)."""
    low, high = _widened(first, last)
    t = TABLES["lots"]
    rows = session.connection().execute(
        select(t).where(t.c.enterprise_id == eid, t.c.started_at <= high, t.c.ended_at >= low)
    )
    return [dict(r._mapping) for r in rows]


def deviations_between(eid: int, low: str, high: str) -> Select:
    """E's deviating readings measured in [low, high]: through the partial index of
    deviations (``records.models.DEVIATION_PREDICATE``, which ``is_(True)`` states), not
    through every reading E took."""
    t = TABLES["ccp_readings"]
    return select(t).where(
        t.c.enterprise_id == eid,
        t.c.deviation.is_(True),
        t.c.measured_at >= low,
        t.c.measured_at <= high,
    )


def _deviations(session: Session, store: object, eid: int, lot: dict) -> list[dict]:
    """E's deviations taken during the lot's production, each with the end of its window."""
    start, end = _instant(lot["started_at"]), _instant(lot["ended_at"])
    low, high = _widened(lot["started_at"], lot["ended_at"])
    readings = session.connection().execute(deviations_between(eid, low, high))
    out = []
    for d in (dict(r._mapping) for r in readings):
        if not start <= _instant(d["measured_at"]) <= end:
            continue
        actions = store.find("corrective_actions", reading_seq=d["record_seq"])  # type: ignore[attr-defined]
        own = store.find("lots", record_seq=d["lot_seq"])[0]  # type: ignore[attr-defined]
        # A corrective action given with the reading closes it there and then.
        inline = d["measured_at"] if d.get("corrective_action") else None
        corrected = min(
            [a["taken_at"] for a in actions] + ([inline] if inline else []), default=None
        )
        closed = corrected or own["ended_at"]
        out.append({**d, "closed_at": max(closed, d["measured_at"]), "corrected_at": corrected})
    return sorted(out, key=lambda d: d["measured_at"])


def _plan_ccps(store: object) -> dict[int, set[str]]:
    """Each product's monitored CCP codes."""
    return {
        p["record_seq"]: {c["code"] for c in json.loads(p["data"]).get("ccp_plan", [])}
        for p in store.find("products")  # type: ignore[attr-defined]
    }


def _source_lot(walker: _Walker, me: Enterprise, ml: dict) -> tuple[Enterprise, dict] | None:
    """The registered supplier's lot a material lot came from, where the supplier sold it."""
    seller = walker.enterprise(ml["supplier_credit_code"])
    if seller is None or not ml["batch_no"] or not walker.readable(seller):
        return None
    sold = walker.store(seller.id).find("lots", code=ml["batch_no"])
    if not sold:
        return None
    sales = walker.store(seller.id).find("sales", lot_seq=sold[0]["record_seq"])
    if not any(s["buyer_credit_code"] == me.credit_code for s in sales):
        return None
    return seller, sold[0]


def _scope_lot(
    walker: _Walker, trail: Trail, eid: int, seq: int, reason: str, via: str
) -> ScopeLot:
    store = walker.store(eid)
    lot = store.find("lots", record_seq=seq)[0]
    product = store.find("products", record_seq=lot["product_seq"])[0]
    sold = sum((dec(s["quantity_base"]) for s in store.find("sales", lot_seq=seq)), Decimal(0))
    node = trail.nodes.get(f"lot:{eid}:{seq}")
    e = walker.ent(eid)
    return ScopeLot(
        node=f"lot:{eid}:{seq}",
        enterprise_id=eid,
        credit_code=e.credit_code,
        enterprise=e.name,
        lot_code=lot["code"],
        product=product["name"],
        gtin=lot.get("gtin"),
        reason=reason,
        via=via,
        produced=dec(lot["quantity_base"]),
        sold=sold,
        unit=product["unit"],
        production_date=lot["production_date"],
        seq=lot["current_seq"],
        hash=(node.hash if node is not None else None)
        or _entry_hash(walker, eid, lot["current_seq"]),
    )


def _entry_hash(walker: _Walker, eid: int, seq: int) -> str:
    """The hash of an entry of a lot the walk did not reach (a pinned lot, see recall_scope)."""
    from foodtrace.ledger.models import Entry

    digest = (
        walker.session.connection()
        .execute(select(Entry.hash).where(Entry.ledger_id == eid, Entry.seq == seq))
        .scalar_one()
    )
    return bytes(digest).hex()


def _sales(walker: _Walker, eid: int, seq: int) -> list[ScopeSale]:
    store = walker.store(eid)
    lot = store.find("lots", record_seq=seq)[0]
    unit = store.find("products", record_seq=lot["product_seq"])[0]["unit"]
    e = walker.ent(eid)
    out = []
    for s in store.find("sales", lot_seq=seq):
        cust = store.find("customers", record_seq=s["customer_seq"])[0]
        out.append(
            ScopeSale(
                enterprise_id=eid,
                credit_code=e.credit_code,
                lot_code=lot["code"],
                customer_seq=cust["record_seq"],
                customer_code=cust["code"],
                customer=cust["name"],
                customer_credit_code=s["buyer_credit_code"],
                registered=walker.enterprise(s["buyer_credit_code"]) is not None,
                quantity=s["quantity"],
                unit=s["unit"],
                quantity_base=dec(s["quantity_base"]),
                base_unit=unit,
                sale_date=s["sale_date"],
                seq=s["current_seq"],
            )
        )
    return out


def quantity(value: Decimal) -> str:
    return dec_str(value)
