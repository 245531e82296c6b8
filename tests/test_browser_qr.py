"""The consumer page and the label sheet in a real browser (Chromium, headless, Playwright).

The server's public base URL is its own address, so a code read off the printed
sheet (zxing-cpp on a screenshot) can be opened in the same browser, as a phone
would. Screenshots go to tests/screenshots/ (looked at by a person).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest
import zxingcpp
from PIL import Image

import test_browser as shared
from foodtrace.accounts.service import Role, add_user
from foodtrace.config import Settings
from foodtrace.db import write_session
from webapp.main import create_app

import factories as f
from servers import free_port, serving

browser = shared.browser  # the module's Chromium (a fixture)
PASSWORD, PHONE, shot = shared.PASSWORD, shared.PHONE, shared.shot
GTIN14 = "06921234560013"
LOT = "PJ20260301A"


@pytest.fixture
def qr_site(engine, clock, db_url) -> Iterator[str]:
    """A beverage maker with a released lot (sold to a customer), its operator, and the app
    serving with its own address as the public base URL."""
    lid = f.beverage_ledger(engine, clock)
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
    assert lid
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app(
        Settings(database_url=db_url, public_base_url=base), clock=clock, engine=engine
    )
    with serving(app, port):
        yield base


def _decode(png: bytes) -> list[str]:
    image = Image.open(io.BytesIO(png)).convert("L")
    return [b.text for b in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]


def test_the_consumer_page_on_a_phone(browser, qr_site, db_url) -> None:
    context = browser.new_context(viewport=PHONE, base_url=qr_site, device_scale_factor=2)
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(f"/01/{GTIN14}/10/{LOT}")
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    assert page.locator("h1").inner_text() == "石榴汁饮料"
    assert "出厂检验合格" in page.locator("#status-release").inner_text()
    # one column that fits the phone: nothing wider than the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "consumer-lot", db_url)
    page.click("text=English")
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Release test passed" in page.locator("#status-release").inner_text()
    shot(page, "consumer-lot-en", db_url)
    page.goto(f"/01/{GTIN14}/10/NO-SUCH-LOT")
    assert page.locator("h1").inner_text() == "Lot not found"
    page.click("text=中文")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "未找到该批次"
    shot(page, "consumer-not-found", db_url)
    # no request ever left the site: no CDN, web font or analytics
    assert requested
    assert all(url.startswith(qr_site + "/") for url in requested), requested
    main = page.locator("main").inner_text()
    assert "枣庄惠民" not in main
    context.close()


def test_the_label_sheet_prints_codes_that_lead_to_the_lot(browser, qr_site, db_url) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=qr_site)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto("/login")
    page.fill("#username", "op")
    page.fill("#password", PASSWORD)
    page.click("form.record button[type=submit]")
    page.wait_for_load_state()
    page.goto(f"/lots/{LOT}")
    page.click("#print-labels")
    page.wait_for_load_state()
    assert page.url.endswith(f"/lots/{LOT}/labels")
    assert page.locator(".sheet").count() == 1
    assert page.locator(".label").count() == 12
    first = page.locator(".label").first
    assert "石榴汁饮料" in first.inner_text()
    assert LOT in first.inner_text()
    shot(page, "label-sheet", db_url)
    # the code as drawn by the browser scans, and opens the consumer page
    uri = f"{qr_site}/01/{GTIN14}/10/{LOT}"
    assert _decode(first.screenshot()) == [uri]
    # two pages' worth: the print layout gives exactly two A4 pages
    page.fill("#count", "14")
    page.click(".toolbar form button")
    page.wait_for_load_state()
    assert page.locator(".label").count() == 14
    pdf = page.pdf(prefer_css_page_size=True, print_background=True)
    pages = len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf))
    assert pages == 2, pages
    kind = "pg" if db_url.startswith("postgresql") else "sqlite"
    (shared.SHOTS / f"label-sheet-{kind}.pdf").write_bytes(pdf)  # what the printer gets
    context.close()

    phone = browser.new_context(viewport=PHONE, base_url=qr_site)
    consumer = phone.new_page()
    consumer.goto(uri)
    assert consumer.locator("h1").inner_text() == "石榴汁饮料"
    phone.close()
