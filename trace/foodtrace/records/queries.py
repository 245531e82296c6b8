"""Reading the current view of records: lists, a lot with everything recorded about it."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from foodtrace.errors import NotFound
from foodtrace.ledger import service as ledger
from foodtrace.ledger.models import Entry
from foodtrace.records.derive import dec, dec_str
from foodtrace.records.models import Correction
from foodtrace.records.obligations import summary
from foodtrace.records.projection import TABLES, DbStore
from schemas.api import EntryLinePublic, EntryPublic, LedgerLinesPublic, LotPublic

LISTABLE = ("products", "suppliers", "customers", "material_lots", "lots")


def list_rows(*, session: Session, enterprise_id: int, table: str) -> list[dict[str, Any]]:
    """Current rows of one derived table for one enterprise, oldest first."""
    if table not in LISTABLE:
        raise ValueError(table)
    t = TABLES[table]
    rows = session.execute(
        select(t).where(t.c.enterprise_id == enterprise_id).order_by(t.c.record_seq)
    )
    out = []
    for r in rows:
        row = dict(r._mapping)
        row.pop("enterprise_id", None)
        if "data" in row:
            row["data"] = json.loads(row["data"])
        out.append(row)
    return out


def entry_public(
    entry: Entry, *, corrected_by: list[int] | None = None, with_body: bool
) -> EntryPublic:
    env = json.loads(entry.body)
    return EntryPublic(
        seq=entry.seq,
        kind=entry.kind,
        event_time=entry.event_time,
        recorded_at=entry.recorded_at,
        actor=env.get("actor", ""),
        hash=entry.hash.hex(),
        prev_hash=entry.prev_hash.hex(),
        corrects=env.get("corrects"),
        corrected_by=corrected_by or [],
        body=env.get("body") if with_body else None,
    )


def corrections_of(
    *, session: Session, enterprise_id: int, seqs: list[int]
) -> dict[int, list[int]]:
    """For each seq, the seqs of the corrections that point at it, oldest first."""
    if not seqs:
        return {}
    rows = session.execute(
        select(Correction.corrects_seq, Correction.record_seq)
        .where(Correction.enterprise_id == enterprise_id, Correction.corrects_seq.in_(seqs))
        .order_by(Correction.record_seq)
    )
    out: dict[int, list[int]] = {}
    for target, seq in rows:
        out.setdefault(target, []).append(seq)
    return out


def _strip(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row.pop("enterprise_id", None)
    return row


def lot_view(*, session: Session, enterprise_id: int, lot_code: str) -> LotPublic:
    """A lot and its current records: materials, CCP readings, release tests, sales."""
    store = DbStore(session, enterprise_id)
    lots = store.find("lots", code=lot_code)
    if not lots:
        raise NotFound(f"no lot {lot_code!r}")
    lot = lots[0]
    product = store.find("products", record_seq=lot["product_seq"])[0]
    materials = []
    for use in sorted(
        store.find("lot_inputs", record_seq=lot["record_seq"]), key=lambda r: r["line"]
    ):
        ml = store.find("material_lots", record_seq=use["material_lot_seq"])[0]
        materials.append({**_strip(ml), "used_quantity": use["quantity"], "used_unit": use["unit"]})
    readings = sorted(
        store.find("ccp_readings", lot_seq=lot["record_seq"]), key=lambda r: r["measured_at"]
    )
    open_deviations = 0
    for r in readings:
        actions = store.find("corrective_actions", reading_seq=r["record_seq"])
        r["corrective_action_seqs"] = [a["record_seq"] for a in actions]
        r["open_deviation"] = bool(r["deviation"] and not r["corrective_action"] and not actions)
        open_deviations += r["open_deviation"]
    tests = sorted(
        store.find("release_tests", lot_seq=lot["record_seq"]), key=lambda r: r["tested_at"]
    )
    for t in tests:
        t["items"] = json.loads(t["items"])
    sales = sorted(
        store.find("sales", lot_seq=lot["record_seq"]),
        key=lambda r: (r["sale_date"], r["record_seq"]),
    )
    sold = sum((dec(s["quantity_base"]) for s in sales), Decimal(0))
    seqs = [
        lot["record_seq"],
        *(r["record_seq"] for r in readings),
        *(t["record_seq"] for t in tests),
        *(s["record_seq"] for s in sales),
    ]
    fixes = corrections_of(session=session, enterprise_id=enterprise_id, seqs=seqs)
    corrections = [
        {"seq": c, "corrects": target} for target, cs in sorted(fixes.items()) for c in cs
    ]
    pdata = json.loads(product["data"])
    return LotPublic(
        lot=_strip(lot),
        product={"record_seq": product["record_seq"], **pdata},
        materials=materials,
        ccp_readings=[_strip(r) for r in readings],
        release_tests=[_strip(t) for t in tests],
        sales=[_strip(s) for s in sales],
        corrections=corrections,
        balance={
            "unit": pdata["unit"],
            "produced": lot["quantity_base"],
            "sold": dec_str(sold),
            "held": dec_str(dec(lot["quantity_base"]) - sold),
        },
        open_deviations=open_deviations,
    )


def find_lots(
    *,
    session: Session,
    enterprise_ids: list[int],
    lot_code: str | None = None,
    gtin: str | None = None,
    product: str | None = None,
    production_date: str | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Lots of the given enterprises by (GTIN, lot), by lot code, or by product name and date.

    A GTIN-14 with a leading 0 also finds the GTIN-13 it writes; the product
    name matches a part of it (``石榴`` finds 石榴汁饮料).
    """
    from foodtrace.accounts.models import Enterprise
    from foodtrace.records.models import Lot, Product

    if not enterprise_ids:
        return []
    q = (
        select(Lot, Product.name, Enterprise)
        .join(
            Product,
            (Product.enterprise_id == Lot.enterprise_id) & (Product.record_seq == Lot.product_seq),
        )
        .join(Enterprise, Enterprise.id == Lot.enterprise_id)
        .where(Lot.enterprise_id.in_(enterprise_ids))
    )
    if lot_code:
        q = q.where(Lot.code == lot_code)
    if gtin:
        short = gtin[1:] if len(gtin) == 14 and gtin.startswith("0") else gtin
        q = q.where((Lot.gtin == gtin) | (Lot.gtin == short))
    if product:
        q = q.where(Product.name.contains(product, autoescape=True))
    if production_date:
        q = q.where(Lot.production_date == production_date)
    rows = session.execute(q.order_by(Lot.production_date.desc(), Lot.code).limit(limit)).all()
    return [
        {
            "credit_code": e.credit_code,
            "enterprise": e.name,
            "lot_code": lot.code,
            "product": name,
            "gtin": lot.gtin,
            "production_date": lot.production_date,
            "quantity": lot.quantity,
            "unit": lot.unit,
            "seq": lot.current_seq,
        }
        for lot, name, e in rows
    ]


