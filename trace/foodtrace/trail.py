"""A lot's trail: backward to materials and suppliers, forward to lots and customers,
across enterprises (DESIGN.md, "Lots and the trail").

Backward: product lot → the material lots it consumed → their incoming checks'
suppliers; where the supplier is a registered enterprise that sold a lot with
the batch number the receipt names, across to that lot, and on back.
Forward: product lot → its sales → customers; where the customer is registered
and recorded the receipt (a material lot naming our credit code and the lot
code as its batch number), across to that material lot → the lots that
consumed it → their sales, and on forward. Cross-enterprise links are matched
by (supplier credit code, batch/lot code). Every node carries the ledger seq
and hash of the entry its current view comes from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import Integer, and_, bindparam, func, literal_column, or_, select
from sqlalchemy.orm.util import identity_key
from sqlmodel import Session

from foodtrace.accounts.models import Enterprise
from foodtrace.ledger.models import Entry
from foodtrace.records.derive import Row
from foodtrace.records.projection import TABLES, DbStore
from foodtrace.sheets import Column, Kind, Sheet, csv_bytes, csv_chunks, xlsx_bytes, xlsx_chunks

MAX_DEPTH = 12


@dataclass
class Node:
    id: str
    type: str  # lot | material_lot | supplier | customer
    credit_code: str | None
    enterprise: str | None
    code: str | None
    label: str
    seq: int | None = None
    hash: str | None = None
    registered: bool = True
    gtin: str | None = None
    outside: bool = False
    """An enterprise whose records the reader may not see (outside the jurisdiction)."""


@dataclass
class Edge:
    source: str
    target: str
    type: str  # supplied | consumed | sold | shipped
    quantity: str | None = None
    unit: str | None = None
    date: str | None = None
    seq: int | None = None
    finding: str | None = None


@dataclass
class Trail:
    start: str
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    _keys: set[tuple[Any, ...]] = field(default_factory=set, repr=False)

    def add(self, node: Node) -> Node:
        return self.nodes.setdefault(node.id, node)

    def link(self, edge: Edge) -> None:
        key = (edge.source, edge.target, edge.type, edge.seq)
        if key not in self._keys:  # a set: big trails must not cost O(edges²)
            self._keys.add(key)
            self.edges.append(edge)


def _consumed(mnode: Node, node: Node, use: dict[str, Any], lot: dict[str, Any]) -> Edge:
    """A production lot used a quantity of a material lot (one consumption edge)."""
    return Edge(
        mnode.id,
        node.id,
        "consumed",
        use["quantity"],
        use["unit"],
        lot["production_date"],
        lot["current_seq"],
    )


_PENDING = "pending:"


# ------------------------------------------------------- set-wise reads
#
# A walk asks its stores for a few rows per node; sent one by one that was ~45
# statements for a 6-level trail. ``_Walker.preload`` asks the database instead
# for every lot within reach (one recursive CTE per direction, in one statement),
# then for the rows of each table those lots lead to (one statement per table),
# and remembers each row set as the answer of the ``find`` a walk will make. The
# walks then run unchanged and find everything remembered; a lookup it did not
# foresee still goes to the database.

_COLS = {
    name: [c.name for c in TABLES[name].c]
    for name in (
        "lots",
        "products",
        "lot_inputs",
        "material_lots",
        "suppliers",
        "sales",
        "customers",
        "enterprises",
    )
}
_PK = {name: tuple(c.name for c in TABLES[name].primary_key.columns) for name in _COLS}
_BACKWARD, _FORWARD = 0, 1


def _labelled(table: str, alias: Any, entry: Any = None) -> list[Any]:
    """``alias``'s columns, named ``table__column``; then the hash of ``entry``, the
    entry the row's current view comes from (every node shows it)."""
    cols = [alias.c[c].label(f"{table}__{c}") for c in _COLS[table]]
    return cols if entry is None else [*cols, entry.c.hash.label(f"{table}__hash")]


def _entry_of(joined: Any, alias: Any, name: str) -> tuple[Any, Any]:
    """``joined``, outer-joined to the entry of ``alias``'s row's current view."""
    entry = Entry.__table__.alias(name)  # type: ignore[attr-defined]
    return joined.outerjoin(
        entry,
        and_(entry.c.ledger_id == alias.c.enterprise_id, entry.c.seq == alias.c.current_seq),
    ), entry


def _split(row: Any, hashes: dict[tuple[int, int], str], *tables: str) -> list[Row | None]:
    """A joined row as one row per table, in the order selected; None for an outer
    join's missing side (its primary key is NULL). A table named with ``#`` carries
    its entry's hash, which goes to ``hashes`` by (ledger, seq)."""
    out: list[Row | None] = []
    i = 0
    for name in tables:
        table = name.rstrip("#")
        cols = _COLS[table]
        values = dict(zip(cols, row[i : i + len(cols)], strict=True))
        i += len(cols)
        part = values if values[_PK[table][-1]] is not None else None
        if name.endswith("#"):
            if part is not None and row[i] is not None:
                hashes[(part["enterprise_id"], part["current_seq"])] = bytes(row[i]).hex()
            i += 1
        out.append(part)
    return out


