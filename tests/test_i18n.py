"""The Chinese catalogue covers every message the pages show, with the same placeholders."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

from web.i18n import describe_problem, translations

ROOT = Path(__file__).resolve().parents[1]
PO = ROOT / "web" / "locale" / "zh_Hans" / "LC_MESSAGES" / "messages.po"


def test_every_message_id_has_chinese() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import i18n as extraction  # scripts/i18n.py
    finally:
        sys.path.pop(0)
    with PO.open("rb") as f:
        catalog = read_po(f, locale="zh_Hans")
    missing = sorted(
        m for m in extraction.extracted() if not (catalog.get(m) and catalog[m].string)
    )
    assert missing == [], f"run scripts/i18n.py and translate: {missing[:10]}"


def test_translations_keep_their_placeholders() -> None:
    with PO.open("rb") as f:
        catalog = read_po(f, locale="zh_Hans")
    for m in catalog:
        if not m.id or m.id.startswith("error."):
            continue
        assert set(re.findall(r"%\(\w+\)s", m.id)) == set(re.findall(r"%\(\w+\)s", m.string)), m.id


def test_problems_are_told_in_chinese_with_their_context() -> None:
    text = describe_problem(
        {"type": "unit_mismatch", "msg": "…", "ctx": {"allowed": "瓶 / 箱"}}, "zh_Hans"
    )
    assert "瓶 / 箱" in text
    assert describe_problem({"type": "missing", "msg": "Field required"}, "en") == "Field required"
    assert translations("zh_Hans").gettext("Today") != "Today"


def test_the_extraction_script_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "i18n.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "0 without Chinese" in result.stderr


def test_the_language_switch_comes_back_to_the_same_page_and_query(client) -> None:
    """Switching language on a page with a query (a trail, a filtered list) keeps the query."""
    import re

    page = client.get("/login", params={"next": "/regulator/trail?lot=A1&depth=3"})
    link = re.search(r'href="(/lang/en\?next=[^"]+)"', page.text)
    assert link, page.text[:2000]
    back = client.get(link.group(1).replace("&amp;", "&"), follow_redirects=False)
    assert back.status_code in (302, 303, 307)
    assert back.headers["location"] == "/login?next=%2Fregulator%2Ftrail%3Flot%3DA1%26depth%3D3"
    assert back.cookies.get("lang") == "en" or "lang=en" in back.headers.get("set-cookie", "")
