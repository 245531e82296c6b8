"""A failed sample and its case, on a district built here with several registered enterprises.

The scenario: the sugar maker's batch BT1 reaches two manufacturers (the
beverage maker and the workshop) and an unregistered bakery. Each manufacturer
makes several lots from it and sells them; one customer (the distributor) is
registered and records its receipt; one buyer lies in the next district, under
another authority. The beverage lot PJ-A fails an official sample. The expected
scope is written out below from the scenario, not from the code under test.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from io import BytesIO

import pytest
from sqlalchemy import select

from conftest import data_fixture
from foodtrace.accounts.models import Authority
from foodtrace.accounts.service import create_authority
from foodtrace.cases import service as cases
from foodtrace.clock import CST
from foodtrace.db import read_session, write_session
from foodtrace.errors import AccessDenied, RecordError
from foodtrace.verify import verify_ledger
from schemas.identifiers import credit_code_check_char

import factories as f


def _code(prefix: str) -> str:
    return prefix + credit_code_check_char(prefix)


OUTSIDE = _code("91370402MA3K7P2D1")  # a registered buyer in 市中区 (370402)
DISTRICT_AUTH = _code("11370404MB2854321")
CITY_AUTH = _code("11370402MB2854333")  # 市中区's authority: the referral goes there

SUGAR_PRODUCT = f.SUGAR_PRODUCT
WS_PRODUCT = f.product(code="WS500", name="鲜榨石榴汁", gtin=None, packaging=[])

# (seller, lot, customer code, quantity, unit, base quantity)
SALES = [
    ("sugar", "BT1", "BEV", "2000", "kg", "2000"),
    ("sugar", "BT1", "WS", "150", "kg", "150"),
    ("sugar", "BT1", "BAKERY", "500", "kg", "500"),
    ("sugar", "BT2", "BEV", "1000", "kg", "1000"),
    ("beverage", "PJ-A", "DIST01", "100", "箱", "2400"),
    ("beverage", "PJ-A", "MART", "30", "箱", "720"),
    ("beverage", "PJ-B", "MART", "20", "箱", "480"),
    ("beverage", "PJ-B", "OUT", "10", "箱", "240"),
    ("beverage", "PJ-C", "MART", "50", "箱", "1200"),
    ("beverage", "PJ-D", "DIST01", "40", "箱", "960"),
    ("beverage", "PJ-E", "MART", "5", "箱", "120"),
    ("workshop", "WS-1", "SHOP", "80", "瓶", "80"),
    ("workshop", "WS-2", "SHOP", "60", "瓶", "60"),
]
PRODUCED = {  # (enterprise, lot) -> base quantity produced
    ("sugar", "BT1"): "5000",
    ("sugar", "BT2"): "5000",
    ("beverage", "PJ-A"): "4800",
    ("beverage", "PJ-B"): "4800",
    ("beverage", "PJ-C"): "4800",
    ("beverage", "PJ-D"): "4800",
    ("beverage", "PJ-E"): "4800",
    ("workshop", "WS-1"): "300",
    ("workshop", "WS-2"): "300",
}
# What the scope must hold, and why, from the scenario:
EXPECTED = {
    ("beverage", "PJ-A"): "sampled",
    ("sugar", "BT1"): "source",  # the suspect sugar batch itself
    ("beverage", "PJ-B"): "shared_material",  # made from the same sugar
    ("beverage", "PJ-D"): "shared_material",  # from BT1 and BT2: BT1 brings it in
    ("workshop", "WS-1"): "shared_material",  # the other manufacturer's lots from BT1
    ("workshop", "WS-2"): "shared_material",
    ("beverage", "PJ-E"): "ccp_deviation",  # ran during PJ-A's pasteuriser deviation
}  # not PJ-C (BT2 only, another day), not BT2


@data_fixture
def district(engine, clock) -> dict[str, int]:
    ids = {
        "sugar": f.register(engine, clock, f.SUGAR, name="枣庄鲁南糖业有限公司"),
        "beverage": f.register(engine, clock, f.BEVERAGE),
        "workshop": f.register(
            engine, clock, f.WORKSHOP, name="峄城区榴乡情石榴汁加工小作坊",
            licence_no="SC10637040400099",
        ),
        "distributor": f.register(
            engine, clock, f.DISTRIBUTOR, name="枣庄惠民食品经销有限公司",
            kind="distributor", licence_no=None,
        ),
        "outside": f.register(
            engine, clock, OUTSIDE, name="市中区万家福超市", kind="distributor",
            licence_no=None, region_code="370402",
        ),
    }  # fmt: skip
    add = lambda who, kind, data: f.add(engine, clock, ids[who], kind, data)  # noqa: E731
    # the sugar maker
    add("sugar", "supplier", f.supplier(code="CANE", name="甘蔗合作社", credit_code=None))
    add("sugar", "product", SUGAR_PRODUCT)
    add("sugar", "material_check", f.cane_receipt("CANE-1", "GZ1", "90000", "2026-02-10"))
    for lot, day in (("BT1", "2026-02-11"), ("BT2", "2026-02-12")):
        add("sugar", "production_lot", f.sugar_lot(lot, day, "CANE-1"))
    for code, name, credit in (
        ("BEV", "枣庄峄城石榴饮品有限公司", f.BEVERAGE),
        ("WS", "峄城区榴乡情石榴汁加工小作坊", f.WORKSHOP),
        ("BAKERY", "峄城区好味道糕点店", None),
    ):
        add("sugar", "customer", f.customer(code=code, name=name, credit_code=credit))
    # the beverage maker receives BT1 and BT2
    add("beverage", "supplier", f.supplier())
    for code, name, credit in (
        ("DIST01", "枣庄惠民食品经销有限公司", f.DISTRIBUTOR),
        ("MART", "峄城区惠佳超市", None),
        ("OUT", "市中区万家福超市", OUTSIDE),
    ):
        add("beverage", "customer", f.customer(code=code, name=name, credit_code=credit))
    add("beverage", "product", f.product())
    add(
        "beverage",
        "material_check",
        f.material_check(
            material_lot="ML-S1", batch_no="BT1", quantity="2000", receipt_date="2026-02-14"
        ),
    )
    add(
        "beverage",
        "material_check",
        f.material_check(
            material_lot="ML-S2", batch_no="BT2", quantity="1000", receipt_date="2026-02-14"
        ),
    )
    runs = {
        "PJ-A": ("2026-02-20", "08:00", "12:00", ["ML-S1"]),
        "PJ-B": ("2026-02-21", "08:00", "12:00", ["ML-S1"]),
        "PJ-C": ("2026-02-22", "08:00", "12:00", ["ML-S2"]),
        "PJ-D": ("2026-02-23", "08:00", "12:00", ["ML-S1", "ML-S2"]),
        "PJ-E": ("2026-02-20", "10:10", "14:00", ["ML-S2"]),  # the second line, same day
    }
    for lot, (day, start, end, mls) in runs.items():
        add(
            "beverage",
            "production_lot",
            f.production_lot(
                lot_code=lot,
                production_date=day,
                started_at=f"{day}T{start}:00+08:00",
                ended_at=f"{day}T{end}:00+08:00",
                quantity="200",
                unit="箱",
                materials=[{"material_lot": m, "quantity": "100", "unit": "kg"} for m in mls],
            ),
        )
    deviation = add(
        "beverage",
        "ccp_record",
        f.ccp_record(lot_code="PJ-A", value="83.0", measured_at="2026-02-20T10:00:00+08:00"),
    )
    add(
        "beverage",
        "corrective_action",
        {
            "reading_seq": deviation.seq,
            "action": "停线，复杀",
            "operator": "李强",
            "taken_at": "2026-02-20T10:20:00+08:00",
        },
    )
    # another deviation, on PJ-C's own day: it must not pull anything in
    add(
        "beverage",
        "ccp_record",
        f.ccp_record(
            lot_code="PJ-C",
            value="84.0",
            measured_at="2026-02-22T09:00:00+08:00",
            corrective_action="复杀",
        ),
    )
    # the workshop receives BT1, the distributor receives PJ-A
    add("workshop", "supplier", f.supplier())
    add("workshop", "customer", f.customer(code="SHOP", name="景区商店", credit_code=None))
    add("workshop", "product", WS_PRODUCT)
    add(
        "workshop",
        "material_check",
        f.material_check(
            material_lot="WS-S1", batch_no="BT1", quantity="150", receipt_date="2026-02-15"
        ),
    )
    for lot, day in (("WS-1", "2026-02-16"), ("WS-2", "2026-02-17")):
        add(
            "workshop",
            "production_lot",
            f.production_lot(
                product_code="WS500",
                lot_code=lot,
                production_date=day,
                started_at=f"{day}T08:00:00+08:00",
                ended_at=f"{day}T10:00:00+08:00",
                quantity="300",
                unit="瓶",
                materials=[{"material_lot": "WS-S1", "quantity": "20", "unit": "kg"}],
            ),
        )
    add(
        "distributor",
        "supplier",
        f.supplier(
            code="BEV",
            name="枣庄峄城石榴饮品有限公司",
            credit_code=f.BEVERAGE,
            licence_no="SC10637040400012",
        ),
    )
    add(
        "distributor",
        "material_check",
        f.material_check(
            material_lot="D-PJA",
            material_name="石榴汁饮料",
            supplier_code="BEV",
            batch_no="PJ-A",
            quantity="100",
            unit="箱",
            receipt_date="2026-02-25",
            supplier_licence_no="SC10637040400012",
        ),
    )
    for seller, lot, cust, qty, unit, _base in SALES:
        day = "2026-02-25" if seller != "sugar" else "2026-02-13"
        add(
            seller,
            "sale",
            f.sale(lot_code=lot, quantity=qty, unit=unit, sale_date=day, customer_code=cust),
        )
    with write_session(engine) as s:
        for code, name, regions in (
            (DISTRICT_AUTH, "峄城区市场监督管理局", ["370404"]),
            (CITY_AUTH, "市中区市场监督管理局", ["370402"]),
        ):
            create_authority(
                session=s, credit_code=code, name=name, region_codes=regions, now=clock.now()
            )
    return ids


CODES = {"sugar": f.SUGAR, "beverage": f.BEVERAGE, "workshop": f.WORKSHOP}
SAMPLE = {
    "credit_code": f.BEVERAGE,
    "lot_code": "PJ-A",
    "test_item": "菌落总数",
    "result": "3.2×10⁴",
    "limit": "≤1×10⁴",
    "unit": "CFU/mL",
    "sampling_date": "2026-03-01",
    "report_no": "SJ-2026-0301",
}


def _authority(session, code: str = DISTRICT_AUTH) -> Authority:
    return session.execute(select(Authority).where(Authority.credit_code == code)).scalar_one()


def _open(engine, clock, **over) -> cases.Opened:
    with write_session(engine) as s:
        return cases.open_case(
            session=s, authority=_authority(s), data={**SAMPLE, **over}, actor="reg", clock=clock
        )


def test_the_recall_scope_holds_exactly_the_lots_customers_and_quantities(
    engine, clock, district
) -> None:
    opened = _open(engine, clock)
    scope = opened.scope
    names = {v: k for k, v in CODES.items()}
    got = {(names[s.credit_code], s.lot_code): s.reason for s in scope.lots}
    assert got == EXPECTED
    # every customer of every lot in scope, with the quantities sold
    want_sales = sorted(
        (CODES[seller], lot, cust, qty, unit, Decimal(base))
        for seller, lot, cust, qty, unit, base in SALES
        if (seller, lot) in EXPECTED
    )
    got_sales = sorted(
        (x.credit_code, x.lot_code, x.customer_code, x.quantity, x.unit, x.quantity_base)
        for x in scope.sales
    )
    assert got_sales == want_sales
    # mass balance of every lot: produced, sold, still held (base units)
    for s in scope.lots:
        key = (names[s.credit_code], s.lot_code)
        sold = sum(
            (Decimal(b) for who, lot, _c, _q, _u, b in SALES if (who, lot) == key), Decimal(0)
        )
        assert (s.produced, s.sold, s.held) == (
            Decimal(PRODUCED[key]),
            sold,
            Decimal(PRODUCED[key]) - sold,
        )
    # the registered distributor's receipt is on the trail; the outside buyer is named only
    nodes = scope.trail.nodes.values()
    assert (f.DISTRIBUTOR, "D-PJA") in {(n.credit_code, n.code) for n in nodes}
    assert [(n.credit_code, n.outside) for n in scope.outside] == [(OUTSIDE, True)]
    assert [(d.lot_code, d.ccp, d.closed_at) for d in scope.deviations] == [
        ("PJ-A", "CCP1", "2026-02-20T02:20:00Z")
    ]


def test_naming_the_suspect_materials_narrows_the_scope(engine, clock, district) -> None:
    process_only = _open(engine, clock, suspect_materials=[]).scope
    assert {s.lot_code: s.reason for s in process_only.lots} == {
        "PJ-A": "sampled",
        "PJ-E": "ccp_deviation",
    }
    with pytest.raises(RecordError) as exc:
        _open(engine, clock, suspect_materials=["ML-S2"])
    assert exc.value.problems[0].loc == ("suspect_materials",)


def test_outside_the_jurisdiction_becomes_a_referral_shown_to_both(engine, clock, district) -> None:
    opened = _open(engine, clock)
    assert len(opened.referrals) == 1
    with read_session(engine) as s:
        received = cases.referrals_to(s, _authority(s, CITY_AUTH))
        assert [ref for ref, _r, _c in received] == [opened.case_id]
        data = json.loads(received[0][1].data)
        assert data == [
            {
                "credit_code": OUTSIDE,
                "name": "市中区万家福超市",
                "region_code": "370402",
                "relation": "customer",
                "via": "枣庄峄城石榴饮品有限公司 PJ-B",
            }
        ]
        # the referring authority sees it on its own case
        view = cases.case_view(s, opened.case_id, viewer=_authority(s))
        assert [r.to_authority for r in view.referrals] == [CITY_AUTH]
        assert list(view.referral_names.values()) == ["市中区市场监督管理局"]


def _users(engine, clock) -> None:
    for user, ent in (("bev", f.BEVERAGE), ("ws", f.WORKSHOP), ("sug", f.SUGAR)):
        f.user(engine, clock, user, "enterprise pass 1", enterprise=ent)
    for user, auth in (("reg", DISTRICT_AUTH), ("reg_city", CITY_AUTH)):
        f.user(engine, clock, user, "regulator pass 1", authority=auth)


def _auth(client, user: str) -> dict[str, str]:
    pw = "regulator pass 1" if user.startswith("reg") else "enterprise pass 1"
    r = client.post("/api/v1/auth/token", data={"username": user, "password": pw})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_a_case_goes_from_failed_sample_to_closed_with_the_recall_public(
    client, engine, clock, district
) -> None:
    _users(engine, clock)
    clock.advance(timedelta(hours=4))  # the morning of 2 March: actions at 09:00-11:00 are past
    reg = _auth(client, "reg")
    r = client.post("/api/v1/failed-samples", json=SAMPLE, headers=reg)
    assert r.status_code == 201, r.text
    case = r.json()
    ref = case["id"]
    assert r.headers["location"] == f"/api/v1/cases/{ref}"
    assert case["state"] == "opened"
    assert case["next_states"] == ["notified", "closed"]
    assert {(x["lot_code"], x["reason"]) for x in case["lots"]} >= {("PJ-A", "sampled")}
    pja = next(x for x in case["lots"] if x["lot_code"] == "PJ-A")
    assert (pja["produced"], pja["sold"], pja["held"], pja["unit"]) == (
        "4800",
        "3120",
        "1680",
        "瓶",
    )
    # the enterprise does not see the case before it is notified; the public sees no recall
    bev = _auth(client, "bev")
    assert client.get("/api/v1/enterprise/cases", headers=bev).json()["data"] == []
    assert not client.get(f"/lot/{f.BEVERAGE}/PJ-A", headers={"Accept": "application/json"}).json()[
        "recalls"
    ]
    # an enterprise cannot act before notification
    action = {"case": ref, "action": "notification", "customer_code": "MART",
              "at": "2026-03-02T01:00:00Z"}  # fmt: skip
    r = client.post("/api/v1/enterprise/recall-actions", json=action, headers=bev)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][-1] == "case", r.text

    r = client.post(f"/api/v1/cases/{ref}/steps", json={"state": "notified"}, headers=reg)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "notified"
    assert r.json()["next_states"] == []
    # every affected lot in the jurisdiction is now recalled on the consumer page
    for (who, lot), _why in EXPECTED.items():
        page = client.get(f"/lot/{CODES[who]}/{lot}", headers={"Accept": "application/json"})
        assert page.status_code == 200
        assert [x["case"] for x in page.json()["recalls"]] == [ref], (who, lot)
    html = client.get(f"/lot/{f.BEVERAGE}/PJ-B").text
    assert "召回" in html
    assert (
        client.get(f"/lot/{f.BEVERAGE}/PJ-C", headers={"Accept": "application/json"}).json()[
            "recalls"
        ]
        == []
    )

    # the enterprises see their part, and record their recall actions
    mine = client.get(f"/api/v1/enterprise/cases/{ref}", headers=bev).json()
    assert {x["lot_code"] for x in mine["lots"]} == {"PJ-A", "PJ-B", "PJ-D", "PJ-E"}
    assert {x["credit_code"] for x in mine["sales"]} == {f.BEVERAGE}  # no one else's customers
    assert mine["trail"] is None
    assert mine["referrals"] == []
    r = client.post("/api/v1/enterprise/recall-actions", json=action, headers=bev)
    assert r.status_code == 201, r.text
    assert [e["kind"] for e in r.json()] == ["recall_action", "case_step"]
    recovery = {"case": ref, "action": "recovery", "lot_code": "PJ-A", "customer_code": "MART",
                "quantity": "30", "unit": "箱", "at": "2026-03-02T01:10:00Z"}  # fmt: skip
    r = client.post("/api/v1/enterprise/recall-actions", json=recovery, headers=bev)
    assert r.status_code == 201
    assert r.json()[0]["warnings"] == []
    # MART bought 30 箱 of PJ-A: all 720 瓶 are back, so one more is refused with the numbers
    too_much = {**recovery, "quantity": "1"}
    r = client.post("/api/v1/enterprise/recall-actions", json=too_much, headers=bev)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["type"] == "over_recovered"
    assert "sold 720 瓶" in r.json()["detail"][0]["msg"]
    assert "at most 0 瓶" in r.json()["detail"][0]["msg"]
    disposal = {"case": ref, "action": "disposal", "lot_code": "PJ-A", "quantity": "1680",
                "unit": "瓶", "method": "监督销毁", "at": "2026-03-02T02:00:00Z"}  # fmt: skip
    assert (
        client.post("/api/v1/enterprise/recall-actions", json=disposal, headers=bev).status_code
        == 201
    )
    # a lot outside the case's scope is refused, naming the field
    r = client.post(
        "/api/v1/enterprise/recall-actions", json={**disposal, "lot_code": "PJ-C"}, headers=bev
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-1] == "lot_code"
    # completion is refused while customers are not notified and stock has no disposal ...
    done = {"case": ref, "action": "completed", "at": "2026-03-02T03:00:00Z"}
    r = client.post("/api/v1/enterprise/recall-actions", json=done, headers=bev)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["type"] == "recall_open"
    assert "DIST01" in r.json()["detail"][0]["msg"]

    def reasons(headers):
        view = client.get(f"/api/v1/enterprise/cases/{ref}", headers=headers).json()
        assert view["open_items"], view
        return [
            {f"{x['kind']}_code": x["code"], "reason": "reported_to_bureau"}
            for x in view["open_items"]
        ]

    # ... and accepted when each open item carries its reason
    r = client.post(
        "/api/v1/enterprise/recall-actions", json={**done, "open_items": reasons(bev)}, headers=bev
    )
    assert r.status_code == 201, r.text
    # the regulator cannot verify while the workshop and the sugar maker have not finished
    r = client.post(f"/api/v1/cases/{ref}/steps", json={"state": "verified"}, headers=reg)
    assert r.status_code == 422
    for user in ("ws", "sug"):
        headers = _auth(client, user)
        r = client.post(
            "/api/v1/enterprise/recall-actions",
            json={**done, "open_items": reasons(headers)},
            headers=headers,
        )
        assert r.status_code == 201, r.text
    case = client.get(f"/api/v1/cases/{ref}", headers=reg).json()
    assert case["state"] == "recall_recorded"
    assert [(r["to_authority"], r["to_name"]) for r in case["referrals"]] == [
        (CITY_AUTH, "市中区市场监督管理局")
    ]
    assert all(c["completed"] for c in case["concerned"] if c["in_jurisdiction"])
    pja = next(x for x in case["lots"] if x["lot_code"] == "PJ-A")
    assert (pja["recovered"], pja["disposed"]) == ("720", "1680")  # 30 箱 of 24 瓶
    # the regulator sees every item left open and its reason before verifying
    assert case["open_items"]
    assert all(x["reason"] == "reported_to_bureau" for x in case["open_items"])
    progress = {p["credit_code"]: p for p in case["progress"]}
    assert progress[f.BEVERAGE]["completed"]
    assert progress[f.BEVERAGE]["customers_notified"] < progress[f.BEVERAGE]["customers"]
    mart = next(
        s for s in case["sales"] if s["lot_code"] == "PJ-A" and s["customer_code"] == "MART"
    )
    assert mart["notified"]
    assert mart["recovered"] == "720"
    for state in ("verified", "closed"):
        r = client.post(
            f"/api/v1/cases/{ref}/steps", json={"state": state, "note": "核查完毕"}, headers=reg
        )
        assert r.status_code == 200, r.text
    closed = r.json()
    assert closed["state"] == "closed"
    assert closed["next_states"] == []
    assert [s["state"] for s in closed["steps"]] == [
        "notified", "recall_underway", "recall_recorded", "verified", "closed"
    ]  # fmt: skip
    assert [s["by_role"] for s in closed["steps"]][1:3] == ["enterprise", "enterprise"]
    # the recall stays on the consumer page after closure
    page = client.get(f"/lot/{f.WORKSHOP}/WS-2", headers={"Accept": "application/json"}).json()
    assert page["recalls"][0]["state"] == "closed"
    # a closed case takes no more steps or actions
    r = client.post(f"/api/v1/cases/{ref}/steps", json={"state": "closed"}, headers=reg)
    assert r.status_code == 422
    # and every ledger involved still verifies, the authority's included
    with read_session(engine) as s:
        auth_ledger = cases.authority_ledger(s, _authority(s), clock)
        for lid in (auth_ledger.id, *district.values()):
            report = verify_ledger(session=s, ledger_id=lid)
            assert report.ok, report.problems


def test_case_access_follows_the_jurisdiction(client, engine, clock, district) -> None:
    _users(engine, clock)
    reg, city = _auth(client, "reg"), _auth(client, "reg_city")
    # the city authority cannot open a case on an enterprise outside its jurisdiction
    r = client.post("/api/v1/failed-samples", json=SAMPLE, headers=city)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-1] == "credit_code"
    ref = client.post("/api/v1/failed-samples", json=SAMPLE, headers=reg).json()["id"]
    # it reads the case referred to it, without seeing into the district's enterprises
    listed = client.get("/api/v1/cases", headers=city).json()
    assert listed["data"] == []
    assert [c["id"] for c in listed["referred"]] == [ref]
    seen = client.get(f"/api/v1/cases/{ref}", headers=city).json()
    assert seen["next_states"] == []
    assert (
        client.post(
            f"/api/v1/cases/{ref}/steps", json={"state": "notified"}, headers=city
        ).status_code
        == 404
    )
    # enterprises: only those in scope, only once notified; nobody without credentials
    client.post(f"/api/v1/cases/{ref}/steps", json={"state": "notified"}, headers=reg)
    f.user(engine, clock, "dist", "enterprise pass 1", enterprise=f.DISTRIBUTOR)
    dist = _auth(client, "dist")
    assert client.get(f"/api/v1/enterprise/cases/{ref}", headers=dist).status_code == 404
    assert client.get(f"/api/v1/cases/{ref}", headers=_auth(client, "bev")).status_code == 403
    assert client.get(f"/api/v1/cases/{ref}").status_code == 401
    assert client.get("/api/v1/cases/NOT-A-CASE", headers=reg).status_code == 422

    # A third authority (the prefecture, over the whole city) opens its own first case on
    # the same lot: its case has the same seq in its own ledger as the district's. The
    # authority the district referred to still sees only the district's case.
    pref = f.authority(engine, clock, "11370400MB2854300", "枣庄市市场监督管理局", "370400")
    f.user(engine, clock, "reg_pref", "regulator pass 1", authority=pref)
    other = client.post(
        "/api/v1/failed-samples", json={**SAMPLE, "report_no": "SJ-PREF-1"},
        headers=_auth(client, "reg_pref"),
    ).json()["id"]  # fmt: skip
    assert other.split("-")[1] == ref.split("-")[1]  # the same seq, another ledger
    assert client.get(f"/api/v1/cases/{other}", headers=city).status_code == 404
    assert client.get(f"/api/v1/cases/{ref}", headers=city).status_code == 200


def test_bad_failed_samples_are_refused_naming_the_field(client, engine, clock, district) -> None:
    _users(engine, clock)
    reg = _auth(client, "reg")
    for over, field in (
        ({"lot_code": "NO-SUCH"}, "lot_code"),
        ({"sampling_date": "2099-01-01"}, "sampling_date"),
        ({"report_no": ""}, "report_no"),
        ({"suspect_materials": ["ML-X"]}, "suspect_materials"),
    ):
        r = client.post("/api/v1/failed-samples", json={**SAMPLE, **over}, headers=reg)
        assert r.status_code == 422, over
        assert field in r.json()["detail"][0]["loc"], r.json()
    with read_session(engine) as s:
        assert cases.list_cases(s, authority=_authority(s)) == []


def test_a_retried_failed_sample_opens_one_case(client, engine, clock, district) -> None:
    _users(engine, clock)
    reg = {**_auth(client, "reg"), "Idempotency-Key": "sample-0301"}
    first = client.post("/api/v1/failed-samples", json=SAMPLE, headers=reg)
    again = client.post("/api/v1/failed-samples", json=SAMPLE, headers=reg)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert len(client.get("/api/v1/cases", headers=reg).json()["data"]) == 1


def test_the_scope_exports_as_a_workbook_and_as_epcis(client, engine, clock, district) -> None:
    from openpyxl import load_workbook

    _users(engine, clock)
    reg = _auth(client, "reg")
    ref = client.post("/api/v1/failed-samples", json=SAMPLE, headers=reg).json()["id"]
    r = client.get(f"/api/v1/cases/{ref}/scope.xlsx", headers=reg)
    assert r.status_code == 200
    wb = load_workbook(BytesIO(r.content))
    assert wb.sheetnames == ["受影响批次", "客户", "追溯"]
    lots = {row[2] for row in wb["受影响批次"].iter_rows(min_row=2, values_only=True)}
    assert lots == {lot for _who, lot in EXPECTED}
    customers = list(wb["客户"].iter_rows(min_row=2, values_only=True))
    assert len(customers) == sum(1 for s in SALES if (s[0], s[1]) in EXPECTED)
    r = client.get(f"/api/v1/cases/{ref}/scope.epcis.jsonld", headers=reg)
    assert r.status_code == 200
    assert r.json()["type"] == "EPCISDocument"


def test_an_enterprise_cannot_write_an_authoritys_kinds(engine, clock, district) -> None:
    with pytest.raises(RecordError) as exc:
        f.add(engine, clock, district["beverage"], "case_step", {"case_seq": 1, "state": "closed"})
    assert exc.value.problems[0].type == "wrong_ledger"
    opened = _open(engine, clock)
    with write_session(engine) as s:
        from foodtrace.accounts.models import Enterprise

        dist = s.get(Enterprise, district["distributor"])
        with pytest.raises(AccessDenied):  # the distributor has no lot in scope
            cases.record_recall_action(
                session=s, enterprise=dist, actor="d", clock=clock,
                data={"case": opened.case_id, "action": "completed", "at": "2026-03-02T01:00:00Z"},
            )  # fmt: skip


def test_a_tampered_case_entry_fails_verification(client, engine, clock, district) -> None:
    """The closed loop is as verifiable as the records: the authority's ledger included."""
    from foodtrace.ledger.models import Entry

    _users(engine, clock)
    reg = _auth(client, "reg")
    ref = client.post("/api/v1/failed-samples", json=SAMPLE, headers=reg).json()["id"]
    report = client.get("/api/v1/regulator/verify", headers=reg).json()
    assert [r["credit_code"] for r in report][-1] == DISTRICT_AUTH  # its own ledger, last
    assert all(r["ok"] for r in report)
    with write_session(engine) as s:
        lid = cases.authority_ledger(s, _authority(s), clock).id
        entry = s.get(Entry, (lid, int(ref.rsplit("-", 1)[1])))
        entry.body = entry.body.replace(b"SJ-2026-0301", b"SJ-2026-0999")
    report = client.get("/api/v1/regulator/verify", headers=reg).json()
    own = report[-1]
    assert own["credit_code"] == DISTRICT_AUTH
    assert not own["ok"]
    assert own["first_bad_seq"] == 1


