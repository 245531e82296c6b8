"""The regulator's desk in a browser at 1366×900 on the demo district (issue 24, items 10, 11).

From the desk to a case's recall scope in at most three clicks, the lot's materials offered
as suspects; the look-up's suggestions as a code is typed; the trail graph fitted to its
box; printing (print media emulated at an A4 page's width): no navigation or buttons, no
table wider than the page, the source and time printed. Screenshots go to
tests/screenshots/regulator-*.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

import test_browser as shared
from foodtrace.clock import SimulatedClock
from foodtrace.config import Settings
from foodtrace.demo import DEMO_PASSWORD, JUICE, WORKSHOP
from webapp.main import create_app

from servers import serving

browser = shared.browser  # the module's Chromium (a fixture)
DESK = {"width": 1366, "height": 900}
A4_WIDTH = 703
"""An A4 page's printable width at 96 px an inch (210 mm less print.css's 12 mm margins)."""
NOW = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
"""The demo's last day (conftest.DEMO_TODAY), 16:00 in Shanghai: its week is under way."""


@pytest.fixture
def desk_site(engine, db_url) -> Iterator[str]:
    """The demo district served with the clock on its last day."""
    app = create_app(Settings(database_url=db_url), clock=SimulatedClock(NOW), engine=engine)
    with serving(app) as url:
        yield url


def _login(browser, site: str, width: int = DESK["width"]):
    context = browser.new_context(viewport={**DESK, "width": width}, base_url=site)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto("/login")
    page.fill("#username", "regulator")
    page.fill("#password", DEMO_PASSWORD)
    page.click("form.record button[type=submit]")
    page.wait_for_load_state()
    return context, page


def _english(page) -> list[str]:
    """Lower-case English words in the page's main text (the printed source line aside)."""
    text = page.locator("main").evaluate(
        "m => { const c = m.cloneNode(true); c.querySelectorAll('.print-source')"
        ".forEach(e => e.remove()); return c.innerText; }"
    )
    return re.findall(r"\b[a-z]{3,}\b", text)


class Counted:
    """A page's clicks and filled fields, counted as a person would do them."""

    def __init__(self, page) -> None:
        self.page, self.clicks, self.fields = page, 0, 0

    def click(self, selector: str) -> None:
        self.clicks += 1
        self.page.click(selector)
        self.page.wait_for_load_state()

    def fill(self, selector: str, value: str) -> None:
        self.fields += 1
        self.page.fill(selector, value)


