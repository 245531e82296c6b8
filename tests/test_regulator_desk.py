"""The regulator's desk and the words of the regulator's pages (issue 24, items 8, 10, 11).

The desk (``/regulator``) lists the open cases and the enterprises behind on their records;
its lot look-up finds a lot as a sampling report writes its code, whatever the case or the
dashes, offers near codes, and searches the jurisdiction only. The trail graph fits its box.
A Chinese page shows no English line of the core ("no lot 'X'") and no internal field name;
the enterprise reads the regulator's reads of its records in its own language.
"""

from __future__ import annotations

import re
from typing import Any

from conftest import ACCESS_PASSWORD as PASSWORD
from foodtrace.trail import Edge, Node, Trail
from regulator_view.graph import clip, svg
from regulator_view.lot_search import key
from web.labels import read_text

import factories as f

LOT = "PJ20260301A"


def _web(app: Any, client: Any, username: str) -> Any:
    web = type(client)(app)
    web.__enter__()
    r = f.page_login(web, username, PASSWORD)
    assert r.status_code in (200, 303), r.text[:500]
    return web


def _english(html: str) -> list[str]:
    """Lower-case English words in a page's text (tags, scripts and attributes dropped)."""
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    text = re.sub(r'<p class="print-source".*?</p>', " ", text, flags=re.S)  # the page's URL
    text = re.sub(r"<[^>]+>", " ", text)
    return re.findall(r"\b[a-z]{3,}\b", text)


