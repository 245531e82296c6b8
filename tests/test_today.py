"""Today after a week's import (issue 24, item 4): what is owed comes grouped by kind and lot
with counts, a page of items at a time, and the page stays small.

A week's load is a beverage maker that imported seven days of records at once today: 28
lots (four a day), each with one open deviation, four of its six holding-time readings and
its seal check missing, and a hundred sales, only the first day's lots tested. That owes
about 2,500 things (as Today listed them one a row before: 2,500 rows).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import test_browser
from conftest import data_fixture
from foodtrace.accounts.service import Role, add_user
from foodtrace.db import read_session, write_session
from foodtrace.records import obligations
from foodtrace.records.service import Batch

import factories as f

PASSWORD = "today pass 2026"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # 20:00 in Shanghai
DAYS = [date(2026, 3, 2) - timedelta(days=d) for d in range(6, -1, -1)]
LOTS_A_DAY = 4
SALES_A_LOT = 100
CUSTOMERS = [f"KH{i:02d}" for i in range(5)]
PAGE_BYTES = 60_000
"""The most a page of Today may weigh for the week (it weighed 660 KB with 3,581 rows)."""


def lot_code(day: date, i: int) -> str:
    return f"PJ-{day:%m%d}-{i}"


@data_fixture
def week(engine, clock) -> dict[str, Any]:
    """The beverage maker and its week (see the module), recorded today in one batch."""
    lid = f.register(engine, clock)
    clock.set(NOW)
    with write_session(engine) as s, Batch(session=s, ledger_id=lid, clock=clock) as b:

        def add(kind: str, data: dict[str, Any]) -> None:
            b.record(kind=kind, data=data, actor="import")

        add("supplier", f.supplier())
        for code in CUSTOMERS:
            add("customer", f.customer(code=code, name=f"经销商{code}", credit_code=None))
        add("product", f.product())
        add("material_check", f.material_check(quantity="1000000", receipt_date="2026-02-20"))
        for day in DAYS:
            for i in range(LOTS_A_DAY):
                code = lot_code(day, i)
                start = datetime(day.year, day.month, day.day, 8 + 3 * i, 0)

                def at(minutes: int, start: datetime = start) -> str:
                    return (start + timedelta(minutes=minutes)).isoformat() + "+08:00"

                add(
                    "production_lot",
                    f.production_lot(
                        lot_code=code,
                        production_date=day.isoformat(),
                        started_at=at(0),
                        ended_at=at(180),
                        materials=[{"material_lot": "ML-0301-01", "quantity": "10", "unit": "kg"}],
                    ),
                )
                for n in range(6):  # every 30 minutes: one out of limits, never closed
                    value = "83.0" if n == 2 else "86.5"
                    add(
                        "ccp_record",
                        f.ccp_record(lot_code=code, value=value, measured_at=at(30 * n)),
                    )
                for n in range(2):  # two of six
                    add(
                        "ccp_record",
                        f.ccp_record(
                            lot_code=code, parameter="holding_time", value="16", unit="s",
                            measured_at=at(30 * n),
                        ),
                    )  # fmt: skip
                if day == DAYS[0]:
                    add("release_test", f.release_test(lot_code=code, tested_at=at(200)))
                for n in range(SALES_A_LOT):
                    add(
                        "sale",
                        f.sale(
                            lot_code=code, quantity="1", unit="瓶", sale_date=day.isoformat(),
                            customer_code=CUSTOMERS[n % len(CUSTOMERS)],
                        ),
                    )  # fmt: skip
    with write_session(engine) as s:
        add_user(
            session=s, username="op", password=PASSWORD, role=Role.ENTERPRISE_USER,
            now=clock.now(), enterprise_credit_code=f.BEVERAGE,
        )  # fmt: skip
    return {"lid": lid}


def _signed_in(client: Any) -> Any:
    got = f.page_login(client, "op", PASSWORD, follow_redirects=False)
    assert got.status_code == 303, got.text[:500]
    return client


def _items(html: str) -> list[tuple[str, int, str]]:
    """The owed items of a Today page: (code, count, link)."""
    found = re.findall(
        r'<li class="s\d" data-code="([a-z_]+)" data-count="(\d+)"><a href="([^"]+)"', html
    )
    return [(c, int(n), link.replace("&amp;", "&")) for c, n, link in found]


def _owed(engine: Any, lid: int) -> list[obligations.Obligation]:
    with read_session(engine) as s:
        return obligations.owed(session=s, enterprise_id=lid, now=NOW)


def test_a_weeks_import_owes_a_small_page_of_grouped_items(client, engine, week) -> None:
    owed = _owed(engine, week["lid"])
    assert len(owed) > 2000  # what the page listed one a row before
    page = _signed_in(client).get("/today")
    assert page.status_code == 200
    size = len(page.content)
    assert size < PAGE_BYTES, f"Today weighs {size} bytes for a week's load"
    items = _items(page.text)
    assert len(items) == 25
    # one item per lot and kind: a lot's five missing readings are one item of five
    ccp = _items(client.get("/today?code=missing_ccp").text)
    assert len(ccp) == 25
    assert {n for _, n, _ in ccp} == {5}
    lot = lot_code(DAYS[0], 0)
    assert ccp[0] == ("missing_ccp", 5, f"/records/ccp_record/new?lot={lot}")
    form = client.get(f"/records/ccp_record/new?lot={lot}")
    assert form.status_code == 200
    assert f'<option value="{lot}" selected' in form.text


def test_every_thing_owed_is_counted_once_across_the_pages(client, engine, week) -> None:
    owed = _owed(engine, week["lid"])
    _signed_in(client)
    seen: list[tuple[str, int, str]] = []
    url: str | None = "/today"
    pages = 0
    while url is not None:
        html = client.get(url).text
        seen += _items(html)
        pages += 1
        nxt = re.search(r'<a href="([^"]+)" rel="next"', html)
        url = nxt.group(1).replace("&amp;", "&") if nxt else None
        assert pages < 20
    assert pages > 1
    totals: dict[str, int] = {}
    for code, n, _ in seen:
        totals[code] = totals.get(code, 0) + n
    lots_sold_untested = {o.params["lot"] for o in owed if o.code == "unreleased_sale"}
    expected: dict[str, int] = {}
    for o in owed:
        if o.code == "untested_lot" and o.params["lot"] in lots_sold_untested:
            continue  # the sale's item asks for the same test
        n = o.params["need"] - o.params["have"] if o.code == "missing_ccp" else 1
        expected[o.code] = expected.get(o.code, 0) + n
    assert totals == expected
    lots = len(DAYS) * LOTS_A_DAY
    untested = lots - LOTS_A_DAY
    assert expected == {
        "open_deviation": lots,
        "unreleased_sale": untested * SALES_A_LOT,
        "missing_ccp": lots * 5,
        "self_inspection": 3,
    }
    # every item once: a kind and a lot (self-inspections have none)
    keys = [(c, link) for c, _, link in seen]
    assert len(keys) == len(set(keys)) == lots * 2 + untested + 3


def test_a_kind_of_obligation_is_filtered_and_worst_first(client, engine, week) -> None:
    _signed_in(client)
    html = client.get("/today").text
    kinds = re.findall(r'<a href="/today\?code=([a-z_]+)#owed" data-code', html)
    assert kinds == ["open_deviation", "unreleased_sale", "missing_ccp", "self_inspection"]
    items = _items(html)
    assert [c for c, _, _ in items] == ["open_deviation"] * 25  # severity 1 first
    sales = _items(client.get("/today?code=unreleased_sale").text)
    assert {c for c, _, _ in sales} == {"unreleased_sale"}
    assert {n for _, n, _ in sales} == {SALES_A_LOT}
    assert all("/records/release_test/new?lot=" in link for _, _, link in sales)
    bogus = client.get("/today?code=nonsense&owed_page=99")
    assert bogus.status_code == 200  # an unknown kind shows all; a page past the end, the last
    assert _items(bogus.text)


def test_one_deviation_links_to_its_reading_and_sales_name_their_dates(
    client, engine, week
) -> None:
    _signed_in(client)
    html = client.get("/today?code=unreleased_sale").text
    day = DAYS[1].isoformat()
    assert day in html
    dev = _items(client.get("/today").text)[0]
    assert dev[1] == 1
    assert re.fullmatch(r"/records/corrective_action/new\?reading=\d+", dev[2])
    form = client.get(dev[2])
    assert form.status_code == 200


# --------------------------------------------------------------------------- in a browser

browser = test_browser.browser
"""Chromium, as the browser tests launch it."""


def test_the_weeks_today_in_a_browser(browser, engine, clock, db_url, week) -> None:  # noqa: F811
    """The operator's Today at phone width and the admin's width, looked at: the kinds'
    counts first, 25 items, the pager; one tap on a kind filters to it."""
    from foodtrace.config import Settings
    from webapp.main import create_app

    from servers import serving

    app = create_app(Settings(database_url=db_url), clock=clock, engine=engine)
    with serving(app) as url:
        for name, viewport in (
            ("phone", test_browser.PHONE),
            ("wide", {"width": 1366, "height": 900}),
        ):
            context = browser.new_context(viewport=viewport, base_url=url)
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.goto("/login")
            page.fill("#username", "op")
            page.fill("#password", PASSWORD)
            page.click("form.record button[type=submit]")
            page.wait_for_load_state()
            page.goto("/today")
            assert page.locator("#owed li").count() == 25
            assert page.locator("#owed-kinds a").count() == 5
            test_browser.shot(page, f"today-week-{name}", db_url)
            page.click("#owed-kinds a[data-code=missing_ccp]")
            page.wait_for_load_state()
            codes = page.locator("#owed li").evaluate_all("els => els.map(e => e.dataset.code)")
            assert set(codes) == {"missing_ccp"}
            first = page.locator("#owed li").first.inner_text()
            assert "缺 5 条关键控制点监控记录" in first
            if name == "phone":
                test_browser.shot(page, "today-week-ccp-phone", db_url)
            context.close()