def test_lots_are_found_by_gtin_lot_code_or_product_and_date(client, engine, clock, district):
    _users(engine, clock)
    reg = _auth(client, "reg")
    r = client.get("/api/v1/regulator/lots?gtin=06921234560013&lot=PJ-B", headers=reg)
    assert r.status_code == 200, r.text
    by_gtin = r.json()
    assert [(x["credit_code"], x["lot_code"]) for x in by_gtin] == [(f.BEVERAGE, "PJ-B")]
    by_product = client.get(
        "/api/v1/regulator/lots?product=石榴&date=2026-02-20", headers=reg
    ).json()
    assert sorted(x["lot_code"] for x in by_product) == ["PJ-A", "PJ-E"]
    by_code = client.get("/api/v1/regulator/lots?lot=BT1", headers=reg).json()
    assert [x["credit_code"] for x in by_code] == [f.SUGAR]
    # the city authority sees none of the district's lots
    assert (
        client.get("/api/v1/regulator/lots?lot=BT1", headers=_auth(client, "reg_city")).json() == []
    )
    r = client.get("/api/v1/regulator/lots", headers=reg)
    assert r.status_code == 422


def test_the_consumer_page_says_why_each_lot_is_recalled(client, engine, clock, district) -> None:
    """The sampled lot names its failed item and result; a lot recalled for sharing a material
    or a deviation says so and that it did not fail itself (issue 23), in the proven notice."""
    opened = _open(engine, clock)
    with write_session(engine) as s:
        cases.advance(
            session=s, authority=_authority(s), case_seq=opened.recorded.seq, state="notified",
            note=None, actor="reg", clock=clock,
        )  # fmt: skip
    sampled = client.get("/01/06921234560013/10/PJ-A").text
    assert "本批次官方抽检不合格" in sampled
    assert "菌落总数不合格" in sampled
    assert "本批次本身并未检出不合格" not in sampled
    for path, words in (
        (f"/lot/{f.WORKSHOP}/WS-2", "使用了同一批原料"),
        ("/01/06921234560013/10/PJ-E", "关键控制点偏离限值"),
        ("/01/06921234560013/10/PJ-B", "使用了同一批原料"),
    ):
        page = client.get(path).text
        assert words in page, path
        assert "本批次本身并未检出不合格" in page, path
        assert "PJ-A" in page  # the failed lot it is linked to
        data = client.get(path, headers={"Accept": "application/json"}).json()
        [notice] = data["recalls"]
        assert notice["why"] in ("shared_material", "ccp_deviation")


