"""The lot trail across enterprises: back to the supplier's lot, forward to customers' lots."""

from __future__ import annotations

import pytest

from conftest import data_fixture
from foodtrace.db import read_session
from foodtrace.errors import NotFound
from foodtrace.trail import lot_trail, material_trail

import factories as f

SUGAR_PRODUCT = f.SUGAR_PRODUCT


@data_fixture
def district(engine, clock) -> dict[str, int]:
    """A registered sugar maker whose batch BT20260301 the beverage maker received and used."""
    # the sugar maker lies in the next district (市中区, 370402)
    sugar = f.register(
        engine,
        clock,
        f.SUGAR,
        name="枣庄鲁南糖业有限公司",
        licence_no="SC10137040400011",
        region_code="370402",
    )
    cane = f.supplier(code="CANE", name="峄城甘蔗合作社", credit_code=None, licence_no=None)
    shipped = f.sale(lot_code="BT20260301", quantity="2000", unit="kg", sale_date="2026-02-28",
                     customer_code="BEV")  # fmt: skip
    for kind, data in (
        ("supplier", cane),
        ("customer", f.customer(code="BEV", name="石榴饮品", credit_code=f.BEVERAGE)),
        ("product", SUGAR_PRODUCT),
        ("material_check", f.cane_receipt("CANE-0220", "GZ0220", "50000", "2026-02-20")),
        ("production_lot", f.sugar_lot("BT20260301", "2026-02-25", "CANE-0220")),
        ("sale", shipped),
    ):
        f.add(engine, clock, sugar, kind, data)
    beverage = f.beverage_ledger(engine, clock)  # receives BT20260301 as ML-0301-01
    return {"sugar": sugar, "beverage": beverage}


def _trail(engine, ledger_id: int, lot_code: str, direction: str, **kw):  # type: ignore[no-untyped-def]
    with read_session(engine) as s:
        return lot_trail(
            session=s, enterprise_id=ledger_id, lot_code=lot_code, direction=direction, **kw
        )


def test_backward_crosses_into_the_suppliers_ledger(engine, district) -> None:
    trail = _trail(engine, district["beverage"], "PJ20260301A", "backward")
    codes = {(n.credit_code, n.type, n.code) for n in trail.nodes.values()}
    assert (f.BEVERAGE, "material_lot", "ML-0301-01") in codes
    assert (f.SUGAR, "lot", "BT20260301") in codes  # across, by (credit code, batch no.)
    assert (f.SUGAR, "material_lot", "CANE-0220") in codes  # and on back
    shipped = [e for e in trail.edges if e.type == "shipped"]
    assert [(e.quantity, e.unit, e.date) for e in shipped] == [("2000", "kg", "2026-02-28")]
    assert all(len(n.hash) == 64 and n.seq for n in trail.nodes.values())


def test_depth_limits_the_enterprise_hops(engine, district) -> None:
    trail = _trail(engine, district["beverage"], "PJ20260301A", "backward", depth=1)
    assert {n.credit_code for n in trail.nodes.values() if n.type == "lot"} == {f.BEVERAGE}


def test_forward_from_the_suppliers_lot_reaches_the_customers_lots_and_buyers(engine, district):
    trail = _trail(engine, district["sugar"], "BT20260301", "forward")
    by_type = {}
    for n in trail.nodes.values():
        by_type.setdefault(n.type, set()).add((n.credit_code, n.code))
    assert (f.BEVERAGE, "PJ20260301A") in by_type["lot"]
    assert (f.BEVERAGE, "ML-0301-01") in by_type["material_lot"]
    # the distributor is not registered: the trail ends at the customer, with the quantity
    assert (f.DISTRIBUTOR, "DIST01") in by_type["customer"]
    sold = [
        e
        for e in trail.edges
        if e.type == "sold" and e.source.startswith(f"lot:{district['beverage']}:")
    ]
    assert [(e.quantity, e.unit) for e in sold] == [("100", "箱")]


def test_a_receipt_of_a_batch_never_sold_is_a_finding(engine, clock, district) -> None:
    f.add(
        engine,
        clock,
        district["beverage"],
        "material_check",
        f.material_check(material_lot="ML-X", batch_no="BT-NEVER-SOLD"),
    )
    f.add(
        engine,
        clock,
        district["beverage"],
        "production_lot",
        f.production_lot(
            lot_code="PJ-X", materials=[{"material_lot": "ML-X", "quantity": "1", "unit": "kg"}]
        ),
    )
    trail = _trail(engine, district["beverage"], "PJ-X", "backward")
    assert [e.finding for e in trail.edges if e.finding] == ["receipt_without_sale"]


def test_material_lot_forward_and_unknown_lots(engine, district) -> None:
    with read_session(engine) as s:
        trail = material_trail(
            session=s, enterprise_id=district["beverage"], material_lot="ML-0301-01"
        )
        assert {n.code for n in trail.nodes.values() if n.type == "lot"} == {"PJ20260301A"}
        with pytest.raises(NotFound):
            lot_trail(session=s, enterprise_id=district["beverage"], lot_code="NOPE")


