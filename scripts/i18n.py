"""Extract the pages' message ids and merge them into the Chinese catalogue.

    .venv/bin/python scripts/i18n.py          # update web/locale/zh_Hans/.../messages.po
    .venv/bin/python scripts/i18n.py --check  # only report ids without Chinese

Ids come from the templates (``_()``) and from Python (``N_()``, ``gettext()``).
New ids arrive untranslated; tests/test_i18n.py fails until each has its Chinese.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jinja2.ext
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (
    "web",
    "platform_portal",
    "enterprise_portal",
    "regulator_view",
    "trace/foodtrace/records/kinds",
)
PO = ROOT / "web" / "locale" / "zh_Hans" / "LC_MESSAGES" / "messages.po"
KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}
METHODS = [("**.py", "python"), ("**.html", jinja2.ext.babel_extract)]
OPTIONS = {
    "**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "True", "lstrip_blocks": "True"}
}


def extracted() -> set[str]:
    """Every message id used by the pages."""
    ids: set[str] = set()
    for package in PACKAGES:
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT / package, METHODS, OPTIONS, KEYWORDS
        ):
            ids.add(message if isinstance(message, str) else message[0])
    return ids


def main() -> int:
    check_only = "--check" in sys.argv[1:]
    ids = extracted()
    with PO.open("rb") as f:
        old = read_po(f, locale="zh_Hans")
    new = Catalog(locale="zh_Hans", project="foodtrace", charset="utf-8")
    for msgid in sorted(ids):
        existing = old.get(msgid)
        new.add(msgid, existing.string if existing else "")
    if not check_only:
        with PO.open("wb") as f:
            write_po(f, new, width=0, omit_header=False, sort_output=True)
    missing = [m for m in new if m.id and not m.string]
    sys.stderr.write(f"{len(ids)} ids; {len(missing)} without Chinese\n")
    return 1 if check_only and missing else 0


if __name__ == "__main__":
    sys.exit(main())