def test_a_passed_release_test_beside_a_recall_is_said_to_be_the_test_before_it(
    client, engine, clock
) -> None:
    f.beverage_ledger(engine, clock)
    path = "/01/06921234560013/10/PJ20260301A"
    assert "在召回之前的出厂检验结果" not in client.get(path).text
    f.recall(engine, clock, f.BEVERAGE, "PJ20260301A")
    page = client.get(path).text
    assert "在召回之前的出厂检验结果" in page
    assert "本批次官方抽检不合格" in page


def test_an_enterprises_case_view_pages_its_sales(client, engine, clock, district) -> None:
    _users(engine, clock)
    reg, bev = _auth(client, "reg"), _auth(client, "bev")
    ref = client.post("/api/v1/failed-samples", json=SAMPLE, headers=reg).json()["id"]
    client.post(f"/api/v1/cases/{ref}/steps", json={"state": "notified"}, headers=reg)
    whole = client.get(f"/api/v1/enterprise/cases/{ref}", headers=bev).json()
    assert whole["sales_count"] == len(whole["sales"]) > 2
    seen, after = [], None
    while True:
        params = {"sales_limit": 2, **({"sales_after": after} if after is not None else {})}
        page = client.get(f"/api/v1/enterprise/cases/{ref}", headers=bev, params=params).json()
        assert len(page["sales"]) <= 2
        seen += page["sales"]
        after = page["sales_next"]
        if after is None:
            break
    assert seen == whole["sales"]


