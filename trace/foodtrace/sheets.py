"""The one spreadsheet writer every export uses (trail, case scope, import templates).

Text in an export comes from enterprises (a supplier's, a customer's, a product's
name), and the reader is a regulator's spreadsheet program. So no text may ever
become a formula there ("CSV injection", "formula injection"; OWASP, CWE-1236):

- XLSX: every cell is typed by its column. Text is written as an inline string
  (``<c t="inlineStr"><is><t>…</t></is></c>``), never as a formula (``<f>``) or an
  error value, whatever it begins with; text that a spreadsheet would take for a
  formula when retyped also carries the ``quotePrefix`` style, as Excel itself does
  for ``'=…``, so editing the cell keeps it text. Numbers are numbers and calendar
  dates are dates, so the sheet sorts and sums.
- CSV has no types: a text field that begins with ``=``, ``+``, ``-``, ``@``, tab or
  carriage return (or with spaces before one of them) gets one leading apostrophe,
  the OWASP rule; a spreadsheet shows the rest as text. (So does text that begins with
  apostrophes before such text: one apostrophe off always gives the text back.) A
  number column's values are written as plain decimal numbers (``-5`` stays ``-5``:
  a number, not a formula).

Characters XML 1.0 cannot carry (C0 controls other than tab, newline and carriage
return) are replaced by U+FFFD rather than failing the export; records never hold
them (``schemas.types.clean_text`` refuses them on the way in).
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import IO, Any


class Kind(StrEnum):
    """What a column holds; it decides how each of its values is written."""

    TEXT = "text"
    NUMBER = "number"
    DATE = "date"


@dataclass(frozen=True)
class Column:
    header: str
    kind: Kind = Kind.TEXT


@dataclass
class Sheet:
    """One worksheet (or one CSV file): a title, typed columns and rows of values."""

    title: str
    columns: Sequence[Column]
    rows: Sequence[Sequence[Any]]


FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
"""A field beginning with one of these is a formula (or a DDE call) to a spreadsheet."""

MAX_CELL_TEXT = 32767
"""Excel's limit on the characters of one cell; longer text is cut (records are shorter)."""