def _by_pk(table: str, rows: Any) -> list[Row]:
    """Rows in primary-key order, once each (a join repeats them)."""
    pk = _PK[table]
    unique = {tuple(r[c] for c in pk): r for r in rows}
    return [unique[k] for k in sorted(unique)]


def _refers(row: Any, column: str, target: Any, key: str = "record_seq") -> Any:
    """Joins a row to the record its ``column`` names in the same ledger."""
    return and_(target.c.enterprise_id == row.c.enterprise_id, target.c[key] == row.c[column])


def _reach_name(backward: bool, forward: bool) -> str:
    """The name of the reach statement (:func:`_statement`) for these directions."""
    return (
        "reach_both" if backward and forward else f"reach_{'backward' if backward else 'forward'}"
    )


def _moved(source: str, target: str, how: str, row: dict[str, Any], when: str) -> Edge:
    """An edge for goods a record moved: its quantity, unit, date (field ``when``) and seq."""
    return Edge(source, target, how, row["quantity"], row["unit"], row[when], row["current_seq"])


def _anchor(lots: Any, by_code: bool) -> Any:
    """The start lots, in ledger ``:start_eid``: lot ``:start_code``, or the lots with
    record seqs ``:start_seqs``."""
    if by_code:
        return and_(
            lots.c.enterprise_id == bindparam("start_eid"),
            lots.c.code == bindparam("start_code"),
        )
    return and_(
        lots.c.enterprise_id == bindparam("start_eid"),
        lots.c.record_seq.in_(bindparam("start_seqs", expanding=True)),
    )


def _backward_cte(by_code: bool) -> Any:
    """The lots within ``:last`` steps back of the start lots, with the level of
    each step: from a lot over its inputs' material lots to the lot the registered
    supplier (by credit code) holds under the receipt's batch number."""
    lots, ents = TABLES["lots"], TABLES["enterprises"]
    inputs, material = TABLES["lot_inputs"], TABLES["material_lots"]
    anchor = select(
        lots.c.enterprise_id.label("eid"),
        lots.c.record_seq.label("seq"),
        literal_column("0", Integer).label("lvl"),
    ).where(_anchor(lots, by_code))
    back = anchor.cte("back", recursive=True)
    lot, seller = lots.alias("lot"), ents.alias("seller")
    step = (
        select(lot.c.enterprise_id, lot.c.record_seq, back.c.lvl + 1)
        .select_from(
            back.join(
                inputs,
                and_(inputs.c.enterprise_id == back.c.eid, inputs.c.record_seq == back.c.seq),
            )
            .join(material, _refers(inputs, "material_lot_seq", material))
            .join(seller, seller.c.credit_code == material.c.supplier_credit_code)
            .join(
                lot,
                and_(lot.c.enterprise_id == seller.c.id, lot.c.code == material.c.batch_no),
            )
        )
        .where(back.c.lvl < bindparam("last"))
    )
    return back.union(step)


def _forward_cte(by_code: bool) -> Any:
    """The lots within ``:last`` steps forward of the start lots, with the level of
    each step: from a lot to the material lots received under its enterprise's credit
    code and its code, in any ledger, and the lots that consumed them. (The walk also
    asks for a sale to that buyer: this finds a superset, with fewer joins to plan.)"""
    lots, ents = TABLES["lots"], TABLES["enterprises"]
    inputs, material = TABLES["lot_inputs"], TABLES["material_lots"]
    anchor = (
        select(
            lots.c.enterprise_id.label("eid"),
            lots.c.record_seq.label("seq"),
            lots.c.code.label("code"),
            ents.c.credit_code.label("credit_code"),
            literal_column("0", Integer).label("lvl"),
        )
        .select_from(lots.join(ents, ents.c.id == lots.c.enterprise_id))
        .where(_anchor(lots, by_code))
    )
    fwd = anchor.cte("fwd", recursive=True)
    lot, buyer = lots.alias("lot"), ents.alias("buyer")
    step = (
        select(
            lot.c.enterprise_id, lot.c.record_seq, lot.c.code, buyer.c.credit_code, fwd.c.lvl + 1
        )
        .select_from(
            fwd.join(
                material,
                and_(
                    material.c.supplier_credit_code == fwd.c.credit_code,
                    material.c.batch_no == fwd.c.code,
                ),
            )
            .join(inputs, _refers(material, "record_seq", inputs, "material_lot_seq"))
            .join(lot, _refers(inputs, "record_seq", lot))
            .join(buyer, buyer.c.id == inputs.c.enterprise_id)
        )
        .where(fwd.c.lvl < bindparam("last"))
    )
    return fwd.union(step)


