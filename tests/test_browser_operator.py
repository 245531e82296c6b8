"""The operator's morning on a phone (issue 24), in Chromium at 390×844: an incoming
check, a production lot of seven materials, six CCP readings caught up, a release test
and a sale, each tap and each field counted and held under a budget.

Taps are clicks on links, buttons and checkboxes; fields are values typed or chosen.
Before issue 24 a lot could hold five materials at most, and catching up 21 readings
took 84 taps and fields (the parameter was chosen again for every reading): here the
first reading proposes the time the plan asks for, the next keeps lot and parameter, and
the rest go in one table. Screenshots: tests/screenshots/operator-*.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import test_browser as shared
from conftest import data_fixture
from foodtrace.accounts.service import Role, add_user
from foodtrace.config import Settings
from foodtrace.db import read_session, write_session
from foodtrace.records.projection import DbStore
from webapp.main import create_app

import factories as f
from servers import serving

browser = shared.browser  # the module's Chromium (a fixture)

LOT = "PJ20260302B"
# Pasteurisation read every 30 minutes: a 05:00-08:00 run asks for six readings.
PRODUCT = f.product(
    ccp_plan=[
        {
            "code": "CCP1",
            "name": "巴氏杀菌",
            "parameters": [
                {
                    "code": "temperature",
                    "name": "杀菌温度",
                    "unit": "°C",
                    "min": "85",
                    "frequency_minutes": 30,
                }
            ],
        }
    ]
)
MATERIALS = ["ML-0301-01", "ML-0301-02", "ML-0301-03", "ML-0301-04", "ML-0301-05", "ML-0301-06"]

# Budgets (taps, fields): what the flow took when measured, (4, 12), (9, 20), (5, 6),
# (2, 6) and (3, 4), with one of each to spare. Six readings are 11 taps and fields.
BUDGET = {
    "material_check": (5, 13),
    "production_lot": (10, 21),
    "ccp_readings": (6, 7),
    "release_test": (3, 7),
    "sale": (4, 5),
}


@data_fixture
def workshop(engine, clock) -> int:
    """A beverage maker with its master data, six accepted material lots and an operator."""
    lid = f.register(engine, clock)
    for kind, data in (
        ("supplier", f.supplier()),
        ("customer", f.customer()),
        ("product", PRODUCT),
    ):
        f.add(engine, clock, lid, kind, data)
    for code in MATERIALS:
        f.add(engine, clock, lid, "material_check", f.material_check(material_lot=code))
    with write_session(engine) as s:
        add_user(
            session=s,
            username="op",
            password=shared.PASSWORD,
            role=Role.ENTERPRISE_USER,
            now=clock.now(),
            display_name="李强",
            enterprise_credit_code=f.BEVERAGE,
        )
    return lid


@pytest.fixture
def site(workshop, engine, clock, db_url) -> Iterator[str]:
    app = create_app(Settings(database_url=db_url), clock=clock, engine=engine)
    with serving(app) as url:
        yield url


@pytest.fixture
def phone(browser, site) -> Iterator[Any]:
    context = browser.new_context(viewport=shared.PHONE, base_url=site)
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


class Operator:
    """A person at the phone: every tap and every field filled is counted."""

    def __init__(self, page: Any, db_url: str) -> None:
        self.page = page
        self.db_url = db_url
        self.taps = 0
        self.fields = 0

    def tap(self, selector: str, *, navigates: bool = True) -> None:
        self.taps += 1
        if navigates:
            with self.page.expect_navigation():
                self.page.click(selector)
        else:
            self.page.click(selector)

    def fill(self, selector: str, value: str) -> None:
        self.fields += 1
        self.page.fill(selector, value)

    def choose(self, selector: str, value: str, *, reloads: bool = False) -> None:
        """Pick an option (a choice that others depend on redraws the form)."""
        self.fields += 1
        self.page.select_option(selector, value)
        if reloads:  # redrawn in place (app.js), not reloaded
            self.page.wait_for_function("() => !document.querySelector('form[aria-busy]')")

    def save(self) -> int:
        self.tap(".actions button[name=save][value='1']")
        return shared.saved_seq(self.page)

    def shot(self, name: str) -> None:
        shared.shot(self.page, f"operator-{name}", self.db_url)

    def step(self, name: str) -> tuple[int, int]:
        """The counts so far, for one step's budget (and zeroed for the next)."""
        done = (self.taps, self.fields)
        self.taps = self.fields = 0
        taps, fields = BUDGET[name]
        assert done[0] <= taps, f"{name}: {done[0]} taps, budget {taps}"
        assert done[1] <= fields, f"{name}: {done[1]} fields, budget {fields}"
        return done


