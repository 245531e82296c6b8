"""The consumer page verifies its lot's proofs in a real browser (Chromium, headless, Playwright).

The page carries the tlog-proof@v1 bundles of the lot's public entries and the platform's
verifier key; /static/lot-proof.js checks them with WebCrypto (SHA-256, Ed25519), or with
the vendored @noble/ed25519 where WebCrypto has no Ed25519, and says so only when every
proven fact matches what the page shows. Screenshots go to tests/screenshots/.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest

import test_browser as shared
import test_browser_qr as qr

import factories as f

browser = shared.browser  # the module's Chromium (a fixture)
qr_site = qr.qr_site  # a beverage maker with a released lot, served on a free port
PHONE, shot = shared.PHONE, shared.shot
GTIN14, LOT = qr.GTIN14, qr.LOT
PAGE = f"/01/{GTIN14}/10/{LOT}"

# No Ed25519 in WebCrypto, as in some in-app browsers: importKey refuses the algorithm.
NO_WEBCRYPTO_ED25519 = """
(() => {
  const subtle = globalThis.crypto && crypto.subtle;
  if (!subtle) return;
  const importKey = subtle.importKey.bind(subtle);
  const verify = subtle.verify.bind(subtle);
  const isEd = (alg) => (typeof alg === "string" ? alg : alg && alg.name) === "Ed25519";
  subtle.importKey = (format, key, alg, ...rest) =>
    isEd(alg)
      ? Promise.reject(new DOMException("Ed25519 is not supported", "NotSupportedError"))
      : importKey(format, key, alg, ...rest);
  subtle.verify = (alg, ...rest) =>
    isEd(alg)
      ? Promise.reject(new DOMException("Ed25519 is not supported", "NotSupportedError"))
      : verify(alg, ...rest);
})();
"""


@pytest.fixture
def phone(browser, qr_site) -> Iterator[object]:
    context = browser.new_context(viewport=PHONE, base_url=qr_site, device_scale_factor=2)
    yield context
    context.close()


def _verified(page) -> str:
    """Wait for the proof check to finish; its state (ok, fail, unsupported)."""
    page.wait_for_selector("#proof[data-state]:not([data-state='checking'])", timeout=15_000)
    return page.locator("#proof").get_attribute("data-state")


def test_the_page_verifies_its_declaration_with_webcrypto(phone, qr_site, db_url) -> None:
    page = phone.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(PAGE)
    assert _verified(page) == "ok", page.locator("#proof").inner_text()
    proof = page.locator("#proof")
    assert proof.get_attribute("data-engine") == "webcrypto"
    n = proof.get_attribute("data-checkpoint")
    assert n
    assert int(n) >= 9
    status = page.locator("#proof-status").inner_text()
    assert status == f"✓ 本批次记录已验证，签名检查点 #{n}"
    # every fact of the declaration is marked, and only those
    proven = page.locator(".proven")
    assert proven.count() >= 12
    marked = {proven.nth(i).get_attribute("data-fact") for i in range(proven.count())}
    assert {"body.product", "body.production_date", "body.producer.licence_no"} <= marked
    assert "body.release_test.items.0.result" in marked
    assert page.locator("[data-fact]:not(.proven)").count() == 0
    assert errors == []
    assert all(url.startswith(qr_site + "/") for url in requested), requested
    # the vendored fallback is not even loaded when WebCrypto has Ed25519
    assert not any("vendor/" in url for url in requested)
    page.click("#proof summary")
    shot(page, "consumer-proof-verified", db_url)
    page.click("text=English")
    page.wait_for_load_state()
    assert _verified(page) == "ok"
    assert page.locator("#proof-status").inner_text() == (
        f"✓ This lot's record is verified, signed checkpoint #{n}"
    )


def test_the_fallback_verifies_where_webcrypto_has_no_ed25519(phone, qr_site, db_url) -> None:
    phone.add_init_script(NO_WEBCRYPTO_ED25519)
    page = phone.new_page()
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(PAGE)
    assert _verified(page) == "ok", page.locator("#proof").inner_text()
    assert page.locator("#proof").get_attribute("data-engine") == "noble"
    assert any(url.endswith("/static/vendor/noble-ed25519-3.2.0.js") for url in requested)
    assert "本批次记录已验证" in page.locator("#proof-status").inner_text()


def _tamper_page(route, change) -> None:  # type: ignore[no-untyped-def]
    """Serve the real page with ``change`` applied to its HTML."""
    response = route.fetch()
    route.fulfill(response=response, body=change(response.text()))


def _edit_proof(html: str, edit) -> str:  # type: ignore[no-untyped-def]
    block = re.search(
        r'(<script type="application/json" id="lot-proofs">)(.*?)(</script>)', html, re.S
    )
    assert block
    data = json.loads(block.group(2))
    data["proofs"] = [edit(p) for p in data["proofs"]]
    return html[: block.start(2)] + json.dumps(data) + html[block.end(2) :]


def _forge_entry(proof: str) -> str:
    """Change one fact inside the proven entry's bytes (the page shows the same change)."""
    lines = proof.split("\n")
    entry = json.loads(base64.b64decode(lines[1].removeprefix("extra ")))
    entry["body"]["production_date"] = "2026-03-05"
    data = json.dumps(entry, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    lines[1] = "extra " + base64.b64encode(data.encode()).decode()
    return "\n".join(lines)


def _flip_path_hash(proof: str) -> str:
    lines = proof.split("\n")
    i = next(n for n, line in enumerate(lines) if line.startswith("index ")) + 1
    raw = bytearray(base64.b64decode(lines[i]))
    raw[0] ^= 1
    lines[i] = base64.b64encode(bytes(raw)).decode()
    return "\n".join(lines)


def _forge_signature(proof: str) -> str:
    """Claim a larger tree in the checkpoint: its signature no longer holds."""
    head, _, note = proof.partition("\n\n")
    origin, size, rest = note.split("\n", 2)
    return f"{head}\n\n{origin}\n{int(size) + 1}\n{rest}"


TAMPERS = {
    # the entry's bytes and the page agree, but they are not what the ledger holds
    "entry bytes": lambda html: _edit_proof(html, _forge_entry).replace(
        '<dd data-fact="body.production_date">2026-03-01',
        '<dd data-fact="body.production_date">2026-03-05',
    ),
    "inclusion path": lambda html: _edit_proof(html, _flip_path_hash),
    "checkpoint signature": lambda html: _edit_proof(html, _forge_signature),
    # the proof is intact, but the page shows something the entry does not say
    "page fact": lambda html: html.replace(">石榴汁饮料<", ">石榴汁饮料（特级）<", 1),
    # a genuine proof, shown as another lot's
    "another lot": lambda html: html.replace(LOT, "PJ20260301B"),
}


@pytest.mark.parametrize("how", list(TAMPERS))
def test_a_tampered_proof_or_page_shows_the_failure_not_the_claim(
    phone, qr_site, db_url, how
) -> None:
    page = phone.new_page()
    page.route(f"**{PAGE}", lambda route: _tamper_page(route, TAMPERS[how]))
    page.goto(PAGE)
    assert _verified(page) == "fail", how
    status = page.locator("#proof-status").inner_text()
    assert status.startswith("✗ 验证失败"), status
    assert "已验证" not in status
    assert page.locator(".proven").count() == 0  # nothing is marked verified
    if how == "entry bytes":
        shot(page, "consumer-proof-failed", db_url)


def test_without_javascript_the_record_shows_without_the_claim(browser, qr_site) -> None:
    context = browser.new_context(viewport=PHONE, base_url=qr_site, java_script_enabled=False)
    page = context.new_page()
    page.goto(PAGE)
    assert page.locator("h1").inner_text() == "石榴汁饮料"
    assert "出厂检验合格" in page.locator("#status-release").inner_text()
    assert not page.locator("#proof").is_visible()
    assert "已验证" not in page.locator("main").inner_text()
    context.close()


def test_a_recalled_lot_shows_its_banner_and_the_recall_verified(
    phone, qr_site, engine, clock, db_url
) -> None:
    clock.advance(timedelta(hours=1))
    f.recall(engine, clock, f.BEVERAGE, LOT)
    page = phone.new_page()
    page.goto(PAGE)
    banner = page.locator(".recall-banner")
    assert banner.count() == 1
    assert "本批次产品已召回" in banner.inner_text()
    assert _verified(page) == "ok", page.locator("#proof").inner_text()
    note = banner.locator(".proof-note")
    assert note.is_visible()
    assert re.fullmatch(r"✓ 召回公告已验证，签名检查点 #\d+", note.inner_text())
    assert banner.locator("[data-fact='body.reason']").get_attribute("class") == "proven"
    assert page.locator("#proof-entries li").count() == 2  # the declaration and the recall
    shot(page, "consumer-proof-recalled", db_url)