def _reach(backward: bool, forward: bool, by_code: bool) -> Any:
    """Every lot within reach, once per direction at its nearest level, with its product
    and its entry's hash: two recursive CTEs (UNION drops repeats and the level bounds
    the recursion, so cycles end) and one join, in one statement."""
    parts = []
    for direction, wanted, cte in (
        (_BACKWARD, backward, _backward_cte),
        (_FORWARD, forward, _forward_cte),
    ):
        if wanted:
            reach = cte(by_code)
            parts.append(
                select(
                    literal_column(str(direction), Integer).label("direction"),
                    reach.c.eid,
                    reach.c.seq,
                    func.min(reach.c.lvl).label("lvl"),
                ).group_by(reach.c.eid, reach.c.seq)
            )
    nearest = (parts[0] if len(parts) == 1 else parts[0].union_all(parts[1])).subquery("nearest")
    lots, products = TABLES["lots"], TABLES["products"]
    joined, entry = _entry_of(
        nearest.join(
            lots, and_(lots.c.enterprise_id == nearest.c.eid, lots.c.record_seq == nearest.c.seq)
        ),
        lots,
        "lot_entry",
    )
    owner = TABLES["enterprises"].alias("owner")
    return select(
        nearest.c.direction,
        nearest.c.lvl,
        *_labelled("lots", lots, entry),
        *_labelled("products", products),
        *_labelled("enterprises", owner),
    ).select_from(
        joined.outerjoin(products, _refers(lots, "product_seq", products)).outerjoin(
            owner, owner.c.id == lots.c.enterprise_id
        )
    )


@cache
def _statement(name: str) -> Any:
    """The set-wise reads, built once: the reach statement, or a read without its WHERE
    and the columns its keys are for (:meth:`_Walker._rows`)."""
    t = {name: TABLES[name] for name in _COLS}
    if name.startswith("reach"):  # reach_<backward|forward|both>[_by_code]
        return _reach(
            "_backward" in name or "_both" in name,
            "_forward" in name or "_both" in name,
            name.endswith("_by_code"),
        )
    if name == "inputs":  # a lot's inputs, each with its material lot and supplier
        li, ml, sup = t["lot_inputs"], t["material_lots"], t["suppliers"]
        joined, ml_entry = _entry_of(
            li.outerjoin(ml, _refers(li, "material_lot_seq", ml)), ml, "ml_entry"
        )
        joined, sup_entry = _entry_of(
            joined.outerjoin(sup, _refers(ml, "supplier_seq", sup)), sup, "sup_entry"
        )
        seller = TABLES["enterprises"].alias("seller")
        return (
            select(
                *_labelled("lot_inputs", li),
                *_labelled("material_lots", ml, ml_entry),
                *_labelled("suppliers", sup, sup_entry),
                *_labelled("enterprises", seller),
            ).select_from(
                joined.outerjoin(seller, seller.c.credit_code == ml.c.supplier_credit_code)
            )
        ), (li.c.enterprise_id, li.c.record_seq)
    if name == "sales":  # a lot's sales, each with its customer
        s, cust = t["sales"], t["customers"]
        joined, cust_entry = _entry_of(
            s.outerjoin(cust, _refers(s, "customer_seq", cust)), cust, "cust_entry"
        )
        buyer = TABLES["enterprises"].alias("buyer")
        return (
            select(
                *_labelled("sales", s),
                *_labelled("customers", cust, cust_entry),
                *_labelled("enterprises", buyer),
            ).select_from(joined.outerjoin(buyer, buyer.c.credit_code == s.c.buyer_credit_code))
        ), (s.c.enterprise_id, s.c.lot_seq)
    if name == "received":  # a buyer's receipts of our lot, with the lots that used them
        ml, li = t["material_lots"], t["lot_inputs"]
        joined, ml_entry = _entry_of(ml, ml, "ml_entry")
        return (
            select(
                *_labelled("material_lots", ml, ml_entry), *_labelled("lot_inputs", li)
            ).select_from(joined.outerjoin(li, _refers(ml, "record_seq", li, "material_lot_seq")))
        ), (ml.c.enterprise_id, ml.c.supplier_credit_code, ml.c.batch_no)
    raise KeyError(name)


@cache
def _keyed(name: str, groups: int) -> Any:
    """Read ``name`` where ``(g0_0 = ? AND … AND last IN g0_in) OR …``, for ``groups``
    groups of keys: built once per shape, so that SQLAlchemy does not rebuild the
    statement's cache key on every trail."""
    base, cols = _statement(name)
    return base.where(
        or_(
            *(
                and_(
                    *(c == bindparam(f"g{g}_{j}") for j, c in enumerate(cols[:-1])),
                    cols[-1].in_(bindparam(f"g{g}_in", expanding=True)),
                )
                for g in range(groups)
            )
        )
    )