@pytest.mark.demo
def test_from_the_desk_to_a_case_scope_in_three_clicks(browser, desk_site, db_url) -> None:
    context, page = _login(browser, desk_site)
    assert page.url.endswith("/regulator")
    assert page.locator("h1").inner_text() == "监管工作台"
    assert "没有未结案件" in page.locator("#open-cases").inner_text()
    behind = page.locator("#behind tr[data-credit-code]")
    assert behind.count() >= 1
    codes = behind.evaluate_all("rows => rows.map(r => r.dataset.creditCode)")
    assert WORKSHOP in codes  # its lots are complete, its daily checks are not
    workshop = page.locator(f"#behind tr[data-credit-code='{WORKSHOP}']").inner_text()
    assert "日管控" in workshop
    assert not _english(page)
    shared.shot(page, "regulator-desk", db_url)

    me = Counted(page)
    me.fill("#lot-q", "pj-d05")  # as a sampling report might be typed
    first = page.locator("#lot-suggestions a").first
    first.wait_for()
    assert first.get_attribute("data-lot") == "PJ-D05"
    assert "批次号一致" in first.inner_text()
    shared.shot(page, "regulator-desk-suggestions", db_url)
    me.click("#lot-suggestions a >> nth=0")
    assert "/regulator/trail" in page.url
    # the trail graph fits its box: the traced lot is on screen, not off to the right
    box = page.locator("#graph").bounding_box()
    start = page.locator("#graph [data-start]").bounding_box()
    assert box
    assert start
    assert box["x"] <= start["x"]
    assert start["x"] + start["width"] <= box["x"] + box["width"]
    assert page.locator("#graph svg").bounding_box()["width"] <= box["width"]
    assert page.locator("label", has_text="追溯层级").locator("input[name=depth]").count() == 1
    heads = page.locator("#trail-rows thead th").all_inner_texts()
    assert "发货方" in heads
    assert "收货方" in heads
    assert "起始日期" not in heads
    shared.shot(page, "regulator-trail-fitted", db_url)

    me.click("#open-case")
    suspects = page.locator("#suspects input[name=suspect_material]")
    offered = suspects.evaluate_all("els => els.map(e => e.value)")
    assert "SUG-D02" in offered
    assert len(offered) >= 5
    for name, value in (
        ("test_item", "菌落总数"),
        ("result", "3.2×10⁴"),
        ("limit", "≤1×10⁴"),
        ("sampling_date", "2026-10-30"),
        ("report_no", "SJ-2026-1030"),
    ):
        me.fill(f"#failed-sample [name={name}]", value)
    me.click("#failed-sample button[type=submit]")
    assert "/regulator/cases/" in page.url, page.locator("main").inner_text()[:800]
    assert me.clicks <= 3, me.clicks
    assert me.fields <= 6, me.fields
    lots = page.locator("#scope-lots").inner_text()
    for lot in ("PJ-D05", "BT-D01", "WS-D04"):
        assert lot in lots
    facts = page.locator("dl.facts").inner_text()
    for material in offered:  # none ticked: every material of the lot is a suspect
        assert material in facts
    shared.shot(page, "regulator-case-scope", db_url)
    case_url = page.url

    # the open case is on the desk: one click back to its scope
    page.goto("/regulator")
    row = page.locator("#open-cases tbody tr")
    assert row.count() == 1
    assert "今天立案" in row.inner_text()
    assert "PJ-D05" in row.inner_text()
    page.click("#open-cases tbody a[href^='/regulator/cases/']")
    page.wait_for_load_state()
    assert page.url == case_url
    assert page.locator(".notice.bad").count() == 0
    shared.shot(page, "regulator-desk-case", db_url)
    context.close()


@pytest.mark.demo
def test_the_look_up_suggests_near_codes_and_works_without_a_script(
    browser, desk_site, db_url
) -> None:
    context, page = _login(browser, desk_site)
    page.fill("#lot-q", "PJD12")
    page.locator("#lot-suggestions a").first.wait_for()
    assert page.locator("#lot-suggestions a").first.get_attribute("data-lot") == "PJ-D12"
    # the arrow keys walk the suggestions
    page.press("#lot-q", "ArrowDown")
    assert page.evaluate("document.activeElement.dataset.lot") == "PJ-D12"
    page.keyboard.press("Escape")
    assert page.locator("#lot-suggestions").is_hidden()
    # a code no lot has: near ones, each a link to its trail
    page.fill("#lot-q", "pj-d99")
    page.locator("#lot-suggestions a").first.wait_for()
    near = page.locator("#lot-suggestions a").evaluate_all("els => els.map(e => e.dataset.lot)")
    assert near
    assert all(re.fullmatch(r"PJ-D\d9", c) for c in near), near
    page.press("#lot-q", "Enter")  # the form: a page of the same suggestions
    page.wait_for_load_state()
    assert "辖区内没有批次 pj-d99" in page.locator("#no-exact").inner_text()
    assert page.locator("#lots-found tbody tr").count() == len(near)
    assert not _english(page)
    shared.shot(page, "regulator-lot-search", db_url)
    context.close()

    # without JavaScript: the form opens the lot's trail at once
    plain = browser.new_context(viewport=DESK, base_url=desk_site, java_script_enabled=False)
    page = plain.new_page()
    page.set_default_timeout(30_000)
    page.goto("/login")
    page.fill("#username", "regulator")
    page.fill("#password", DEMO_PASSWORD)
    page.click("form.record button[type=submit]")
    page.wait_for_load_state()
    page.fill("#lot-q", "pj-d12")
    page.click("#lot-search button[type=submit]")
    page.wait_for_load_state()
    assert page.url.endswith(f"/regulator/trail?credit_code={JUICE}&lot=PJ-D12")
    assert page.locator("#graph svg").is_visible()
    plain.close()