def test_exports_are_named_by_their_lot_and_day(client, engine, clock, district) -> None:
    from urllib.parse import quote, unquote

    _users(engine, clock)
    reg = _auth(client, "reg")
    day = clock.now().astimezone(CST).date().isoformat()
    r = client.get(f"/api/v1/lots/{f.BEVERAGE}/PJ-A/trail.csv", headers=reg)
    assert r.status_code == 200
    disposition = r.headers["content-disposition"]
    assert f"filename*=UTF-8''{quote(f'PJ-A-追溯-{day}.csv', safe='')}" in disposition
    assert f'filename="PJ-A-__-{day}.csv"' in disposition  # the ASCII fallback
    ref = client.post("/api/v1/failed-samples", json=SAMPLE, headers=reg).json()["id"]
    r = client.get(f"/api/v1/cases/{ref}/scope.xlsx", headers=reg)
    name = unquote(r.headers["content-disposition"].split("UTF-8''")[1])
    assert name == f"PJ-A-召回范围-案件{ref.rsplit('-', 1)[1]}-{day}.xlsx"


def test_notify_all_retried_answers_the_same_and_writes_once(client, engine, clock, district):
    """A retry of notify-all with its Idempotency-Key gets the first answer again and writes
    nothing more; another enterprise cannot notify for a case that is not its own."""
    from sqlalchemy import func

    from foodtrace.ledger.models import Entry

    _users(engine, clock)
    reg, bev = _auth(client, "reg"), _auth(client, "bev")
    ref = client.post("/api/v1/failed-samples", json=SAMPLE, headers=reg).json()["id"]
    client.post(f"/api/v1/cases/{ref}/steps", json={"state": "notified"}, headers=reg)
    body = {"lot_code": "PJ-A", "at": "2026-03-02T00:10:00Z", "note": "电话通知"}
    keyed = {**bev, "Idempotency-Key": "notify-pja-1"}
    first = client.post(f"/api/v1/enterprise/cases/{ref}/notify-all", json=body, headers=keyed)
    assert first.status_code == 201, first.text
    assert [r["kind"] for r in first.json()].count("recall_action") == 2  # DIST01 and MART
    with read_session(engine) as s:
        size = s.execute(select(func.count()).select_from(Entry)).scalar_one()
    again = client.post(f"/api/v1/enterprise/cases/{ref}/notify-all", json=body, headers=keyed)
    assert again.status_code == 200, again.text
    # the same recall actions (a case step the first try moved is not a replay of this call,
    # as for a single recall action retried)
    actions = [r["seq"] for r in first.json() if r["kind"] == "recall_action"]
    assert [r["seq"] for r in again.json()] == actions
    with read_session(engine) as s:
        assert s.execute(select(func.count()).select_from(Entry)).scalar_one() == size
    # the workshop has no PJ-A: refused, naming the lot, nothing written
    ws = _auth(client, "ws")
    r = client.post(f"/api/v1/enterprise/cases/{ref}/notify-all", json=body, headers=ws)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][-1] == "lot_code"
    with read_session(engine) as s:
        assert s.execute(select(func.count()).select_from(Entry)).scalar_one() == size
