"""The portal in a real browser (Debian's Chromium, headless, driven by Playwright).

Each test runs the app in a uvicorn thread on a fresh database (SQLite and
PostgreSQL), signs in as an operator of a beverage maker that has its master
data, and works the pages the way a person would, at phone width. Screenshots
go to tests/screenshots/ (looked at by a person, not asserted).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright import sync_api as playwright_api  # a test extra: missing means fail

from conftest import data_fixture
from foodtrace.accounts.service import Role, add_user
from foodtrace.config import Settings
from foodtrace.db import write_session
from webapp.main import create_app

import factories as f
from servers import serving

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SHOTS = Path(__file__).parent / "screenshots"
PASSWORD = "floor pass 2026"
PHONE = {"width": 390, "height": 844}

# Once-per-lot CCP parameters keep the day's form-filling short.
PRODUCT = f.product(
    ccp_plan=[
        {
            "code": "CCP1",
            "name": "巴氏杀菌",
            "parameters": [{"code": "temperature", "name": "杀菌温度", "unit": "°C", "min": "85"}],
        },
        {
            "code": "CCP2",
            "name": "灌装封口",
            "parameters": [{"code": "seal", "name": "封口完整性", "kind": "pass_fail"}],
        },
    ]
)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is needed for the browser tests: apt-get install -y chromium")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@data_fixture
def maker(engine, clock) -> int:
    """A beverage maker, its master data and two users (op, boss)."""
    lid = f.register(engine, clock)
    for kind, data in (
        ("supplier", f.supplier()),
        ("customer", f.customer()),
        ("product", PRODUCT),
    ):
        f.add(engine, clock, lid, kind, data)
    with write_session(engine) as s:
        add_user(
            session=s,
            username="op",
            password=PASSWORD,
            role=Role.ENTERPRISE_USER,
            now=clock.now(),
            display_name="李强",
            enterprise_credit_code=f.BEVERAGE,
        )
        add_user(
            session=s,
            username="boss",
            password=PASSWORD,
            role=Role.ENTERPRISE_ADMIN,
            now=clock.now(),
            display_name="赵丽",
            enterprise_credit_code=f.BEVERAGE,
        )
    return lid


@pytest.fixture
def site(maker, engine, clock, db_url) -> Iterator[str]:
    """The app on a free port, with the beverage maker of ``maker``."""
    app = create_app(Settings(database_url=db_url), clock=clock, engine=engine)
    with serving(app) as url:
        yield url


@pytest.fixture
def page(browser, site):
    context = browser.new_context(viewport=PHONE, base_url=site)
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    yield pg
    context.close()


def login(page, username: str = "op") -> None:
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("form.record button[type=submit]")
    page.wait_for_load_state()


def save(page) -> None:
    page.click("button[name=save][value='1']")
    page.wait_for_load_state()


def saved_seq(page) -> int:
    if not page.locator(".notice.ok").count():
        errors = page.locator(".error, .notice.bad").all_inner_texts()
        raise AssertionError(
            f"not saved: {errors} {page.url} {page.locator('main').inner_text()[:1500]}"
        )
    return int(page.locator(".notice.ok").first.get_attribute("data-seq"))


def owed_codes(page) -> list[str]:
    page.goto("/today")
    return page.locator("#owed li").evaluate_all("els => els.map(e => e.dataset.code)")


def choose(page, selector: str, value: str) -> None:
    """Pick an option whose choice redraws the form with the options that depend on it
    (in place: app.js posts the form and swaps it, without a page load)."""
    page.select_option(selector, value)
    page.wait_for_function("() => !document.querySelector('form[aria-busy]')")


def shot(page, name: str, db_url: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    kind = "pg" if db_url.startswith("postgresql") else "sqlite"
    page.screenshot(path=str(SHOTS / f"{name}-{kind}.png"), full_page=True)


def test_login_logout_and_the_language_switch(page, db_url) -> None:
    page.goto("/")
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    login(page)
    assert page.url.endswith("/today")
    zh_title = page.locator("h1").inner_text()
    page.click("text=English")
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").inner_text().startswith("Today")
    assert page.locator("h1").inner_text() != zh_title
    page.click(".lang a")
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    page.click("header form button")
    page.wait_for_load_state()
    page.goto("/today")
    assert "/login" in page.url


def test_wrong_password_is_refused(page) -> None:
    page.goto("/login")
    page.fill("#username", "op")
    page.fill("#password", "not the password")
    page.click("form.record button[type=submit]")
    assert page.locator(".notice.bad").is_visible()
    assert "/login" in page.url


def test_a_days_work_empties_the_today_list(page, db_url) -> None:
    login(page)
    before = owed_codes(page)
    assert before.count("self_inspection") == 3
    shot(page, "today-start", db_url)

    page.goto("/records/material_check/new")
    page.select_option("#supplier_code", "SUGAR01")
    page.fill("#material_name", "白砂糖")
    page.select_option("#material_type", "raw_material")
    page.fill("#specification", "50 kg/袋")
    page.fill("#quantity", "2000")
    page.fill("#unit", "kg")
    page.fill("#batch_no", "BT20260301")
    page.fill("#shelf_life", "24个月")
    page.fill("#material_lot", "ML-0302-01")
    page.check("#supplier_licence_checked")
    page.fill("#supplier_licence_no", "SC10137040400011")
    page.fill("#certificate_no", "HG-0302")
    page.select_option("#accepted", "true")  # nothing is preset to accepted
    page.set_input_files(
        "#attachments",
        files=[
            {"name": "合格证.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 certificate"}
        ],
    )
    shot(page, "form-material-check", db_url)
    save(page)
    assert saved_seq(page) == 5

    page.goto("/records/production_lot/new")
    choose(page, "#product_code", "PJ500")
    page.fill("#lot_code", "PJ20260302A")
    page.fill("#started_at", "2026-03-02T06:00")
    page.fill("#ended_at", "2026-03-02T08:00")
    page.fill("#quantity", "400")
    page.fill("#unit", "箱")
    page.select_option("[name='materials.0.material_lot']", "ML-0302-01")
    page.fill("[name='materials.0.quantity']", "300")
    save(page)
    assert saved_seq(page) == 6
    during = owed_codes(page)
    assert during.count("missing_ccp") == 1  # the lot's two parameters are one item
    assert "untested_lot" in during

    for point, field, value in (
        ("CCP1/temperature", "#value", "86.5"),
        ("CCP2/seal", "#result", "pass"),
    ):
        page.goto("/records/ccp_record/new?lot=PJ20260302A")
        choose(page, "#point", point)
        if field == "#value":
            page.fill(field, value)
        else:
            page.select_option(field, value)
        page.fill("#measured_at", "2026-03-02T07:00")
        save(page)
    assert "missing_ccp" not in owed_codes(page)

    page.goto("/records/release_test/new?lot=PJ20260302A")
    page.fill("[name='items.0.result']", "40")
    page.fill("[name='items.1.result']", "<1")
    for i in (0, 1):  # nothing is preset to passed
        page.select_option(f"[name='items.{i}.passed']", "true")
    page.select_option("#conclusion", "pass")
    page.fill("#report_no", "JC-0302")
    page.fill("#tested_at", "2026-03-02T08:20")
    save(page)
    assert "untested_lot" not in owed_codes(page)

    page.goto("/records/sale/new?lot=PJ20260302A")
    page.fill("#quantity", "100")
    page.select_option("#unit", "箱")
    page.select_option("#customer_code", "DIST01")
    save(page)
    assert page.locator(".notice.ok").is_visible()

    for period in ("daily", "weekly", "monthly"):
        page.goto(f"/records/self_inspection/new?period={period}")
        if period == "weekly":
            page.fill("#period_date", "2026-03-02")  # a Monday
        if period == "monthly":
            page.fill("#period_date", "2026-03-01")
        for select in page.locator("select[name$='.result']").all():  # nothing preset 正常
            select.select_option("ok")
        save(page)
        assert page.locator(".notice.ok").is_visible(), page.content()[:2000]
    assert owed_codes(page) == []
    assert page.locator("#all-done").is_visible()
    assert page.locator("#recorded tr").count() >= 10
    shot(page, "today-done", db_url)


def test_an_open_deviation_stays_on_today_until_closed(page, engine, clock, db_url) -> None:
    lid = 1
    f.add(engine, clock, lid, "material_check", f.material_check())
    f.add(engine, clock, lid, "production_lot", f.production_lot())
    login(page)
    page.goto("/records/ccp_record/new?lot=PJ20260301A")
    choose(page, "#point", "CCP1/temperature")
    page.fill("#value", "83.5")
    page.fill("#measured_at", "2026-03-01T09:00")
    save(page)
    assert page.locator("#prompt").is_visible()  # asks for the corrective action first
    shot(page, "form-ccp-deviation", db_url)
    page.check("#confirm_open")
    save(page)
    seq = saved_seq(page)
    assert owed_codes(page)[0] == "open_deviation"
    page.click("#owed li[data-code=open_deviation] a")
    page.wait_for_load_state()
    assert page.locator("#reading_seq").input_value() == str(seq)
    page.fill("#action", "隔离该时段产品，重新杀菌，调整蒸汽阀，复测 86.2 °C")
    page.fill("#taken_at", "2026-03-01T09:20")
    save(page)
    assert "open_deviation" not in owed_codes(page)


def test_a_sale_of_an_untested_lot_is_warned_before_saving(page, engine, clock) -> None:
    f.add(engine, clock, 1, "material_check", f.material_check())
    f.add(engine, clock, 1, "production_lot", f.production_lot())
    login(page)
    page.goto("/records/sale/new?lot=PJ20260301A")
    page.fill("#quantity", "10")
    page.select_option("#unit", "箱")
    page.select_option("#customer_code", "DIST01")
    save(page)
    assert page.locator("#prompt").is_visible()
    page.check("#confirm_unreleased")
    save(page)
    assert page.locator(".notice.ok").is_visible()
    assert "unreleased_sale" in owed_codes(page)


def test_errors_are_shown_next_to_the_field(page) -> None:
    login(page)
    page.goto("/records/customer/new")
    page.fill("#code", "C2")
    page.fill("#name", "某超市")
    page.fill("#credit_code", "91370404MA3386YX16")  # wrong check character
    page.fill("#address", "峄城区")
    page.fill("#contact", "0632-1")
    save(page)
    error = page.locator(".field.invalid .error")
    assert error.count() == 1
    assert page.locator(".field.invalid #credit_code").count() == 1


def test_a_correction_leaves_the_original_visible(page, engine, clock) -> None:
    login(page)
    page.goto("/ledger/3")  # the customer record
    page.click("text=/更正|Correct this record/")
    page.wait_for_load_state()
    page.fill("#reason", "电话号码录错")
    page.fill("#contact", "13806329999")
    save(page)
    assert page.url.endswith("/ledger/3?saved=5")
    # the original stays, beside the value now, marked
    row = page.locator("#fields tr.changed")
    assert row.count() == 1
    assert "13806321234" in row.inner_text()
    assert "13806329999" in row.inner_text()
    assert page.locator("#history tr").count() == 2
    page.goto("/master/customers")
    assert "13806329999" in page.content()


def test_admin_creates_and_revokes_an_api_token(page, site) -> None:
    import httpx

    login(page, "boss")
    page.goto("/admin/users")
    page.fill("#token_name", "ERP")
    page.click("text=/创建令牌|Create token/")
    page.wait_for_load_state()
    token = page.locator("#new-token").inner_text().strip()
    h = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{site}/api/v1/ledger", headers=h).status_code == 200
    page.click("#tokens button")
    page.wait_for_load_state()
    assert httpx.get(f"{site}/api/v1/ledger", headers=h).status_code == 401


def test_a_form_post_without_the_csrf_token_is_refused(page, site) -> None:
    login(page)
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    import httpx

    r = httpx.post(
        f"{site}/records/customer/new",
        cookies=cookies,
        data={"save": "1", "code": "X", "name": "x", "address": "a", "contact": "c"},
    )
    assert r.status_code == 403


def _sales_xlsx(rows: list[list[object]]) -> bytes:
    """The sales template as a user fills it: the example row replaced by real rows."""
    import io

    import openpyxl

    from foodtrace import imports

    wb = openpyxl.load_workbook(io.BytesIO(imports.template_xlsx("sale")))
    ws = wb.worksheets[0]
    headers = [c.value for c in ws[1]]
    ws.delete_rows(2, ws.max_row)
    for row in rows:
        values = dict(zip(["生产批号", "数量", "单位", "销售日期", "客户编码"], row, strict=True))
        ws.append([values.get(h) for h in headers])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_an_xlsx_import_with_a_bad_row_is_refused_then_the_fixed_file_imports(
    page, engine, clock, db_url
) -> None:
    f.add(engine, clock, 1, "material_check", f.material_check())
    f.add(engine, clock, 1, "production_lot", f.production_lot())
    login(page)
    page.goto("/import")
    good = ["PJ20260301A", "10", "箱", "2026-03-01", "DIST01"]
    bad_rows = [good, ["PJ20260301A", "-5", "箱", "2026-03-01", "DIST01"], good]
    page.select_option("#kind", "sale")
    page.set_input_files(
        "#file",
        files=[
            {
                "name": "销售台账.xlsx",
                "buffer": _sales_xlsx(bad_rows),
                "mimeType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            }
        ],
    )
    page.click("form.record button[type=submit]")
    page.wait_for_selector("#job[data-status=checked], #job[data-status=failed]")
    assert page.locator("#import-errors").is_visible()
    cells = page.locator("#row-errors tr").nth(1).locator("td").all_inner_texts()
    assert cells[0] == "3"  # the header is row 1, the first record row 2
    assert cells[1] == "数量"
    shot(page, "import-errors", db_url)
    assert page.locator("#confirm-import").count() == 0

    page.goto("/import")
    page.select_option("#kind", "sale")
    page.set_input_files(
        "#file",
        files=[
            {
                "name": "销售台账.xlsx",
                "buffer": _sales_xlsx([good, good, good]),
                "mimeType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            }
        ],
    )
    page.click("form.record button[type=submit]")
    page.wait_for_selector("#job[data-status=checked]")
    page.click("#confirm-import")
    page.wait_for_selector("#job[data-status=done]")
    assert page.locator("#import-done").is_visible()
    page.goto("/lots/PJ20260301A")
    assert page.locator("#timeline").inner_text().count("DIST01") == 0  # buyer names, not codes
    assert page.locator("#held").inner_text().startswith("8880")  # 9600 - 3 x 10 x 24


def test_master_data_forms(page, db_url) -> None:
    login(page)
    page.goto("/records/supplier/new")
    for field, value in (
        ("#code", "MILK01"),
        ("#name", "峄城奶牛合作社"),
        ("#address", "峄城区"),
        ("#contact", "0632-7700001"),
    ):
        page.fill(field, value)
    save(page)
    assert saved_seq(page) == 5
    page.goto("/records/customer/new")
    for field, value in (
        ("#code", "SCHOOL"),
        ("#name", "峄城区实验小学"),
        ("#address", "峄城区坛山路 1 号"),
        ("#contact", "0632-7710000"),
    ):
        page.fill(field, value)
    save(page)
    assert saved_seq(page) == 6
    page.goto("/records/product/new")
    for field, value in (
        ("#code", "MK250"),
        ("#name", "巴氏杀菌乳"),
        ("#category", "乳制品"),
        ("#specification", "250 mL/盒"),
        ("#unit", "盒"),
        ("#gtin", "6927654320015"),
        ("#shelf_life_days", "7"),
    ):
        page.fill(field, value)
    page.fill("[name='packaging.0.unit']", "箱")
    page.fill("[name='packaging.0.quantity']", "20")
    rows = [
        ("CCP2", "巴氏杀菌", "temperature", "杀菌温度", "numeric", "°C", "72", "", "30"),
        ("CCP3", "冷藏", "storage", "冷藏温度", "numeric", "°C", "", "6", ""),
    ]
    for i, row in enumerate(rows):
        if i:  # one empty row is shown: the next is added in place (issue 24)
            page.click("#ccp-part button[name=add_row]")
        for name, value in zip(
            (
                "point",
                "point_name",
                "code",
                "name",
                "kind",
                "unit",
                "min",
                "max",
                "frequency_minutes",
            ),
            row,
            strict=True,
        ):
            selector = f"[name='ccp.{i}.{name}']"
            if name == "kind":
                page.select_option(selector, value)
            elif value:
                page.fill(selector, value)
    for i, (item, limit) in enumerate((("菌落总数", "≤5×10^4 CFU/mL"), ("蛋白质", "≥2.9 g/100 g"))):
        if i:
            page.click("#release_items-part button[name=add_row]")
        page.fill(f"[name='release_items.{i}.item']", item)
        page.fill(f"[name='release_items.{i}.limit']", limit)
    shot(page, "form-product", db_url)
    save(page)
    assert saved_seq(page) == 7
    page.goto("/master/products")
    text = page.locator("main").inner_text()
    assert "巴氏杀菌乳" in text
    assert "≤ 6" in text


@pytest.fixture
def demo_site(engine, db_url) -> Iterator[str]:
    """The demo district served, for the regulator's pages (tests marked ``demo``)."""
    from foodtrace.clock import SystemClock

    app = create_app(Settings(database_url=db_url), clock=SystemClock(), engine=engine)
    with serving(app) as url:
        yield url


