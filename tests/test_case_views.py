"""Every enterprise that must act on a case sees exactly its part of the authority's scope
(issue 15), on random worlds (tests/worlds.py): several suppliers, makers that receive the
same batch more than once, distributors that receive lots of several makers, repack and
sell on, corrected batch numbers and sales, CCP deviation windows.

For each world a lot of a maker fails a sample and the case is notified; then, through
the HTTP API and the pages:

- the regulator's scope holds every lot that, by the generator's own account, shares a
  suspect material with the sampled lot or was made from it;
- each registered enterprise's view of the case (API and 召回 page) is the regulator's
  scope filtered to its own lots and its own customers: nothing fewer, nothing of anyone
  else's; an enterprise with no lot in scope gets 404;
- random recall actions on every lot and customer of that view keep the mass balance
  (a recovery beyond what the customer bought, a disposal beyond what is held plus
  recovered, are refused exactly then), and a completion is refused exactly while an
  item is open without a reason; once each enterprise has declared its recall complete
  the case is "recall recorded".
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from decimal import Decimal

import pytest

import worlds
from conftest import LONG
from schemas.identifiers import credit_code_check_char
from schemas.types import format_instant

import factories as f

AUTH_PREFIX = "11370404MB2854321"
AUTH = AUTH_PREFIX + credit_code_check_char(AUTH_PREFIX)
PASSWORD = "world pass 2026"
SEEDS = list(range(12)) if LONG else [3, 8]


def _users(engine, clock, world: worlds.World) -> None:
    f.authority(engine, clock, AUTH_PREFIX, "峄城区市场监督管理局", "370404")
    f.user(engine, clock, "reg", PASSWORD, authority=AUTH)
    for ent in world.ents.values():
        f.user(engine, clock, ent.key.lower(), PASSWORD, enterprise=ent.credit_code)


def _bearer(client, user: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", data={"username": user, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _page_login(client, user: str) -> None:
    r = f.page_login(client, user, PASSWORD, follow_redirects=False)
    assert r.status_code in (302, 303), r.text


def _lots(case: dict) -> set[tuple[str, str, str]]:
    return {(x["credit_code"], x["lot_code"], x["reason"]) for x in case["lots"]}


def _sales(case: dict) -> list[tuple]:
    return sorted(
        (x["credit_code"], x["lot_code"], x["customer_code"], x["quantity"], x["seq"])
        for x in case["sales"]
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_every_enterprise_sees_exactly_its_part_of_the_scope(client, engine, clock, seed) -> None:
    world = worlds.build(engine, clock, seed)
    _users(engine, clock, world)
    rng = random.Random(seed * 7919)
    maker = rng.choice(world.makers())
    lot = rng.choice(maker.lots)
    materials = sorted(world.made[(maker.credit_code, lot)])
    suspects = None if rng.random() < 0.6 else rng.sample(materials, 1)
    reg = _bearer(client, "reg")
    sample = {
        "credit_code": maker.credit_code, "lot_code": lot, "test_item": "菌落总数",
        "result": "15000", "limit": "≤100", "sampling_date": "2026-03-01", "report_no": "SJ-W",
    }  # fmt: skip
    if suspects is not None:
        sample["suspect_materials"] = suspects
    r = client.post("/api/v1/failed-samples", headers=reg, json=sample)
    assert r.status_code == 201, r.text
    case_id = r.json()["id"]
    r = client.post(f"/api/v1/cases/{case_id}/steps", headers=reg, json={"state": "notified"})
    assert r.status_code == 200, r.text
    scope = client.get(f"/api/v1/cases/{case_id}", headers=reg).json()
    in_scope = {(c, code) for c, code, _reason in _lots(scope)}

    # The regulator's scope holds what the world says it must (every material suspect).
    must = worlds.downstream(world, {(maker.credit_code, lot)})
    if suspects is None:
        must |= worlds.shared_material(world, (maker.credit_code, lot))
    assert must <= in_scope, (seed, sorted(must - in_scope))

    concerned = {c for c, _code in in_scope}
    for ent in world.ents.values():
        headers = _bearer(client, ent.key.lower())
        r = client.get(f"/api/v1/enterprise/cases/{case_id}", headers=headers)
        if ent.credit_code not in concerned:
            assert r.status_code == 404, (seed, ent.key, r.text)
            continue
        assert r.status_code == 200, (seed, ent.key, r.text)
        mine = r.json()
        # exactly the regulator's scope filtered to this enterprise
        assert _lots(mine) == {x for x in _lots(scope) if x[0] == ent.credit_code}, (seed, ent.key)
        assert _sales(mine) == [x for x in _sales(scope) if x[0] == ent.credit_code]
        assert {x["credit_code"] for x in mine["sales"]} <= {ent.credit_code}
        by_lot = {
            x["lot_code"]: (x["produced"], x["sold"], x["held"])
            for x in scope["lots"]
            if x["credit_code"] == ent.credit_code
        }
        got = {x["lot_code"]: (x["produced"], x["sold"], x["held"]) for x in mine["lots"]}
        assert got == by_lot

        # the 召回 page shows the same lots, and no other enterprise's
        with type(client)(client.app) as web:
            _page_login(web, ent.key.lower())
            page = web.get(f"/cases/{case_id}")
            assert page.status_code == 200, page.text
            for x in mine["lots"]:
                assert x["lot_code"] in page.text
            # (the case names the sampled lot to everyone it concerns: its subject)
            others = {code for c, code in in_scope if c != ent.credit_code} - {lot}
            shown = set(re.findall(r"[SMD]\d-(?:BT|L|P)\d", page.text))
            assert not shown & others, (seed, ent.key, shown & others)

        _recall_at_random(client, headers, case_id, mine, rng, format_instant(clock.now()))
    final = client.get(f"/api/v1/cases/{case_id}", headers=reg).json()
    assert final["state"] == "recall_recorded", (seed, final["state"])
    assert _lots(final) == _lots(scope)


def _recall_at_random(client, headers, case_id: str, mine: dict, rng, at: str) -> None:
    """Random recall actions on every lot and customer of an enterprise's view, checked
    against the mass balance kept here: a recovery is accepted exactly when what came back
    from that customer stays within what it bought of the lot, a disposal exactly when it
    stays within what is held plus recovered, and the completion exactly when every open
    item (a customer not told, a quantity left) carries a reason."""

    def post(body: dict) -> int:
        r = client.post(
            "/api/v1/enterprise/recall-actions",
            headers=headers,
            json={"case": case_id, "at": at, **body},
        )
        assert r.status_code in (201, 422), r.text
        if r.status_code == 422:
            assert r.json()["detail"][0]["type"] in (
                "over_recovered",
                "over_disposed",
                "recall_open",
            )
        return r.status_code

    sold: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for x in mine["sales"]:
        sold[(x["lot_code"], x["customer_code"])] += Decimal(x["quantity_base"])
    lots = {x["lot_code"]: x for x in mine["lots"]}
    recovered: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    disposed: dict[str, Decimal] = defaultdict(Decimal)
    notified: set[str] = set()
    for (lot, cust), total in sorted(sold.items()):
        if rng.random() < 0.8:
            assert post({"action": "notification", "customer_code": cust, "lot_code": lot}) == 201
            notified.add(cust)
        for _ in range(rng.randint(0, 2)):
            qty = rng.choice([Decimal(1), total / 2, total, total + 1]).quantize(Decimal(1))
            if qty <= 0:
                continue
            ok = recovered[(lot, cust)] + qty <= total
            got = post({"action": "recovery", "customer_code": cust, "lot_code": lot,
                        "quantity": str(qty), "unit": lots[lot]["unit"]})  # fmt: skip
            assert got == (201 if ok else 422), (lot, cust, qty, recovered[(lot, cust)], total)
            if ok:
                recovered[(lot, cust)] += qty

    def left(lot: str) -> Decimal:
        back = sum((q for (lo, _c), q in recovered.items() if lo == lot), Decimal(0))
        return max(Decimal(lots[lot]["held"]), Decimal(0)) + back - disposed[lot]

    for lot in sorted(lots):
        for _ in range(rng.randint(0, 2)):
            qty = rng.choice([left(lot), left(lot) + 1, Decimal(1)])
            if qty <= 0:
                continue
            ok = qty <= left(lot)
            got = post({"action": "disposal", "lot_code": lot, "quantity": str(qty),
                        "unit": lots[lot]["unit"], "method": "销毁"})  # fmt: skip
            assert got == (201 if ok else 422), (lot, qty, left(lot))
            if ok:
                disposed[lot] += qty
    customers = {c for _lot, c in sold}
    open_items = [{"customer_code": c} for c in sorted(customers - notified)]
    open_items += [{"lot_code": lot} for lot in sorted(lots) if left(lot) > 0]
    view = client.get(f"/api/v1/enterprise/cases/{case_id}", headers=headers).json()
    assert sorted((x["kind"], x["code"]) for x in view["open_items"]) == sorted(
        ("customer", i["customer_code"]) if "customer_code" in i else ("lot", i["lot_code"])
        for i in open_items
    )
    if open_items:  # a completion leaving one out is refused, naming the recall as open
        some = rng.sample(open_items, rng.randint(0, len(open_items) - 1))
        given = [{**i, "reason": "unreachable"} for i in some]
        assert post({"action": "completed", "open_items": given} if given else
                    {"action": "completed"}) == 422  # fmt: skip
    given = [{**i, "reason": rng.choice(["unreachable", "customer_closed"])} for i in open_items]
    body = {"action": "completed", **({"open_items": given} if given else {})}
    assert post(body) == 201