@pytest.fixture
def regulators(engine, clock) -> None:
    f.regulators(engine, clock)


def test_the_trail_stops_at_the_jurisdictions_edge(client, district, regulators) -> None:
    url = f"/api/v1/lots/{f.BEVERAGE}/PJ20260301A/trail"
    district_view = client.get(url, headers=f.bearer(client, "reg_yc"))
    assert district_view.status_code == 200
    nodes = district_view.json()["nodes"]
    outside = [n for n in nodes if n["outside"]]
    assert [(n["credit_code"], n["enterprise"], n["code"]) for n in outside] == [
        (f.SUGAR, "枣庄鲁南糖业有限公司", None)
    ]
    assert not any(n["credit_code"] == f.SUGAR and n["type"] == "lot" for n in nodes)
    city_view = client.get(url, headers=f.bearer(client, "reg_city")).json()
    assert any(
        n["credit_code"] == f.SUGAR and n["code"] == "BT20260301" for n in city_view["nodes"]
    )
    assert not any(n["outside"] for n in city_view["nodes"])
    # the district regulator cannot start from the sugar maker's lot at all
    r = client.get(f"/api/v1/lots/{f.SUGAR}/BT20260301/trail", headers=f.bearer(client, "reg_yc"))
    assert r.status_code == 404
    assert client.get(url).status_code == 401
    assert client.get(url + "?depth=99", headers=f.bearer(client, "reg_city")).status_code == 422


def test_every_regulator_read_is_logged_and_the_enterprise_sees_who_looked(
    client, engine, clock, district, regulators
) -> None:
    f.user(engine, clock, "bev", "enterprise pass 1", enterprise=f.BEVERAGE)
    city = f.bearer(client, "reg_city")
    client.get(f"/api/v1/lots/{f.BEVERAGE}/PJ20260301A/trail", headers=city)
    client.get(f"/api/v1/regulator/enterprises/{f.BEVERAGE}/verify", headers=city)
    r = client.post("/api/v1/auth/token", data={"username": "bev", "password": "enterprise pass 1"})
    bev = {"Authorization": f"Bearer {r.json()['access_token']}"}
    reads = client.get("/api/v1/enterprise/reads", headers=bev).json()
    assert [(x["authority"], x["username"]) for x in reads] == [
        ("枣庄市市场监督管理局", "reg_city")
    ] * 2
    assert reads[0]["what"] == "verify the ledger"
    assert reads[1]["what"].startswith("trail of lot PJ20260301A")
    # the sugar maker's records were on the trail too, so it sees that read as well
    from sqlalchemy import select

    from foodtrace.accounts.models import RegulatorRead

    with read_session(engine) as s:
        logged = s.execute(select(RegulatorRead.enterprise_id)).scalars().all()
    assert sorted(logged) == sorted([district["beverage"], district["sugar"], district["beverage"]])


def test_trail_exports_as_sortable_spreadsheets(client, district, regulators) -> None:
    import csv
    import io

    import openpyxl

    city = f.bearer(client, "reg_city")
    base = f"/api/v1/lots/{f.BEVERAGE}/PJ20260301A/trail"
    r = client.get(base + ".csv", headers=city)
    assert r.status_code == 200
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    shipped = [x for x in rows if x["事件类型"] == "跨企业发运"]
    assert [(x["批号"], x["数量"], x["单位"], x["日期"]) for x in shipped] == [
        ("BT20260301", "2000", "kg", "2026-02-28")
    ]
    sold = [x for x in rows if x["事件类型"] == "销售"]
    assert [(x["批号"], x["数量"], x["单位"]) for x in sold] == [("PJ20260301A", "100", "箱")]
    assert all(len(x["条目哈希"]) == 64 and x["账本序号"] for x in rows)
    r = client.get(base + ".xlsx", headers=city)
    ws = openpyxl.load_workbook(io.BytesIO(r.content)).active
    assert ws.max_row == len(rows) + 1
    assert ws.auto_filter.ref
    assert [c.value for c in ws[1]][:3] == ["事件类型", "批号", "品名"]


def test_district_verification_report(client, engine, district, regulators) -> None:
    from sqlalchemy import text

    city = f.bearer(client, "reg_city")
    reports = client.get("/api/v1/regulator/verify", headers=city).json()
    assert sorted((r["credit_code"], r["ok"]) for r in reports) == [
        (f.SUGAR, True),
        (f.BEVERAGE, True),
    ]
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE sales SET quantity = '99' WHERE enterprise_id = :e"),
            {"e": district["sugar"]},
        )
    reports = {
        r["credit_code"]: r for r in client.get("/api/v1/regulator/verify", headers=city).json()
    }
    assert reports[f.SUGAR]["ok"] is False
    assert reports[f.SUGAR]["first_bad_seq"] == 7
    assert reports[f.BEVERAGE]["ok"] is True
    district_only = client.get("/api/v1/regulator/verify", headers=f.bearer(client, "reg_yc"))
    assert [r["credit_code"] for r in district_only.json()] == [f.BEVERAGE]