class _Walker:
    def __init__(self, session: Session, readable: Callable[[Enterprise], bool]) -> None:
        self.session = session
        self.readable = readable
        self.stores: dict[int, DbStore] = {}
        self.by_code: dict[str, Enterprise | None] = {}
        self.by_id: dict[int, Enterprise] = {}
        self.seen: set[tuple[str, str]] = set()
        self.all_registered = False
        self.hashes: dict[tuple[int, int], str] = {}
        """Entry hashes by (ledger, seq), read with the rows by :meth:`preload`."""

    def store(self, eid: int) -> DbStore:
        if eid not in self.stores:
            self.stores[eid] = DbStore(self.session, eid)
        return self.stores[eid]

    def _registered(self) -> None:
        """Every registered enterprise, read once, when a lookup missed what ``preload``
        read (a trail crosses a ledger per level: one round trip each was too many)."""
        if not self.all_registered:
            self.all_registered = True
            for e in self.session.execute(select(Enterprise)).scalars():
                assert e.id is not None
                self.by_id[e.id] = e
                self.by_code[e.credit_code] = e

    def enterprise(self, credit_code: str | None) -> Enterprise | None:
        if not credit_code:
            return None
        if credit_code not in self.by_code:
            self._registered()
        return self.by_code.get(credit_code)

    def ent(self, eid: int) -> Enterprise:
        if eid not in self.by_id:
            self._registered()
        return self.by_id[eid]

    def hash_of(self, eid: int, seq: int) -> str:
        """A placeholder for the hash of entry ``seq`` of ledger ``eid``; ``fill_hashes``
        replaces every placeholder in a trail with one query per ledger, not one per node
        (a recall scope has a node per customer of every sale)."""
        return f"{_PENDING}{eid}:{seq}"

    def fill_hashes(self, trail: Trail) -> None:
        """Replace the nodes' hash placeholders by the entries' hashes."""
        wanted: dict[int, set[int]] = {}
        found = self.hashes
        for node in trail.nodes.values():
            if node.hash and node.hash.startswith(_PENDING):
                eid, seq = (int(n) for n in node.hash[len(_PENDING) :].split(":"))
                if (eid, seq) not in found:
                    wanted.setdefault(eid, set()).add(seq)
        if wanted:  # one round trip for every ledger the trail crossed
            for eid, seq, digest in self.session.connection().execute(
                select(Entry.ledger_id, Entry.seq, Entry.hash).where(
                    or_(
                        *(
                            and_(
                                Entry.ledger_id == eid,
                                Entry.seq.in_(sorted(seqs)),  # type: ignore[attr-defined]
                            )
                            for eid, seqs in sorted(wanted.items())
                        )
                    )
                )
            ):
                found[(eid, seq)] = bytes(digest).hex()
        for node in trail.nodes.values():
            if node.hash and node.hash.startswith(_PENDING):
                eid, seq = (int(n) for n in node.hash[len(_PENDING) :].split(":"))
                node.hash = found[(eid, seq)]

    def _rows(self, statement: str, keys: set[tuple[Any, ...]]) -> Iterator[Any]:
        """The rows of a set-wise read whose key columns equal one of ``keys``.

        Written ``(a = ? AND b IN (…)) OR …``, one term per ledger, rather than as a
        row-value IN: SQLite scans the whole table for ``(a, b) IN (VALUES …)``.
        """
        groups: dict[tuple[Any, ...], list[Any]] = {}
        for key in sorted(keys):
            groups.setdefault(key[:-1], []).append(key[-1])
        items = list(groups.items())
        conn = self.session.connection()
        for i in range(0, len(items), 100):
            params: dict[str, Any] = {}
            for g, (head, tail) in enumerate(items[i : i + 100]):
                params.update({f"g{g}_{j}": v for j, v in enumerate(head)})
                params[f"g{g}_in"] = tail
            yield from conn.execute(_keyed(statement, len(items[i : i + 100])), params)

    def _know(self, code: str | None, row: Row | None) -> None:
        """Remember the registered enterprise of ``row`` (read with a lot, a receipt or a
        sale), or that ``code`` names none: the session's own object where it has one,
        else a detached copy (constructing it costs less than the ORM's query path)."""
        if row is not None and row["id"] not in self.by_id:
            e = self.session.identity_map.get(identity_key(Enterprise, row["id"]))
            self.by_id[row["id"]] = e = e if e is not None else Enterprise(**row)
            self.by_code[row["credit_code"]] = e
        elif row is None and code:
            self.by_code.setdefault(code, None)

    def preload(
        self, eid: int, seqs: Iterable[int], *, backward: bool, forward: bool, depth: int
    ) -> None:
        """Read what the walks from lots ``seqs`` of ledger ``eid`` through ``depth``
        ledgers will ask for: a statement per table rather than a few per node."""
        todo = sorted(set(seqs))
        if todo and (backward or forward):
            name = _reach_name(backward, forward)
            self._preload(name, {"start_eid": eid, "start_seqs": todo}, depth)

    def preload_lot(
        self, eid: int, code: str, *, backward: bool, forward: bool, depth: int
    ) -> None:
        """:meth:`preload` from lot ``code`` of ledger ``eid``, found in the same statement
        (``find("lots", code=code)`` is then remembered too)."""
        name = _reach_name(backward, forward)
        lots = self._preload(f"{name}_by_code", {"start_eid": eid, "start_code": code}, depth)
        start = [lot for (e, _seq), (level, lot) in lots.items() if e == eid and level == 0]
        self.store(eid).remember("lots", start[:1], code=code)  # codes are unique per ledger

    def _preload(
        self, name: str, params: dict[str, Any], depth: int
    ) -> dict[tuple[int, int], tuple[int, Row]]:
        """The reads of :meth:`preload`; returns the lots within reach and their levels.

        The recursive CTEs find each lot's nearest level; a walk reaches a lot at that
        level or later, and it reads a lot's supplier or buyer side only before the
        last level, so the rows read here are a superset of what it asks for. Each
        row set remembered is the whole answer of a ``find``: read with exactly the
        find's condition (or by primary key).
        """
        last = depth - 1
        reach: tuple[dict[tuple[int, int], tuple[int, Row]], ...] = ({}, {})
        found = self.session.connection().execute(_statement(name), {**params, "last": last})
        for row in found:
            lot, product, owner = _split(row[2:], self.hashes, "lots#", "products", "enterprises")
            assert lot is not None
            self._know(None, owner)
            eid, seq = lot["enterprise_id"], lot["record_seq"]
            reach[row[0]][(eid, seq)] = (row[1], lot)
            self.store(eid).remember("lots", [lot], record_seq=seq)
            if product is not None:
                self.store(eid).remember("products", [product], record_seq=product["record_seq"])
        back_lots, fwd_lots = reach

        # Backward: each lot's inputs, their material lots and suppliers.
        inputs: dict[tuple[int, int], list[Row]] = {k: [] for k in back_lots}
        materials: dict[tuple[int, int], Row] = {}
        for row in self._rows("inputs", set(back_lots)) if back_lots else ():
            use, ml, sup, seller = _split(
                row, self.hashes, "lot_inputs", "material_lots#", "suppliers#", "enterprises"
            )
            assert use is not None
            self._know(ml["supplier_credit_code"] if ml else None, seller)
            eid = use["enterprise_id"]
            inputs[(eid, use["record_seq"])].append(use)
            if ml is not None:
                materials[(eid, ml["record_seq"])] = ml
            if sup is not None:
                self.store(eid).remember("suppliers", [sup], record_seq=sup["record_seq"])
        for (eid, seq), uses in inputs.items():
            self.store(eid).remember("lot_inputs", _by_pk("lot_inputs", uses), record_seq=seq)
        for (eid, seq), ml in materials.items():
            self.store(eid).remember("material_lots", [ml], record_seq=seq)

        # Each lot's sales and their customers: forward, and backward where the walk
        # crosses to a supplier's lot (it asks whether that lot was sold to us).
        sales: dict[tuple[int, int], list[Row]] = {k: [] for k in (*fwd_lots, *back_lots)}
        for row in self._rows("sales", set(sales)) if sales else ():
            sale, cust, buyer = _split(row, self.hashes, "sales", "customers#", "enterprises")
            assert sale is not None
            self._know(sale["buyer_credit_code"], buyer)
            eid = sale["enterprise_id"]
            sales[(eid, sale["lot_seq"])].append(sale)
            if cust is not None:
                self.store(eid).remember("customers", [cust], record_seq=cust["record_seq"])
        for (eid, seq), rows in sales.items():
            self.store(eid).remember("sales", _by_pk("sales", rows), lot_seq=seq)

        self._preload_sold(back_lots, inputs, materials, last)
        self._preload_received(fwd_lots, sales, last)
        return {**fwd_lots, **back_lots}

    def _preload_sold(
        self,
        lots: dict[tuple[int, int], tuple[int, Row]],
        inputs: dict[tuple[int, int], list[Row]],
        materials: dict[tuple[int, int], Row],
        last: int,
    ) -> None:
        """Backward across: the lot each registered supplier holds under a receipt's batch
        number (its sales were read with the lots' sales)."""
        wanted: set[tuple[int, str]] = set()
        for (eid, seq), (level, _lot) in lots.items():
            if level >= last:
                continue
            for use in inputs[(eid, seq)]:
                ml = materials.get((eid, use["material_lot_seq"]))
                if ml is None or not ml["batch_no"]:
                    continue
                seller = self.enterprise(ml["supplier_credit_code"])
                if seller is not None and self.readable(seller):
                    assert seller.id is not None
                    wanted.add((seller.id, ml["batch_no"]))
        # The supplier's lot under that code, if there is one, is within reach: the CTE
        # followed every input of every lot before the last level, by the same match.
        sold: dict[tuple[int, str], list[Row]] = {k: [] for k in wanted}
        for (eid, _seq), (_level, lot) in lots.items():
            if (eid, lot["code"]) in sold:
                sold[(eid, lot["code"])].append(lot)
        for (eid, code), rows in sold.items():
            self.store(eid).remember("lots", _by_pk("lots", rows), code=code)

    def _preload_received(
        self,
        lots: dict[tuple[int, int], tuple[int, Row]],
        sales: dict[tuple[int, int], list[Row]],
        last: int,
    ) -> None:
        """Forward across: the material lots each registered buyer received under our
        credit code and the lot code, with the lots that consumed them."""
        wanted: set[tuple[int, str, str]] = set()
        for (eid, seq), (level, lot) in lots.items():
            if level >= last:
                continue
            me = self.ent(eid)
            for s in sales[(eid, seq)]:
                buyer = self.enterprise(s["buyer_credit_code"])
                if buyer is not None and self.readable(buyer):
                    assert buyer.id is not None
                    wanted.add((buyer.id, me.credit_code, lot["code"]))
        if not wanted:
            return
        received: dict[tuple[int, str, str], list[Row]] = {k: [] for k in wanted}
        uses: dict[tuple[int, int], list[Row]] = {}
        for row in self._rows("received", wanted):
            ml, use = _split(row, self.hashes, "material_lots#", "lot_inputs")
            assert ml is not None
            eid, seq = ml["enterprise_id"], ml["record_seq"]
            received[(eid, ml["supplier_credit_code"], ml["batch_no"])].append(ml)
            uses.setdefault((eid, seq), [])
            if use is not None:
                uses[(eid, seq)].append(use)
        for (eid, code, batch), rows in received.items():
            self.store(eid).remember(
                "material_lots",
                _by_pk("material_lots", rows),
                supplier_credit_code=code,
                batch_no=batch,
            )
        for (eid, seq), rows in uses.items():
            self.store(eid).remember("lot_inputs", _by_pk("lot_inputs", rows), material_lot_seq=seq)

    def lot_node(self, trail: Trail, eid: int, lot: dict[str, Any]) -> Node:
        e = self.ent(eid)
        product = self.store(eid).find("products", record_seq=lot["product_seq"])
        name = product[0]["name"] if product else ""
        return trail.add(
            Node(
                id=f"lot:{eid}:{lot['record_seq']}",
                type="lot",
                credit_code=e.credit_code,
                enterprise=e.name,
                code=lot["code"],
                label=f"{name} {lot['code']}",
                seq=lot["current_seq"],
                hash=self.hash_of(eid, lot["current_seq"]),
                gtin=lot.get("gtin"),
            )
        )

    def material_node(self, trail: Trail, eid: int, ml: dict[str, Any]) -> Node:
        e = self.ent(eid)
        return trail.add(
            Node(
                f"ml:{eid}:{ml['record_seq']}",
                "material_lot",
                e.credit_code,
                e.name,
                ml["code"],
                f"{ml['material_name']} {ml['code']}",
                ml["current_seq"],
                self.hash_of(eid, ml["current_seq"]),
            )
        )

    def boundary(self, trail: Trail, other: Enterprise, near: str, *, upstream: bool) -> None:
        """The trail leads into a ledger the reader may not see: name it, link it, stop."""
        node = trail.add(
            Node(
                f"ent:{other.id}",
                "enterprise",
                other.credit_code,
                other.name,
                None,
                other.name,
                outside=True,
            )
        )
        edge = (node.id, near) if upstream else (near, node.id)
        trail.link(Edge(*edge, "shipped", finding="outside_jurisdiction"))

    def _visit(
        self, way: str, trail: Trail, eid: int, lot: dict[str, Any], depth: int
    ) -> tuple[Node, DbStore, Enterprise] | None:
        """A lot's node, store and enterprise, the first time the walk reaches it this way
        (``b``ackward or ``f``orward) with depth left; None otherwise."""
        key = (way, f"{eid}:{lot['record_seq']}")
        if depth <= 0 or key in self.seen:
            return None
        self.seen.add(key)
        return self.lot_node(trail, eid, lot), self.store(eid), self.ent(eid)

    def party_node(
        self, trail: Trail, eid: int, role: str, party: dict[str, Any], registered: bool
    ) -> Node:
        """The node of a supplier or customer as ledger ``eid`` records it."""
        prefix = "sup" if role == "supplier" else "cust"
        return trail.add(
            Node(
                f"{prefix}:{eid}:{party['record_seq']}",
                role,
                party["credit_code"],
                party["name"],
                party["code"],
                party["name"],
                party["current_seq"],
                self.hash_of(eid, party["current_seq"]),
                registered,
            )
        )

    # ------------------------------------------------------------ backward

    def backward(self, trail: Trail, eid: int, lot: dict[str, Any], depth: int) -> None:
        visit = self._visit("b", trail, eid, lot, depth)
        if visit is None:
            return
        node, store, me = visit
        for use in store.find("lot_inputs", record_seq=lot["record_seq"]):
            ml = store.find("material_lots", record_seq=use["material_lot_seq"])[0]
            mnode = self.material_node(trail, eid, ml)
            trail.link(_consumed(mnode, node, use, lot))
            sup = store.find("suppliers", record_seq=ml["supplier_seq"])[0]
            seller = self.enterprise(ml["supplier_credit_code"])
            snode = self.party_node(trail, eid, "supplier", sup, seller is not None)
            trail.link(_moved(snode.id, mnode.id, "supplied", ml, "receipt_date"))
            if seller is None or not ml["batch_no"] or depth <= 1:
                continue
            if not self.readable(seller):
                self.boundary(trail, seller, mnode.id, upstream=True)
                continue
            seller_store = self.store(seller.id)
            sold = seller_store.find("lots", code=ml["batch_no"])
            sales = (
                [
                    s
                    for s in seller_store.find("sales", lot_seq=sold[0]["record_seq"])
                    if s["buyer_credit_code"] == me.credit_code
                ]
                if sold
                else []
            )
            if not sales:
                trail.link(Edge(snode.id, mnode.id, "shipped", finding="receipt_without_sale"))
                continue
            upstream = self.lot_node(trail, seller.id, sold[0])
            for s in sales:
                trail.link(_moved(upstream.id, mnode.id, "shipped", s, "sale_date"))
            self.backward(trail, seller.id, sold[0], depth - 1)

    # ------------------------------------------------------------- forward

    def forward_lot(self, trail: Trail, eid: int, lot: dict[str, Any], depth: int) -> None:
        visit = self._visit("f", trail, eid, lot, depth)
        if visit is None:
            return
        node, store, me = visit
        sales = store.find("sales", lot_seq=lot["record_seq"])
        store.prefetch("customers", "record_seq", (s["customer_seq"] for s in sales))
        for s in sales:
            cust = store.find("customers", record_seq=s["customer_seq"])[0]
            buyer = self.enterprise(s["buyer_credit_code"])
            cnode = self.party_node(trail, eid, "customer", cust, buyer is not None)
            trail.link(_moved(node.id, cnode.id, "sold", s, "sale_date"))
            if buyer is None or depth <= 1:
                continue
            if not self.readable(buyer):
                self.boundary(trail, buyer, cnode.id, upstream=False)
                continue
            received = self.store(buyer.id).find(
                "material_lots", supplier_credit_code=me.credit_code, batch_no=lot["code"]
            )
            if not received:
                trail.link(Edge(node.id, cnode.id, "shipped", finding="sale_without_receipt"))
            for ml in received:
                mnode = self.material_node(trail, buyer.id, ml)
                trail.link(_moved(node.id, mnode.id, "shipped", ml, "receipt_date"))
                self.forward_material(trail, buyer.id, ml, depth - 1)

    def forward_material(self, trail: Trail, eid: int, ml: dict[str, Any], depth: int) -> None:
        if depth <= 0:
            return
        mnode = self.material_node(trail, eid, ml)
        store = self.store(eid)
        uses = store.find("lot_inputs", material_lot_seq=ml["record_seq"])
        store.prefetch("lots", "record_seq", (u["record_seq"] for u in uses))
        store.prefetch("sales", "lot_seq", (u["record_seq"] for u in uses))
        for use in uses:
            lot = store.find("lots", record_seq=use["record_seq"])[0]
            node = self.lot_node(trail, eid, lot)
            trail.link(_consumed(mnode, node, use, lot))
            self.forward_lot(trail, eid, lot, depth)


