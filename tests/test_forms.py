"""The record forms as an operator uses them (issue 24): repeating parts that grow and
shrink without JavaScript, CCP readings caught up one by one or in one table, no result
or date preset that nobody checked, and errors that name the field by its label."""

from __future__ import annotations

import json
import re
from html import unescape
from typing import Any

import pytest
from sqlalchemy import func, select

from conftest import data_fixture
from enterprise_portal.forms import Field, edit_rows, number_text, row_count
from foodtrace.accounts.service import Role, add_user
from foodtrace.db import read_session, write_session
from foodtrace.ledger import service as ledger
from foodtrace.ledger.models import Entry
from foodtrace.records.projection import DbStore

import factories as f

PASSWORD = "forms pass 2026"
MATERIALS = [f"ML-0301-0{i}" for i in range(1, 9)]


# ------------------------------------------------------------------ without a database


def test_a_repeating_part_shows_one_empty_row_more_than_filled() -> None:
    fields = [Field("material_lot", "Material lot"), Field("quantity", "Quantity")]
    assert row_count({}, "materials", fields) == 1
    filled = {f"materials.{i}.material_lot": MATERIALS[i] for i in range(7)}
    assert row_count(filled, "materials", fields) == 8
    # rows added by the user stay, even empty; a default alone does not fill a row
    assert row_count({"materials.rows": "4"}, "materials", fields) == 4
    kind = [Field("kind", "Kind", default="numeric")]
    assert row_count({"ccp.0.kind": "numeric", "ccp.1.kind": "numeric"}, "ccp", kind) == 1
    assert row_count({"ccp.2.kind": "pass_fail"}, "ccp", kind) == 4
    assert row_count({"materials.rows": "100000"}, "materials", fields) == 100


def test_adding_and_removing_rows_keeps_the_values() -> None:
    values = {
        "materials.rows": "3",
        "materials.0.material_lot": "A",
        "materials.1.material_lot": "B",
        "materials.1.quantity": "2",
        "materials.2.material_lot": "C",
        "lot_code": "L1",
    }
    assert edit_rows(values, add="materials")["materials.rows"] == "4"
    out = edit_rows(values, remove="materials.1")
    assert out == {
        "materials.rows": "2",
        "materials.0.material_lot": "A",
        "materials.1.material_lot": "C",
        "lot_code": "L1",
    }
    assert edit_rows(values, remove="materials.x") == values


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        ("1000", "1000"),
        ("1,000", "1000"),
        ("12,345.5", "12345.5"),
        ("１，０００", "1000"),
        (" 85.5 ", "85.5"),
        ("-3", "-3"),
        ("1,00", None),
        ("2千", None),
        ("85,5", None),
        ("", None),
    ],
)
def test_numbers_accept_thousands_separators(typed: str, read: str | None) -> None:
    assert number_text(typed) == read


# ------------------------------------------------------------------ the pages


@data_fixture
def maker(engine, clock) -> int:
    """A beverage maker (f.beverage_ledger: lot PJ20260301A, 08:00-11:00, one temperature
    reading at 08:30 of a plan asking every 30 minutes), eight more material lots and an
    operator."""
    lid = f.beverage_ledger(engine, clock)
    for code in MATERIALS[1:]:
        f.add(engine, clock, lid, "material_check", f.material_check(material_lot=code))
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
    return lid


@pytest.fixture
def web(client, maker):
    f.page_login(client, "op", PASSWORD)
    return client


def csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page[:2000]
    return found.group(1)


def post(web, url: str, data: dict[str, str], **kw: Any):
    token = csrf(web.get(url).text)
    return web.post(url, data={"csrf_token": token, **data}, **kw)


def entries(engine) -> int:
    with read_session(engine) as s:
        return s.execute(select(func.count()).select_from(Entry)).scalar_one()


def rows_of(engine, lid: int, table: str, **where: Any) -> list[dict[str, Any]]:
    with read_session(engine) as s:
        return DbStore(s, lid).find(table, **where)


