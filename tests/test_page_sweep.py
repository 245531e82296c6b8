"""Every page each person reaches, in both languages, in a real browser (issue 24, 8–9).

For each of the operator (phone), the enterprise admin and the regulator (desk) and a
visitor (phone), on the demo district: the pages linked from their start pages and
navigation, one of each kind of address (``/ledger/12`` stands for every entry). Each page
is read in Chinese and in English and must show one language and no internal field name
(tests/page_checks.py); in Chinese, axe-core must find no serious or critical violation
(its rules do not depend on the language), and at phone width nothing may be off-screen
or too small to tap. A failure lists every problem of every page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from foodtrace.clock import SystemClock
from foodtrace.config import Settings
from foodtrace.demo import DEMO_PASSWORD, JUICE
from test_browser import PHONE, browser  # noqa: F401 - the browser fixture
from webapp.main import create_app

from page_checks import axe_problems, language_problems, phone_problems
from servers import serving

DESK = {"width": 1366, "height": 900}
PEOPLE = {
    # who: (username or None, viewport, start pages)
    "operator": ("juice-op", PHONE, ["/today", "/records", "/lots", "/lots/PJ-D05"]),
    "admin": ("juice-admin", DESK, ["/today", "/import", "/admin/users", "/master/products"]),
    "regulator": (
        "regulator",
        DESK,
        ["/regulator", "/regulator/trail?credit_code=" + JUICE + "&lot=PJ-D05", "/cases"],
    ),
    "visitor": (None, PHONE, ["/", f"/lot/{JUICE}/PJ-D05", "/lookup?code=x&lot=y"]),
}
MAX_PAGES = 14
"""Pages read per person (its start pages first, then what they link to)."""
_SKIP = re.compile(
    r"^/(api/|lang/|logout|static/|qr/|favicon)|\.(csv|xlsx|pdf|png|svg|json)$|/export|download|format="
)


@pytest.fixture
def demo_site(engine, db_url) -> Iterator[str]:
    app = create_app(Settings(database_url=db_url), clock=SystemClock(), engine=engine)
    with serving(app) as url:
        yield url


def _shape(path: str) -> str:
    """One address stands for all that differ only in numbers or codes."""
    return re.sub(r"/[^/]*\d[^/]*", "/#", urlsplit(path).path)


def _links(page, site: str) -> list[str]:
    hrefs = page.locator("a[href], a[*|href]").evaluate_all(
        "els => els.map(e => new URL(e.getAttribute('href') || e.getAttribute('xlink:href'),"
        " location.href).href)"
    )
    out = []
    for href in hrefs:
        parts = urlsplit(href)
        if href.startswith(site) and parts.path and not _SKIP.search(parts.path + parts.query):
            out.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return out


def _sweep(browser, site: str, who: str) -> tuple[list[str], list[str]]:  # noqa: F811
    username, viewport, start = PEOPLE[who]
    context = browser.new_context(viewport=viewport, base_url=site)
    page = context.new_page()
    page.set_default_timeout(30_000)
    if username:
        page.goto("/login")
        page.fill("#username", username)
        page.fill("#password", DEMO_PASSWORD)
        page.click("form.record button[type=submit]")
        page.wait_for_load_state()
    todo, seen, visited, problems = list(start), set(), [], []
    while todo and len(visited) < MAX_PAGES:
        path = todo.pop(0)
        if _shape(path) in seen:
            continue
        seen.add(_shape(path))
        for locale in ("zh", "en"):
            context.add_cookies([{"name": "lang", "value": locale, "url": site}])
            answer = page.goto(path)
            status = answer.status if answer else 0
            if status >= 500 or (status >= 400 and path not in start):
                problems.append(f"{who} {locale} {path}: HTTP {status}")
                continue
            problems += [f"{who} {locale} {path}: {p}" for p in language_problems(page, locale)]
            if locale == "zh":
                problems += [f"{who} {path}: axe {p}" for p in axe_problems(page)]
                if viewport is PHONE:
                    problems += [f"{who} {path}: phone: {p}" for p in phone_problems(page)]
                todo += [link for link in _links(page, site) if _shape(link) not in seen]
        visited.append(path)
    context.close()
    return visited, problems


@pytest.mark.demo
@pytest.mark.parametrize("who", list(PEOPLE))
def test_every_page_speaks_one_language_and_passes_axe(browser, demo_site, who) -> None:  # noqa: F811
    visited, problems = _sweep(browser, demo_site, who)
    assert len(visited) >= min(MAX_PAGES, 3), visited
    # one line for each problem, however many rows of a page repeat it
    grouped: dict[str, int] = {}
    for p in problems:
        key = re.sub(r"\d+(\.\d+)?", "#", p)
        grouped[key] = grouped.get(key, 0) + 1
    report = "\n".join(f"{n:4} × {key}" for key, n in sorted(grouped.items()))
    assert not problems, f"{len(problems)} problems on {len(visited)} pages {visited}:\n{report}"


def test_the_checks_find_what_they_look_for(browser) -> None:  # noqa: F811
    """The sweep is only as good as its checks: each finds a planted problem."""
    page = browser.new_page()
    page.set_content(
        '<html lang="zh-Hans"><body><h1>今日</h1><p>Nothing recorded yet today.</p>'
        "<p>customer_code: 填写的内容无效</p><p>批次 PJ-D05 · CCP1 · GTIN 06901234567892</p>"
        '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="><button></button></body></html>'
    )
    zh = language_problems(page, "zh")
    assert any("Nothing" in p for p in zh), zh
    assert any("internal name 'customer_code'" in p for p in zh), zh
    assert not any("PJ-D05" in p or "GTIN" in p for p in zh), zh
    axe = axe_problems(page)
    assert any("image-alt" in p for p in axe), axe
    assert any("button-name" in p for p in axe), axe
    page.set_content('<html lang="en"><body><label>批号 <input name="lot"></label></body></html>')
    assert language_problems(page, "en") == ["Chinese in the English interface: '批号'"]
    page.close()