def lot_trail(
    *,
    session: Session,
    enterprise_id: int,
    lot_code: str,
    direction: str = "both",
    depth: int = 6,
    readable: Callable[[Enterprise], bool] = lambda _e: True,
) -> Trail:
    """The trail of a lot, through at most ``depth`` ledgers each way.

    ``readable`` says which enterprises' records the reader may see; the trail
    stops at any other, naming it (a regulator then refers the case, 协查).
    """
    if direction not in ("backward", "forward", "both"):
        raise ValueError(f"direction must be backward, forward or both, not {direction!r}")
    depth = max(1, min(depth, MAX_DEPTH))
    walker = _Walker(session, readable)
    walker.preload_lot(
        enterprise_id,
        lot_code,
        backward=direction in ("backward", "both"),
        forward=direction in ("forward", "both"),
        depth=depth,
    )
    lots = walker.store(enterprise_id).find("lots", code=lot_code)
    if not lots:
        from foodtrace.errors import NotFound

        raise NotFound(f"no lot {lot_code!r}")
    trail = Trail(f"lot:{enterprise_id}:{lots[0]['record_seq']}")
    walker.lot_node(trail, enterprise_id, lots[0])
    if direction in ("backward", "both"):
        walker.backward(trail, enterprise_id, lots[0], depth)
    if direction in ("forward", "both"):
        walker.forward_lot(trail, enterprise_id, lots[0], depth)
    walker.fill_hashes(trail)
    return trail


