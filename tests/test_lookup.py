"""The home page's look-up, pages for browsers, the site icon, and what a saved record says
(issue 24, items 1 and 13)."""

from __future__ import annotations

import re

import factories as f

GTIN = "6921234560013"


def _signed_in(client, engine, clock) -> None:
    """The beverage maker's ledger, and its user signed in through the login page."""
    f.beverage_ledger(engine, clock)
    f.user(engine, clock, "bev", "bev pass 2026", enterprise=f.BEVERAGE)
    f.page_login(client, "bev", "bev pass 2026")


def test_the_home_page_finds_a_lot_by_gtin_or_credit_code(client, engine, clock) -> None:
    lid = f.beverage_ledger(engine, clock)
    f.add(engine, clock, lid, "production_lot", f.production_lot(
        lot_code="PJ-RC-批次1",
        materials=[{"material_lot": "ML-0301-01", "quantity": "1", "unit": "kg"}]))  # fmt: skip
    home = client.get("/").text
    form = re.search(r'<form method="get" action="([^"]+)">', home)
    assert form
    assert form.group(1) == "/lookup"
    assert 'inputmode="numeric"' not in home  # a credit code has letters
    for code, lot, where in (
        (GTIN, "PJ20260301A", f"/01/0{GTIN}/10/PJ20260301A"),
        ("0" + GTIN, "PJ20260301A", f"/01/0{GTIN}/10/PJ20260301A"),
        (f.BEVERAGE, "PJ20260301A", f"/01/0{GTIN}/10/PJ20260301A"),
        (f.BEVERAGE.lower(), "PJ20260301A", f"/01/0{GTIN}/10/PJ20260301A"),
        (f" {GTIN} ", " PJ20260301A ", f"/01/0{GTIN}/10/PJ20260301A"),
        (GTIN, "PJ-RC-批次1", f"/lot/{f.BEVERAGE}/PJ-RC-%E6%89%B9%E6%AC%A11"),
    ):
        r = client.get("/lookup", params={"code": code, "lot": lot}, follow_redirects=False)
        assert r.status_code == 303, (code, lot, r.text[:300])
        assert r.headers["location"] == where
        assert client.get(where).status_code == 200
    for code, lot in ((GTIN, "NOPE"), ("123", "PJ20260301A"), ("", "")):
        r = client.get("/lookup", params={"code": code, "lot": lot})
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("text/html")
        assert "没有查到" in r.text


def test_an_unknown_page_is_a_page_and_an_unknown_api_path_is_json(client) -> None:
    page = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "<html" in page.text
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404
    assert api.json()["detail"]
    asked = client.get("/no-such-page", headers={"Accept": "application/json"})
    assert asked.status_code == 404
    assert asked.json()["detail"]


def test_the_site_has_an_icon(client) -> None:
    r = client.get("/favicon.ico")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("image/svg+xml")
    assert r.content.startswith(b"<svg")
    assert 'rel="icon"' in client.get("/").text


def test_a_saved_record_says_what_was_saved_with_a_link(client, engine, clock) -> None:
    _signed_in(client, engine, clock)
    page = client.get("/records/sale/new?saved=9").text
    assert "已保存：销售" in page
    assert '<a href="/ledger/9">在账本中查看（第 9 条）</a>' in page


def test_no_form_presets_an_outcome_or_a_date_nobody_gave(client, engine, clock) -> None:
    """Issue 24, item 6: accepted, passed, a test's conclusion and a self-inspection item's
    result start empty; an incoming check's optional production date is not today."""
    _signed_in(client, engine, clock)

    def chosen(page: str, name: str) -> list[str]:
        found = re.search(
            rf'<select id="{re.escape(name)}" name="{re.escape(name)}"[^>]*>(.*?)</select>',
            page,
            re.S,
        )
        assert found, name
        return re.findall(r'<option value="([^"]*)" selected', found.group(1))

    check = client.get("/records/material_check/new").text
    assert chosen(check, "accepted") == []
    assert 'id="production_date"' in check
    assert not re.search(r'id="production_date"[^>]*value="\d', check)
    test = client.get("/records/release_test/new?lot_code=PJ20260301A").text
    assert chosen(test, "conclusion") == []
    assert chosen(test, "items.0.passed") == []
    daily = client.get("/records/self_inspection/new?period=daily").text
    assert chosen(daily, "items.0.result") == []
    lot = client.get("/records/production_lot/new").text
    assert re.search(r'id="production_date"[^>]*value="\d{4}-\d\d-\d\d"', lot)  # a run is of today