@pytest.mark.demo
def test_regulator_traces_a_lot_and_reads_the_completeness_dashboard(browser, demo_site, db_url):
    from foodtrace.demo import DEMO_PASSWORD

    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=demo_site)
    page = context.new_page()
    page.goto("/login")
    page.fill("#username", "regulator")
    page.fill("#password", DEMO_PASSWORD)
    page.click("form.record button[type=submit]")
    page.wait_for_load_state()
    assert page.url.endswith("/regulator")
    page.goto("/regulator/trail")
    page.select_option("select[name=credit_code]", f.SUGAR)
    page.fill("input[name=lot]", "BT-D01")
    page.select_option("select[name=direction]", "forward")
    page.click("form.filters button")
    page.wait_for_load_state()
    graph = page.locator("#graph svg")
    assert graph.is_visible()
    nodes = page.locator("#graph g[data-node]").count()
    assert nodes > 5
    table = page.locator("#trail-rows").inner_text()
    assert "PJ-D05" in table
    assert "WS-D04" in table  # both buyers of the sugar batch, forward to their lots
    shot(page, "regulator-trail", db_url)
    page.goto("/regulator/completeness?since=2026-10-01&until=2026-10-31")
    findings = page.locator("li[data-rule]").evaluate_all(
        "els => els.map(e => e.dataset.rule + ':' + e.dataset.lot)"
    )
    for planted in (
        "ccp_readings:MK-D17",
        "release_test:PJ-D19",
        "deviations_closed:MK-D24",
        "ccp_readings:BF-D22",
        "timely:BF-D15",
    ):
        assert planted in findings
    # the district's week-by-week trend: two charts, a bar group for each ISO week
    weeks = [f"2026-W{n}" for n in range(40, 45)]
    charts = page.locator("#district-trend svg.week-chart")
    assert charts.count() == 2
    for i in range(2):
        chart = charts.nth(i)
        assert chart.is_visible()
        assert (
            chart.locator("g[data-week]").evaluate_all("gs => gs.map(g => g.dataset.week)") == weeks
        )
        assert chart.get_attribute("role") == "img"
        assert chart.locator("desc").text_content().count("周") >= 5  # every week, in words
    assert charts.nth(0).locator("title").first.text_content() == "每周完整批次占比"
    assert "第40周" in charts.nth(0).inner_html()
    box = charts.nth(0).bounding_box()
    assert box is not None
    assert box["width"] > 300
    assert box["height"] > 100
    # a trend for every enterprise: a sparkline in the table, and charts of its own
    assert page.locator("#district svg.sparkline").count() == 5
    assert page.locator("section.enterprise svg.week-chart").count() == 10
    # the table sorts by a column header, and back
    names = "els => els.map(e => e.cells[0].innerText)"
    rows = page.locator("#district tbody tr")
    weakest_first = rows.evaluate_all(names)
    page.click("#district th:nth-child(5) button")  # findings, fewest first
    counts = rows.evaluate_all("els => els.map(e => +e.cells[4].innerText)")
    assert counts == sorted(counts)
    assert page.locator("#district th:nth-child(5)").get_attribute("aria-sort") == "ascending"
    page.click("#district th:nth-child(5) button")
    counts = rows.evaluate_all("els => els.map(e => +e.cells[4].innerText)")
    assert counts == sorted(counts, reverse=True)
    page.click("#district th:nth-child(2) button")  # complete lots: weakest first again
    assert rows.evaluate_all(names) == weakest_first
    page.click("#district th:nth-child(2) button")
    shares = rows.evaluate_all("els => els.map(e => +e.cells[1].dataset.sort)")
    assert shares == sorted(shares, reverse=True)
    assert shares[0] > shares[-1]
    page.reload()
    shot(page, "regulator-completeness", db_url)
    # find a lot by product name and date, then open its trail from the result
    page.goto("/regulator/trail?product=石榴&date=")
    assert page.locator("#found-lots tr").count() > 10
    page.locator("#found-lots a", has_text="PJ-D05").click()
    page.wait_for_load_state()
    assert page.locator("#graph svg").is_visible()
    # each lot box of the graph opens that lot's records, with their seq and hash
    page.locator("#graph a", has=page.locator("g[data-node]", has_text="BT-D01")).first.click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/regulator/lots/{f.SUGAR}/BT-D01")
    rows = page.locator("#timeline tr").count()
    assert rows > 3
    assert len(page.locator("#timeline .mono").first.inner_text()) == 12
    shot(page, "regulator-lot", db_url)
    # verification on demand, as a report
    page.goto("/regulator/verify")
    page.click("form.filters button")
    page.wait_for_load_state()
    assert "验证通过" in page.locator("#verify-summary").inner_text()
    assert page.locator("#verify-report tr[data-ok=true]").count() == 5
    shot(page, "regulator-verify", db_url)
    page.click("text=English")
    page.wait_for_load_state()
    page.goto("/regulator/completeness?since=2026-10-01&until=2026-10-31")
    assert "Complete lots by week" in page.locator("#district-trend").inner_html()
    assert "Week 40" in page.locator("#district-trend").inner_html()
    shot(page, "regulator-completeness-en", db_url)
    page.set_viewport_size(PHONE)
    page.click("text=中文")
    page.wait_for_load_state()
    page.goto("/regulator/completeness?since=2026-10-01&until=2026-10-31")
    shot(page, "regulator-completeness-phone", db_url)
    context.close()