def material_trail(
    *, session: Session, enterprise_id: int, material_lot: str, depth: int = 6
) -> Trail:
    """Forward from a material lot: every lot that consumed it, their sales, and on."""
    walker = _Walker(session, lambda _e: True)
    found = walker.store(enterprise_id).find("material_lots", code=material_lot)
    if not found:
        from foodtrace.errors import NotFound

        raise NotFound(f"no material lot {material_lot!r}")
    trail = Trail(f"ml:{enterprise_id}:{found[0]['record_seq']}")
    depth = max(1, min(depth, MAX_DEPTH))
    uses = walker.store(enterprise_id).find("lot_inputs", material_lot_seq=found[0]["record_seq"])
    walker.preload(
        enterprise_id, [u["record_seq"] for u in uses], backward=False, forward=True, depth=depth
    )
    walker.forward_material(trail, enterprise_id, found[0], depth)
    walker.fill_hashes(trail)
    return trail


EXPORT_COLUMNS = [
    ("event", "事件类型"),
    ("lot", "批号"),
    ("item", "品名"),
    ("quantity", "数量"),
    ("unit", "单位"),
    ("from", "来源"),
    ("to", "去向"),
    ("date", "日期"),
    ("reference", "单据"),
    ("enterprise", "记录企业"),
    ("credit_code", "统一社会信用代码"),
    ("seq", "账本序号"),
    ("hash", "条目哈希"),
    ("finding", "发现"),
]
"""One row per traceability event, after the FDA FSMA 204 "electronic sortable spreadsheet"."""