def names(page: str, prefix: str) -> set[str]:
    return set(re.findall(rf'name="({re.escape(prefix)}[^"]*)"', page))


def value_of(page: str, name: str) -> str:
    found = re.search(
        rf'<input id="{re.escape(name)}" name="{re.escape(name)}" value="([^"]*)"', page
    )
    assert found, name
    return unescape(found.group(1))


def summary(page: str) -> str:
    found = re.search(r'<div class="notice bad error-summary" role="alert".*?</div>', page, re.S)
    assert found, page[:3000]
    return unescape(re.sub(r"<[^>]+>", "", found.group(0)))


LOT = {
    "product_code": "PJ500",
    "lot_code": "PJ20260302A",
    "production_date": "2026-03-02",
    "started_at": "2026-03-02T06:00",
    "ended_at": "2026-03-02T08:00",
    "quantity": "400",
    "unit": "箱",
}


def test_a_lot_with_seven_materials_is_recorded_without_javascript(web, engine, maker) -> None:
    page = web.get("/records/production_lot/new").text
    assert names(page, "materials.") >= {"materials.0.material_lot", "materials.rows"}
    assert "materials.1.material_lot" not in page  # one empty row, not five
    values = {**LOT, "materials.rows": "1"}
    before = entries(engine)
    for i, code in enumerate(MATERIALS[:7]):
        values[f"materials.{i}.material_lot"] = code
        values[f"materials.{i}.quantity"] = "10"
        r = post(web, "/records/production_lot/new", {**values, "add_row": "materials"})
        assert r.status_code == 200
        page = r.text
        values["materials.rows"] = str(i + 2)
        assert f'name="materials.{i + 1}.material_lot"' in page  # the new row
        assert f'<option value="{code}" selected>' in page  # the value kept
    assert entries(engine) == before  # adding rows saves nothing
    # a removed row takes its values with it; the rows after it move up
    r = post(web, "/records/production_lot/new", {**values, "remove_row": "materials.2"})
    assert f'<option value="{MATERIALS[3]}" selected>' in r.text
    assert 'name="materials.7.material_lot"' not in r.text
    r = post(web, "/records/production_lot/new", {**values, "save": "1"}, follow_redirects=False)
    assert r.status_code == 303, summary(r.text)
    [lot] = rows_of(engine, maker, "lots", code="PJ20260302A")
    assert len(rows_of(engine, maker, "lot_inputs", record_seq=lot["record_seq"])) == 7


def test_the_product_form_has_as_many_ccp_rows_as_the_plan_needs(web, engine, maker) -> None:
    page = web.get("/records/product/new").text
    assert 'name="ccp.0.point"' in page
    assert 'name="ccp.1.point"' not in page
    assert 'name="release_items.0.item"' in page
    assert 'name="release_items.1.item"' not in page
    values = {"code": "PJ1L", "name": "石榴汁 1 L", "category": "饮料", "specification": "1 L/瓶",
              "unit": "瓶"}  # fmt: skip
    for i in range(7):  # more parameters than the fixed 6 rows of before
        values.update({f"ccp.{i}.point": "CCP1", f"ccp.{i}.point_name": "巴氏杀菌",
                       f"ccp.{i}.code": f"t{i}", f"ccp.{i}.name": f"温度{i}",
                       f"ccp.{i}.kind": "numeric", f"ccp.{i}.unit": "°C",
                       f"ccp.{i}.min": "85"})  # fmt: skip
    values.update({"ccp.rows": "7", "release_items.0.item": "菌落总数",
                   "release_items.0.limit": "≤100"})  # fmt: skip
    page = post(web, "/records/product/new", {**values, "add_row": "ccp"}).text
    assert 'name="ccp.7.point"' in page
    assert re.search(r'name="ccp.7.kind"[^>]*>\s*<option value="">[^<]*</option>\s*'
                     r'<option value="numeric" selected>', page)  # fmt: skip
    r = post(web, "/records/product/new", {**values, "save": "1"}, follow_redirects=False)
    assert r.status_code == 303, summary(r.text)
    [product] = rows_of(engine, maker, "products", code="PJ1L")
    assert len(json.loads(product["data"])["ccp_plan"][0]["parameters"]) == 7


