"""Expected and missing (issue 24, item 14): an enterprise's own records of a period as XLSX
and PDF for the bureau (every kind, a sheet each, Chinese headers, text never a formula),
and the lots list searched and filtered in the database, a page at a time."""

from __future__ import annotations

import io
import json
import re
from datetime import date
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from conftest import ACCESS_PASSWORD as PASSWORD
from foodtrace.db import read_session
from foodtrace.ledger.models import Entry
from foodtrace.records import own_export
from schemas.records import SYSTEM_KINDS

import factories as f

MARCH = "since=2026-03-01&until=2026-03-31"
FORMULA = '=HYPERLINK("http://evil.example","点此")'


def _signed_in(client: Any, user: str = "ent_a") -> Any:
    got = f.page_login(client, user, PASSWORD, follow_redirects=False)
    assert got.status_code == 303
    return client


def _book(data: bytes) -> Any:
    return load_workbook(io.BytesIO(data))


def _seqs_by_sheet(book: Any) -> dict[str, list[int]]:
    out = {}
    for ws in book.worksheets[1:]:
        assert ws.cell(1, 1).value == "记录号"
        out[ws.title] = [r[0].value for r in ws.iter_rows(min_row=2)]
    return out


def _entries(engine: Any, lid: int) -> list[tuple[int, str, str]]:
    with read_session(engine) as s:
        return [
            (seq, kind, at)
            for seq, kind, at in s.execute(
                select(Entry.seq, Entry.kind, Entry.event_time)
                .where(Entry.ledger_id == lid)
                .order_by(Entry.seq)
            )
        ]


def test_a_months_records_as_a_workbook_for_the_bureau(client, engine, clock, world) -> None:
    lid = world["a"]
    f.add(engine, clock, lid, "customer", f.customer(code="EVIL", name=FORMULA, credit_code=None))
    f.add(engine, clock, lid, "sale", f.sale(quantity="5", customer_code="EVIL"))
    sale = next(seq for seq, kind, _ in _entries(engine, lid) if kind == "sale")
    fix = f.add(
        engine, clock, lid, "correction",
        {"corrects": sale, "reason": "数量录错", "record": f.sale(quantity="90")},
    )  # fmt: skip
    got = _signed_in(client).get(f"/exports/records.xlsx?{MARCH}")
    assert got.status_code == 200, got.text[:1000]
    assert got.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert "filename*=UTF-8''" in got.headers["content-disposition"]
    book = _book(got.content)
    assert book.worksheets[0].title == "概要"
    summary = {r[0].value: r[1].value for r in book.worksheets[0].iter_rows()}
    assert summary["统一社会信用代码"] == f.BEVERAGE
    assert summary["期间"] == "2026-03-01 至 2026-03-31"
    seqs = _seqs_by_sheet(book)
    # every entry of the period, once, on its kind's sheet; the platform's declarations left out
    expected: dict[str, list[int]] = {}
    for seq, kind, _at in _entries(engine, lid):
        if kind not in SYSTEM_KINDS:
            expected.setdefault(own_export.TITLES[kind], []).append(seq)
    assert seqs == expected
    assert list(seqs)[-1] == "更正记录"
    # Chinese headers, no internal field name
    for ws in book.worksheets[1:]:
        for cell in ws[1]:
            assert not re.search(r"[a-z]_[a-z]|^[a-z]+$", str(cell.value)), (ws.title, cell.value)
    sales = book["销售记录"]
    header = [c.value for c in sales[1]]
    rows = {
        r[0]: dict(zip(header, r, strict=True))
        for r in sales.iter_rows(min_row=2, values_only=True)
    }
    assert rows[sale]["数量"] == 90  # the corrected record, as it stands now
    assert f"第 {fix.seq} 条" in rows[sale]["更正情况"]
    assert "数量录错" in rows[sale]["更正情况"]
    # a customer's name that looks like a formula stays text, in the sale's buyer and its own row
    cells = [c for ws in book.worksheets for row in ws.iter_rows() for c in row]
    evil = [c for c in cells if isinstance(c.value, str) and "HYPERLINK" in c.value]
    assert len(evil) >= 2
    assert all(c.data_type == "s" for c in evil)
    assert any(c.value == FORMULA and c.quotePrefix for c in evil)
    checks = book["关键控制点监控"]
    row = [c.value for c in checks[2]]
    assert "CCP1 巴氏杀菌" in row  # the plan's names, not the reading's codes
    assert "杀菌温度" in row