_EVENT_NAMES = {
    "supplied": "进货查验",
    "consumed": "投料生产",
    "sold": "销售",
    "shipped": "跨企业发运",
}


def export_rows(trail: Trail) -> list[dict[str, Any]]:
    """The trail as rows: one per traceability event, with the ledger seq and hash behind it."""
    rows = []
    for e in trail.edges:
        src, dst = trail.nodes[e.source], trail.nodes[e.target]
        record = dst if e.type in ("supplied", "consumed", "shipped") else src
        lot = dst if e.type in ("supplied", "consumed") else src
        if e.type == "shipped" and src.type == "lot":
            lot = src
        rows.append(
            {
                "event": _EVENT_NAMES.get(e.type, e.type),
                "lot": lot.code or "",
                "item": lot.label,
                "quantity": e.quantity or "",
                "unit": e.unit or "",
                "from": f"{src.enterprise or ''} {src.code or ''}".strip(),
                "to": f"{dst.enterprise or ''} {dst.code or ''}".strip(),
                "date": e.date or "",
                "reference": f"{record.type}:{record.code or ''}",
                "enterprise": record.enterprise or "",
                "credit_code": record.credit_code or "",
                "seq": e.seq or "",
                "hash": record.hash or "",
                "finding": e.finding or "",
            }
        )
    rows.sort(key=lambda r: (r["date"], r["event"], r["lot"]))
    return rows