def test_an_operators_morning_fits_its_budget(phone, engine, workshop, db_url) -> None:
    shared.login(phone)
    op = Operator(phone, db_url)
    counts = {}

    # An incoming check: the sugar delivered this morning.
    op.tap("nav.main a[href='/records']")
    op.tap("a[href='/records/material_check/new']")
    op.choose("#supplier_code", "SUGAR01")
    op.fill("#material_name", "白砂糖")
    op.choose("#material_type", "raw_material")
    op.fill("#specification", "50 kg/袋")
    op.fill("#quantity", "2,000")  # as written on the delivery note
    op.fill("#unit", "kg")
    op.fill("#batch_no", "BT20260301")
    op.fill("#shelf_life", "24个月")
    op.fill("#material_lot", "ML-0302-01")
    op.tap("#supplier_licence_checked", navigates=False)
    op.fill("#supplier_licence_no", "SC10137040400011")
    op.fill("#certificate_no", "HG-0302")
    op.choose("#accepted", "true")
    assert phone.input_value("#production_date") == ""  # not given, not invented
    op.shot("material-check")
    op.save()
    counts["material_check"] = op.step("material_check")

    # A production lot of seven materials: rows are added in place, no reload.
    op.tap("nav.main a[href='/records']")
    op.tap("a[href='/records/production_lot/new']")
    op.choose("#product_code", "PJ500", reloads=True)
    op.fill("#lot_code", LOT)
    op.fill("#started_at", "2026-03-02T05:00")
    op.fill("#ended_at", "2026-03-02T08:00")
    op.fill("#quantity", "400")
    op.fill("#unit", "箱")
    assert phone.locator("#materials-part .row-grid").count() == 1
    phone.evaluate("window.sameDocument = true")
    for i, code in enumerate(["ML-0302-01", *MATERIALS]):
        if i:
            op.tap("#materials-part button[name=add_row]", navigates=False)
        op.choose(f"[name='materials.{i}.material_lot']", code)
        op.fill(f"[name='materials.{i}.quantity']", "10")
    assert phone.evaluate("window.sameDocument === true")  # added in place
    assert phone.locator("#materials-part .row-grid").count() == 7
    op.shot("production-lot")
    op.save()
    counts["production_lot"] = op.step("production_lot")
    with read_session(engine) as s:
        store = DbStore(s, workshop)
        [lot] = store.find("lots", code=LOT)
        assert len(store.find("lot_inputs", record_seq=lot["record_seq"])) == 7

    # Six CCP readings caught up: two one by one from Today, four in one table.
    phone.goto("/today")
    op.tap("#owed li[data-code=missing_ccp] a")
    assert phone.input_value("#measured_at") == "2026-03-02T05:00"  # the first reading due
    op.fill("#value", "86.1")
    op.save()
    assert phone.input_value("#point") == "CCP1/temperature"  # kept
    assert phone.input_value("#measured_at") == "2026-03-02T05:30"  # the next one due
    op.fill("#value", "86.4")
    op.save()
    op.tap("#form-link a")
    due = [f"2026-03-02T0{h}" for h in ("6:00", "6:30", "7:00", "7:30")]
    assert [phone.input_value(f"[name='readings.{i}.measured_at']") for i in range(4)] == due
    for i, value in enumerate(("86.0", "85.9", "86.3", "86.2")):
        op.fill(f"[name='readings.{i}.value']", value)
    op.shot("ccp-readings")
    op.save()
    counts["ccp_readings"] = op.step("ccp_readings")
    assert "已保存 4 条" in phone.locator(".notice.ok").inner_text()
    with read_session(engine) as s:
        store = DbStore(s, workshop)
        assert len(store.find("ccp_readings", lot_seq=lot["record_seq"])) == 6
    assert "missing_ccp" not in shared.owed_codes(phone)

    # The release test, from Today: the product's items are there, their results are not.
    op.tap("#owed li[data-code=untested_lot] a")
    assert phone.input_value("[name='items.0.item']") == "菌落总数"
    assert phone.input_value("[name='items.0.passed']") == ""
    assert phone.input_value("#conclusion") == ""
    op.fill("[name='items.0.result']", "40")
    op.choose("[name='items.0.passed']", "true")
    op.fill("[name='items.1.result']", "<1")
    op.choose("[name='items.1.passed']", "true")
    op.choose("#conclusion", "pass")
    op.fill("#report_no", "JC-0302")
    op.shot("release-test")
    op.save()
    counts["release_test"] = op.step("release_test")

    # A sale of part of the lot.
    op.tap("nav.main a[href='/records']")
    op.tap("a[href='/records/sale/new']")
    op.choose("#lot_code", LOT, reloads=True)
    op.fill("#quantity", "100")
    op.choose("#unit", "箱")
    op.choose("#customer_code", "DIST01")
    op.shot("sale")
    op.save()
    counts["sale"] = op.step("sale")
    assert "untested_lot" not in shared.owed_codes(phone)
    print("operator taps and fields:", counts)  # noqa: T201 (the measure behind BUDGET)