def test_after_a_reading_the_next_keeps_the_lot_and_parameter_and_proposes_its_time(
    web, engine, maker
) -> None:
    url = "/records/ccp_record/new?lot=PJ20260301A&point=CCP1/temperature"
    page = web.get(url).text
    # the plan asks every 30 minutes from 08:00; 08:30 is recorded: 08:00 is the first due
    assert value_of(page, "measured_at") == "2026-03-01T08:00"
    assert "/records/ccp_record/batch?lot_code=PJ20260301A&amp;point=CCP1%2Ftemperature" in page
    data = {"lot_code": "PJ20260301A", "point": "CCP1/temperature", "value": "86.1",
            "measured_at": "2026-03-01T08:00", "operator": "李强", "save": "1"}  # fmt: skip
    r = post(web, url, data, follow_redirects=False)
    assert r.status_code == 303
    assert "lot_code=PJ20260301A" in r.headers["location"]
    assert "point=CCP1%2Ftemperature" in r.headers["location"]
    page = web.get(r.headers["location"]).text
    assert '<option value="CCP1/temperature" selected>' in page
    assert value_of(page, "measured_at") == "2026-03-01T09:00"  # 08:30 is taken
    # choosing the parameter on the form (not from a link) proposes its time too
    page = web.get("/records/ccp_record/new?lot=PJ20260301A").text
    now = value_of(page, "measured_at")
    assert now == "2026-03-02T08:30"
    data = {"lot_code": "PJ20260301A", "point": "CCP1/holding_time", "measured_at": now,
            "due_for": "PJ20260301A ", "operator": "李强", "save": "0"}  # fmt: skip
    page = post(web, "/records/ccp_record/new", data).text
    assert value_of(page, "measured_at") == "2026-03-01T08:00"
    assert 'name="due_for" value="PJ20260301A CCP1/holding_time"' in page
    # a time the user then types stays through the next redraw
    data.update({"measured_at": "2026-03-01T08:10", "due_for": "PJ20260301A CCP1/holding_time"})
    page = post(web, "/records/ccp_record/new", data).text
    assert value_of(page, "measured_at") == "2026-03-01T08:10"


def _batch(web, rows: list[tuple[str, str]], **extra: str):
    url = "/records/ccp_record/batch?lot_code=PJ20260301A&point=CCP1/temperature"
    data = {"lot_code": "PJ20260301A", "point": "CCP1/temperature", "operator": "李强",
            "readings.tag": "PJ20260301A CCP1/temperature",
            "readings.rows": str(len(rows) + 1), "save": "1", **extra}  # fmt: skip
    for i, (at, value) in enumerate(rows):
        data[f"readings.{i}.measured_at"] = at
        data[f"readings.{i}.value"] = value
    return post(web, url, data, follow_redirects=False)


def test_the_missing_readings_are_caught_up_in_one_table(web, engine, maker) -> None:
    page = web.get("/records/ccp_record/batch?lot_code=PJ20260301A&point=CCP1/temperature").text
    due = ["2026-03-01T08:00", "2026-03-01T09:00", "2026-03-01T09:30", "2026-03-01T10:00",
           "2026-03-01T10:30"]  # fmt: skip
    assert [value_of(page, f"readings.{i}.measured_at") for i in range(5)] == due
    assert value_of(page, "readings.5.measured_at") == ""  # and one empty row
    assert value_of(page, "operator") == "李强"
    r = _batch(web, [(at, "86.2") for at in due])
    assert r.status_code == 303, summary(r.text)
    readings = [
        r for r in rows_of(engine, maker, "ccp_readings") if r["parameter"] == "temperature"
    ]
    assert len(readings) == 6
    page = web.get(r.headers["location"]).text
    assert "已保存 5 条关键控制点读数" in page
    assert "readings.0.measured_at" in page
    assert value_of(page, "readings.0.measured_at") == ""