def test_the_same_records_as_a_pdf_with_chinese_text(client, engine, world) -> None:
    from pypdf import PdfReader

    got = _signed_in(client).get(f"/exports/records.pdf?{MARCH}")
    assert got.status_code == 200, got.text[:500]
    assert got.headers["content-type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(got.content))
    # (pypdf reads each two-byte glyph code with a NUL before it: dropped)
    text = "\n".join(p.extract_text() for p in reader.pages).replace("\x00", "")
    for words in ("枣庄峄城石榴饮品有限公司", "2026-03-01 至 2026-03-31", "销售记录", "出厂检验",
                  "记录号", "PJ20260301A", "第 1 页"):  # fmt: skip
        assert words in text, words
    fonts = {
        str(font["/BaseFont"])
        for page in reader.pages
        for font in page["/Resources"]["/Font"].values()
    }
    assert any("CJK" in name for name in fonts), fonts  # embedded, not left to the reader


def test_an_empty_period_and_bad_periods(client, engine, world) -> None:
    _signed_in(client)
    empty = client.get("/exports/records.xlsx?since=2026-01-01&until=2026-01-31")
    assert empty.status_code == 200
    assert [ws.title for ws in _book(empty.content).worksheets] == ["概要"]
    for query, words in (
        ("since=2026-03-31&until=2026-03-01", "截止"),
        ("since=&until=2026-03-01", ""),
        ("since=2025-01-01&until=2026-03-01", "366"),
        ("since=2027-01-01&until=2027-01-31", ""),
    ):
        got = client.get(f"/exports/records.xlsx?{query}")
        assert got.status_code == 422, query
        assert 'id="export-problem"' in got.text
        assert words in got.text
    assert client.get("/exports/records.pdf?since=2026-01-01&until=2026-03-31").status_code == 422
    assert client.get(f"/exports/records.csv?{MARCH}").status_code == 404
    page = client.get("/exports")
    assert page.status_code == 200
    assert 'action="/exports/records.xlsx"' in page.text


def test_each_enterprise_exports_only_its_own_records(client, engine, world) -> None:
    got = _signed_in(client, "ent_b").get(f"/exports/records.xlsx?{MARCH}")
    book = _book(got.content)
    own = {seq for seq, kind, _ in _entries(engine, world["b"]) if kind not in SYSTEM_KINDS}
    assert {s for seqs in _seqs_by_sheet(book).values() for s in seqs} == own
    names = [c.value for ws in book.worksheets for row in ws.iter_rows() for c in row]
    assert "枣庄峄城石榴饮品有限公司" not in names


@pytest.mark.parametrize("seed", [5])
def test_a_random_worlds_makers_export_every_record(client, engine, clock, seed) -> None:
    import worlds

    world = worlds.build(engine, clock, seed)
    with read_session(engine) as s:
        for ent in world.ents.values():
            entries = _entries(engine, ent.ledger_id)
            sheets = own_export.own_records(
                session=s, enterprise_id=ent.ledger_id,
                since=date(2026, 1, 1), until=date(2026, 12, 31),
            )  # fmt: skip
            got = sorted(row[0] for sheet in sheets for row in sheet.rows)
            assert got == [seq for seq, kind, _ in entries if kind not in SYSTEM_KINDS]
            for sheet in sheets:
                assert all(len(r) == len(sheet.columns) for r in sheet.rows)
            pdf = own_export.records_pdf(
                sheets, name=ent.key, credit_code=ent.credit_code,
                since=date(2026, 1, 1), until=date(2026, 12, 31), now="2026-03-02T00:30:00Z",
            )  # fmt: skip
            assert pdf.startswith(b"%PDF-")


# ------------------------------------------------------------------------------ lots


def _lots(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<tr data-status="([a-z]+)"><td><a href="/lots/([^"]+)"', html)


