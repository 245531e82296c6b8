"""Fill empty Chinese entries of the catalogue from a JSON map {msgid: msgstr}: a helper for
translators (``python scripts/fill_po.py map.json``); entries already translated are kept."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

PO = Path(__file__).resolve().parent.parent / "web/locale/zh_Hans/LC_MESSAGES/messages.po"


def main(path: str) -> None:
    table = json.loads(Path(path).read_text("utf-8"))
    with PO.open("rb") as fh:
        catalog = read_po(fh, locale="zh_Hans")
    filled = 0
    for message in catalog:
        if message.id and not message.string and message.id in table:
            message.string = table[message.id]
            filled += 1
    with PO.open("wb") as fh:
        write_po(fh, catalog, width=0)
    missing = [m.id for m in catalog if m.id and not m.string]
    print(f"filled {filled}; {len(missing)} still without Chinese")
    for m in missing:
        print("  ", json.dumps(m, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1])
