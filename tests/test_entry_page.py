"""The ledger entry page shows a record as its user entered it: each field by its label,
stored codes in words, and for a corrected record the value now beside the value as
recorded (issue 24, 13). The stored JSON stays on the page, folded, for an auditor."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

from conftest import ACCESS_PASSWORD

import factories as f


class _Fields(HTMLParser):
    """The rows of table#fields: (label, cells), and whether a cell says 已更正."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.depth = 0  # inside table#fields (nested part tables count as cells' text)
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and (self.depth or ("id", "fields") in attrs):
            self.depth += 1
        elif self.depth == 1 and tag == "tr":
            self.rows.append([])
        elif self.depth == 1 and tag in ("th", "td"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self.depth:
            self.depth -= 1
        elif self.depth == 1 and tag in ("th", "td") and self.cell is not None:
            self.rows[-1].append(" ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def _fields(html: str) -> dict[str, list[str]]:
    parser = _Fields()
    parser.feed(html)
    return {row[0]: row[1:] for row in parser.rows[1:] if row}


def _signed_in(client) -> None:
    f.page_login(client, "ent_a", ACCESS_PASSWORD)


def test_a_record_reads_by_its_labels_with_codes_in_words(client, world) -> None:
    _signed_in(client)
    page = client.get("/ledger/5")  # the incoming check of f.beverage_ledger
    assert page.status_code == 200
    fields = _fields(page.text)
    assert fields["品名"] == ["白砂糖"]
    assert fields["数量"] == ["2000"]
    assert fields["验收结论"] == ["是"]
    assert any(v == ["原料"] for v in fields.values()), fields  # raw_material in words
    # every field is labelled: no internal name is shown outside the folded JSON
    visible = page.text.split('<details class="raw">')[0]
    assert not re.search(r">\s*[a-z]+_[a-z_]+\s*<", visible), visible
    assert '"material_name": "白砂糖"' in html.unescape(page.text)  # the JSON, for an auditor


def test_a_corrected_record_shows_the_value_now_beside_the_value_recorded(
    client, engine, clock, world
) -> None:
    fixed = f.material_check(quantity="1950", inspector="王敏")
    seq = f.add(
        engine, clock, world["a"], "correction",
        {"corrects": 5, "reason": "磅单复核：实收 1950 kg", "record": fixed},
    )  # fmt: skip
    _signed_in(client)
    fields = _fields(client.get("/ledger/5").text)
    assert fields["数量"] == ["2000", "1950 已更正"]
    assert fields["品名"] == ["白砂糖", "白砂糖"]  # unchanged: no mark
    english = client.get("/ledger/5", cookies={"lang": "en"}).text
    assert "Now (after correction)" in english
    # the correction's own page shows the record it gives, labelled as an incoming check
    assert _fields(client.get(f"/ledger/{seq.seq}").text)["数量"] == ["1950"]