def lot_entry_seqs(session: Session, eid: int, lot_code: str) -> set[int]:
    """Every entry about a lot: the lot, its readings, tests, sales, their corrections.

    Only the seq columns are read (a lot with 22k sales: 22k integers, not 22k rows)."""
    t = TABLES
    lot_seq = session.execute(
        select(t["lots"].c.record_seq).where(
            t["lots"].c.enterprise_id == eid, t["lots"].c.code == lot_code
        )
    ).scalar_one_or_none()
    if lot_seq is None:
        return set()
    seqs = {lot_seq}
    for table in ("ccp_readings", "release_tests", "sales"):
        c = t[table].c
        seqs |= set(
            session.execute(
                select(c.record_seq).where(c.enterprise_id == eid, c.lot_seq == lot_seq)
            ).scalars()
        )
    readings, actions = t["ccp_readings"].c, t["corrective_actions"].c
    seqs |= set(
        session.execute(
            select(actions.record_seq)
            .join(t["ccp_readings"], readings.record_seq == actions.reading_seq)
            .where(
                actions.enterprise_id == eid,
                readings.enterprise_id == eid,
                readings.lot_seq == lot_seq,
            )
        ).scalars()
    )
    corrections = t["corrections"].c
    targets = sorted(seqs)
    for i in range(0, len(targets), 10_000):  # within every database's bound-parameter limit
        seqs |= set(
            session.execute(
                select(corrections.record_seq).where(
                    corrections.enterprise_id == eid,
                    corrections.corrects_seq.in_(targets[i : i + 10_000]),
                )
            ).scalars()
        )
    return seqs


def parameter_names(session: Session, enterprise_id: int) -> dict[str, str]:
    """The names of the enterprise's CCPs and their parameters by code, from its current
    products' plans (``temperature`` → 杀菌温度), for lists that show a record's codes.
    Where two products name one code differently, the first product's name is kept."""
    t = TABLES["products"]
    names: dict[str, str] = {}
    rows = session.execute(
        select(t.c.data).where(t.c.enterprise_id == enterprise_id).order_by(t.c.record_seq)
    ).scalars()
    for data in rows:
        for ccp in json.loads(data).get("ccp_plan") or []:
            for param in ccp.get("parameters") or []:
                names.setdefault(param["code"], param["name"])
    return names


def ledger_lines(
    *,
    session: Session,
    enterprise_id: int,
    kind: str | None = None,
    lot_code: str | None = None,
    since: str | None = None,
    until: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> LedgerLinesPublic:
    """A page of the ledger's entries, newest first, each with its corrections and a summary:
    of one kind, about one lot (:func:`lot_entry_seqs`), recorded in ``[since, until)``."""
    eid = enterprise_id
    if lot_code:
        seqs = lot_entry_seqs(session, eid, lot_code)
        if kind:  # the kinds of the ledger's entries (two small columns), not the entries
            of_kind = session.execute(
                select(Entry.seq).where(Entry.ledger_id == eid, Entry.kind == kind)
            ).scalars()
            seqs &= set(of_kind)
        count = len(seqs)
        # only the page's entries are read (a lot with 22k sales: 50 of them, not 22k)
        shown = sorted(seqs, reverse=True)[offset : offset + limit]
        entries = list(
            session.execute(
                select(Entry)
                .where(Entry.ledger_id == eid, Entry.seq.in_(shown))
                .order_by(Entry.seq.desc())
            ).scalars()
        )
    else:
        entries, count = ledger.list_entries(
            session=session,
            ledger_id=eid,
            offset=offset,
            limit=limit,
            kind=kind,
            since=since,
            until=until,
        )
    fixes = corrections_of(session=session, enterprise_id=eid, seqs=[e.seq for e in entries])
    lines = []
    for e in entries:
        pub = entry_public(e, corrected_by=fixes.get(e.seq), with_body=True)
        lines.append(EntryLinePublic(**pub.model_dump(), summary=summary(e.kind, pub.body or {})))
    return LedgerLinesPublic(data=lines, count=count)
