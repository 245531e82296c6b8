"""Random multi-enterprise worlds for the recall-scope properties (issue 15).

A world is drawn from a seed: registered suppliers that sell batches to several
registered makers (and to unregistered buyers), makers that receive the same batch
more than once and make lots from one or two material lots each, CCP readings with
deviations (closed by a corrective action or not), registered distributors that
receive lots of several makers, repack them and sell on, and corrections of batch
numbers (a typo, then the right batch) and of sales (quantity or customer). Everything
is recorded through the core's ``record``, as the API does.

The generator also keeps its own account of what was made from what (``World.made``),
written from the draws and not from the code under test, so a test can ask which lots
must be in a scope.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Engine

from foodtrace.clock import Clock
from schemas.identifiers import CREDIT_CODE_ALPHABET, credit_code_check_char

import factories as f

REGION = "370404"


def credit_code(rng: random.Random, taken: set[str]) -> str:
    while True:
        body = "91" + REGION + "MA" + "".join(rng.choice(CREDIT_CODE_ALPHABET) for _ in range(7))
        code = body + credit_code_check_char(body)
        if code not in taken:
            taken.add(code)
            return code


@dataclass
class Ent:
    key: str
    credit_code: str
    kind: str  # supplier, maker, distributor
    ledger_id: int = 0
    lots: list[str] = field(default_factory=list)
    materials: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    """material lot → (supplier credit code or None, batch number as finally recorded)."""
    customers: dict[str, str | None] = field(default_factory=dict)
    """customer code → its credit code (None: an unregistered buyer)."""


@dataclass
class World:
    seed: int
    ents: dict[str, Ent] = field(default_factory=dict)
    made: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    """(credit code, lot) → the material lots it consumed."""
    sold: dict[tuple[str, str], list[tuple[str, str | None]]] = field(default_factory=dict)
    """(credit code, lot) → (customer code, customer credit code) of its sales as corrected."""

    def by_code(self, credit_code: str) -> Ent:
        return next(e for e in self.ents.values() if e.credit_code == credit_code)

    def makers(self) -> list[Ent]:
        return [e for e in self.ents.values() if e.kind == "maker"]


def build(engine: Engine, clock: Clock, seed: int) -> World:
    """Record a random world into the database; see the module."""
    rng = random.Random(seed)
    world = World(seed)
    taken: set[str] = set()
    day0 = date(2026, 2, 1)

    def add(ent: Ent, kind: str, data: dict[str, Any]) -> int:
        return f.add(engine, clock, ent.ledger_id, kind, data).seq

    def register(key: str, kind: str) -> Ent:
        ent = Ent(key, credit_code(rng, taken), kind)
        over: dict[str, Any] = {"name": f"{key} 有限公司"}
        if kind == "distributor":
            over |= {"kind": "distributor", "licence_no": None}
        ent.ledger_id = f.register(engine, clock, ent.credit_code, **over)
        world.ents[key] = ent
        return ent

    suppliers = [register(f"S{i}", "supplier") for i in range(rng.randint(1, 2))]
    makers = [register(f"M{i}", "maker") for i in range(rng.randint(2, 3))]
    dists = [register(f"D{i}", "distributor") for i in range(rng.randint(1, 2))]

    def customer(seller: Ent, buyer: Ent | None, code: str) -> str:
        if code not in seller.customers:
            credit = buyer.credit_code if buyer is not None else None
            add(seller, "customer", f.customer(code=code, name=f"{code} 商行", credit_code=credit))
            seller.customers[code] = credit
        return code

    known_suppliers: dict[str, set[str]] = {}

    def ensure_supplier(buyer: Ent, seller: Ent | None, code: str) -> str:
        if code not in known_suppliers.setdefault(buyer.key, set()):
            add(
                buyer,
                "supplier",
                f.supplier(
                    code=code,
                    name=f"{seller.key if seller else code} 供应商",
                    credit_code=seller.credit_code if seller else None,
                ),
            )
            known_suppliers[buyer.key].add(code)
        return code

    def sell(seller: Ent, lot: str, cust: str, qty: str, day: date) -> int:
        seq = add(
            seller,
            "sale",
            f.sale(lot_code=lot, quantity=qty, unit=unit_of[seller.key], sale_date=day.isoformat(),
                   customer_code=cust),
        )  # fmt: skip
        world.sold.setdefault((seller.credit_code, lot), []).append((cust, seller.customers[cust]))
        return seq

    unit_of: dict[str, str] = {}

    # Suppliers: a sugar product, a raw material, one to three batches.
    for s in suppliers:
        unit_of[s.key] = "kg"
        add(s, "supplier", f.supplier(code="CANE", name="甘蔗合作社", credit_code=None))
        add(s, "product", f.SUGAR_PRODUCT)
        add(
            s,
            "material_check",
            f.cane_receipt("CANE-1", "GZ1", "900000", "2026-01-10"),
        )
        for b in range(rng.randint(1, 3)):
            lot = f"{s.key}-BT{b}"
            d = day0 + timedelta(days=b)
            add(
                s,
                "production_lot",
                f.sugar_lot(lot, d.isoformat(), "CANE-1", quantity="50000", cane="60000"),
            )
            s.lots.append(lot)
            world.made[(s.credit_code, lot)] = {"CANE-1"}

    # Makers receive batches (the same batch more than once, sometimes with a typo corrected).
    for m in makers:
        unit_of[m.key] = "瓶"
        add(m, "product", f.product())
        n = 0
        for s in suppliers:
            sup = ensure_supplier(m, s, f"SUP-{s.key}")
            for lot in rng.sample(s.lots, rng.randint(1, len(s.lots))):
                for _ in range(rng.randint(1, 2)):  # a second receipt of the same batch
                    qty = str(rng.choice([100, 200, 500]))
                    d = day0 + timedelta(days=5 + n % 3)
                    cust = customer(s, m, f"C-{m.key}")
                    sell(s, lot, cust, qty, d)
                    ml = f"{m.key}-ML{n}"
                    n += 1
                    typo = rng.random() < 0.25
                    check = f.material_check(
                        material_lot=ml, supplier_code=sup, batch_no=lot + "X" if typo else lot,
                        quantity=qty, receipt_date=d.isoformat(), production_date=None,
                    )  # fmt: skip
                    seq = add(m, "material_check", check)
                    if typo:
                        add(
                            m,
                            "correction",
                            {
                                "corrects": seq,
                                "reason": "批号录错",
                                "record": {**check, "batch_no": lot},
                            },
                        )
                    m.materials[ml] = (s.credit_code, lot)
        # an unregistered supplier's material too
        ensure_supplier(m, None, "LOCAL")
        ml = f"{m.key}-LOC"
        add(
            m,
            "material_check",
            f.material_check(
                material_lot=ml, material_name="石榴", supplier_code="LOCAL", batch_no="SL-1",
                quantity="9000", receipt_date=(day0 + timedelta(days=5)).isoformat(),
                production_date=None,
            ),
        )  # fmt: skip
        m.materials[ml] = (None, "SL-1")
        # lots, each from one or two material lots, on a few days, sometimes overlapping
        for i in range(rng.randint(2, 5)):
            lot = f"{m.key}-L{i}"
            d = day0 + timedelta(days=10 + rng.randint(0, 2))
            start = rng.choice([8, 9, 10, 13])
            mls = rng.sample(sorted(m.materials), rng.randint(1, min(2, len(m.materials))))
            add(
                m,
                "production_lot",
                f.production_lot(
                    lot_code=lot, production_date=d.isoformat(),
                    started_at=f"{d}T{start:02d}:00:00+08:00",
                    ended_at=f"{d}T{start + 3:02d}:00:00+08:00",
                    quantity="2400", unit="瓶",
                    materials=[{"material_lot": x, "quantity": "10", "unit": "kg"} for x in mls],
                ),
            )  # fmt: skip
            m.lots.append(lot)
            world.made[(m.credit_code, lot)] = set(mls)
            # CCP readings, one of them perhaps a deviation
            for k in range(rng.randint(1, 3)):
                deviation = rng.random() < 0.3
                reading = f.ccp_record(
                    lot_code=lot,
                    value="83.0" if deviation else "86.5",
                    measured_at=f"{d}T{start + k:02d}:30:00+08:00",
                )
                if deviation and rng.random() < 0.5:
                    reading["corrective_action"] = "复杀"
                seq = add(m, "ccp_record", reading)
                if deviation and "corrective_action" not in reading and rng.random() < 0.5:
                    add(
                        m,
                        "corrective_action",
                        {"reading_seq": seq, "action": "停线，复杀", "operator": "李强",
                         "taken_at": f"{d}T{start + k:02d}:50:00+08:00"},
                    )  # fmt: skip

    # Makers sell to distributors (registered), shops (not), and each other never.
    for m in makers:
        for lot in m.lots:
            for _ in range(rng.randint(0, 3)):
                d = day0 + timedelta(days=14)
                if rng.random() < 0.6:
                    dist = rng.choice(dists)
                    cust = customer(m, dist, f"C-{dist.key}")
                else:
                    cust = customer(m, None, f"SHOP{rng.randint(0, 2)}")
                qty = str(rng.choice([24, 48, 120]))
                seq = sell(m, lot, cust, qty, d)
                if rng.random() < 0.2:  # a sale corrected: the quantity, or the customer
                    other = customer(m, None, "SHOP9") if rng.random() < 0.5 else cust
                    body = f.sale(lot_code=lot, quantity=str(int(qty) // 2), unit="瓶",
                                  sale_date=d.isoformat(), customer_code=other)  # fmt: skip
                    add(m, "correction", {"corrects": seq, "reason": "数量有误", "record": body})
                    world.sold[(m.credit_code, lot)][-1] = (other, m.customers[other])

    # Distributors receive what was sold to them, repack some of it and sell on.
    for dist in dists:
        unit_of[dist.key] = "瓶"
        add(
            dist,
            "product",
            f.product(code="RP", name="分装石榴汁", gtin=None, packaging=[], ccp_plan=[]),
        )
        n = 0
        received: list[str] = []
        for m in makers:
            for lot in m.lots:
                buyers = [c for c, credit in world.sold.get((m.credit_code, lot), [])]
                if f"C-{dist.key}" not in buyers:
                    continue
                sup = ensure_supplier(dist, m, f"SUP-{m.key}")
                ml = f"{dist.key}-R{n}"
                n += 1
                add(
                    dist,
                    "material_check",
                    f.material_check(
                        material_lot=ml, material_name="石榴汁饮料", supplier_code=sup,
                        batch_no=lot, quantity="24", unit="瓶",
                        receipt_date=(day0 + timedelta(days=15)).isoformat(),
                        production_date=None,
                    ),
                )  # fmt: skip
                dist.materials[ml] = (m.credit_code, lot)
                received.append(ml)
        for i in range(rng.randint(0, 2) if received else 0):
            lot = f"{dist.key}-P{i}"
            d = day0 + timedelta(days=16 + i)
            mls = rng.sample(received, rng.randint(1, min(2, len(received))))
            add(
                dist,
                "production_lot",
                f.production_lot(
                    product_code="RP", lot_code=lot, production_date=d.isoformat(),
                    started_at=f"{d}T08:00:00+08:00", ended_at=f"{d}T09:00:00+08:00",
                    quantity="24", unit="瓶",
                    materials=[{"material_lot": x, "quantity": "6", "unit": "瓶"} for x in mls],
                ),
            )  # fmt: skip
            dist.lots.append(lot)
            world.made[(dist.credit_code, lot)] = set(mls)
            for j in range(rng.randint(1, 2)):
                cust = customer(dist, None, f"SHOP-{dist.key}-{j}")
                sell(dist, lot, cust, "6", d + timedelta(days=1))
    return world


def downstream(world: World, start: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Every lot made from a lot of ``start`` by a registered buyer, transitively (from the
    generator's own account: a registered buyer's material lot names the seller and the
    batch, and the seller sold that lot to the buyer)."""
    out = set(start)
    todo = list(start)
    while todo:
        seller, lot = todo.pop()
        buyers = {credit for _c, credit in world.sold.get((seller, lot), []) if credit}
        for ent in world.ents.values():
            if ent.credit_code not in buyers:
                continue
            mls = {ml for ml, src in ent.materials.items() if src == (seller, lot)}
            for made in ent.lots:
                key = (ent.credit_code, made)
                if key not in out and world.made[key] & mls:
                    out.add(key)
                    todo.append(key)
    return out


def shared_material(world: World, sampled: tuple[str, str]) -> set[tuple[str, str]]:
    """The lots that must be in a scope because they share a suspect material with
    ``sampled`` (every material of it suspect): for a material from a registered supplier,
    every lot downstream of the supplier's batch; for another, the maker's lots that
    consumed it, and what was made from them."""
    maker = world.by_code(sampled[0])
    start: set[tuple[str, str]] = set()
    for ml in world.made[sampled]:
        source = maker.materials[ml]
        if source[0] is not None:
            start.add(source)
        else:
            own = [(maker.credit_code, lot) for lot in maker.lots]
            start |= {key for key in own if ml in world.made[key]}
    return downstream(world, start)
