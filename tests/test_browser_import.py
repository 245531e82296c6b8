"""The admin imports a sales file at a desk (1366×900): every mistake of a row at once, the
marked copy downloaded, then the fixed file previewed, warned of and confirmed."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import load_workbook

from foodtrace import imports
from test_browser import PASSWORD, browser, maker, shot, site  # noqa: F401 - fixtures

import factories as f

DESK = {"width": 1366, "height": 900}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
GOOD = ["PJ20260301A", 10, "箱", "2026-03-01", "DIST01", "CK-1"]
HEADERS = ["生产批号", "数量", "单位", "销售日期", "客户编码", "单据号"]


@pytest.fixture
def desk(browser, site) -> Iterator[object]:  # noqa: F811 - the fixtures imported above
    context = browser.new_context(viewport=DESK, base_url=site, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    context.close()


def sales_xlsx(rows: list[list[object]]) -> bytes:
    """The sales template as a user fills it: the example row replaced by ``rows``."""
    wb = load_workbook(io.BytesIO(imports.template_xlsx("sale")))
    ws = wb.worksheets[0]
    headers = [c.value for c in ws[1]]
    ws.delete_rows(2, ws.max_row)
    for row in rows:
        values = dict(zip(HEADERS, row, strict=True))
        ws.append([values.get(h) for h in headers])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def check(page, content: bytes) -> int:
    """Upload ``content`` as a sales file and wait for the check; the clicks and fields used."""
    page.goto("/import")
    page.select_option("#kind", "sale")
    page.set_input_files(
        "#file", files=[{"name": "销售台账.xlsx", "buffer": content, "mimeType": XLSX}]
    )
    page.click("form.record button[type=submit]")
    page.wait_for_selector("#job[data-status=checked], #job[data-status=failed]", timeout=60_000)
    return 3


def test_the_admin_sees_every_mistake_of_a_row_at_once_and_downloads_them_marked(
    desk, engine, clock, db_url, tmp_path: Path
) -> None:
    page = desk
    f.add(engine, clock, 1, "material_check", f.material_check())
    f.add(engine, clock, 1, "production_lot", f.production_lot())
    f.add(engine, clock, 1, "release_test", f.release_test())  # released: no warning of that
    page.goto("/login")
    page.fill("#username", "boss")
    page.fill("#password", PASSWORD)
    page.click("form.record button[type=submit]")
    page.wait_for_load_state()

    # row 3: a quantity in words, a unit the product has not, a customer never registered
    bad = ["PJ20260301A", "十箱", "吨", "2026-03-01", "NOBODY", "CK-2"]
    actions = check(page, sales_xlsx([GOOD, bad, [*GOOD[:5], "CK-3"]]))
    assert actions <= 3
    assert page.locator("#import-errors").is_visible()
    rows = page.locator("#row-errors tr")
    assert rows.count() == 4  # the header and the three problems, at once
    cells = [rows.nth(i).locator("td").all_inner_texts() for i in range(1, 4)]
    assert [(c[0], c[1]) for c in cells] == [("3", "数量"), ("3", "单位"), ("3", "客户编码")]
    assert "“十箱”不是数字" in cells[0][2]
    assert "单位不符" in cells[1][2]
    assert cells[2][2] == "客户“NOBODY”不存在：请先在客户名录中登记该客户"
    assert page.locator("#confirm-import").count() == 0
    shot(page, "import-all-errors", db_url)

    with page.expect_download() as info:
        page.click("#download-marked")
    download = info.value
    assert download.suggested_filename.endswith(".xlsx")
    assert "问题标注" in download.suggested_filename
    path = tmp_path / "marked.xlsx"
    download.save_as(path)
    ws, listing = load_workbook(path).worksheets
    header = [c.value for c in ws[1]]
    marked = {
        (c.row, header[c.column - 1]): (c.fill.fgColor.rgb[-6:], c.comment.text)
        for line in ws.iter_rows()
        for c in line
        if c.comment is not None
    }
    assert marked == {
        (3, "数量"): (imports.ERROR_FILL, cells[0][2]),
        (3, "单位"): (imports.ERROR_FILL, cells[1][2]),
        (3, "客户编码"): (imports.ERROR_FILL, cells[2][2]),
    }
    assert [c.value for c in ws[3]][:6] == bad  # the row as the user wrote it
    assert [[c.value for c in r] for r in listing.iter_rows(min_row=2)] == [
        [3, "数量", "错误", cells[0][2]],
        [3, "单位", "错误", cells[1][2]],
        [3, "客户编码", "错误", cells[2][2]],
    ]

    # fixed: a preview of what is written, and a warning for the sale already recorded
    fixed = [GOOD, ["PJ20260301A", 10, "箱", "2026-03-01", "DIST01", "CK-2"]]
    first = [GOOD]
    check(page, sales_xlsx(first))
    page.click("#confirm-import")
    page.wait_for_selector("#job[data-status=done]", timeout=60_000)
    check(page, sales_xlsx(fixed))
    assert page.locator("#import-ready").is_visible()
    counts = page.locator("#import-counts tr").nth(1).locator("td").all_inner_texts()
    assert counts == ["销售", "2"]
    preview = page.locator("#import-preview tr")
    assert preview.count() == 3
    assert preview.nth(1).locator("td").all_inner_texts()[:3] == ["2", "PJ20260301A", "10"]
    warnings = page.locator("#row-warnings tr")
    assert warnings.count() == 2
    assert warnings.nth(1).locator("td").all_inner_texts()[:2] == ["2", "单据号"]
    assert "可能已经导入过" in warnings.nth(1).inner_text()
    shot(page, "import-preview", db_url)
    page.click("#confirm-import")  # a warning does not stop it
    page.wait_for_selector("#job[data-status=done]", timeout=60_000)
    assert page.locator("#import-done").is_visible()