def _login_as(browser, site: str, username: str, width: int = 1280):
    from foodtrace.demo import DEMO_PASSWORD

    context = browser.new_context(viewport={"width": width, "height": 900}, base_url=site)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", DEMO_PASSWORD)
    page.click("form.record button[type=submit]")
    page.wait_for_load_state()
    return context, page


@pytest.mark.demo
def test_a_failed_sample_goes_to_closure_in_the_browser(browser, demo_site, db_url) -> None:
    from foodtrace.demo import JUICE, WORKSHOP

    reg_ctx, reg = _login_as(browser, demo_site, "regulator")
    # start from the lot's trail: the form comes with the lot and its material lots
    reg.goto(f"/regulator/trail?credit_code={JUICE}&lot=PJ-D05")
    reg.click("#open-case")
    reg.wait_for_load_state()
    assert reg.locator("#failed-sample [name=lot_code]").input_value() == "PJ-D05"
    reg.check("#suspects input[value=SUG-D02]")
    for name, value in (
        ("test_item", "菌落总数"),
        ("result", "3.2×10⁴"),
        ("limit", "≤1×10⁴"),
        ("unit", "CFU/mL"),
        ("sampling_date", "2026-10-20"),
        ("report_no", "SJ-2026-1020"),
    ):
        reg.fill(f"#failed-sample [name={name}]", value)
    reg.click("#failed-sample button[type=submit]")
    reg.wait_for_load_state()
    assert "/regulator/cases/" in reg.url, reg.locator("main").inner_text()[:800]
    case_url = reg.url
    lots = reg.locator("#scope-lots").inner_text()
    for lot in ("PJ-D05", "BT-D01", "WS-D04"):  # sampled, the sugar batch, the workshop's lot
        assert lot in lots
    assert "PJ-D12" not in lots  # made from another sugar batch
    sales = reg.locator("#scope-sales").inner_text()
    assert "峄城区榴乡情石榴汁加工小作坊" in sales  # the sugar batch's buyers, with quantities
    assert reg.locator("#graph svg").is_visible()
    shot(reg, "case-opened", db_url)
    with reg.expect_download() as got:
        reg.click("a[href$='scope.xlsx']")
    assert got.value.suggested_filename.endswith(".xlsx")
    with reg.expect_download() as got:
        reg.click("a[href$='scope.epcis.jsonld']")
    assert got.value.suggested_filename.endswith(".epcis.jsonld")
    reg.fill("#case-step textarea[name=note]", "责令召回")
    reg.click("#case-step button[value=notified]")
    reg.wait_for_load_state()
    # a step that cannot be undone asks again, saying how many consumer pages it reaches
    effect = reg.locator("#confirm-effect").inner_text()
    assert "16 个批次的消费者页面" in effect, effect
    assert reg.locator(".confirm-lots li").count() == 16
    shot(reg, "case-notify-confirm", db_url)
    reg.click("#confirm-step")
    reg.wait_for_load_state()
    assert "已通知企业" in reg.locator("#case-states li.now").inner_text()

    case_id = case_url.rsplit("/", 1)[1]
    for user in ("juice-admin", "workshop-admin", "sugar-admin"):
        ctx, ent = _login_as(browser, demo_site, user, width=390)
        ent.goto("/cases")
        ent.click(f"a[href='/cases/{case_id}']")
        ent.wait_for_load_state()
        assert "召回进度" in ent.locator("#recall-progress").inner_text()
        if user == "juice-admin":
            assert ent.locator("#recall-badge").inner_text() == "1"
            before = ent.locator("#recall-progress").inner_text()
            ent.click("button[data-lot='PJ-D05']")  # every customer of the lot in one step
            ent.wait_for_load_state()
            assert ent.locator(".notice.ok[role=status]").count() == 1, ent.locator(
                "main"
            ).inner_text()[:800]
            assert "已通知客户" in ent.locator("#my-actions").inner_text()
            assert ent.locator("#recall-progress").inner_text() != before
            # a recovery beyond what the customer bought is refused, with the numbers
            row = ent.locator("#my-customers tr").nth(1).locator("td")
            code = row.nth(1).inner_text().rsplit("(", 1)[1].rstrip(")")
            ent.select_option("#recall-action select[name=action]", "recovery")
            ent.select_option("#recall-action select[name=lot_code]", row.nth(0).inner_text())
            ent.select_option("#recall-action select[name=customer_code]", code)
            ent.fill("#recall-action input[name=quantity]", "999999")
            ent.fill("#recall-action input[name=unit]", "瓶")
            ent.click("#recall-action button[type=submit]")
            ent.wait_for_load_state()
            refused = ent.locator("#recall-action").locator("xpath=..").inner_text()
            assert "召回数量超过了销售给该客户的数量" in refused, refused[:800]
            shot(ent, "case-enterprise", db_url)
        # completing with items open is possible only with a reason for each
        for select in ent.locator("#open-reasons select").all():
            select.select_option("unreachable")
        shot(ent, f"case-complete-{user}", db_url)
        ent.click("#recall-complete button[type=submit]")
        ent.wait_for_load_state()
        assert "贵企业已声明召回完成" in ent.locator("main").inner_text(), ent.locator(
            "main"
        ).inner_text()[:800]
        ctx.close()

    reg.goto(case_url)
    assert "召回已记录" in reg.locator("#case-states li.now").inner_text()
    for state in ("verified", "closed"):
        reg.click(f"#case-step button[value={state}]")
        reg.wait_for_load_state()
        # before verifying or closing, the regulator sees every item left open and its reason
        assert "无法联系客户" in reg.locator("#confirm-open").inner_text()
        if state == "verified":
            shot(reg, "case-verify-confirm", db_url)
        reg.click("#confirm-step")
        reg.wait_for_load_state()
    assert "已结案" in reg.locator("#case-states li.now").inner_text()
    shot(reg, "case-closed", db_url)
    reg_ctx.close()

    consumer = browser.new_context(viewport=PHONE, base_url=demo_site)
    page = consumer.new_page()
    page.goto(f"/lot/{JUICE}/PJ-D05")
    assert page.locator(".recall-banner").is_visible()
    assert "本批次产品已召回" in page.locator(".recall-banner").inner_text()
    assert page.locator("#status-recalled").is_visible()  # no "passed" badge beside a recall
    assert page.locator("#status-release").count() == 0
    assert "本批次官方抽检不合格" in page.locator(".recall-banner").inner_text()
    shot(page, "consumer-recalled", db_url)
    # a lot recalled for sharing the sugar batch says so, and that it did not fail itself
    page.goto(f"/lot/{WORKSHOP}/WS-D04")
    banner = page.locator(".recall-banner").inner_text()
    assert "使用了同一批原料" in banner, banner
    assert "本批次本身并未检出不合格" in banner, banner
    shot(page, "consumer-recalled-shared-material", db_url)
    consumer.close()


def test_a_choice_redraws_the_form_in_place_and_keeps_the_keyboard(
    page, maker, engine, clock
) -> None:
    """One ArrowDown on the lot of a CCP reading picks the next lot and brings that lot's
    parameters, without a page load: the focus stays on the lot (issue 24, 9)."""
    f.add(engine, clock, maker, "material_check", f.material_check())
    f.add(engine, clock, maker, "production_lot", f.production_lot())
    login(page)
    page.goto("/records/ccp_record/new")
    page.evaluate("window.__same_page = true")
    lot = page.locator("#lot_code")
    lot.focus()
    page.keyboard.press("ArrowDown")
    page.wait_for_function("() => !document.querySelector('form[aria-busy]')")
    assert page.evaluate("window.__same_page") is True  # no navigation
    assert page.evaluate("document.activeElement.id") == "lot_code"
    chosen = page.input_value("#lot_code")
    assert chosen
    points = page.locator("#point option").all_inner_texts()
    assert any("杀菌温度" in p for p in points), points