def test_a_table_of_readings_is_saved_whole_or_not_at_all(web, engine, maker) -> None:
    before = entries(engine)
    r = _batch(web, [("2026-03-01T08:00", "86.2"), ("2026-03-01T09:00", "八十六"),
                     ("2026-03-01T09:30", "86.0"), ("2026-02-27T09:30", "86.0")])  # fmt: skip
    assert r.status_code == 422
    assert entries(engine) == before
    text = summary(r.text)
    assert "读数 · 第 2 行 · 实测值：请用数字填写，例如 1000 或 85.5（“八十六”不是数字）" in text
    assert "不是有效的数字" not in text  # said once, plainly
    assert "读数 · 第 4 行 · 监测时间" in text
    assert "第 1 行" not in text
    assert "第 3 行" not in text
    assert 'href="#readings.1.value"' in r.text
    assert 'id="readings.1.value"' in r.text
    # a reading outside the limits asks first, naming its row
    r = _batch(web, [("2026-03-01T08:00", "86.2"), ("2026-03-01T09:00", "83.5")])
    assert r.status_code == 200
    assert entries(engine) == before
    assert "第 2 行超出关键限值" in unescape(r.text)


def test_nothing_is_preset_to_a_result_or_a_date_nobody_gave(web, engine, maker) -> None:
    page = web.get("/records/material_check/new").text
    assert value_of(page, "production_date") == ""
    assert re.search(r'<select id="accepted"[^>]*>\s*<option value="">[^<]*</option>\s*'
                     r'<option value="true" >', page)  # fmt: skip
    page = web.get("/records/release_test/new?lot=PJ20260301A").text
    assert value_of(page, "items.0.item") == "菌落总数"
    assert value_of(page, "items.0.result") == ""
    for name in ("items.0.passed", "items.1.passed", "conclusion"):
        select = re.search(rf'<select id="{re.escape(name)}".*?</select>', page, re.S)
        assert select, name
        assert "selected" not in select.group(0), name
    page = web.get("/records/self_inspection/new?period=daily").text
    assert value_of(page, "items.0.item") == "从业人员健康与个人卫生"
    assert "Staff health and hygiene" not in page
    results = re.findall(r'<select id="items\.\d+\.result".*?</select>', page, re.S)
    assert len(results) == 7
    assert not any("selected" in x for x in results)


def test_self_inspection_items_are_stored_in_the_language_the_user_read(web, engine, maker) -> None:
    def save(lang: str, day: str) -> dict[str, Any]:
        web.cookies.set("lang", lang)
        page = web.get("/records/self_inspection/new?period=daily").text
        data = {"period": "daily", "period_date": day, "inspector": "李强", "save": "1",
                "items.tag": "daily", "items.rows": "7"}  # fmt: skip
        for i in range(6):
            data[f"items.{i}.item"] = value_of(page, f"items.{i}.item")
            data[f"items.{i}.result"] = "ok"
        r = post(web, "/records/self_inspection/new?period=daily", data, follow_redirects=False)
        assert r.status_code == 303, summary(r.text)
        seq = next(
            x["record_seq"]
            for x in rows_of(engine, maker, "self_inspections")
            if x["period_date"] == day
        )
        with read_session(engine) as s:
            return json.loads(ledger.get_entry(session=s, ledger_id=maker, seq=seq).body)["body"]

    zh = save("zh-Hans", "2026-03-02")["items"]
    assert zh[0] == {"item": "从业人员健康与个人卫生", "result": "ok"}
    assert len(zh) == 6
    assert not any(re.search("[A-Za-z]", i["item"]) for i in zh)
    en = save("en", "2026-03-01")["items"]
    assert en[0] == {"item": "Staff health and hygiene", "result": "ok"}