def test_lots_are_searched_and_filtered_in_the_database_a_page_at_a_time(
    client, engine, clock, world
) -> None:
    lid = world["a"]
    f.add(engine, clock, lid, "product", f.product(code="PJ1L", name="石榴汁 1L", gtin=None))
    f.add(
        engine, clock, lid, "material_check",
        f.material_check(material_lot="ML-0120", receipt_date="2026-01-20"),
    )  # fmt: skip
    for n in range(60):
        day = f"2026-02-{1 + n % 28:02d}"
        f.add(
            engine, clock, lid, "production_lot",
            f.production_lot(
                lot_code=f"PJ-F{n:02d}", production_date=day,
                started_at=f"{day}T08:00:00+08:00", ended_at=f"{day}T09:00:00+08:00",
                product_code="PJ1L" if n % 3 == 0 else "PJ500", unit="瓶", quantity="10",
                materials=[{"material_lot": "ML-0120", "quantity": "1", "unit": "kg"}],
            ),
        )  # fmt: skip
        if n % 4 == 0:
            f.add(
                engine, clock, lid, "release_test",
                f.release_test(
                    lot_code=f"PJ-F{n:02d}", tested_at=f"{day}T10:00:00+08:00",
                    conclusion="pass" if n % 8 == 0 else "fail",
                    items=[{"item": "菌落总数", "result": "40", "limit": "≤100",
                            "passed": n % 8 == 0}],
                ),
            )  # fmt: skip
    _signed_in(client)
    first = client.get("/lots")
    assert first.status_code == 200
    assert len(_lots(first.text)) == 50
    count = re.search(r'<p class="muted" id="lot-count">([^<]+)</p>', first.text)
    assert count
    assert "61" in count.group(1)  # 61 lots (the world's one and these 60)
    nxt = re.search(r'<a class="button secondary" href="([^"]+)" rel="next"', first.text)
    assert nxt
    second = client.get(nxt.group(1).replace("&amp;", "&"))
    assert len(_lots(second.text)) == 11
    assert not set(_lots(first.text)) & set(_lots(second.text))
    # a part of the code, any case
    found = _lots(client.get("/lots?q=pj-f1").text)
    assert sorted(code for _, code in found) == [f"PJ-F{n}" for n in range(10, 20)]
    # product, dates and status together
    got = _lots(
        client.get("/lots?product=PJ1L&since=2026-02-01&until=2026-02-10&status=released").text
    )
    expect = [f"PJ-F{n:02d}" for n in range(60) if n % 3 == 0 and n % 8 == 0 and 1 + n % 28 <= 10]
    assert sorted(code for _, code in got) == sorted(expect)
    assert {s for s, _ in got} == {"released"}
    failed = _lots(client.get("/lots?status=failed").text)
    assert sorted(c for _, c in failed) == sorted(
        f"PJ-F{n:02d}" for n in range(60) if n % 4 == 0 and n % 8 != 0
    )
    untested = client.get("/lots?status=untested&q=PJ-F").text
    assert all(s == "untested" for s, _ in _lots(untested))
    assert len(_lots(untested)) == 45
    # a wildcard in the search is a character, not a pattern; nonsense filters are ignored
    assert _lots(client.get("/lots?q=PJ_F").text) == []
    assert client.get("/lots?status=bogus&product=NOPE").status_code == 200
    assert client.get("/lots?since=not-a-date").status_code == 422


def test_the_lot_list_pages_keep_their_filters(client, engine, world) -> None:
    html = _signed_in(client).get("/lots?q=PJ2026&status=released").text
    assert _lots(html) == [("released", "PJ20260301A")]
    assert json.dumps("PJ2026")[1:-1] in html  # the search stays in its box
