"""A sale beyond what a lot made is warned when saved and stays owed on Today until a
correction mends it (issue 23)."""

from __future__ import annotations

from foodtrace.db import read_session
from foodtrace.records.obligations import owed

import factories as f


def _oversold(engine, clock, lid) -> list:
    with read_session(engine) as s:
        return [
            o for o in owed(session=s, enterprise_id=lid, now=clock.now()) if o.code == "oversold"
        ]


def test_an_oversold_lot_is_owed_until_corrected(engine, clock) -> None:
    lid = f.beverage_ledger(engine, clock)  # lot PJ20260301A: 400 箱 of 24 瓶, 100 箱 sold
    assert _oversold(engine, clock, lid) == []
    too_much = f.add(engine, clock, lid, "sale", f.sale(quantity="350", customer_code="DIST01"))
    assert "oversold" in {w.type for w in too_much.warnings}
    [item] = _oversold(engine, clock, lid)
    assert item.params == {"lot": "PJ20260301A", "sold": "10800", "produced": "9600", "unit": "瓶"}
    assert item.severity == 2
    fixed = {**f.sale(quantity="30", customer_code="DIST01")}
    f.add(engine, clock, lid, "correction",
          {"corrects": too_much.seq, "reason": "数量录错", "record": fixed})  # fmt: skip
    assert _oversold(engine, clock, lid) == []


def test_the_today_page_shows_it(client, engine, clock) -> None:
    lid = f.beverage_ledger(engine, clock)
    f.add(engine, clock, lid, "sale", f.sale(quantity="350", customer_code="DIST01"))
    f.user(engine, clock, "bev", "bev pass 2026", enterprise=f.BEVERAGE)
    f.page_login(client, "bev", "bev pass 2026")
    page = client.get("/today").text
    assert 'data-code="oversold"' in page
    assert "销量超过产量" in page


def test_the_sale_form_says_what_is_left_before_saving(client, engine, clock) -> None:
    lid = f.beverage_ledger(engine, clock)  # 9600 瓶 made, 100 箱 = 2400 瓶 sold
    f.user(engine, clock, "bev", "bev pass 2026", enterprise=f.BEVERAGE)
    f.page_login(client, "bev", "bev pass 2026")
    page = client.get("/records/sale/new?lot_code=PJ20260301A").text
    assert "该批次尚未售出 7200 瓶" in page
    f.add(engine, clock, lid, "sale", f.sale(quantity="10", customer_code="DIST01"))
    assert "该批次尚未售出 6960 瓶" in client.get("/records/sale/new?lot_code=PJ20260301A").text
    client.cookies.set("lang", "en")
    english = client.get("/records/sale/new?lot_code=PJ20260301A").text
    assert "6960 瓶 of this lot are not sold yet" in english
