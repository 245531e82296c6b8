"""The trail as it was walked before set-wise reads (foodtrace.trail at 4997aad): every
row read from the database when the walk asks for it. Kept as the reference that the
set-wise trail must equal (tests/test_trail_reads.py); do not change it to follow
foodtrace.trail, which is the point."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, or_, select
from sqlmodel import Session

from foodtrace.accounts.models import Enterprise
from foodtrace.ledger.models import Entry
from foodtrace.records.projection import DbStore
from foodtrace.trail import MAX_DEPTH, Edge, Node, Trail, _consumed

_PENDING = "pending:"


class _Walker:
    def __init__(self, session: Session, readable: Callable[[Enterprise], bool]) -> None:
        self.session = session
        self.readable = readable
        self.stores: dict[int, DbStore] = {}
        self.by_code: dict[str, Enterprise | None] = {}
        self.by_id: dict[int, Enterprise] = {}
        self.seen: set[tuple[str, str]] = set()

    def store(self, eid: int) -> DbStore:
        if eid not in self.stores:
            self.stores[eid] = DbStore(self.session, eid)
        return self.stores[eid]

    def _registered(self) -> None:
        """Every registered enterprise, read once: a trail crosses a ledger per level, and
        looking each up by credit code cost a round trip per level."""
        if not self.by_id:
            for e in self.session.execute(select(Enterprise)).scalars():
                assert e.id is not None
                self.by_id[e.id] = e
                self.by_code[e.credit_code] = e

    def enterprise(self, credit_code: str | None) -> Enterprise | None:
        if not credit_code:
            return None
        self._registered()
        return self.by_code.get(credit_code)

    def ent(self, eid: int) -> Enterprise:
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
        for node in trail.nodes.values():
            if node.hash and node.hash.startswith(_PENDING):
                eid, seq = node.hash[len(_PENDING) :].split(":")
                wanted.setdefault(int(eid), set()).add(int(seq))
        found: dict[tuple[int, int], str] = {}
        if wanted:  # one round trip for every ledger the trail crossed
            for eid, seq, digest in self.session.execute(
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
                eid, seq = node.hash[len(_PENDING) :].split(":")
                node.hash = found[(int(eid), int(seq))]

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

    # ------------------------------------------------------------ backward

    def backward(self, trail: Trail, eid: int, lot: dict[str, Any], depth: int) -> None:
        if depth <= 0 or ("b", f"{eid}:{lot['record_seq']}") in self.seen:
            return
        self.seen.add(("b", f"{eid}:{lot['record_seq']}"))
        node = self.lot_node(trail, eid, lot)
        store = self.store(eid)
        me = self.ent(eid)
        for use in store.find("lot_inputs", record_seq=lot["record_seq"]):
            ml = store.find("material_lots", record_seq=use["material_lot_seq"])[0]
            mnode = self.material_node(trail, eid, ml)
            trail.link(_consumed(mnode, node, use, lot))
            sup = store.find("suppliers", record_seq=ml["supplier_seq"])[0]
            seller = self.enterprise(ml["supplier_credit_code"])
            snode = trail.add(
                Node(
                    f"sup:{eid}:{sup['record_seq']}",
                    "supplier",
                    sup["credit_code"],
                    sup["name"],
                    sup["code"],
                    sup["name"],
                    sup["current_seq"],
                    self.hash_of(eid, sup["current_seq"]),
                    seller is not None,
                )
            )
            trail.link(
                Edge(
                    snode.id,
                    mnode.id,
                    "supplied",
                    ml["quantity"],
                    ml["unit"],
                    ml["receipt_date"],
                    ml["current_seq"],
                )
            )
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
                trail.link(
                    Edge(
                        upstream.id,
                        mnode.id,
                        "shipped",
                        s["quantity"],
                        s["unit"],
                        s["sale_date"],
                        s["current_seq"],
                    )
                )
            self.backward(trail, seller.id, sold[0], depth - 1)

    # ------------------------------------------------------------- forward

    def forward_lot(self, trail: Trail, eid: int, lot: dict[str, Any], depth: int) -> None:
        if depth <= 0 or ("f", f"{eid}:{lot['record_seq']}") in self.seen:
            return
        self.seen.add(("f", f"{eid}:{lot['record_seq']}"))
        node = self.lot_node(trail, eid, lot)
        store = self.store(eid)
        me = self.ent(eid)
        sales = store.find("sales", lot_seq=lot["record_seq"])
        store.prefetch("customers", "record_seq", (s["customer_seq"] for s in sales))
        for s in sales:
            cust = store.find("customers", record_seq=s["customer_seq"])[0]
            buyer = self.enterprise(s["buyer_credit_code"])
            cnode = trail.add(
                Node(
                    f"cust:{eid}:{cust['record_seq']}",
                    "customer",
                    cust["credit_code"],
                    cust["name"],
                    cust["code"],
                    cust["name"],
                    cust["current_seq"],
                    self.hash_of(eid, cust["current_seq"]),
                    buyer is not None,
                )
            )
            trail.link(
                Edge(
                    node.id,
                    cnode.id,
                    "sold",
                    s["quantity"],
                    s["unit"],
                    s["sale_date"],
                    s["current_seq"],
                )
            )
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
                trail.link(
                    Edge(
                        node.id,
                        mnode.id,
                        "shipped",
                        ml["quantity"],
                        ml["unit"],
                        ml["receipt_date"],
                        ml["current_seq"],
                    )
                )
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
    walker.forward_material(trail, enterprise_id, found[0], max(1, min(depth, MAX_DEPTH)))
    walker.fill_hashes(trail)
    return trail