_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_NUMBER = re.compile(r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?$")
_EXACT_DIGITS = 15
"""A spreadsheet keeps numbers as IEEE doubles: more significant digits would be rounded,
so such a number is written as text instead (nothing in an export is silently changed)."""


def needs_quote(text: str) -> bool:
    """Whether a CSV field of ``text`` needs the apostrophe: a spreadsheet would read it as a
    formula (after any leading whitespace), or it already begins with apostrophes before
    such text (so that taking one apostrophe off always gives the text back)."""
    text = text.lstrip("'")
    return text.startswith(FORMULA_TRIGGERS) or text.lstrip().startswith(FORMULA_TRIGGERS)


def csv_unquote(field: str) -> str:
    """The text a CSV field of :func:`csv_field` was written from (the inverse)."""
    return field[1:] if field.startswith("'") and needs_quote(field[1:]) else field


def _number(value: Any) -> int | Decimal | None:
    """``value`` as a number a spreadsheet holds exactly, or None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if len(str(abs(value))) <= _EXACT_DIGITS else None
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, str) and _NUMBER.match(value):
        try:
            number = Decimal(value)
        except InvalidOperation:  # pragma: no cover - the pattern rules this out
            return None
    else:
        return None
    if not number.is_finite() or len(number.as_tuple().digits) > _EXACT_DIGITS:
        return None
    return number


def _date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value if value.tzinfo is None else None
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _text(value: Any) -> str:
    return _ILLEGAL.sub("\ufffd", str(value))[:MAX_CELL_TEXT]


# ------------------------------------------------------------------------------ CSV


def csv_field(value: Any, kind: Kind = Kind.TEXT) -> str:
    """One CSV field: numbers and dates as themselves, text quoted against formulas."""
    if value is None or value == "":
        return ""
    if kind is Kind.NUMBER and (number := _number(value)) is not None:
        return format(number, "f") if isinstance(number, Decimal) else str(number)
    if kind is Kind.DATE and (day := _date(value)) is not None:
        return day.isoformat(sep=" ", timespec="minutes") if isinstance(day, datetime) else str(day)
    text = str(value)
    return "'" + text if needs_quote(text) else text


def csv_bytes(sheet: Sheet) -> bytes:
    """The sheet as CSV, UTF-8 with a BOM (so that Excel reads the Chinese) and CRLF."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([csv_field(c.header) for c in sheet.columns])
    kinds = [c.kind for c in sheet.columns]
    for row in sheet.rows:
        writer.writerow([csv_field(v, k) for v, k in zip(row, kinds, strict=True)])
    return out.getvalue().encode("utf-8-sig")


def csv_chunks(sheet: Sheet, rows_a_chunk: int = 1000) -> Iterator[bytes]:
    """:func:`csv_bytes` as it is written, a chunk every ``rows_a_chunk`` rows (a download
    streamed to the client instead of built whole; the same bytes)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([csv_field(c.header) for c in sheet.columns])
    kinds = [c.kind for c in sheet.columns]
    first = True
    for n, row in enumerate(sheet.rows, start=1):
        writer.writerow([csv_field(v, k) for v, k in zip(row, kinds, strict=True)])
        if n % rows_a_chunk == 0:
            yield out.getvalue().encode("utf-8-sig" if first else "utf-8")
            first = False
            out.seek(0)
            out.truncate()
    if out.getvalue() or first:
        yield out.getvalue().encode("utf-8-sig" if first else "utf-8")


SPOOL_BYTES = 4 * 1024 * 1024
"""A workbook larger than this is spooled to a temporary file while it is sent."""


def xlsx_chunks(sheets: Iterable[Sheet], chunk: int = 64 * 1024) -> Iterator[bytes]:
    """:func:`xlsx_bytes` sent in chunks from a spooled temporary file: the server holds at
    most :data:`SPOOL_BYTES` of a large workbook in memory, not the whole of it (a ZIP is
    written whole before its directory, so it cannot go out before it is finished)."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
    try:
        _write_xlsx(sheets, spool)
        spool.seek(0)
        while data := spool.read(chunk):
            yield data
    finally:
        spool.close()


# ----------------------------------------------------------------------------- XLSX


def set_cell(cell: Any, value: Any, kind: Kind | None = None) -> Any:
    """Give an openpyxl cell ``value`` typed by ``kind`` (by the value's type when None):
    text is always a string cell, never a formula; returns the cell."""
    if kind is None:
        kind = (
            Kind.NUMBER
            if isinstance(value, int | float | Decimal) and not isinstance(value, bool)
            else Kind.DATE
            if isinstance(value, date)
            else Kind.TEXT
        )
    if value is None or value == "":
        cell.value = None
        return cell
    if isinstance(value, float) and kind is Kind.NUMBER:
        cell.value = value  # the caller's own number (a template's example)
        return cell
    if kind is Kind.NUMBER and (number := _number(value)) is not None:
        cell.value = number
        return cell
    if kind is Kind.DATE and (day := _date(value)) is not None:
        cell.value = day
        if cell.number_format == "General":
            cell.number_format = "yyyy-mm-dd hh:mm" if isinstance(day, datetime) else "yyyy-mm-dd"
        return cell
    text = _text(value)
    cell.value = text  # openpyxl makes "=…" a formula and "#N/A" an error here…
    cell.data_type = "s"  # …so the type is set after: a string, written inline
    if needs_quote(text):
        cell.quotePrefix = True
    return cell


def xlsx_bytes(sheets: Iterable[Sheet]) -> bytes:
    """A workbook of sortable sheets: bold frozen header, an auto-filter, widths to fit."""
    buf = io.BytesIO()
    _write_xlsx(sheets, buf)
    return buf.getvalue()


def _write_xlsx(sheets: Iterable[Sheet], out: IO[bytes]) -> None:
    """Write :func:`xlsx_bytes`'s workbook to ``out``, in openpyxl's write-only (streaming)
    mode, one typed cell at a time."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook(write_only=True)
    bold = Font(bold=True)
    for sheet in sheets:
        ws = wb.create_sheet(title=sheet.title)
        ncols = len(sheet.columns)
        for i, col in enumerate(sheet.columns):
            width = max(
                [_display_width(col.header), *(_display_width(_shown(r[i])) for r in sheet.rows)]
            )
            ws.column_dimensions[get_column_letter(i + 1)].width = min(60, width + 2)
        ws.freeze_panes = "A2"
        ws.auto_filter.ref = f"A1:{get_column_letter(max(ncols, 1))}{len(sheet.rows) + 1}"
        header = []
        for col in sheet.columns:
            cell = set_cell(WriteOnlyCell(ws), col.header, Kind.TEXT)
            cell.font = bold
            header.append(cell)
        ws.append(header)
        kinds = [c.kind for c in sheet.columns]
        for row in sheet.rows:
            ws.append([set_cell(WriteOnlyCell(ws), v, k) for v, k in zip(row, kinds, strict=True)])
    wb.save(out)


def _shown(value: Any) -> str:
    return "" if value is None else str(value)


def _display_width(text: str) -> int:
    """Columns a text takes in a sheet: two for each wide (CJK) character."""
    import unicodedata

    if text.isascii():
        return len(text)
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


__all__ = [
    "FORMULA_TRIGGERS",
    "Column",
    "Kind",
    "Sheet",
    "csv_bytes",
    "csv_field",
    "csv_unquote",
    "needs_quote",
    "set_cell",
    "xlsx_bytes",
]
