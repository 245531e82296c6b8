"""Bad and hostile input, record kind by record kind: a 4xx that names the problem, and the
ledger unchanged byte for byte. Text that is merely unusual is kept exactly as sent."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

import pytest
from sqlalchemy import select

from conftest import ACCESS_PASSWORD
from foodtrace.db import read_session
from foodtrace.ledger.models import Entry

import factories as f

BASE: dict[str, tuple[str, dict[str, Any]]] = {
    "product": ("/api/v1/products", f.product(code="PJ330", gtin="6921234560020")),
    "supplier": ("/api/v1/suppliers", f.supplier(code="SUGAR02")),
    "customer": ("/api/v1/customers", f.customer(code="DIST02")),
    "material_check": ("/api/v1/material-checks", f.material_check(material_lot="ML-NEW")),
    "production_lot": (
        "/api/v1/production-lots",
        f.production_lot(
            lot_code="PJ-NEW",
            materials=[{"material_lot": "ML-0301-01", "quantity": "10", "unit": "kg"}],
        ),
    ),
    "ccp_record": ("/api/v1/ccp-records", f.ccp_record()),
    "release_test": ("/api/v1/release-tests", f.release_test()),
    "sale": ("/api/v1/sales", f.sale(quantity="1")),
    "self_inspection": ("/api/v1/self-inspections", f.self_inspection(period_date="2026-03-02")),
}
MB = "长" * (1024 * 1024 // 3)

# (kind, field, bad value, the problem's field in the answer)
CORPUS: list[tuple[str, str, Any, str]] = [
    # identifiers: malformed, and well-formed with a wrong check character
    ("supplier", "credit_code", "91370404MA3793PC3", "credit_code"),
    ("supplier", "credit_code", "91370404MA3793PC3F", "credit_code"),
    ("supplier", "credit_code", "91370404MA3793PCIE", "credit_code"),
    ("customer", "credit_code", "９１３７０４０４ＭＡ３３８６ＹＸ１５", "credit_code"),
    ("product", "gtin", "6921234560014", "gtin"),
    ("product", "gtin", "692123456001", "gtin"),
    # dates: in the future, impossible, before the lot existed
    ("material_check", "receipt_date", "2099-01-01", "receipt_date"),
    ("material_check", "receipt_date", "2026-02-30", "receipt_date"),
    ("sale", "sale_date", "2026-02-28", "sale_date"),
    ("ccp_record", "measured_at", "2026-03-01T08:30:00", "measured_at"),  # no time zone
    ("release_test", "tested_at", "2099-03-01T15:00:00+08:00", "tested_at"),
    ("production_lot", "ended_at", "2026-03-01T07:00:00+08:00", "ended_at"),
    # quantities: negative, zero, absurd, not decimal strings
    ("sale", "quantity", "-1", "quantity"),
    ("sale", "quantity", "0", "quantity"),
    ("sale", "quantity", "1e309", "quantity"),
    ("sale", "quantity", "99999999999999999999999", "quantity"),
    ("sale", "quantity", 12.5, "quantity"),
    ("sale", "quantity", "NaN", "quantity"),
    ("material_check", "quantity", "", "quantity"),
    # units that do not match the product's declared ones
    ("sale", "unit", "吨", "unit"),
    ("ccp_record", "unit", "°F", "unit"),
    # control characters, a megabyte, the wrong types
    ("customer", "name", "惠民\x00食品", "name"),
    ("customer", "name", "惠民\x07食品", "name"),
    ("customer", "address", "峨山路\u202e8号", "address"),  # a bidirectional override
    ("customer", "address", "峨山路\u20288号", "address"),  # a line separator
    ("customer", "name", MB, "name"),
    ("customer", "name", ["惠民"], "name"),
    ("sale", "lot_code", "PJ 2026", "lot_code"),
    ("sale", "lot_code", "../../etc/passwd", "lot_code"),
    ("sale", "lot_code", "'; DROP TABLE entries; --", "lot_code"),
    ("sale", "customer_code", "NOPE", "customer_code"),
    ("self_inspection", "period", "hourly", "period"),
    ("release_test", "conclusion", "pass?", "conclusion"),
]


@pytest.fixture
def api(client, world) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", data={"username": "ent_a", "password": ACCESS_PASSWORD})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _ledger(engine) -> list[tuple[int, int, bytes]]:
    with read_session(engine) as s:
        rows = s.execute(
            select(Entry.ledger_id, Entry.seq, Entry.body).order_by("ledger_id", "seq")
        )
        return [(lid, seq, bytes(body)) for lid, seq, body in rows]


def test_every_bad_value_is_refused_naming_its_field_and_nothing_changes(client, api, engine):
    before = _ledger(engine)
    wrong = []
    for kind, field, value, named in CORPUS:
        path, body = BASE[kind]
        r = client.post(path, headers=api, json={**body, field: value})
        detail = (
            r.json().get("detail")
            if r.headers.get("content-type", "").startswith("application/json")
            else None
        )
        locs = [d.get("loc", []) for d in detail] if isinstance(detail, list) else []
        if not 400 <= r.status_code < 500 or not any(named in loc for loc in locs):
            wrong.append(f"{kind}.{field}={str(value)[:40]!r}: {r.status_code} {str(detail)[:200]}")
    assert not wrong, "\n".join(wrong)
    assert _ledger(engine) == before


def test_structurally_hostile_bodies_are_refused(client, api, engine) -> None:
    before = _ledger(engine)
    path, body = BASE["customer"]
    nested = '{"a": ' * 5000 + '"x"' + "}" * 5000
    cases = {
        "duplicate key": b'{"code": "C9", "code": "C10", "name": "n", "address": "a"}',
        "deeply nested": (json.dumps(body)[:-1] + ', "deep": ' + nested + "}").encode(),
        "deep list": ("[" * 100_000 + "]" * 100_000).encode(),
        "not json": b"{'code': 'C9'}",
        "empty": b"",
        "over 2 MB": json.dumps({**body, "address": "x" * (3 * 1024 * 1024)}).encode(),
        "unknown field": json.dumps({**body, "price": "9.90"}).encode(),
        "a float": json.dumps({**f.sale(), "quantity": 1.5}).encode(),
    }
    for name, raw in cases.items():
        target = "/api/v1/sales" if name == "a float" else path
        r = client.post(target, headers={**api, "Content-Type": "application/json"}, content=raw)
        assert 400 <= r.status_code < 500, (name, r.status_code, r.text[:300])
        assert r.json()["detail"], name
    dup = client.post(
        path,
        headers={**api, "Content-Type": "application/json"},
        content=cases["duplicate key"],
    )
    assert dup.json()["detail"][0]["type"] == "duplicate_key"
    assert "'code'" in dup.json()["detail"][0]["msg"]
    assert _ledger(engine) == before


def test_unusual_text_is_kept_exactly_and_never_interpreted(client, api, engine) -> None:
    """Non-NFC text is normalised, not refused; injection strings are stored as text."""
    path, body = BASE["customer"]
    decomposed = "Cafe\u0301 惠民"  # e + combining acute
    hostile = "'; DROP TABLE entries; -- {{7*7}} ${7*7} <script>alert(1)</script>"
    r = client.post(path, headers=api, json={**body, "name": decomposed, "address": hostile})
    assert r.status_code == 201, r.text
    stored = r.json()["body"]
    assert stored["name"] == unicodedata.normalize("NFC", decomposed)
    assert stored["name"] != decomposed
    assert stored["address"] == hostile
    with read_session(engine) as s:  # the table is still there, every entry with it
        assert s.execute(select(Entry.seq).order_by(Entry.seq.desc())).first()[0] > 9
    page = client.get("/api/v1/customers", headers=api).json()
    assert any(c["address"] == hostile for c in page["data"])