@pytest.mark.demo
def test_completeness_shows_the_running_week_and_short_daily_checks(
    browser, desk_site, db_url
) -> None:
    context, page = _login(browser, desk_site)
    page.goto("/regulator/completeness")
    running = page.locator("#district-trend g[data-state=in-progress]")
    assert running.count() == 2  # the share chart and the findings chart
    share = page.locator("#district-trend svg[data-metric=share] g[data-state=in-progress]")
    assert share.get_attribute("data-week") == "2026-W44"
    assert "进行中" in share.inner_html()
    assert share.locator("rect.bar.bad").count() == 0  # not a red 0 %
    daily = page.locator(f"#district tr[data-credit-code='{WORKSHOP}'] td[data-short]")
    assert daily.get_attribute("data-short") == "true"
    assert "short" in daily.locator(".badge").get_attribute("class")
    assert page.locator(f"#district tr[data-credit-code='{WORKSHOP}'] .badge.ok").count() == 0
    assert not _english(page)
    shared.shot(page, "regulator-completeness-running", db_url)
    context.close()


@pytest.mark.demo
def test_printing_a_trail_a_case_and_a_lot(browser, desk_site, db_url) -> None:
    context, page = _login(browser, desk_site, width=A4_WIDTH)
    # a case to print
    page.goto(f"/regulator/cases?credit_code={JUICE}&lot=PJ-D05")
    for name, value in (
        ("test_item", "菌落总数"),
        ("result", "3.2×10⁴"),
        ("limit", "≤1×10⁴"),
        ("sampling_date", "2026-10-30"),
        ("report_no", "SJ-2026-1030"),
    ):
        page.fill(f"#failed-sample [name={name}]", value)
    page.click("#failed-sample button[type=submit]")
    page.wait_for_load_state()
    case_url = page.url
    assert "/regulator/cases/" in case_url
    page.emulate_media(media="print")
    for name, url in (
        ("trail", f"/regulator/trail?credit_code={JUICE}&lot=PJ-D05"),
        ("case", case_url),
        ("lot", f"/regulator/lots/{JUICE}/PJ-D05"),
    ):
        page.goto(url)
        page.wait_for_load_state()
        for hidden in ("nav.main", "header.top", "form", ".actions", "button"):
            shown = page.locator(hidden).evaluate_all(
                "els => els.filter(e => getComputedStyle(e).display !== 'none'"
                " && e.getClientRects().length).length"
            )
            assert shown == 0, (name, hidden)
        source = page.locator(".print-source")
        assert source.is_visible()
        assert url.split("?")[0] in source.inner_text()
        assert re.search(r"打印时间：\d{4}-\d\d-\d\d \d\d:\d\d", source.inner_text())
        # no table wider than the page, and none cut: every column inside its box
        widths = page.locator("main table").evaluate_all(
            "ts => ts.map(t => [t.id, t.getBoundingClientRect().right, t.scrollWidth,"
            " t.clientWidth, !!t.tHead])"
        )
        assert widths, name
        for table_id, right, scroll, client, has_head in widths:
            assert right <= A4_WIDTH + 1, (name, table_id, right)
            assert scroll <= client + 1, (name, table_id, scroll, client)
            assert has_head, (name, table_id)  # its header row repeats on each page
        assert page.evaluate("document.documentElement.scrollWidth") <= A4_WIDTH + 1, name
        graph = page.locator("#graph svg")
        if graph.count():
            assert graph.bounding_box()["width"] <= A4_WIDTH
        shared.shot(page, f"regulator-print-{name}", db_url)
        pdf = page.pdf(format="A4", print_background=True)
        assert pdf.startswith(b"%PDF")
    context.close()
