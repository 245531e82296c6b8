"""A visitor looks a lot up from the home page, by the barcode's GTIN and by the producer's
credit code, at phone width (issue 24, "Tests and done when"): two fields and one tap each,
and every page on the way in one language and without a serious axe-core violation."""

from __future__ import annotations

import pytest

from foodtrace.demo import JUICE
from test_page_sweep import PHONE, browser, demo_site  # noqa: F401 - fixtures

from page_checks import axe_problems, language_problems, phone_problems

GTIN = "6921234560013"  # 石榴汁饮料 of the juice maker (trace/foodtrace/demo.py)


def _checked(page, locale: str) -> list[str]:
    problems = language_problems(page, locale)
    if locale == "zh":
        problems += axe_problems(page) + phone_problems(page)
    return problems


@pytest.mark.demo
@pytest.mark.parametrize("code", [GTIN, JUICE.lower(), f" {JUICE} "])
@pytest.mark.parametrize("locale", ["zh", "en"])
def test_a_visitor_finds_a_lot_from_the_home_page(browser, demo_site, code, locale) -> None:  # noqa: F811
    context = browser.new_context(viewport=PHONE, base_url=demo_site)
    context.add_cookies([{"name": "lang", "value": locale, "url": demo_site}])
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto("/")
    assert _checked(page, locale) == []
    taps = fields = 0
    page.fill("#code", code)
    page.fill("#lot", "PJ-D05")
    fields += 2
    with page.expect_navigation():
        page.click("form[action='/lookup'] button[type=submit]")
    taps += 1
    assert (taps, fields) == (1, 2)
    assert page.locator("h1").inner_text().strip() == "石榴汁饮料", page.url
    assert "PJ-D05" in page.locator("main").inner_text()
    assert _checked(page, locale) == []
    # an unknown lot is a page in the visitor's language, not an error of the API
    page.goto("/")
    page.fill("#code", code)
    page.fill("#lot", "PJ-D99")
    with page.expect_navigation():
        page.click("form[action='/lookup'] button[type=submit]")
    assert page.locator("h1").inner_text().strip() == (
        "未找到该批次" if locale == "zh" else "Lot not found"
    )
    assert _checked(page, locale) == []
    context.close()