def test_the_look_up_finds_a_lot_as_typed_in_the_jurisdiction_only(app, client, world) -> None:
    web = _web(app, client, "reg_in")
    try:
        for typed in ("pj20260301a", "PJ-2026-0301A", " pj 20260301 a "):
            got = web.get("/regulator/lots/suggest", params={"q": typed})
            assert got.status_code == 200
            assert [(s["lot_code"], s["exact"]) for s in got.json()] == [(LOT, True)], typed
            assert got.json()[0]["credit_code"] == f.BEVERAGE
        # a prefix, and a code with two digits swapped: offered, not as the same code
        assert [s["lot_code"] for s in web.get("/regulator/lots/suggest?q=pj2026").json()] == [LOT]
        near = web.get("/regulator/lots/suggest?q=PJ20260310A").json()
        assert [(s["lot_code"], s["exact"]) for s in near] == [(LOT, False)]
        assert web.get("/regulator/lots/suggest?q=XY99999999").json() == []
        assert web.get("/regulator/lots/suggest?q=p").json() == []  # too short to suggest
        # the form without a script: one lot of that code opens its trail
        r = web.get("/regulator/lots?q=pj-20260301a&go=1", follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"] == f"/regulator/trail?credit_code={f.BEVERAGE}&lot={LOT}"
        page = web.get("/regulator/lots?q=PJ20260310A")
        assert page.status_code == 200
        assert "辖区内没有批次 PJ20260310A" in page.text
        assert f'lot={LOT}"' in page.text
        assert not _english(page.text.split("<main>")[1])
    finally:
        web.__exit__(None, None, None)
    # a regulator of the next district: A's lots are not theirs to find
    other = _web(app, client, "reg_out")
    try:
        assert other.get(f"/regulator/lots/suggest?q={LOT}").json() == []
        page = other.get(f"/regulator/lots?q={LOT}&go=1", follow_redirects=False)
        assert page.status_code == 200
        assert f"lot={LOT}" not in page.text
        assert 'id="lots-found"' not in page.text
    finally:
        other.__exit__(None, None, None)


def test_an_unknown_lot_is_named_in_chinese_with_near_codes(app, client, world) -> None:
    web = _web(app, client, "reg_in")
    try:
        page = web.get(f"/regulator/trail?credit_code={f.BEVERAGE}&lot=PJ20260301B")
        assert page.status_code == 200
        main = page.text.split("<main>")[1]
        assert "no lot" not in main
        assert 'class="notice bad"' not in main
        assert "的记录中没有批次 PJ20260301B" in main
        assert f"lot={LOT}" in main  # the near code, one click away
        assert not _english(main)
    finally:
        web.__exit__(None, None, None)


def test_the_desk_lists_open_cases_and_enterprises_behind(app, client, world) -> None:
    headers = f.bearer(client, "reg_in", PASSWORD)
    web = _web(app, client, "reg_in")
    try:
        page = web.get("/regulator")
        assert page.status_code == 200
        assert "没有未结案件" in page.text
        # A keeps no daily self-inspection: behind, and said so with the figures
        behind = page.text.split('id="behind"')[1].split("</table>")[0]
        assert f'data-credit-code="{f.BEVERAGE}"' in behind
        assert "日管控" in behind
        assert f'href="/regulator/completeness#e-{f.BEVERAGE}"' in behind
        case_id = f.notified_case(client, headers)
        page = web.get("/regulator")
        row = page.text.split(f'data-case="{case_id}"')[1].split("</tr>")[0]
        assert f'href="/regulator/cases/{case_id}"' in row
        assert "已通知企业" in row  # its state, in words
        assert "今天立案" in row  # its age
        assert f'href="/regulator/lots/{f.BEVERAGE}/{LOT}"' in row
        assert not _english(page.text.split("<main>")[1])
        # the case's page: its state is information, not an error
        case = web.get(f"/regulator/cases/{case_id}")
        assert 'id="case-status"' in case.text
        status = case.text.split('id="case-status"')[1].split("</p>")[0]
        assert "已通知企业" in status
        assert "every enterprise" not in case.text
    finally:
        web.__exit__(None, None, None)


def test_completeness_flags_a_short_obligation_beside_a_full_share(app, client, world) -> None:
    web = _web(app, client, "reg_in")
    try:
        page = web.get("/regulator/completeness?since=2026-02-23&until=2026-03-01")
        assert page.status_code == 200
        row = page.text.split(f'<tr data-credit-code="{f.BEVERAGE}">')[1].split("</tr>")[0]
        daily = re.search(r'<td class="num short"[^>]*data-short="true">(.*?)</td>', row)
        assert daily, row
        assert "0/7" in daily.group(1)
        section = page.text.split(f'id="e-{f.BEVERAGE}"')[1].split("</section>")[0]
        assert "日管控：7 天中仅 0 天有记录" in section
        assert 'class="badge ok"' not in row  # no green badge while the dailies are short
    finally:
        web.__exit__(None, None, None)


def test_the_running_week_is_in_progress_not_a_red_zero(app, client, world, clock) -> None:
    today = clock.now().date().isoformat()
    web = _web(app, client, "reg_in")
    try:
        page = web.get(f"/regulator/completeness?since=2026-02-20&until={today}")
        assert page.status_code == 200
        assert 'id="running-note"' in page.text
        weeks = re.findall(
            r'<g class="week" data-week="([^"]+)"( data-state="in-progress")?>', page.text
        )
        running = {w for w, s in weeks if s}
        assert len(running) == 1, weeks  # the last week only
        last = re.search(
            rf'<g class="week" data-week="{next(iter(running))}" data-state="in-progress">.*?</g>',
            page.text,
        )
        assert last
        assert "bar bad" not in last.group(0)
        assert "进行中" in last.group(0)
        assert "0%" not in last.group(0)
    finally:
        web.__exit__(None, None, None)


def test_the_enterprise_reads_the_regulators_reads_in_its_language(app, client, world) -> None:
    web = _web(app, client, "reg_in")
    try:
        assert web.get(f"/regulator/trail?credit_code={f.BEVERAGE}&lot={LOT}").status_code == 200
        assert web.get(f"/regulator/lots/suggest?q={LOT.lower()}").status_code == 200
    finally:
        web.__exit__(None, None, None)
    own = _web(app, client, "ent_a")
    try:
        page = own.get("/reads")
        assert page.status_code == 200
        assert f"批次 {LOT} 的追溯" in page.text
        assert f"查找批次：批号 ≈ {LOT.lower()}" in page.text
        assert "trail of lot" not in page.text
        assert "lot~" not in page.text
    finally:
        own.__exit__(None, None, None)


def test_read_lines_of_every_form_have_words_and_others_stay_as_written() -> None:
    def zh(s: str) -> str:
        return {"Both ways": "双向追溯", "Enterprise notified": "已通知企业"}.get(s, s)

    assert (
        read_text("trail of lot PJ-D05 (both, depth 6)", zh)
        == "trail of lot PJ-D05 (双向追溯, 6 steps)"
    )
    assert read_text("case 1-2: notified", zh) == "case 1-2: 已通知企业"
    assert read_text("case 1-2: scope.xlsx", zh) == "case 1-2: recall scope, exported as XLSX"
    assert read_text("find lots gtin=0692 product=石榴 汁", zh) == (
        "lots found by GTIN 0692; Product name 石榴 汁"
    )
    assert read_text("case 1-2: unheard", zh) == "case 1-2: unheard"  # no state of that name
    assert read_text("find lots colour=red", zh) == "find lots colour=red"
    assert read_text("something else", zh) == "something else"


def test_the_trail_graph_fits_its_box_and_marks_the_traced_lot() -> None:
    nodes = {
        "lot:1:A": Node("lot:1:A", "lot", f.BEVERAGE, "山东榴韵饮品有限公司", "A", "A 石榴汁饮料"),
        "material_lot:1:M": Node(
            "material_lot:1:M",
            "material_lot",
            f.BEVERAGE,
            "山东榴韵饮品有限公司",
            "BZD-D01",
            "覆膜编织袋（内衬PE） BZD-D01",
        ),
        "supplier:1:S": Node(
            "supplier:1:S", "supplier", None, "崇左甘华糖业有限公司", None, "崇左甘华糖业有限公司"
        ),
    }
    edges = [
        Edge("supplier:1:S", "material_lot:1:M", "supplied"),
        Edge("material_lot:1:M", "lot:1:A", "consumed"),
    ]
    drawn = svg(
        Trail("lot:1:A", nodes, edges),
        title="批次 A 的追溯图",
        gettext=lambda s: {"Supplier": "供应商"}.get(s, s),
    )
    width = int(re.search(r'viewBox="0 0 (\d+) \d+"', drawn).group(1))
    assert 'width="100%"' in drawn
    assert f"max-width:{width}px" in drawn
    assert 'aria-label="批次 A 的追溯图"' in drawn
    assert re.search(r'<g data-node="lot:1:A" data-start>', drawn)
    assert drawn.count("data-start") == 1
    assert ">供应商<" in drawn  # a company's box says what it is, not its name twice
    assert "覆膜编织袋（内衬P…" in drawn  # cut to the box, the code kept whole in bold
    assert '<tspan font-weight="700">BZD-D01</tspan>' in drawn
    assert clip("山东榴韵饮品有限公司", 10) == "山东榴韵…"
    assert clip("PJ-D05", 10) == "PJ-D05"
    assert key(" pj-d 12 ") == "PJD12"
