"""Checks a page in a real browser must pass whatever it shows (tests/test_page_sweep.py):
one language on the page, no internal name shown to a person, and no serious or critical
accessibility violation that axe-core finds.

Kept apart from the test files so that every browser test can run them on its pages.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

# Words a Chinese page may show in Latin letters: abbreviations of the trade and its
# standards, file formats and units. Anything else in Latin letters is English left
# untranslated (a message missing from the catalogue, a hard-coded string).
LATIN_OK = {
    "api",
    "ccp",
    "csv",
    "epcis",
    "gb",
    "gs1",
    "gtin",
    "haccp",
    "id",
    "json",
    "pdf",
    "png",
    "qr",
    "sc",
    "svg",
    "url",
    "xlsx",
    "foodtrace",  # the platform's name (Settings.platform_name)
    # units
    "kg",
    "mg",
    "ml",
    "cfu",
    "ph",
    "ppm",
    "pcs",
}

_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*[A-Za-z]")
_INTERNAL = re.compile(r"(?<![\w/.:#=-])[a-z]{2,}(?:_[a-z0-9]+)+(?![\w/.-])")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\u3000-\u303f\uff01-\uff5e]")

_VISIBLE_TEXT = """() => {
  // The text a person reads: visible elements only, not scripts, not the language switch
  // (it names the other language on purpose), not code blocks of raw data.
  const out = [];
  const skip = el => el.closest('script, style, noscript, template, .lang, pre, code, '
                                + '[data-raw], [hidden], [aria-hidden=true]');
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, el = node.parentElement;
    if (!el || skip(el) || !node.textContent.trim()) continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 && box.height === 0 && getComputedStyle(el).position !== 'fixed') continue;
    out.push(node.textContent.trim());
  }
  for (const el of document.querySelectorAll('input[placeholder], textarea[placeholder]'))
    if (!skip(el)) out.push(el.placeholder);
  for (const el of document.querySelectorAll('[title], [aria-label]'))
    if (!skip(el)) out.push(el.getAttribute('aria-label') || el.getAttribute('title'));
  out.push(document.title);
  return out;
}"""

_CHROME_TEXT = """() => {
  // What the interface itself says, not the data it shows: labels, buttons, headings of
  // forms and tables, navigation, notices; without the choices a label holds (a select's
  // options are data), and without a table's row headers (an enterprise's name).
  const sel = 'label, button, legend, nav a, thead th, .tabs a, .notice, .error, summary, '
            + 'input[type=submit]';
  return [...document.querySelectorAll(sel)]
    .filter(el => !el.closest('.lang, [data-raw], td, tbody, [data-name]'))
    .map(el => {
      if (el.tagName === 'INPUT') return el.value;
      const copy = el.cloneNode(true);
      copy.querySelectorAll('select, option, textarea, input, [data-name]')
          .forEach(c => c.remove());
      return copy.textContent;
    })
    .map(t => (t || '').trim()).filter(Boolean);
}"""


def language_problems(page: Any, locale: str) -> list[str]:
    """What on ``page`` is in the other language, or an internal name."""
    problems = []
    texts = page.evaluate(_VISIBLE_TEXT)
    for text in texts:
        for name in _INTERNAL.findall(text):
            problems.append(f"internal name {name!r} in {text[:80]!r}")
    if locale == "zh":
        for text in texts:
            if not _CJK.search(text) and not _WORD.search(text):
                continue
            words = [
                w
                for w in _WORD.findall(text)
                if w.lower() not in LATIN_OK and not w.isupper() and not _code_like(w, text)
            ]
            if words:
                problems.append(f"English {words[:4]} in {text[:80]!r}")
    else:
        for text in page.evaluate(_CHROME_TEXT):
            if _CJK.search(text):
                problems.append(f"Chinese in the English interface: {text[:80]!r}")
    return sorted(set(problems))


def _code_like(word: str, text: str) -> bool:
    """A code, not a word: part of a lot code, a username, an e-mail or a URL (PJ-D05,
    juice-op, op@x.cn)."""
    for token in re.findall(r"\S+", text):
        if word in token and (
            any(c.isdigit() for c in token)
            or "@" in token
            or "/" in token
            or "-" in word
            or f"“{word}”" in token  # a literal quoted for a technical reader: “proofs”
        ):
            return True
    return False


@cache
def _axe() -> Any:
    from axe_playwright_python.sync_playwright import Axe  # a test extra

    return Axe()


def axe_problems(page: Any) -> list[str]:
    """The serious and critical violations axe-core finds on ``page`` (WCAG 2.x A and AA)."""
    results = _axe().run(
        page,
        options={
            "resultTypes": ["violations"],
            "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21aa", "wcag22aa"]},
        },
    )
    if "testEngine" not in results.response:  # axe did not run: never a silent pass
        raise RuntimeError(f"axe-core gave no result: {str(results.response)[:300]}")
    out = []
    for v in results.response["violations"]:
        if v.get("impact") in ("serious", "critical"):
            where = [" ".join(n["target"]) if n.get("target") else "?" for n in v["nodes"][:3]]
            out.append(f"{v['impact']} {v['id']}: {v['help']} at {where}")
    return out


_PHONE = """() => {
  const out = [], w = window.innerWidth;
  if (document.documentElement.scrollWidth > w)
    out.push(`the page is ${document.documentElement.scrollWidth} px wide in ${w} px`);
  for (const a of document.querySelectorAll('nav.main a')) {
    const r = a.getBoundingClientRect();
    if (r.right > w + 1 || r.left < -1) out.push(`tab ${a.innerText.trim()} is off-screen`);
  }
  // WCAG 2.2 (2.5.8): a target of at least 24 by 24 px, unless it is a link in a sentence
  for (const el of document.querySelectorAll('a, button, input, select, textarea, summary')) {
    const r = el.getBoundingClientRect();
    const inline = el.closest('p, .hint, li.text, figcaption');
    if (r.width === 0 || el.type === 'hidden' || inline) continue;
    if (r.width < 24 || r.height < 24)
      out.push(`${el.tagName.toLowerCase()} ${(el.innerText || el.name || '').trim().slice(0, 24)}`
               + ` is ${Math.round(r.width)}×${Math.round(r.height)} px`);
  }
  return out;
}"""


def phone_problems(page: Any) -> list[str]:
    """What a phone user cannot reach or tap: the page wider than the screen, a tab off
    it, a target smaller than 24 × 24 px."""
    return sorted(set(page.evaluate(_PHONE)))
