"""The trail read set-wise (recursive CTEs, one read per table) equals the trail as the
walk read it node by node (``trail_reference``), on generated multi-enterprise graphs:
lots sold to several buyers and made of several material lots, a material lot used by
several lots, lot codes that repeat in every ledger (so a receipt can name a batch its
supplier makes only later, and the trail turns back on itself), receipts of batches
never sold to the receiver, sales never received, unregistered partners, and ledgers
outside the reader's jurisdiction."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest
from sqlalchemy import Engine, event

from conftest import LONG
from foodtrace.clock import Clock
from foodtrace.db import read_session
from foodtrace.errors import NotFound
from foodtrace.trail import Trail, lot_trail, material_trail
from schemas.identifiers import credit_code_check_char

import factories as f
import trail_reference as reference

ENTERPRISES = 6
ROUNDS = 5
INSIDE = "370404"
"""Enterprises 0–3 lie in this district; 4 and 5 in the next (370402)."""


def _code(i: int) -> str:
    body = f"91370404MA3{i:06d}"
    return body + credit_code_check_char(body)


UNREGISTERED = _code(999)


def _graph(engine: Engine, clock: Clock, seed: int) -> dict[str, Any]:
    """Six ledgers trading in rounds; returns their ids, lot codes and material lots."""
    rng = random.Random(seed)
    codes = [_code(i) for i in range(ENTERPRISES)]
    ids = [
        f.register(
            engine,
            clock,
            code,
            name=f"追溯测试企业{i}",
            region_code=INSIDE if i < 4 else "370402",
        )
        for i, code in enumerate(codes)
    ]
    for i, lid in enumerate(ids):
        f.add(engine, clock, lid, "product", f.product(gtin=None, unit="箱", packaging=[]))
        for j, code in [*enumerate(codes), ("X", UNREGISTERED), ("N", None)]:
            if j == i:
                continue
            f.add(
                engine,
                clock,
                lid,
                "supplier",
                f.supplier(code=f"S{j}", name=f"供应商{j}", credit_code=code, licence_no=None),
            )
            f.add(
                engine,
                clock,
                lid,
                "customer",
                f.customer(code=f"C{j}", name=f"客户{j}", credit_code=code),
            )
    materials: dict[int, list[str]] = {i: [] for i in range(ENTERPRISES)}
    lots: dict[int, list[str]] = {i: [] for i in range(ENTERPRISES)}
    due: list[tuple[int, int, str]] = []  # (buyer, seller, lot code) sold, not yet received

    def receive(i: int, supplier: str, batch: str, r: int) -> None:
        ml = f"M{r}-{len(materials[i])}"
        f.add(
            engine,
            clock,
            ids[i],
            "material_check",
            f.material_check(
                material_lot=ml,
                material_name=f"原料{ml}",
                quantity="1000",
                unit="箱",
                batch_no=batch,
                supplier_code=supplier,
                supplier_licence_checked=False,
                supplier_licence_no=None,
                receipt_date=f"2026-02-{10 + r:02d}",
            ),
        )
        materials[i].append(ml)

    for r in range(1, ROUNDS + 1):
        rng.shuffle(due)
        for buyer, seller, lot in due:
            if rng.random() < 0.85:  # the rest: a sale never received
                receive(buyer, f"S{seller}", lot, r)
        due = []
        for i in rng.sample(range(ENTERPRISES), ENTERPRISES):
            # a receipt naming a batch the supplier has not sold us (perhaps not made yet),
            # or from a supplier who is not registered
            if rng.random() < 0.4:
                j = rng.choice([k for k in range(ENTERPRISES) if k != i] + ["X", "N"])
                receive(i, f"S{j}", f"L{rng.randint(1, ROUNDS)}", r)
            if not materials[i]:
                receive(i, "SN", f"RAW{r}", r)
            lot = f"L{r}"  # the same codes in every ledger
            used = rng.sample(materials[i], min(len(materials[i]), rng.randint(1, 3)))
            f.add(
                engine,
                clock,
                ids[i],
                "production_lot",
                f.production_lot(
                    product_code="PJ500",
                    lot_code=lot,
                    production_date=f"2026-02-{10 + r:02d}",
                    started_at=f"2026-02-{10 + r:02d}T08:00:00+08:00",
                    ended_at=f"2026-02-{10 + r:02d}T11:00:00+08:00",
                    quantity="1000",
                    unit="箱",
                    materials=[{"material_lot": m, "quantity": "10", "unit": "箱"} for m in used],
                ),
            )
            lots[i].append(lot)
            buyers = rng.sample(
                [k for k in range(ENTERPRISES) if k != i] + ["X", "N"], rng.randint(0, 3)
            )
            for k in buyers:
                f.add(
                    engine,
                    clock,
                    ids[i],
                    "sale",
                    f.sale(
                        lot_code=lot,
                        quantity="10",
                        unit="箱",
                        sale_date=f"2026-02-{10 + r:02d}",
                        customer_code=f"C{k}",
                    ),
                )
                if isinstance(k, int):
                    due.append((k, i, lot))
    return {"ids": ids, "lots": lots, "materials": materials}


def _shape(trail: Trail) -> dict[str, Any]:
    """Everything a trail holds, in its order (nodes as inserted, edges as linked)."""
    return {
        "start": trail.start,
        "nodes": [(k, dataclasses.asdict(n)) for k, n in trail.nodes.items()],
        "edges": [dataclasses.asdict(e) for e in trail.edges],
    }


def _inside(e: Any) -> bool:
    return e.region_code == INSIDE


@pytest.mark.parametrize("seed", [1, 2, 3, 4] if LONG else [1])
def test_the_set_wise_trail_equals_the_node_by_node_walk(engine, clock, seed) -> None:
    g = _graph(engine, clock, seed)
    cases = [
        (direction, depth, readable)
        for direction, depth in [("both", 6), ("both", 2), ("backward", 3), ("forward", 3)]
        for readable in (None, _inside)
    ] + [("both", 1, None), ("both", 12, None)]
    compared = crossed = outside = 0

    def both(old: Any, new: Any, **kw: Any) -> tuple[Trail, Trail]:
        # a session each: neither may answer a find from what the other remembered
        with read_session(engine) as s:
            before = old(session=s, **kw)
        with read_session(engine) as s:
            return before, new(session=s, **kw)

    for i, lid in enumerate(g["ids"]):
        for lot in g["lots"][i]:
            for direction, depth, readable in cases:
                kw: dict[str, Any] = {"direction": direction, "depth": depth}
                if readable is not None:
                    kw["readable"] = readable
                old, new = both(
                    reference.lot_trail, lot_trail, enterprise_id=lid, lot_code=lot, **kw
                )
                assert _shape(new) == _shape(old), (i, lot, direction, depth, readable)
                compared += 1
                ledgers = {n.id.split(":")[1] for n in new.nodes.values()}
                crossed += len(ledgers) > 2
                outside += any(n.outside for n in new.nodes.values())
        for ml in g["materials"][i]:
            for depth in (6, 2):
                old, new = both(
                    reference.material_trail,
                    material_trail,
                    enterprise_id=lid,
                    material_lot=ml,
                    depth=depth,
                )
                assert _shape(new) == _shape(old), (i, ml, depth)
    with read_session(engine) as s:
        for find in (lot_trail, reference.lot_trail):
            with pytest.raises(NotFound):
                find(session=s, enterprise_id=g["ids"][0], lot_code="L99")
    # the graph is what the test says it is: trails cross ledgers and hit the boundary
    assert compared == ENTERPRISES * ROUNDS * len(cases)
    assert crossed > compared // 4
    assert outside > 0


def test_a_six_level_trail_reads_a_statement_per_table(engine, clock) -> None:
    """Whatever the trail's size: the lots within reach (with the start lot, their
    products, enterprises and hashes), the inputs and the sales of those lots, and the
    buyers' receipts of them."""
    g = _graph(engine, clock, 3)
    counts = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        counts[-1] += not statement.startswith("BEGIN")  # SQLite's, sent by foodtrace.db

    event.listen(engine, "before_cursor_execute", count)
    try:
        for i, lid in enumerate(g["ids"]):
            for lot in g["lots"][i]:
                with read_session(engine) as s:
                    counts.append(0)
                    lot_trail(session=s, enterprise_id=lid, lot_code=lot, depth=6)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert max(counts) <= 4, counts