def test_an_unanswered_item_is_named_by_its_label(web, engine, maker) -> None:
    data = {"lot_code": "PJ20260301A", "tested_at": "2026-03-01T15:00", "inspector": "赵丽",
            "report_no": "JC-2", "items.tag": "PJ500", "items.rows": "3",
            "items.0.item": "菌落总数", "items.0.limit": "≤100", "items.0.unit": "CFU/mL",
            "items.0.result": "40", "items.0.passed": "true",
            "items.1.item": "大肠菌群", "items.1.limit": "≤1", "items.1.unit": "CFU/mL",
            "save": "1"}  # fmt: skip
    r = post(web, "/records/release_test/new?lot=PJ20260301A", data)
    assert r.status_code == 422
    text = summary(r.text)
    assert "检验项目 · 第 2 行 · 结果：必填" in text
    assert "检验项目 · 第 2 行 · 合格：必填" in text
    assert "检验结论：必填" in text
    assert "太短或太少" not in r.text
    for target in re.findall(r'<li><a href="#([^"]+)"', r.text):
        assert f'id="{target}"' in r.text, target


def test_numbers_with_separators_are_read_and_others_are_named(web, engine, maker) -> None:
    page = web.get("/records/material_check/new").text
    assert "pattern=" not in page
    data = {**{k: str(v).lower() if isinstance(v, bool) else str(v)
               for k, v in f.material_check(material_lot="ML-0302-01").items()},
            "quantity": "2,000", "save": "1"}  # fmt: skip
    r = post(web, "/records/material_check/new", data, follow_redirects=False)
    assert r.status_code == 303, summary(r.text)
    [ml] = rows_of(engine, maker, "material_lots", code="ML-0302-01")
    assert ml["quantity"] == "2000"
    r = post(web, "/records/material_check/new",
             {**data, "material_lot": "ML-0302-02", "quantity": "2千"})  # fmt: skip
    assert r.status_code == 422
    text = summary(r.text)
    assert "数量：请用数字填写，例如 1000 或 85.5（“2千”不是数字）" in text
    assert 'href="#quantity"' in r.text
    assert not rows_of(engine, maker, "material_lots", code="ML-0302-02")
    web.cookies.set("lang", "en")
    r = post(web, "/records/material_check/new",
             {**data, "material_lot": "ML-0302-02", "quantity": "2千"})  # fmt: skip
    assert "Quantity: write the number in digits" in summary(r.text)


def test_a_correction_can_add_a_material_row(web, engine, maker) -> None:
    seq = rows_of(engine, maker, "lots", code="PJ20260301A")[0]["record_seq"]
    page = web.get(f"/ledger/{seq}/correct").text
    assert 'name="materials.1.material_lot"' in page  # the lot's one row, and an empty one
    assert value_of(page, "materials.0.quantity") == "300"
    data = {"reason": "漏记一种原料", "product_code": "PJ500", "lot_code": "PJ20260301A",
            "production_date": "2026-03-01", "started_at": "2026-03-01T08:00",
            "ended_at": "2026-03-01T11:00", "quantity": "400", "unit": "箱",
            "materials.rows": "2", "materials.0.material_lot": "ML-0301-01",
            "materials.0.quantity": "300"}  # fmt: skip
    page = post(web, f"/ledger/{seq}/correct", {**data, "add_row": "materials"}).text
    assert 'name="materials.2.material_lot"' in page
    assert "漏记一种原料" in page
    data.update({"materials.1.material_lot": "ML-0301-02", "materials.1.quantity": "5",
                 "save": "1"})  # fmt: skip
    r = post(web, f"/ledger/{seq}/correct", data, follow_redirects=False)
    assert r.status_code == 303, summary(r.text)
    assert len(rows_of(engine, maker, "lot_inputs", record_seq=seq)) == 2
