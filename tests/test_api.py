"""The JSON API: authentication, one-ledger-per-enterprise access, records, errors, idempotency."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from conftest import data_fixture
from foodtrace.accounts.service import Role
from foodtrace.db import write_session
from foodtrace.ledger.models import Ledger

import factories as f
from snapshots import snapshot

PASSWORD = "correct horse 42"
AUTHORITY = "11370404MB28543210"


@data_fixture
def world(engine, clock):
    """Two enterprises (A: beverage, B: meat), their users, a regulator, a platform admin."""
    a = f.register(engine, clock, f.BEVERAGE)
    b = f.register(
        engine, clock, f.MEAT, name="枣庄鲁味肉制品有限公司", licence_no="SC10437040400021"
    )
    auth_code = f.authority(engine, clock, AUTHORITY[:17], "峄城区市场监督管理局", "370404")
    other = f.authority(engine, clock, "11370402MB2854321", "市中区市场监督管理局", "370402")
    f.user(engine, clock, "a_op", PASSWORD, enterprise=f.BEVERAGE)
    f.user(engine, clock, "a_admin", PASSWORD, enterprise=f.BEVERAGE, role=Role.ENTERPRISE_ADMIN)
    f.user(engine, clock, "b_op", PASSWORD, enterprise=f.MEAT)
    f.user(engine, clock, "reg", PASSWORD, authority=auth_code)
    f.user(engine, clock, "reg_other", PASSWORD, authority=other)
    f.user(engine, clock, "root", PASSWORD, role=Role.PLATFORM_ADMIN)
    return {"a": a, "b": b}


def login(client: TestClient, username: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def post_user(
    client: TestClient, h: dict[str, str], path: str, username: str, role: str, **more: str
) -> Any:
    """POST a new user (password PASSWORD) to ``path`` with the headers ``h``: the response."""
    body = {"username": username, "password": PASSWORD, "role": role, **more}
    return client.post(path, headers=h, json=body)


def seed_a(client: TestClient, h: dict[str, str]) -> None:
    for path, data in (
        ("/api/v1/suppliers", f.supplier()),
        ("/api/v1/customers", f.customer()),
        ("/api/v1/products", f.product()),
        ("/api/v1/material-checks", f.material_check()),
        ("/api/v1/production-lots", f.production_lot()),
    ):
        r = client.post(path, json=data, headers=h)
        assert r.status_code == 201, r.text


# The Merkle log's routes anyone may call (README, "Checkpoints and proofs over HTTP"):
# they reveal hashes and sizes, or the entries that are public by design; a bad token
# is still refused. Their proofs of private entries need credentials (tested below with
# seq 1, the enterprise's registration).
PUBLIC = {
    "/api/v1/ledgers",
    "/api/v1/ledgers/{credit_code}/checkpoint",
    "/api/v1/ledgers/{credit_code}/proof/consistency",
}


def test_every_api_route_needs_credentials(client, world) -> None:
    spec = client.get("/openapi.json").json()
    checked = 0
    for path in PUBLIC:
        url = path.replace("{credit_code}", f.BEVERAGE) + "?from=1&to=1"
        assert client.get(url).status_code == 200, path
        r = client.get(url, headers={"Authorization": "Bearer ft_forged"})
        assert r.status_code == 401, path
    for path, ops in spec["paths"].items():
        if not path.startswith("/api/v1") or path == "/api/v1/auth/token" or path in PUBLIC:
            continue
        if path == "/api/v1/ledgers/{credit_code}/proof/inclusion":
            path += "?seq=1"
        url = (
            path.replace("{credit_code}", f.BEVERAGE)
            .replace("{lot_code}", "X")
            .replace("{seq}", "1")
            .replace("{username}", "a_op")
        )
        for method in ops:
            r = client.request(method.upper(), url)
            assert r.status_code == 401, (method, path, r.status_code)
            assert r.headers["www-authenticate"] == "Bearer"
            r = client.request(method.upper(), url, headers={"Authorization": "Bearer ft_forged"})
            assert r.status_code == 401, (method, path)
            checked += 1
    assert checked >= 25


def test_login_and_password_reset(client, world) -> None:
    r = client.post("/api/v1/auth/token", data={"username": "a_op", "password": "wrong password"})
    assert r.status_code == 401
    r = client.post("/api/v1/auth/token", data={"username": "nobody", "password": PASSWORD})
    assert r.status_code == 401
    h = login(client, "a_op")
    assert client.get("/api/v1/ledger", headers=h).status_code == 200
    root = login(client, "root")
    r = client.post(
        "/api/v1/admin/users/a_op/password", json={"password": "new secret 77"}, headers=root
    )
    assert r.status_code == 204
    assert client.get("/api/v1/ledger", headers=h).status_code == 401  # old token revoked
    r = client.post("/api/v1/auth/token", data={"username": "a_op", "password": "new secret 77"})
    assert r.status_code == 200


def test_records_through_the_api_and_the_lot(client, world) -> None:
    h = login(client, "a_op")
    seed_a(client, h)
    r = client.post("/api/v1/ccp-records", json=f.ccp_record(value="83.5"), headers=h)
    assert r.status_code == 201
    assert r.json()["warnings"][0]["type"] == "open_deviation"
    reading = r.json()["seq"]
    r = client.post("/api/v1/sales", json=f.sale(), headers=h)
    assert r.status_code == 201
    assert r.json()["warnings"][0]["type"] == "unreleased_sale"
    assert r.json()["body"]["buyer"]["name"] == "枣庄惠民食品经销有限公司"
    sale_seq = r.json()["seq"]
    r = client.post(
        "/api/v1/corrective-actions",
        headers=h,
        json={
            "reading_seq": reading,
            "action": "重新杀菌，复测 86.2 °C",
            "taken_at": "2026-03-01T08:45:00+08:00",
            "operator": "李强",
        },
    )
    assert r.status_code == 201
    assert client.post("/api/v1/release-tests", json=f.release_test(), headers=h).status_code == 201
    assert (
        client.post("/api/v1/self-inspections", json=f.self_inspection(), headers=h).status_code
        == 201
    )
    r = client.post(
        "/api/v1/corrections",
        headers=h,
        json={"corrects": sale_seq, "reason": "数量录错", "record": f.sale(quantity="90")},
    )
    assert r.status_code == 201, r.text
    lot = client.get("/api/v1/lots/PJ20260301A", headers=h).json()
    assert lot["open_deviations"] == 0
    assert [s["quantity"] for s in lot["sales"]] == ["90"]
    assert lot["balance"] == {"unit": "瓶", "produced": "9600", "sold": "2160", "held": "7440"}
    page = client.get("/api/v1/ledger", params={"limit": 5}, headers=h).json()
    assert page["count"] == 13  # the release test's public declaration among them
    assert [e["seq"] for e in page["data"]] == [13, 12, 11, 10, 9]
    assert all(len(e["hash"]) == 64 for e in page["data"])
    sale_entry = client.get(f"/api/v1/ledger/entries/{sale_seq}", headers=h).json()
    assert sale_entry["corrected_by"] == [13]
    assert sale_entry["body"]["quantity"] == "100"
    only_sales = client.get("/api/v1/ledger", params={"kind": "sale"}, headers=h).json()
    assert {e["kind"] for e in only_sales["data"]} == {"sale"}
    v = client.get("/api/v1/ledger/verify", headers=h).json()
    assert v["ok"] is True
    assert v["size"] == 13
    assert v["first_bad_seq"] is None
    lots = client.get("/api/v1/lots", headers=h).json()
    assert [x["code"] for x in lots["data"]] == ["PJ20260301A"]


def test_bad_input_gets_422_naming_the_field_and_writes_nothing(client, world, engine) -> None:
    h = login(client, "a_op")
    seed_a(client, h)
    before = snapshot(engine)
    cases = [
        ("/api/v1/sales", f.sale(quantity="-1"), ["body", "quantity"]),
        ("/api/v1/sales", f.sale(lot_code="NOPE"), ["body", "lot_code"]),
        ("/api/v1/ccp-records", f.ccp_record(parameter="pressure"), ["body", "parameter"]),
        (
            "/api/v1/material-checks",
            {**f.material_check(material_lot="M9"), "quantity": 1.5},
            ["body", "quantity"],
        ),
        ("/api/v1/products", f.product(code="P2", gtin="6921234560014"), ["body", "gtin"]),
        (
            "/api/v1/suppliers",
            {k: v for k, v in f.supplier(code="S2").items() if k != "contact"},
            ["body", "contact"],
        ),
    ]
    for path, data, loc in cases:
        r = client.post(path, json=data, headers=h)
        assert r.status_code == 422, (path, r.text)
        assert any(d["loc"] == loc for d in r.json()["detail"]), (path, r.json())
    r = client.post(
        "/api/v1/sales", content=b"{not json", headers={**h, "Content-Type": "application/json"}
    )
    assert r.status_code == 422
    r = client.post("/api/v1/sales", json={**f.sale(), "notes": "x" * 1_000_000}, headers=h)
    assert r.status_code == 422
    assert len(r.content) < 2000  # the input is not echoed back
    assert snapshot(engine) == before


def test_idempotency_key_header(client, world, engine) -> None:
    h = login(client, "a_op")
    seed_a(client, h)
    first = client.post("/api/v1/sales", json=f.sale(), headers={**h, "Idempotency-Key": "erp-991"})
    again = client.post("/api/v1/sales", json=f.sale(), headers={**h, "Idempotency-Key": "erp-991"})
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["seq"] == first.json()["seq"]
    assert again.json()["replayed"] is True
    other = client.post(
        "/api/v1/sales", json=f.sale(quantity="7"), headers={**h, "Idempotency-Key": "erp-991"}
    )
    assert other.status_code == 409
    with write_session(engine) as s:
        assert s.get(Ledger, world["a"]).size == first.json()["seq"]


def test_enterprise_sees_and_writes_only_its_own_ledger(client, world, engine) -> None:
    ha, hb = login(client, "a_op"), login(client, "b_op")
    seed_a(client, ha)
    a_before = snapshot(engine)["entries"]
    assert client.get("/api/v1/lots/PJ20260301A", headers=hb).status_code == 404
    assert client.get("/api/v1/lots", headers=hb).json()["count"] == 0
    b_ledger = client.get("/api/v1/ledger", headers=hb).json()
    assert b_ledger["count"] == 1  # only B's registration
    assert client.get("/api/v1/ledger/entries/6", headers=hb).status_code == 404
    # B cannot address A's ledger: its records go to its own ledger, where A's lot does not exist
    r = client.post("/api/v1/sales", json=f.sale(), headers=hb)
    assert r.status_code == 422
    r = client.post("/api/v1/customers", json=f.customer(), headers=hb)
    assert r.status_code == 201
    assert r.json()["seq"] == 2
    a_entries = [e for e in snapshot(engine)["entries"] if e[0] == world["a"]]
    assert a_entries == [e for e in a_before if e[0] == world["a"]]
    # an enterprise user cannot use the admin's or the regulator's routes
    assert client.get("/api/v1/admin/enterprises", headers=ha).status_code == 403
    assert client.get("/api/v1/regulator/enterprises", headers=ha).status_code == 403
    r = post_user(client, ha, "/api/v1/enterprise/users", "x1", "enterprise_user")
    assert r.status_code == 403


def test_enterprise_admin_adds_users_to_its_own_enterprise(client, world) -> None:
    h = login(client, "a_admin")
    path = "/api/v1/enterprise/users"
    r = post_user(client, h, path, "a_new", "enterprise_user", enterprise_credit_code=f.MEAT)
    assert r.status_code == 201
    assert r.json()["enterprise_credit_code"] == f.BEVERAGE  # its own, whatever it names
    assert post_user(client, h, path, "a_reg", "regulator").status_code == 422


def test_regulator_sees_only_its_jurisdiction(client, world) -> None:
    h = login(client, "reg")
    names = [
        e["credit_code"]
        for e in client.get("/api/v1/regulator/enterprises", headers=h).json()["data"]
    ]
    assert sorted(names) == sorted([f.BEVERAGE, f.MEAT])
    r = client.get(f"/api/v1/regulator/enterprises/{f.BEVERAGE}/verify", headers=h)
    assert r.status_code == 200
    assert r.json()["ok"] is True
    other = login(client, "reg_other")
    assert client.get("/api/v1/regulator/enterprises", headers=other).json()["count"] == 0
    assert (
        client.get(f"/api/v1/regulator/enterprises/{f.BEVERAGE}/verify", headers=other).status_code
        == 404
    )
    assert client.get("/api/v1/ledger", headers=h).status_code == 403


def test_platform_admin_registers_enterprises(client, world, engine) -> None:
    h = login(client, "root")
    r = client.post(
        "/api/v1/admin/enterprises",
        headers=h,
        json=f.enterprise(f.DAIRY, name="枣庄峄城乳业有限公司", licence_no="SC10537040400031"),
    )
    assert r.status_code == 201
    assert r.json()["seq"] == 1
    assert r.json()["prev_hash"] == "0" * 64
    assert (
        client.post("/api/v1/admin/enterprises", headers=h, json=f.enterprise(f.DAIRY)).status_code
        == 409
    )
    bad = client.post(
        "/api/v1/admin/enterprises", headers=h, json=f.enterprise("91370404MA3Q17GH1H")
    )
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "credit_code"]
    path = "/api/v1/admin/users"
    r = post_user(
        client, h, path, "dairy_admin", "enterprise_admin", enterprise_credit_code=f.DAIRY
    )
    assert r.status_code == 201
    codes = [
        e["credit_code"] for e in client.get("/api/v1/admin/enterprises", headers=h).json()["data"]
    ]
    assert f.DAIRY in codes
    with write_session(engine) as s:
        assert s.execute(
            select(Ledger.origin).where(Ledger.credit_code == f.DAIRY)
        ).scalar_one() == (f"trace.example.cn/ledger/{f.DAIRY}")


def test_attachments_are_content_addressed(client, world) -> None:
    h = login(client, "a_op")
    seed_a(client, h)
    pdf = b"%PDF-1.4 certificate of conformity HG-20260301-07"
    r = client.post(
        "/api/v1/attachments", headers=h, files={"file": ("合格证.pdf", pdf, "application/pdf")}
    )
    assert r.status_code == 201
    sha = r.json()["sha256"]
    assert sha == hashlib.sha256(pdf).hexdigest()
    again = client.post(
        "/api/v1/attachments", headers=h, files={"file": ("copy.pdf", pdf, "application/pdf")}
    )
    assert again.json()["sha256"] == sha
    assert again.json()["filename"] == "合格证.pdf"  # never overwritten
    r = client.post(
        "/api/v1/material-checks",
        headers=h,
        json=f.material_check(material_lot="ML-2", attachments=[sha]),
    )
    assert r.status_code == 201
    assert r.json()["body"]["attachments"] == [sha]
    bad = client.post(
        "/api/v1/attachments",
        headers=h,
        files={"file": ("x.exe", b"MZ", "application/x-msdownload")},
    )
    assert bad.status_code == 422
    # B cannot cite A's attachment
    hb = login(client, "b_op")
    client.post("/api/v1/suppliers", json=f.supplier(), headers=hb)
    r = client.post("/api/v1/material-checks", headers=hb, json=f.material_check(attachments=[sha]))
    assert r.status_code == 422
    assert client.get("/api/v1/ledger/verify", headers=h).json()["ok"] is True


def test_openapi_docs_are_served(client) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    for p in (
        "/api/v1/material-checks",
        "/api/v1/production-lots",
        "/api/v1/ccp-records",
        "/api/v1/release-tests",
        "/api/v1/sales",
        "/api/v1/self-inspections",
        "/api/v1/corrections",
        "/api/v1/ledger",
        "/api/v1/ledger/verify",
        "/api/v1/lots/{lot_code}",
        "/api/v1/auth/token",
    ):
        assert p in paths


@pytest.mark.parametrize(
    ("path", "data", "loc"),
    [
        ("/api/v1/sales", f.sale(quantity="1０"), ["body", "quantity"]),  # full-width digit
        ("/api/v1/ccp-records", f.ccp_record(value="8٦.5"), ["body", "value"]),  # Arabic digit
        (
            "/api/v1/customers",
            '{"code": "C9", "name": "a\\ud800b", "address": "a", "contact": "c"}',
            ["body", "name"],
        ),
        (
            "/api/v1/ccp-records",
            f.ccp_record(measured_at="0001-01-01T00:00:00+08:00"),
            ["body", "measured_at"],
        ),
        ("/api/v1/sales", f.sale(sale_date="0999-01-02"), ["body", "sale_date"]),
        (
            "/api/v1/corrective-actions",
            {
                "reading_seq": 2**40,
                "action": "x",
                "operator": "y",
                "taken_at": "2026-03-01T09:00:00+08:00",
            },
            ["body", "reading_seq"],
        ),
    ],
    ids=["fullwidth-digit", "arabic-digit", "lone-surrogate", "year-1", "year-999", "huge-seq"],
)
def test_hostile_values_get_422_and_write_nothing(client, world, engine, path, data, loc) -> None:
    h = login(client, "a_op")
    seed_a(client, h)
    before = snapshot(engine)
    if isinstance(data, str):  # raw JSON, e.g. an escaped lone surrogate
        r = client.post(path, content=data, headers={**h, "Content-Type": "application/json"})
    else:
        r = client.post(path, json=data, headers=h)
    assert r.status_code == 422, r.text
    assert any(d["loc"] == loc for d in r.json()["detail"]), r.json()
    assert snapshot(engine) == before


def test_corrections_cannot_smuggle_what_records_may_not_hold(client, world, engine) -> None:
    h = login(client, "a_op")
    seed_a(client, h)
    before = snapshot(engine)
    future = client.post(
        "/api/v1/corrections",
        headers=h,
        json={
            "corrects": 6,
            "reason": "x",
            "record": f.production_lot(production_date="2099-01-01"),
        },
    )
    assert future.status_code == 422
    assert future.json()["detail"][0]["loc"] == ["body", "record", "production_date"]
    nested: dict = {"x": 1}
    for _ in range(300):
        nested = {"x": nested}
    deep = client.post(
        "/api/v1/corrections", headers=h, json={"corrects": 6, "reason": "x", "record": nested}
    )
    assert deep.status_code == 422
    # An enterprise cannot move itself out of its regulator's jurisdiction.
    moved = client.post(
        "/api/v1/corrections",
        headers=h,
        json={"corrects": 1, "reason": "x", "record": f.enterprise(region_code="370402")},
    )
    assert moved.status_code == 422
    assert moved.json()["detail"][0]["type"] == "immutable"
    assert snapshot(engine) == before


def test_control_characters_in_urls_and_logins_are_refused(client, world) -> None:
    h = login(client, "a_op")
    assert client.get("/api/v1/lots/a%00b", headers=h).status_code == 422
    r = client.post("/api/v1/auth/token", data={"username": "a_op\x00", "password": PASSWORD})
    assert r.status_code == 401
    assert client.get("/api/v1/ledger?since=2026-03-01T00:00:00", headers=h).status_code == 422
    page = client.get("/api/v1/ledger?since=2026-03-01T08:00:00%2B08:00", headers=h).json()
    assert (
        page["count"]
        == client.get("/api/v1/ledger?since=2026-03-01T00:00:00Z", headers=h).json()["count"]
    )


def test_api_tokens_for_erp(client, world) -> None:
    admin = login(client, "a_admin")
    r = client.post("/api/v1/enterprise/tokens", json={"name": "ERP"}, headers=admin)
    assert r.status_code == 201
    token, token_id = r.json()["token"], r.json()["id"]
    erp = {"Authorization": f"Bearer {token}"}
    assert client.post("/api/v1/customers", json=f.customer(), headers=erp).status_code == 201
    listed = client.get("/api/v1/enterprise/tokens", headers=admin).json()
    assert [t["name"] for t in listed] == ["ERP"]
    assert "token" not in listed[0]
    # another enterprise's admin cannot see or revoke it; an operator cannot manage tokens
    assert client.get("/api/v1/enterprise/tokens", headers=login(client, "a_op")).status_code == 403
    assert client.delete(f"/api/v1/enterprise/tokens/{token_id}", headers=admin).status_code == 204
    assert client.get("/api/v1/ledger", headers=erp).status_code == 401


def test_today_through_the_api(client, world) -> None:
    h = login(client, "a_op")
    seed_a(client, h)
    today = client.get("/api/v1/today", headers=h).json()
    codes = [o["code"] for o in today["owed"]]
    assert "untested_lot" in codes
    assert codes.count("self_inspection") == 3
    assert [o["severity"] for o in today["owed"]] == sorted(o["severity"] for o in today["owed"])