_EXPORT_KINDS = {"quantity": Kind.NUMBER, "date": Kind.DATE, "seq": Kind.NUMBER}


def export_sheet(trail: Trail, title: str = "追溯") -> Sheet:
    """The trail's rows as a typed sheet (quantities and seqs numbers, dates dates)."""
    return Sheet(
        title,
        [Column(zh, _EXPORT_KINDS.get(key, Kind.TEXT)) for key, zh in EXPORT_COLUMNS],
        [[row[k] for k, _ in EXPORT_COLUMNS] for row in export_rows(trail)],
    )


def export_csv(trail: Trail) -> bytes:
    """UTF-8 with BOM, so that Excel opens the Chinese headers correctly."""
    return csv_bytes(export_sheet(trail))


def export_csv_chunks(trail: Trail) -> Iterator[bytes]:
    """:func:`export_csv`, streamed."""
    return csv_chunks(export_sheet(trail))


def export_xlsx_chunks(trail: Trail) -> Iterator[bytes]:
    """:func:`export_xlsx`, streamed from a spooled file."""
    return xlsx_chunks([export_sheet(trail)])


def export_xlsx(trail: Trail) -> bytes:
    """A sortable sheet: bold frozen header, an auto-filter, widths to fit."""
    return xlsx_bytes([export_sheet(trail)])