def test_rows_removed_in_place_are_renumbered(phone, engine, workshop, db_url) -> None:
    shared.login(phone)
    phone.goto("/records/production_lot/new")
    shared.choose(phone, "#product_code", "PJ500")
    for name, value in (("lot_code", "PJ20260302C"), ("started_at", "2026-03-02T05:00"),
                        ("ended_at", "2026-03-02T06:00"), ("quantity", "10"),
                        ("unit", "箱")):  # fmt: skip
        phone.fill(f"#{name}", value)
    for i, code in enumerate(MATERIALS[:3]):
        if i:
            phone.click("#materials-part button[name=add_row]")
        phone.select_option(f"[name='materials.{i}.material_lot']", code)
        phone.fill(f"[name='materials.{i}.quantity']", str(i + 1))
    phone.click("[name='remove_row'][value='materials.1']")
    assert phone.locator("#materials-part .row-grid").count() == 2
    assert phone.input_value("[name='materials.1.material_lot']") == MATERIALS[2]
    assert phone.input_value("[name='materials.rows']") == "2"
    assert phone.locator("#materials-part .row-no").all_inner_texts() == ["第 1 行", "第 2 行"]
    shared.save(phone)
    shared.saved_seq(phone)
    with read_session(engine) as s:
        store = DbStore(s, workshop)
        [lot] = store.find("lots", code="PJ20260302C")
        used = store.find("lot_inputs", record_seq=lot["record_seq"])
        assert sorted(u["quantity"] for u in used) == ["1", "3"]


def test_without_javascript_the_same_buttons_redraw_the_form(browser, site, db_url) -> None:
    context = browser.new_context(viewport=shared.PHONE, base_url=site, java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        shared.login(page)
        page.goto("/records/production_lot/new")
        page.fill("#lot_code", "PJ20260302D")
        page.select_option("[name='materials.0.material_lot']", MATERIALS[0])
        with page.expect_navigation():
            page.click("#materials-part button[name=add_row]")
        assert page.locator("#materials-part .row-grid").count() == 2
        assert page.input_value("#lot_code") == "PJ20260302D"  # kept, not saved
        assert page.input_value("[name='materials.0.material_lot']") == MATERIALS[0]
        with page.expect_navigation():
            page.click("[name='remove_row'][value='materials.0']")
        assert page.input_value("[name='materials.0.material_lot']") == ""
        # Enter in a field still saves (the form's default button), and errors come on top
        page.select_option("#product_code", "PJ500")
        for name, value in (("started_at", "2026-03-02T05:00"), ("ended_at", "2026-03-02T06:00"),
                            ("quantity", "10"), ("unit", "箱")):  # fmt: skip
            page.fill(f"#{name}", value)
        page.select_option("[name='materials.0.material_lot']", MATERIALS[1])
        page.fill("[name='materials.0.quantity']", "十")
        with page.expect_navigation():
            page.press("#lot_code", "Enter")
        summary = page.locator("#error-summary[role=alert]")
        assert summary.is_visible()
        link = summary.locator("a[href='#materials.0.quantity']")
        assert link.inner_text() == "所用原料 · 第 1 行 · 用量"
        assert page.input_value("[name='materials.0.quantity']") == "十"  # kept to correct
        shared.shot(page, "operator-errors-nojs", db_url)
    finally:
        context.close()
