"""Spreadsheet import: the 台账 an enterprise keeps in Excel, appended to its ledger.

Three steps, each usable on its own:

- :func:`columns`, :func:`template_csv`, :func:`template_xlsx` describe and
  hand out a blank spreadsheet per record kind (Chinese headers, one example
  row, a 说明 sheet);
- :func:`parse` reads a filled CSV or XLSX into records, naming every cell it
  cannot read by its row (as the user sees it: the header is row 1) and its
  header (as the user wrote it);
- :func:`run_import` appends the records in file order through
  :func:`foodtrace.records.service.record`, in the caller's transaction, and
  writes nothing at all unless every row is good (one transaction per file).

Nested records span consecutive rows: the rows of one production lot (one
material per row), of one release test (one item per row), of one
self-inspection (one checklist item per row). Their record-level cells need
only be filled on the first row of the group; merged cells therefore work.

Spreadsheets hold no time zone: an instant without one is China Standard Time
(UTC+08:00, DESIGN.md), and a calendar date stays the date written. Numbers
become decimal strings as Excel shows them (15 significant digits), so a cell
holding the binary float nearest 12.1 is recorded as ``"12.1"``.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import re
import unicodedata
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlmodel import Session

from foodtrace.bulk import no_cycle_collection
from foodtrace.clock import Clock
from foodtrace.errors import Conflict, FieldProblem, FoodtraceError, RecordError
from foodtrace.ledger.models import ImportKey
from foodtrace.ledger.service import lock_head
from foodtrace.records.kinds import BY_KIND, REGISTRY
from foodtrace.records.kinds.columns import (
    BOOL,
    DATE,
    DECIMAL,
    DECIMALS,
    ENUM,
    INSTANT,
    INT,
    Column,
    ImportSpec,
)
from foodtrace.records.service import (
    Batch,
    Recorded,
    known_kind,
    problems_from,
    record,
    validate,
)
from foodtrace.sheets import Column as SheetColumn
from foodtrace.sheets import Kind, Sheet, csv_bytes, set_cell
from schemas.records import RecordKind
from schemas.types import format_instant

CST_OFFSET = timezone(timedelta(hours=8), "CST")
"""China Standard Time as a fixed offset: spreadsheet instants without a zone are in it.
(Not Asia/Shanghai, whose 1986-1991 summer time would turn some dates into +09:00.)"""

MAX_UNZIPPED_BYTES = 256 * 1024 * 1024
"""An XLSX whose parts unpack to more than this is refused (zip bomb)."""
TEMPLATE_ROWS = 5000
"""How many rows of a template get the column formats and dropdowns."""
CHUNK = 200
"""Records appended under one SAVEPOINT when all goes well; also the progress interval."""


@dataclass(frozen=True)
class Limits:
    """What one file may hold (``TRACE_IMPORT_MAX_*``). A file past any of them is refused
    whole, from the sheet's declared size or as soon as reading reaches the limit, so that
    what an import costs follows from what it holds, never from what a file pretends."""

    rows: int = 100_000
    """Rows of the sheet, the header and blank rows included (the last row number)."""
    columns: int = 64
    """Cells a row may have, blank ones included (the widest template has 18)."""
    cell_chars: int = 32_767
    """Characters in one cell: Excel's own limit."""


class TooLarge(FoodtraceError):
    """A file past one of its :class:`Limits`: refused before its rows are read (413).

    ``found`` is what the file has, or None when reading stopped at the limit."""

    _WHAT = {
        "rows": ("行（含表头和空行）", "rows (the header and blank rows included)"),
        "columns": ("列（含空白单元格）", "columns (blank cells included)"),
        "cell_chars": ("个字符一个单元格", "characters in a cell"),
    }

    _HOW = {
        "has": ("这个文件有 {n:,}", "this file has {n:,}"),
        "declares": ("这个表格声明的范围有 {n:,}", "this sheet declares {n:,}"),
        "reaches": ("这个文件用到第 {n:,} {unit_zh}", "this file reaches {unit_en} {n:,}"),
    }

    def __init__(self, limit: str, allowed: int, found: int | None, how: str = "has") -> None:
        zh, en = self._WHAT[limit]
        if found is None:
            has_zh, has_en = "这个文件超过了这个数", "this file has more"
        else:
            unit_zh, unit_en = ("行", "row") if limit == "rows" else ("列", "column")
            has_zh, has_en = (
                t.format(n=found, unit_zh=unit_zh, unit_en=unit_en) for t in self._HOW[how]
            )
        self.limit, self.allowed, self.found = limit, allowed, found
        self.message_zh = f"最多 {allowed:,} {zh}，{has_zh}：请删去多余的行列或拆分后分别导入"
        self.message_en = f"at most {allowed:,} {en}; {has_en}"
        super().__init__(f"{self.message_zh} ({self.message_en})")


IMPORTABLE: tuple[str, ...] = tuple(k.kind for k in REGISTRY if k.imports is not None)
"""The kinds a spreadsheet can hold, in the registry's order (``records/kinds``)."""
_SPECS: dict[RecordKind, ImportSpec] = {
    k.kind: k.imports  # type: ignore[misc]
    for k in REGISTRY
    if k.imports is not None
}
_Spec = ImportSpec

# ------------------------------------------------------------------ columns


# Labels accepted besides each choice's own label and value (lower-cased English too).
_ALIASES: dict[str, tuple[str, ...]] = {
    "raw_material": ("原材料", "原辅料", "raw material", "raw"),
    "food_additive": ("添加剂", "additive", "food additive"),
    "food_related_product": ("食品相关产品", "包装材料", "包材", "related", "food related product"),
    "pass": ("通过", "符合", "正常", "合格", "passed", "ok", "√", "✓"),
    "fail": ("不通过", "不符合", "异常", "不合格", "failed", "ng", "×", "✗"),
    "ok": ("符合", "合格", "无问题", "良好", "√", "✓"),
    "problem": ("问题", "存在问题", "不符合", "不合格", "异常", "×", "✗"),
    "not_applicable": ("n/a", "na", "/", "—", "-"),
    "daily": ("日", "每日", "日检查", "日自查", "day"),
    "weekly": ("周", "每周", "周检查", "周自查", "week"),
    "monthly": ("月", "每月", "月检查", "月自查", "月报告", "month"),
}
_TRUE = {"是", "有", "合格", "通过", "符合", "已查验", "yes", "y", "true", "t", "1", "√", "✓", "ok"}
_FALSE = {
    "否",
    "无",
    "不合格",
    "不通过",
    "不符合",
    "未查验",
    "no",
    "n",
    "false",
    "f",
    "0",
    "×",
    "✗",
}


def title(kind: RecordKind | str) -> str:
    """The Chinese name of the spreadsheet for ``kind``, e.g. 销售台账."""
    return _spec(kind).title_zh


def columns(kind: RecordKind | str) -> list[Column]:
    """The columns of the spreadsheet for ``kind``, in template order."""
    return list(_spec(kind).columns)


def _spec(kind: RecordKind | str) -> _Spec:
    kind = known_kind(kind)
    if kind not in _SPECS:
        raise ValueError(f"{kind} records cannot be imported from a spreadsheet")
    return _SPECS[kind]


# ---------------------------------------------------------------- templates


def _example_value(col: Column) -> Any:
    """The example as a typed cell value, so that the template shows real dates and numbers."""
    if not col.example:
        return None
    if col.type == DATE:
        return date.fromisoformat(col.example)
    if col.type == INSTANT:
        return datetime.strptime(col.example, "%Y-%m-%d %H:%M")
    if col.type == INT:
        return int(col.example)
    if col.type == DECIMAL:
        value = Decimal(col.example)
        return int(value) if value == value.to_integral_value() else float(value)
    return col.example


def _number_format(col: Column) -> str:
    return {DATE: "yyyy-mm-dd", INSTANT: "yyyy-mm-dd hh:mm", DECIMAL: "General", INT: "0"}.get(
        col.type, "@"
    )


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _kind(col: Column) -> Kind:
    return {DATE: Kind.DATE, DECIMAL: Kind.NUMBER, INT: Kind.NUMBER}.get(col.type, Kind.TEXT)


def template_csv(kind: RecordKind | str) -> bytes:
    """A CSV template: Chinese header row and one example row, UTF-8 with BOM for Excel."""
    cols = columns(kind)
    head = [SheetColumn(c.header_zh, _kind(c)) for c in cols]
    return csv_bytes(Sheet(title(kind), head, [[c.example for c in cols]]))


def template_xlsx(kind: RecordKind | str) -> bytes:
    """An XLSX template: bold frozen header, an example row, dropdowns, and a 说明 sheet."""
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    spec = _spec(kind)
    wb = Workbook()
    ws = wb.worksheets[0]  # a new workbook's one sheet (``wb.active`` may be None, typed)
    ws.title = spec.title_zh
    header_fill = PatternFill("solid", fgColor="DDEBF7")
    for j, col in enumerate(spec.columns, start=1):
        letter = get_column_letter(j)
        cell = set_cell(ws.cell(row=1, column=j), col.header_zh, Kind.TEXT)
        # Required headers in dark red: the 说明 sheet says so too.
        cell.font = Font(bold=True, color="C00000" if col.required else "000000")
        cell.fill = header_fill
        cell.alignment = Alignment(horizontal="center", vertical="center")
        hint = ("必填。" if col.required else "选填。") + col.note_zh
        cell.comment = Comment(hint, "foodtrace", width=240, height=80)
        fmt = _number_format(col)
        ws.column_dimensions[letter].number_format = fmt
        width = max(_display_width(col.header_zh), _display_width(col.example), 8) + 2
        ws.column_dimensions[letter].width = min(width, 40)
        example = ws.cell(row=2, column=j)
        example.number_format = fmt
        set_cell(example, _example_value(col))
        example.font = Font(color="808080", italic=True)
        if col.choices:
            labels = [label for _, label in col.choices]
            dv = DataValidation(
                type="list",
                formula1='"' + ",".join(labels) + '"',
                allow_blank=True,
                showErrorMessage=True,
                errorStyle="warning",
                errorTitle=col.header_zh,
                error="请从下拉列表中选择：" + "/".join(labels),
            )
            dv.add(f"{letter}2:{letter}{TEMPLATE_ROWS}")
            ws.add_data_validation(dv)
    ws.freeze_panes = "A2"

    notes = wb.create_sheet("说明")
    _text_row(notes, [f"{spec.title_zh}模板：填写说明"])
    notes["A1"].font = Font(bold=True, size=14)
    for line in _general_notes(spec):
        _text_row(notes, [line])
    notes.append([])
    head_row = notes.max_row + 1
    _text_row(notes, ["列名", "English", "必填", "填写说明", "示例"])
    for cell in notes[head_row]:
        cell.font = Font(bold=True)
        cell.fill = header_fill
    for col in spec.columns:
        choices = "/".join(label for _, label in col.choices)
        note = col.note_zh or (f"可选：{choices}" if choices else "")
        _text_row(
            notes, [col.header_zh, col.header_en, "是" if col.required else "否", note, col.example]
        )
    for letter, width in zip("ABCDE", (18, 22, 6, 60, 24), strict=True):
        notes.column_dimensions[letter].width = width
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _text_row(ws: Any, texts: list[str]) -> None:
    """A row of text cells (strings, never formulas) below the sheet's last row."""
    from openpyxl.cell import WriteOnlyCell

    ws.append([set_cell(WriteOnlyCell(ws), text, Kind.TEXT) for text in texts])


def _general_notes(spec: _Spec) -> list[str]:
    lines = [
        "1. 第1行是表头，请勿修改列名；不用的选填列可以删除，列的顺序可以调整。",
        "2. 第2行是示例；未修改的示例行导入时会自动跳过，建议删除后再填写。",
        "3. 日期写成 YYYY-MM-DD；时间写成 YYYY-MM-DD HH:MM，按北京时间。",
        "4. 数量、测量值只填数字，单位填在“单位”列。",
        "5. 整个文件一次导入：任何一行有误，全部不导入，并列出出错的行和列。",
    ]
    if spec.items:
        keys = "、".join(_header(spec, k) for k in spec.group_by)
        first = "、".join(c.header_zh for c in spec.columns if "." not in c.key and c.required)
        lines.append(
            f"6. {keys}相同的相邻多行合并为一条记录，每行填一项明细；{first}等列只需在第一行填写"
            "（可合并单元格）。"
        )
    return lines


def _header(spec: _Spec, key: str) -> str:
    return next(c.header_zh for c in spec.columns if c.key == key)


# ------------------------------------------------------------------ parsing


@dataclass
class RowError:
    """A problem with a cell (or a whole row when ``column`` is empty).

    ``row`` is the spreadsheet row as the user sees it (the header is row 1;
    0 means the file as a whole); ``column`` is the header as the user wrote it.
    """

    row: int
    column: str
    message: str
    type: str = ""
    """The core's problem type, when the core refused the record (for translation)."""
    ctx: dict[str, Any] = field(default_factory=dict)
    key: str = ""
    """The record field the column fills (``materials.quantity`` for an item's); empty for a
    whole row, the file, or a column the template does not have."""
    message_zh: str = ""
    """What to do, in Chinese, naming the columns by their headers in the file; empty for a
    problem of the core's that the pages translate by its ``type``."""
    message_en: str = ""


def _said(at: int, column: str, zh: str, en: str, key: str = "", **ctx: Any) -> RowError:
    """A problem the import names itself, in both languages."""
    return RowError(at, column, zh, ctx=ctx, key=key, message_zh=zh, message_en=en)


@dataclass
class ParsedRecord:
    """One record read from the file: the rows it came from and the data for its schema."""

    rows: list[int]
    data: dict[str, Any]
    origin: dict[str, int] = field(default_factory=dict)
    """For record-level fields of a nested record: the row each value was read from."""
    reported: set[tuple[int, str]] = field(default_factory=set)
    """Cells (row, column key) already found bad while reading: the record is refused, and
    its other cells are still checked with a stand-in for these (``run_import``)."""


PREVIEW_ROWS = 10
"""How many of the file's rows a check shows as they will be written."""


@dataclass
class Parsed:
    kind: RecordKind
    records: list[ParsedRecord] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    """Column key -> the header as the user wrote it."""
    skipped: list[int] = field(default_factory=list)
    """Rows skipped because they are the template's unchanged example."""
    data_rows: int = 0
    header_row: int = 0
    positions: dict[str, int] = field(default_factory=dict)
    """A header as written (or ``C列`` for a column without one) -> its column, from 0."""
    sample: list[tuple[int, list[str]]] = field(default_factory=list)
    """The first data rows: row number and the text of each named column, in file order."""
    broken: list[ParsedRecord] = field(default_factory=list)
    """Records with a cell that could not be read (reported): never written, but checked
    for their other problems (``run_import``)."""

    def order(self, error: RowError) -> tuple[int, int]:
        """Where an error sorts: by row, then by the column's place in the file."""
        return error.row, self.positions.get(error.column, 1 << 20)


class _Problem(Exception):
    """A problem the import names itself, in Chinese and in English."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(zh)
        self.zh, self.en = zh, en


class _FileProblem(_Problem):
    pass


class _CellProblem(_Problem):
    pass


def parse(
    kind: RecordKind | str, filename: str, content: bytes, limits: Limits | None = None
) -> Parsed:
    """Read a filled CSV or XLSX template into records; collect every cell it cannot read.

    Raises :class:`TooLarge` for a file past ``limits``: nothing of it is read."""
    kind = known_kind(kind)
    spec = _spec(kind)
    cols = {c.key: c for c in spec.columns}
    parsed = Parsed(kind)
    try:
        table = _read_table(filename, content, limits or Limits())
        header_row, header_cells = _find_header(spec, table)
        mapping = _map_headers(spec, header_row, header_cells, parsed)
    except _FileProblem as exc:
        parsed.errors.append(_said(0, "", exc.zh, exc.en))
        return parsed
    parsed.header_row = header_row
    parsed.positions = {str(v).strip(): j for j, v in enumerate(header_cells) if not _blank(v)}
    if parsed.errors:  # a header problem: the rows cannot be read reliably
        parsed.errors.sort(key=parsed.order)
        return parsed
    rows: list[_Row] = []
    unnamed: set[int] = set()
    named = sorted(mapping)
    for row_no, cells in table:
        if row_no <= header_row:
            continue
        for j, v in enumerate(cells):
            if j not in mapping and j not in unnamed and not _blank(v):
                unnamed.add(j)
                parsed.positions[f"{_column_name(j)}列"] = j
                parsed.errors.append(
                    _said(
                        row_no,
                        f"{_column_name(j)}列",
                        "这一列有数据，但没有列名：请填上模板中的列名，或删去这一列",
                        "this column has data but no header: give it the template's header, "
                        "or delete it",
                    )
                )
        values = {key: cells[j] if j < len(cells) else None for j, key in mapping.items()}
        if all(_blank(v) for v in values.values()):
            continue
        parsed.data_rows += 1
        if _is_example(cols, values):
            parsed.skipped.append(row_no)
            continue
        if len(parsed.sample) < PREVIEW_ROWS:
            shown = [_cell_text(cols[mapping[j]], values[mapping[j]]) for j in named]
            parsed.sample.append((row_no, shown))
        cells_ok, bad = _convert_row(cols, row_no, values, parsed)
        rows.append(_Row(row_no, values, cells_ok, bad))
    if spec.items:
        _group(spec, cols, rows, parsed)
    else:
        for r in rows:
            rec = ParsedRecord([r.no], _nest(r.cells), reported={(r.no, k) for k in r.bad})
            (parsed.broken if rec.reported else parsed.records).append(rec)
    if not parsed.records and not parsed.broken and not parsed.errors:
        parsed.errors.append(
            _said(
                header_row + 1,
                "",
                "文件中没有可导入的数据行：请在表头下面逐行填写",
                "the file has no rows to import: fill in one row per record below the header",
            )
        )
    parsed.errors.sort(key=parsed.order)
    return parsed


def preview_headers(parsed: Parsed) -> list[str]:
    """The headers of :attr:`Parsed.sample`'s cells, in file order."""
    by_place = {j: h for h, j in parsed.positions.items() if h in parsed.headers.values()}
    return [by_place[j] for j in sorted(by_place)]


@dataclass
class _Row:
    no: int
    raw: dict[str, Any]
    cells: dict[str, Any]
    """Converted non-empty cells, but those that could not be read."""
    bad: set[str]
    """Columns whose cell could not be read (already reported)."""


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# -- reading the file into rows of cell values

Table = list[tuple[int, list[Any]]]


def _read_table(filename: str, content: bytes, limits: Limits) -> Table:
    name = filename.lower()
    if content.startswith(b"PK\x03\x04") or name.endswith((".xlsx", ".xlsm")):
        return _read_xlsx(content, limits)
    if content.startswith(b"\xd0\xcf\x11\xe0") or name.endswith((".xls", ".et")):
        raise _FileProblem(
            "不支持旧版 Excel（.xls）文件，请在 Excel 中另存为 .xlsx 或 CSV",
            "old Excel files (.xls) are not supported: save it as .xlsx or CSV in Excel",
        )
    return _read_csv(content, limits)


def _read_csv(content: bytes, limits: Limits) -> Table:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            # Excel on Chinese Windows saves "CSV (逗号分隔)" in the ANSI code page (GBK).
            text = content.decode("gb18030")
        except UnicodeDecodeError:
            raise _FileProblem(
                "无法识别文件编码：请保存为 UTF-8 或 GB18030 编码的 CSV",
                "unknown text encoding: save the CSV as UTF-8 or GB18030",
            ) from None
    if '"' not in text and text.count("\n") > limits.rows:
        # no quoted field, so no line break inside one: each line is a row
        raise TooLarge("rows", limits.rows, text.count("\n") + (not text.endswith("\n")))
    first = text.split("\n", 1)[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    table: Table = []
    try:
        # The module's own field limit (131,072 characters) is above the cell limit.
        for i, row in enumerate(reader, start=1):
            if i > limits.rows:
                raise TooLarge("rows", limits.rows, None)
            if len(row) > limits.columns:
                raise TooLarge("columns", limits.columns, len(row))
            if row and max(map(len, row)) > limits.cell_chars:
                raise TooLarge("cell_chars", limits.cell_chars, max(map(len, row)))
            table.append((i, row))
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise TooLarge("cell_chars", limits.cell_chars, None) from None
        raise _FileProblem(
            f"CSV 格式错误（第 {reader.line_num} 行）：{exc}",
            f"the CSV is malformed (line {reader.line_num}): {exc}",
        ) from None
    return table


def _has_time(number_format: str) -> bool:
    fmt = re.sub(r'"[^"]*"|\[[^\]]*\]|\\.', "", number_format or "").lower()
    return "h" in fmt or "s" in fmt


def _read_xlsx(content: bytes, limits: Limits) -> Table:
    from openpyxl import load_workbook

    try:
        with zipfile.ZipFile(io.BytesIO(content)) as zf:
            if sum(i.file_size for i in zf.infolist()) > MAX_UNZIPPED_BYTES:
                raise _FileProblem(
                    "XLSX 文件解压后过大，请拆分后分别导入",
                    "the XLSX unpacks too large: split it and import the parts",
                )
            for info in zf.infolist():
                if info.filename.lower().endswith(".xml"):
                    with zf.open(info) as part:
                        _check_extent(part, limits)
        wb = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (_FileProblem, TooLarge):
        raise
    except Exception as exc:  # openpyxl raises many kinds on a damaged file
        raise _FileProblem(
            f"无法读取 XLSX 文件：{type(exc).__name__}",
            f"the XLSX file cannot be read: {type(exc).__name__}",
        ) from None
    try:
        sheets = [ws for ws in wb.worksheets if ws.title != "说明"] or wb.worksheets
        ws = sheets[0]
        # A stale <dimension> (common in files written by other tools) would cut rows off.
        ws.reset_dimensions()
        table: Table = []
        for i, row in enumerate(ws.iter_rows(), start=1):
            values = []
            for cell in row:
                value = cell.value
                if isinstance(value, str) and len(value) > limits.cell_chars:
                    raise TooLarge("cell_chars", limits.cell_chars, len(value))
                if isinstance(value, datetime) and not _has_time(
                    getattr(cell, "number_format", "")
                ):
                    value = value.date()  # a date cell: no time was written
                values.append(value)
            table.append((i, values))
        return table
    finally:
        wb.close()


_SHEET_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main "
_DIMENSION, _ROW, _CELL = f"{_SHEET_NS}dimension", f"{_SHEET_NS}row", f"{_SHEET_NS}c"


def _check_extent(part: Any, limits: Limits) -> None:
    """Refuse (:class:`TooLarge`) a sheet past the limits before openpyxl reads any of it.

    openpyxl is no guard: opening a sheet without a ``<dimension>`` reads all of it to
    find none; its rows come padded, one empty row for each missing one up to the last
    (a cell in row 1,048,576 makes a million); and a row is handed over once all its
    cells are built (16,384 of them, or ten million unnumbered ``<c/>``). So first the
    sheet's declared size (``<dimension ref="A1:P600">``) is read, and past a limit the
    file is refused at once; a stale or missing one is no guide, so then each ``<row>``
    and ``<c>`` is counted as its tag *starts* (numbered or not), and the file refused
    at the first past a limit: a file past a limit costs no more than the limit. Expat
    itself does the reading (no tree is built), and a document type declaration, which
    no spreadsheet part has, is refused. Any XML part of the file is checked so; only a
    worksheet has these tags.
    """
    from xml.parsers import expat

    from openpyxl.utils.cell import column_index_from_string, range_boundaries

    at = {"row": 0, "cells": 0, "column": 0}

    def start(tag: str, attrs: dict[str, str]) -> None:
        if tag == _CELL:
            at["cells"] += 1
            ref = attrs.get("r")
            if ref:
                letters = ref.rstrip("0123456789")
                at["column"] = column_index_from_string(letters) if len(letters) < 4 else 16_385
            else:
                at["column"] += 1
            if at["cells"] > limits.columns or at["column"] > limits.columns:
                raise TooLarge("columns", limits.columns, at["column"] if ref else None, "reaches")
        elif tag == _ROW:
            at["cells"] = at["column"] = 0
            number = attrs.get("r")
            at["row"] = int(number) if number and number.isdigit() else at["row"] + 1
            if at["row"] > limits.rows:
                raise TooLarge("rows", limits.rows, at["row"] if number else None, "reaches")
        elif tag == _DIMENSION:
            try:
                _, _, last_col, last_row = range_boundaries(attrs.get("ref", ""))
            except (TypeError, ValueError):
                return  # no size after all: counted as it comes
            if (last_row or 0) > limits.rows:
                raise TooLarge("rows", limits.rows, last_row, "declares")
            if (last_col or 0) > limits.columns:
                raise TooLarge("columns", limits.columns, last_col, "declares")

    def doctype(*_: Any) -> None:
        raise _FileProblem(
            "XLSX 文件含有文档类型声明（DTD），无法导入",
            "the XLSX holds a document type declaration (DTD): it cannot be imported",
        )

    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartElementHandler = start
    parser.StartDoctypeDeclHandler = doctype
    while chunk := part.read(64 * 1024):
        parser.Parse(chunk, False)
    parser.Parse(b"", True)


# -- the header row


def _norm_header(text: Any) -> str:
    text = unicodedata.normalize("NFKC", str(text)).strip()
    return text.strip("*").strip()


def _find_header(spec: _Spec, table: Table) -> tuple[int, list[Any]]:
    """The header row: among the first ten rows, the one naming most known columns.
    (Many 台账 have a title row above the header.)"""
    known = _header_index(spec)
    best: tuple[int, int, list[Any]] | None = None
    for row_no, cells in table[:10]:
        if row_no > 10:
            break
        hits = sum(1 for v in cells if not _blank(v) and _match(known, v) is not None)
        if hits and (best is None or hits > best[0]):
            best = (hits, row_no, cells)
    if best is None:
        expected = "、".join(c.header_zh for c in spec.columns if c.required)
        raise _FileProblem(
            f"找不到表头：第一行应为列名，如 {expected}",
            f"no header row: the first row must name the columns, e.g. {expected}",
        )
    return best[1], best[2]


def _header_index(spec: _Spec) -> tuple[dict[str, str], dict[str, set[str]]]:
    exact: dict[str, str] = {}
    folded: dict[str, set[str]] = {}
    for col in spec.columns:
        for name in (col.header_zh, col.header_en, col.key):
            exact[_norm_header(name)] = col.key
            folded.setdefault(_norm_header(name).casefold(), set()).add(col.key)
    return exact, folded


def _match(known: tuple[dict[str, str], dict[str, set[str]]], header: Any) -> str | None:
    exact, folded = known
    text = _norm_header(header)
    if text in exact:
        return exact[text]
    keys = folded.get(text.casefold(), set())
    return next(iter(keys)) if len(keys) == 1 else None


def _column_name(j: int) -> str:
    name = ""
    j += 1
    while j:
        j, r = divmod(j - 1, 26)
        name = chr(65 + r) + name
    return name


def _map_headers(spec: _Spec, row_no: int, cells: list[Any], parsed: Parsed) -> dict[int, str]:
    known = _header_index(spec)
    mapping: dict[int, str] = {}
    for j, value in enumerate(cells):
        if _blank(value):
            continue
        written = str(value).strip()
        key = _match(known, value)
        if key is None:
            parsed.errors.append(
                _said(
                    row_no,
                    written,
                    f"无法识别的列“{written}”：请使用模板中的列名",
                    f"unknown column {written!r}: use the template's headers",
                )
            )
        elif key in parsed.headers:
            parsed.errors.append(
                _said(
                    row_no,
                    written,
                    f"列“{written}”与“{parsed.headers[key]}”重复：请删去其中一列",
                    f"the column {written!r} repeats {parsed.headers[key]!r}: delete one of them",
                    key,
                )
            )
        else:
            mapping[j] = key
            parsed.headers[key] = written
    for col in spec.columns:
        if col.required and col.key not in parsed.headers:
            parsed.errors.append(
                _said(
                    row_no,
                    col.header_zh,
                    f"缺少必填列“{col.header_zh}”：请按模板加上这一列",
                    f"the required column {col.header_zh!r} is missing: add it as in the template",
                    col.key,
                )
            )
    return mapping


# -- cells


def _cell_text(col: Column, value: Any) -> str:
    """A cell as the user sees it (for comparing with the template's example)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        if col.type == DATE:
            return value.date().isoformat()
        return value.strftime("%Y-%m-%d %H:%M" + (":%S" if value.second else ""))
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return _number_text(value)
    return str(value).strip()


def _is_example(cols: dict[str, Column], values: dict[str, Any]) -> bool:
    return all(_cell_text(cols[k], v) == cols[k].example for k, v in values.items())


def _number_text(value: float | int) -> str:
    """A number as Excel shows it (15 significant digits), as a plain decimal string."""
    if isinstance(value, bool):
        raise _CellProblem("应为数字", "must be a number")
    if isinstance(value, int):
        return str(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise _CellProblem("应为数字", "must be a number")
    number = Decimal(format(value, ".15g"))
    if number == 0:
        return "0"
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


_THOUSANDS = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def _decimal(value: Any) -> str:
    if isinstance(value, int | float):
        return _number_text(value)
    if not isinstance(value, str):
        raise _CellProblem("应为数字", "must be a number")
    text = unicodedata.normalize("NFKC", value).strip()
    if _THOUSANDS.match(text):
        text = text.replace(",", "")
    if not _NUMBER.match(text):
        raise _CellProblem(
            f"“{value.strip()}”不是数字（只填数字，单位填在单位列）",
            f"{value.strip()!r} is not a number (digits only; the unit goes in its own column)",
        )
    if "e" in text.lower():
        text = format(Decimal(text), "f")
    return text.lstrip("+")


def _int(value: Any) -> int:
    text = _decimal(value)
    try:
        number = Decimal(text)
    except InvalidOperation:  # pragma: no cover - _decimal checked the form
        raise _CellProblem("应为整数", "must be a whole number") from None
    if number != number.to_integral_value():
        raise _CellProblem(f"“{text}”不是整数", f"{text!r} is not a whole number")
    return int(number)


_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_DATE8 = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_INSTANT = re.compile(
    r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    r"(?:[T\s]+(\d{1,2})\s*[:：时点]\s*(\d{1,2})(?:\s*[:：分]\s*(\d{1,2})(?:\.(\d{1,6}))?\s*秒?)?\s*分?)"
    r"\s*(Z|[+-]\d{2}:?\d{2})?$",
    re.IGNORECASE,
)


def _date(value: Any) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).strip()
        # A date with a time of day (exported from another system) is still that local
        # date; with a zone it is an instant, whose local date is not what was written.
        m = _DATE.match(text) or _DATE8.match(text) or _INSTANT.match(text)
        if m and m.re is _INSTANT and m[8] is not None:
            raise _CellProblem(
                f"“{text}”带时区，请只写日期 YYYY-MM-DD",
                f"{text!r} has a time zone: write the date only, YYYY-MM-DD",
            )
        if m:
            try:
                return date(int(m[1]), int(m[2]), int(m[3])).isoformat()
            except ValueError:
                raise _CellProblem(
                    f"“{text}”不是有效日期", f"{text!r} is not a valid date"
                ) from None
    raise _CellProblem(
        f"“{_cell_repr(value)}”不是日期，请写成 YYYY-MM-DD",
        f"{_cell_repr(value)!r} is not a date: write YYYY-MM-DD",
    )


def _instant(value: Any) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            # Excel keeps a fraction of a day: 08:30 can come back as 08:29:59.999999.
            # Round to the millisecond, the finest time Excel shows.
            millis = round(value.microsecond / 1000)
            value = value.replace(microsecond=0) + timedelta(milliseconds=millis)
            value = value.replace(tzinfo=CST_OFFSET)
        return _rfc3339(value)
    if isinstance(value, date):
        raise _CellProblem(
            f"“{value.isoformat()}”只有日期，请写成 YYYY-MM-DD HH:MM（北京时间）",
            f"{value.isoformat()!r} has no time of day: write YYYY-MM-DD HH:MM (Beijing time)",
        )
    if isinstance(value, time | timedelta):
        raise _CellProblem(
            "只有时间，请写成 YYYY-MM-DD HH:MM（北京时间）",
            "a time without its date: write YYYY-MM-DD HH:MM (Beijing time)",
        )
    if isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).strip()
        m = _INSTANT.match(text)
        if m:
            y, mo, d, h, mi, s, frac, zone = m.groups()
            try:
                moment = datetime(
                    int(y),
                    int(mo),
                    int(d),
                    int(h),
                    int(mi),
                    int(s or 0),
                    int((frac or "0").ljust(6, "0")),
                )
                tz = CST_OFFSET if zone is None else _zone(zone)
            except ValueError:
                raise _CellProblem(
                    f"“{text}”不是有效的日期时间", f"{text!r} is not a valid date and time"
                ) from None
            return _rfc3339(moment.replace(tzinfo=tz))
        if _DATE.match(text) or _DATE8.match(text):
            raise _CellProblem(
                f"“{text}”只有日期，请写成 YYYY-MM-DD HH:MM（北京时间）",
                f"{text!r} has no time of day: write YYYY-MM-DD HH:MM (Beijing time)",
            )
    raise _CellProblem(
        f"“{_cell_repr(value)}”不是日期时间，请写成 YYYY-MM-DD HH:MM（北京时间）",
        f"{_cell_repr(value)!r} is not a date and time: write YYYY-MM-DD HH:MM (Beijing time)",
    )


def _rfc3339(moment: datetime) -> str:
    if not moment.microsecond:
        return moment.isoformat(timespec="seconds")
    return moment.isoformat(
        timespec="milliseconds" if moment.microsecond % 1000 == 0 else "microseconds"
    )


def _zone(text: str) -> timezone:
    if text.upper() == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 23 or minutes > 59:
        raise ValueError(text)
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _bool(col: Column, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    text = unicodedata.normalize("NFKC", str(value)).strip().casefold()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    labels = "/".join(label for _, label in col.choices)
    raise _CellProblem(
        f"“{_cell_repr(value)}”无法识别，请填 {labels}",
        f"{_cell_repr(value)!r} is not understood: write {labels}",
    )


@cache
def _enum_names(choices: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """Every accepted spelling (case-folded) of each choice -> the choice's value.
    A choice's own label wins over another choice's alias (合格 is "pass", not "ok")."""
    names: dict[str, str] = {}
    for choice, _ in choices:
        for name in (choice, choice.replace("_", " "), *_ALIASES.get(choice, ())):
            names[unicodedata.normalize("NFKC", name).casefold()] = choice
    for choice, label in choices:
        names[label.casefold()] = choice
    return names


def _enum(col: Column, value: Any) -> str:
    text = unicodedata.normalize("NFKC", str(value)).strip()
    choice = _enum_names(col.choices).get(text.casefold())
    if choice is not None:
        return choice
    labels = "/".join(label for _, label in col.choices)
    raise _CellProblem(f"“{text}”不是可选值：{labels}", f"{text!r} is not one of {labels}")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, int | float):
        return _number_text(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M" + (":%S" if value.second else ""))
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def _decimals(value: Any) -> list[str]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [_number_text(value)]
    parts = re.split(r"[/／;；,，、\s]+", unicodedata.normalize("NFKC", str(value)).strip())
    return [_decimal(p) for p in parts if p]


def _cell_repr(value: Any) -> str:
    text = _text(value)
    return text if len(text) <= 40 else text[:40] + "…"


def _convert(col: Column, value: Any) -> Any:
    if col.type == DECIMAL:
        return _decimal(value)
    if col.type == INT:
        return _int(value)
    if col.type == DATE:
        return _date(value)
    if col.type == INSTANT:
        return _instant(value)
    if col.type == BOOL:
        return _bool(col, value)
    if col.type == ENUM:
        return _enum(col, value)
    if col.type == DECIMALS:
        return _decimals(value)
    return _text(value)


def _convert_row(
    cols: dict[str, Column], row_no: int, values: dict[str, Any], parsed: Parsed
) -> tuple[dict[str, Any], set[str]]:
    """The row's non-empty cells converted for the schema, and the columns of those that
    cannot be read (each reported)."""
    out: dict[str, Any] = {}
    bad: set[str] = set()
    for key, value in values.items():
        if _blank(value):
            continue
        try:
            out[key] = _convert(cols[key], value)
        except _CellProblem as exc:
            parsed.errors.append(_said(row_no, parsed.headers[key], exc.zh, exc.en, key))
            bad.add(key)
    return out, bad


def _nest(cells: dict[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1}`` -> ``{"a": {"b": 1}}``."""
    out: dict[str, Any] = {}
    for key, value in cells.items():
        *parents, leaf = key.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def _group(spec: _Spec, cols: dict[str, Column], rows: list[_Row], parsed: Parsed) -> None:
    """Consecutive rows with the same group key form one record, one list item per row.

    A row whose group-key cells are all empty continues the record above
    (merged cells read that way). A record-level value may be repeated on
    later rows of its group, but not changed.
    """
    prefix = spec.items + "."
    first_row: dict[tuple[Any, ...], int] = {}
    groups: list[tuple[list[_Row], bool]] = []
    last: tuple[Any, ...] | None = None
    for row in rows:
        key = tuple(_group_value(cols[k], row.raw.get(k)) for k in spec.group_by)
        if groups and (key == last or all(v is None for v in key)):
            groups[-1][0].append(row)
            continue
        usable = True
        if all(v is not None for v in key) and key in first_row:
            names = "、".join(parsed.headers[k] for k in spec.group_by)
            parsed.errors.append(
                _said(
                    row.no,
                    parsed.headers[spec.group_by[0]],
                    f"{names}与第 {first_row[key]} 行相同但不相邻：同一记录的各行须连续排列",
                    f"{names} as on row {first_row[key]}, but not next to it: the rows of "
                    "one record must be consecutive",
                    spec.group_by[0],
                    row=first_row[key],
                )
            )
            usable = False
        first_row.setdefault(key, row.no)
        groups.append(([row], usable))
        last = key
    for members, usable in groups:
        if not usable:
            continue  # already reported
        data: dict[str, Any] = {}
        origin: dict[str, int] = {}
        items: list[dict[str, Any]] = []
        reported: set[tuple[int, str]] = set()
        for row in members:
            reported |= {(row.no, k) for k in row.bad}
            for k, v in row.cells.items():
                if k.startswith(prefix):
                    continue
                if k not in data:
                    data[k], origin[k] = v, row.no
                elif data[k] != v:
                    parsed.errors.append(
                        _said(
                            row.no,
                            parsed.headers[k],
                            f"与本记录第 {origin[k]} 行的“{_text(data[k])}”不一致："
                            "同一记录只在第一行填写，或各行填得一样",
                            f"differs from {_text(data[k])!r} on row {origin[k]} of this "
                            "record: fill it on the first row only, or the same on each",
                            k,
                            row=origin[k],
                        )
                    )
                    reported.add((row.no, k))
            item = {k.removeprefix(prefix): v for k, v in row.cells.items() if k.startswith(prefix)}
            items.append(_nest(item))
        for row in members:  # a record-level cell that could not be read: its first row's
            for k in row.bad:
                if not k.startswith(prefix):
                    origin.setdefault(k, row.no)
        record_data = _nest(data)
        record_data[spec.items] = items
        (parsed.broken if reported else parsed.records).append(
            ParsedRecord([r.no for r in members], record_data, origin, reported)
        )


def _group_value(col: Column, value: Any) -> Any:
    """A group-key cell as compared between rows: converted if it can be, else its text."""
    if _blank(value):
        return None
    try:
        return _convert(col, value)
    except _CellProblem:
        return ("unreadable", _cell_text(col, value))


# --------------------------------------------------------------- importing


@dataclass
class ImportResult:
    """What an import did, or would do: nothing is written unless ``errors`` is empty."""

    kind: RecordKind
    dry_run: bool
    records: int = 0
    """Records read from the file."""
    checked: int = 0
    """Records the core accepted (appended, or in a dry run, appended and rolled back)."""
    written: int = 0
    """Entries left in the caller's session to commit: 0 after a dry run or any error."""
    errors: list[RowError] = field(default_factory=list)
    warnings: list[RowError] = field(default_factory=list)
    first_seq: int | None = None
    last_seq: int | None = None
    skipped: list[int] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    """What the file writes (or would): entries by kind, the platform's public declarations
    of released lots among them, and ``<kind>.<items>`` for the rows of nested records."""
    headers: list[str] = field(default_factory=list)
    """The headers of ``preview``'s cells, as the file has them."""
    preview: list[tuple[int, list[str]]] = field(default_factory=list)
    """The file's first rows (row number, cells as text): what is about to be written."""

    @property
    def ok(self) -> bool:
        return not self.errors


_MSG_FIELD = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\b[^:]*:")
_WHAT = re.compile(r"^([A-Za-z ]+?) ['\"]")
_UNKNOWN = {
    # what the core calls it: (its Chinese name, what to do in Chinese, and in English)
    "customer": ("客户", "请先在客户名录中登记该客户", "register it first"),
    "supplier": ("供应商", "请先在供应商名录中登记该供应商", "register it first"),
    "product": ("产品", "请先登记该产品", "register it first"),
    "lot": ("生产批次", "请先录入该批次的生产记录", "record the production lot first"),
    "material lot": ("物料批次", "请先录入该批物料的进货查验", "record its incoming check first"),
    "CCP reading": ("偏差记录", "请核对偏差记录序号", "check the entry number of the reading"),
}
_Headers = Callable[[str], str]
_EXPLAINED: dict[str, Callable[[_Headers], tuple[str, str]]] = {
    # The schemas' cross-field checks (schemas.records), by the core's message: what to do,
    # naming the other columns by their headers in the file.
    "give the number of the licence you checked": lambda h: (
        f"“{h('supplier_licence_checked')}”为“是”时必填：请填写查验过的许可证编号",
        f"required when {h('supplier_licence_checked')} is 是: give the number of the "
        "licence you checked",
    ),
    "give at least one (Art. 50)": lambda h: (
        f"“{h('production_date')}”和“{h('batch_no')}”至少填写一项（食品安全法第五十条）",
        f"give {h('production_date')} or {h('batch_no')}, at least one (Art. 50)",
    ),
    "production cannot end before it started": lambda h: (
        f"早于“{h('started_at')}”：生产不能在开始之前结束",
        f"is before {h('started_at')}: production cannot end before it started",
    ),
    "give a measured value or a pass/fail result": lambda h: (
        f"“{h('value')}”和“{h('result')}”须填写其中一项",
        f"give {h('value')} or {h('result')}, one of them",
    ),
    "a measured value needs its unit": lambda h: (
        f"填写了“{h('value')}”时必填：请填写单位",
        f"required when {h('value')} is given: give its unit",
    ),
    "describe the problems that the checklist found": lambda h: (
        f"有检查项的“{h('items.result')}”为问题时必填：请描述发现的问题",
        f"required when an item's {h('items.result')} is a problem: describe the problems",
    ),
}


_DEPENDS = {
    # The fields each of those checks reads: found with a stand-in in none of them, it is
    # the row's own problem (see _probe).
    "give the number of the licence you checked": {
        "supplier_licence_checked",
        "supplier_licence_no",
    },
    "give at least one (Art. 50)": {"production_date", "batch_no"},
    "production cannot end before it started": {"started_at", "ended_at"},
    "give a measured value or a pass/fail result": {"value", "result"},
    "a measured value needs its unit": {"value", "unit"},
    "describe the problems that the checklist found": {"items.result", "problems"},
    "cannot be pass while items failed": {"conclusion", "items.passed"},
}


def _depends(message: str) -> set[str] | None:
    """The fields a cross-field check reads, if known."""
    return next((keys for m, keys in _DEPENDS.items() if message.startswith(m)), None)


def _header_of(spec: _Spec, parsed: Parsed, key: str) -> str:
    """The column's header as the file has it (as the template has it if the file has not);
    KeyError for a key that is no column."""
    if key in parsed.headers:
        return parsed.headers[key]
    return next(c.header_zh for c in spec.columns if c.key == key)


@cache
def _keys(spec: _Spec) -> frozenset[str]:
    return frozenset(c.key for c in spec.columns)


def _cell_path(spec: _Spec, rec: ParsedRecord, row: int, key: str) -> tuple[str | int, ...]:
    """Where a cell's value lies in the record's data."""
    if spec.items and key.startswith(spec.items + "."):
        index = rec.rows.index(row) if row in rec.rows else 0
        return (spec.items, index, *key.split(".")[1:])
    return tuple(key.split("."))


def _place(
    spec: _Spec, rec: ParsedRecord, problem: FieldProblem
) -> tuple[int, str, tuple[str | int, ...]]:
    """A problem's row, column key ("" if it names none) and path in the record's data,
    from its ``loc`` (e.g. ``("materials", 1, "quantity")``)."""
    keys = _keys(spec)
    row = rec.rows[0]
    parts: list[str] = []
    loc = list(problem.loc)
    index: int | None = None
    if spec.items and len(loc) >= 2 and loc[0] == spec.items and isinstance(loc[1], int):
        index = loc[1]
        if index < len(rec.rows):
            row = rec.rows[index]
        parts.append(spec.items)
        loc = loc[2:]
    parts += [str(p) for p in loc if not isinstance(p, int)]
    key = ".".join(parts)
    # Model-level checks name their field at the start of the message ("ended_at: …").
    m = _MSG_FIELD.match(problem.msg)
    if key not in keys and m:
        candidate = ".".join([*parts, m[1]])
        if candidate in keys:
            key = candidate
    while key and key not in keys and "." in key:
        key = key.rsplit(".", 1)[0]
    whole_list = False
    if key and key not in keys:
        # e.g. loc ("materials",): the list as a whole -> its first column
        whole_list = True
        key = next((c.key for c in spec.columns if c.key.startswith(key + ".")), key)
    if key not in keys:
        return row, "", ()
    if spec.items and key.startswith(spec.items + "."):
        if index is None or whole_list:
            return row, key, ()
        return row, key, (spec.items, index, *key.split(".")[1:])
    if key in rec.origin:
        row = rec.origin[key]
    return row, key, tuple(key.split("."))


def _value_at(data: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        try:
            data = data[step]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _locate(
    spec: _Spec,
    parsed: Parsed,
    rec: ParsedRecord,
    problem: FieldProblem,
    in_file: dict[int, int] | None = None,
) -> RowError:
    """The problem as the user sees it: its row, its column's header, what to do.

    ``in_file`` maps the seqs this file's records took to their rows, so that a duplicate
    of a row above names that row (the entry it names is not written, and never will be)."""
    row, key, path = _place(spec, rec, problem)
    column = _header_of(spec, parsed, key) if key else ""
    ctx = dict(problem.ctx)
    kind, msg = problem.type, problem.msg
    zh, en = "", msg
    value = ctx.get("value", _value_at(rec.data, path) if path else None)
    shown = _text(value) if value is not None else ""
    if kind == "missing" and msg == "Field required":
        # pydantic's own wording for an empty required cell; the core's "missing" says more
        msg = "必填，不能为空"
        zh, en = "必填，不能为空：请填写", "required: fill it in"
    elif kind == "duplicate" and in_file and ctx.get("seq") in in_file:
        other = in_file[ctx["seq"]]
        kind, ctx = "duplicate_in_file", {"value": shown, "row": other}
        zh = f"“{shown}”与本文件第 {other} 行重复：删去其中一行，或改用另一个{column}"
        en = msg = (
            f"{column} {shown!r} repeats row {other} of this file: delete one of the rows, "
            f"or give another {column}"
        )
    elif kind == "duplicate" and "seq" in ctx:
        zh = f"“{shown}”已存在（第 {ctx['seq']} 条记录）：已录入的不必再导入；如需修改，请录入更正"
    elif kind == "not_found" and (m := _WHAT.match(msg)) and m[1] in _UNKNOWN:
        name, todo_zh, todo_en = _UNKNOWN[m[1]]
        zh = f"{name}“{shown}”不存在：{todo_zh}"
        en = f"unknown {m[1]} {shown!r}: {todo_en}"
    elif kind == "value_error" and msg in _EXPLAINED:
        try:
            zh, en = _EXPLAINED[msg](lambda k: _header_of(spec, parsed, k))
        except StopIteration:  # a column this kind has not: the pages translate it by type
            pass
    return RowError(row, column, msg, kind, ctx, key=key, message_zh=zh, message_en=en)


@cache
def _list_adapter(kind: RecordKind) -> TypeAdapter[list[Any]]:
    """A file's records as one list: the same validation as ``validate``, per record."""
    schema: Any = BY_KIND[kind].schema  # a class known at run time only
    return TypeAdapter(list[schema])


# -- every problem of a refused record

MAX_PROBED = 1000
"""Refused records checked again for their other problems; past these, only the first."""
_PROBE_ROUNDS = 8
_DROP = object()
_LOCAL = frozenset({"not_found", "duplicate", "unit_mismatch", "future", "not_in_plan", "missing"})
"""Problems of the core that concern one field alone, whatever the other fields hold."""

_Stand = tuple[Any, bool]
"""A stand-in value for a cell, and whether the record's other checks still hold with it
(a registered customer's code for an unknown one: yes; the template's example: no)."""


def _example_value_of(col: Column) -> Any:
    if not col.example:
        return None
    try:
        return _convert(col, col.example)
    except _CellProblem:
        return None


def _stand_ins(
    session: Session,
    ledger_id: int,
    kind: RecordKind,
    spec: _Spec,
    key: str,
    problem: FieldProblem | None,
) -> list[_Stand]:
    """What to put in a bad cell so that the record's other cells can still be checked."""
    col = next((c for c in spec.columns if c.key == key), None)
    if col is None:
        return []
    if problem is not None and problem.type == "not_found":
        snap = BY_KIND[kind].snapshot
        if snap is not None and key == snap.code_field:  # only copied into the entry
            from foodtrace.records.projection import DbStore

            found = DbStore(session, ledger_id).find(snap.table)
            return [(found[0]["code"], True)] if found else []
        return []  # a lot, a material lot: what the other checks read
    if problem is not None and problem.type == "unit_mismatch" and problem.ctx.get("allowed"):
        return [(str(problem.ctx["allowed"]).split(" / ")[0], True)]
    out: list[_Stand] = []
    if not col.required:
        out.append((_DROP, False))
    example = _example_value_of(col)
    if example is not None:
        out.append((example, False))
    return out


def _with_stand_ins(data: dict[str, Any], subs: dict[tuple[str | int, ...], list[Any]]) -> Any:
    out = copy.deepcopy(data)
    for path, (stands, at) in subs.items():
        node: Any = out
        for step in path[:-1]:
            if isinstance(node, list):
                node = node[step] if isinstance(step, int) and step < len(node) else None
            elif isinstance(node, dict):
                node = node.setdefault(step, {})
            if node is None:
                break
        if node is None:
            continue
        value = stands[at][0]
        if isinstance(node, dict):
            if value is _DROP:
                node.pop(path[-1], None)
            else:
                node[path[-1]] = value
    return out


def _schema_problems(kind: RecordKind, data: Any) -> list[tuple[FieldProblem, bool]]:
    """The schema's problems with ``data``, each with whether it is a cross-field one."""
    try:
        BY_KIND[kind].schema.model_validate(data)
    except ValidationError as exc:
        raw = exc.errors(include_url=False)
        problems = problems_from(exc).problems
        return [
            (p, not r["loc"] or isinstance(r["loc"][-1], int))
            for p, r in zip(problems, raw, strict=True)
        ]
    return []


def _core_problems(
    session: Session, ledger_id: int, kind: RecordKind, data: Any, actor: str, clock: Clock
) -> list[tuple[FieldProblem, bool]]:
    """The core's problems with the record, in a savepoint that is always rolled back."""
    point = session.begin_nested()
    try:
        record(
            session=session,
            ledger_id=ledger_id,
            kind=kind,
            data=data,
            actor=actor,
            clock=clock,
            defer_head=True,
        )
    except RecordError as exc:
        return [(p, p.type not in _LOCAL) for p in exc.problems]
    finally:
        point.rollback()
    return []


def _probe(
    *,
    session: Session,
    ledger_id: int,
    kind: RecordKind,
    spec: _Spec,
    parsed: Parsed,
    rec: ParsedRecord,
    reported: set[tuple[int, str]],
    actor: str,
    clock: Clock,
) -> list[RowError]:
    """The problems of a refused record not yet reported, in all its cells.

    The schema reports every field it refuses at once, but the core stops at the first
    problem (an unknown customer hides a wrong unit). So the record is checked again with
    a stand-in for each cell already reported, until it passes or no stand-in is left;
    always in a savepoint that is rolled back. A stand-in that other checks may read
    (the template's example) hides the cross-field problems found with it that read it
    (or that may: those of the core), so that no problem is reported that a stand-in made.
    """
    found: list[RowError] = []
    subs: dict[tuple[str | int, ...], list[Any]] = {}
    for row, key in sorted(rec.reported):
        stands = _stand_ins(session, ledger_id, kind, spec, key, None)
        if stands:
            subs[_cell_path(spec, rec, row, key)] = [stands, 0]
    for _ in range(_PROBE_ROUNDS):
        data = _with_stand_ins(rec.data, subs)
        harmful = {
            ".".join(str(p) for p in path if not isinstance(p, int))
            for path, (stands, at) in subs.items()
            if not stands[at][1]
        }
        problems = _schema_problems(kind, data)
        if not problems:
            problems = _core_problems(session, ledger_id, kind, data, actor, clock)
        if not problems:
            break
        moved = stuck = False
        for problem, cross in problems:
            row, key, path = _place(spec, rec, problem)
            if path and path in subs:  # the stand-in failed too: the next one
                subs[path][1] += 1
                if subs[path][1] >= len(subs[path][0]):
                    stuck = True
                    subs[path][1] -= 1
                else:
                    moved = True
                continue
            if (row, key) not in reported:
                reported.add((row, key))
                if not cross or not harmful or not (_depends(problem.msg) or harmful) & harmful:
                    found.append(_locate(spec, parsed, rec, problem))
            stands = _stand_ins(session, ledger_id, kind, spec, key, problem) if path else []
            if stands:
                subs[path] = [stands, 0]
                moved = True
            else:
                stuck = True
        if stuck or not moved:
            break
    return found


# -- rows that repeat an entry


def _repeat_key(kind: RecordKind, model: Any) -> tuple[Any, ...] | None:
    """What makes two records of ``kind`` the same event, or None if nothing does."""
    if kind == RecordKind.CCP_RECORD:
        value = Decimal(model.value) if model.value is not None else model.result
        return (model.lot_code, model.ccp, model.parameter, model.measured_at, value)
    if kind == RecordKind.SALE and model.document_no:
        return (model.document_no, model.lot_code)
    if kind == RecordKind.MATERIAL_CHECK:
        return (model.certificate_no, model.supplier_code)
    return None


_REPEAT_COLUMNS = {
    RecordKind.CCP_RECORD: ("lot_code", "parameter", "measured_at", "value"),
    RecordKind.SALE: ("document_no", "lot_code"),
    RecordKind.MATERIAL_CHECK: ("certificate_no", "supplier_code"),
}
"""The columns of :func:`_repeat_key`: for a sale and a check, as the entry's body has them."""


def _existing(
    session: Session, ledger_id: int, kind: RecordKind, models: Sequence[Any]
) -> dict[tuple[Any, ...], int]:
    """The ledger's entries of ``kind`` that the records could repeat: key -> their seq."""
    from foodtrace.records.derive import instant
    from foodtrace.records.projection import DbStore

    out: dict[tuple[Any, ...], int] = {}
    if kind == RecordKind.CCP_RECORD:
        store = DbStore(session, ledger_id)
        for code in sorted({m.lot_code for m in models}):
            for lot in store.find("lots", code=code):
                for r in store.find("ccp_readings", lot_seq=lot["record_seq"]):
                    value = Decimal(r["value"]) if r["value"] is not None else r["result"]
                    key = (code, r["ccp"], r["parameter"], instant(r["measured_at"]), value)
                    out.setdefault(key, r["record_seq"])
        return out
    from sqlalchemy import select

    from foodtrace.ledger.models import Entry

    field_name = _REPEAT_COLUMNS[kind][0]
    marker = f'"{field_name}"'.encode()
    rows = session.execute(
        select(Entry.seq, Entry.body).where(Entry.ledger_id == ledger_id, Entry.kind == str(kind))
    )
    for seq, body in rows:
        if marker not in body:
            continue
        b = json.loads(body).get("body", {})
        out.setdefault(tuple(b.get(k) for k in _REPEAT_COLUMNS[kind]), seq)
    return out


def _repeats(
    session: Session,
    ledger_id: int,
    kind: RecordKind,
    spec: _Spec,
    parsed: Parsed,
    models: Sequence[tuple[ParsedRecord, Any]],
) -> list[RowError]:
    """A warning for each record that repeats an entry of the ledger, or a row above it: a
    CCP reading of the same lot, parameter, time and value; a sale of the same lot on the
    same document; an incoming check with the same certificate from the same supplier.
    (The same file imported twice warns on every row.) The user may import them anyway."""
    if kind not in _REPEAT_COLUMNS or not models:
        return []
    keyed = [(rec, k) for rec, model in models if (k := _repeat_key(kind, model)) is not None]
    if not keyed:
        return []
    existing = _existing(session, ledger_id, kind, [m for _, m in models])
    names = [_header_of(spec, parsed, k) for k in _REPEAT_COLUMNS[kind] if k in parsed.headers]
    same_zh, same_en = "、".join(names), ", ".join(names)
    first = _REPEAT_COLUMNS[kind][0]
    column = _header_of(spec, parsed, first)
    out: list[RowError] = []
    above: dict[tuple[Any, ...], int] = {}
    for rec, key in keyed:
        row = rec.rows[0]
        if key in existing:
            seq = existing[key]
            out.append(
                RowError(
                    row,
                    column,
                    f"repeats entry {seq} (same {same_en})",
                    "repeat",
                    {"seq": seq},
                    key=first,
                    message_zh=f"与已录入的第 {seq} 条记录相同（{same_zh}相同）："
                    "可能已经导入过；确认不是重复后再导入",
                    message_en=f"repeats entry {seq} (same {same_en}): it may have been "
                    "imported already; import it only if it is not a repeat",
                )
            )
        elif key in above:
            other = above[key]
            out.append(
                RowError(
                    row,
                    column,
                    f"repeats row {other} of this file (same {same_en})",
                    "repeat_in_file",
                    {"row": other},
                    key=first,
                    message_zh=f"与本文件第 {other} 行相同（{same_zh}相同）：确认不是重复后再导入",
                    message_en=f"repeats row {other} of this file (same {same_en}): import it "
                    "only if it is not a repeat",
                )
            )
        above.setdefault(key, row)
    return out


# The rows an import builds live until written and die with its frame, before the
# collector resumes (bulk.no_cycle_collection, used as a decorator).
@no_cycle_collection()
def run_import(
    *,
    session: Session,
    ledger_id: int,
    kind: RecordKind | str,
    parsed: Parsed,
    actor: str,
    clock: Clock,
    dry_run: bool,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Append every parsed record in file order, in the caller's (write) session.

    The file is checked as a whole: a record the core refuses is reported
    against its row and column, and the records after it are still checked
    (in the ledger state the earlier rows produce). Then each refused record
    is checked again for its other problems (:func:`_probe`), so that every
    problem of every row is reported at once. With ``dry_run``, or when any
    row failed, everything is rolled back and nothing is written; otherwise
    the entries stay in the session for the caller to commit. Rows that
    repeat an entry are warned of (:func:`_repeats`), and written.
    """
    kind = known_kind(kind)
    spec = _spec(kind)
    if parsed.kind != kind:
        raise ValueError(f"the file was parsed as {parsed.kind}, not {kind}")
    result = ImportResult(
        kind, dry_run, records=len(parsed.records) + len(parsed.broken), errors=list(parsed.errors)
    )
    result.skipped = list(parsed.skipped)
    result.headers, result.preview = preview_headers(parsed), list(parsed.sample)
    whole = list(parsed.records)
    refused = list(parsed.broken)
    # Schema checks need no database: refuse those rows before taking the ledger's lock.
    # The whole file in one call to pydantic-core; if any row fails, row by row, so that
    # each problem is reported against its row.
    try:
        valid = _list_adapter(kind).validate_python([rec.data for rec in whole])
        models = list(zip(whole, valid, strict=True))
    except ValidationError:
        models = []
        for rec in whole:
            try:
                models.append((rec, validate(kind, rec.data)))
            except RecordError as exc:
                result.errors += [_locate(spec, parsed, rec, p) for p in exc.problems]
                refused.append(rec)
    repeats = _repeats(session, ledger_id, kind, spec, parsed, models)
    in_file: dict[int, int] = {}

    def on_error(rec: ParsedRecord, exc: RecordError) -> None:
        result.errors.extend(_locate(spec, parsed, rec, p, in_file) for p in exc.problems)
        refused.append(rec)

    appended = _append(
        session=session,
        ledger_id=ledger_id,
        kind=kind,
        items=models,
        actor=actor,
        clock=clock,
        keep=not dry_run and not result.errors,
        on_error=on_error,
        progress=progress,
        in_file=in_file,
    )
    result.checked = len(appended)
    for rec, done in appended:
        result.warnings += [_locate(spec, parsed, rec, w) for w in done.warnings]
    result.warnings += repeats
    if refused:  # nothing was kept: each refused record against the ledger as it was
        reported = {(e.row, e.key) for e in result.errors}
        refused.sort(key=lambda rec: rec.rows[0])
        for rec in refused[:MAX_PROBED]:
            result.errors += _probe(
                session=session,
                ledger_id=ledger_id,
                kind=kind,
                spec=spec,
                parsed=parsed,
                rec=rec,
                reported=reported,
                actor=actor,
                clock=clock,
            )
    if appended:
        result.counts[str(kind)] = len(appended)
        if spec.items:
            rows = sum(len(rec.data.get(spec.items, [])) for rec, _ in appended)
            result.counts[f"{kind}.{spec.items}"] = rows
        declared = sum(len(done.followed_by) for _, done in appended)
        if declared:
            result.counts[str(RecordKind.PUBLIC_DECLARATION)] = declared
    if appended and not dry_run and not result.errors:
        result.written = len(appended)
        result.first_seq = appended[0][1].seq
        result.last_seq = appended[-1][1].seq
    result.errors.sort(key=parsed.order)
    result.warnings.sort(key=parsed.order)
    return result


# ------------------------------------------------------------ the marked copy

ERROR_FILL = "FFC7CE"
"""The fill of a cell with an error in the marked copy (Excel's light red)."""
WARNING_FILL = "FFEB9C"
"""The fill of a cell with a warning (Excel's light yellow)."""


@dataclass(frozen=True)
class Mark:
    """A problem to mark in the copy of a file: its cell (row, header) and what to say."""

    row: int
    column: str
    text: str
    error: bool = True


_MARKED_WORDS = {
    "zh": ("导入问题", ("行", "列", "类别", "问题"), ("错误", "提醒"), "整个文件"),
    "en": (
        "Import problems",
        ("Row", "Column", "Severity", "Problem"),
        ("error", "warning"),
        "file",
    ),
}


def marked_xlsx(
    kind: RecordKind | str,
    filename: str,
    content: bytes,
    marks: Sequence[Mark],
    *,
    lang: str = "zh",
    limits: Limits | None = None,
) -> bytes:
    """A copy of an uploaded file (XLSX or CSV) as XLSX, each problem marked in its cell:
    a fill (red for an error, yellow for a warning) and a comment saying what to do; a
    second sheet lists them all. Fix the cells and upload it again: it reads as the file.

    The copy is written as the exports are (``foodtrace.sheets.set_cell``): the values
    the import read, never a formula (a formula cell of the upload gives its last value),
    so nothing in the copy runs when it is opened. Raises :class:`TooLarge` as ``parse``.
    """
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.comments import Comment
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    spec = _spec(known_kind(kind))
    try:
        table = _read_table(filename, content, limits or Limits())
    except _FileProblem:
        table = []
    try:
        header_row, header_cells = _find_header(spec, table)
    except _FileProblem:
        header_row, header_cells = table[0] if table else (1, [])
    places = {str(v).strip(): j for j, v in enumerate(header_cells) if not _blank(v)}
    width = max([len(cells) for _, cells in table] + [1])
    for j in range(width):
        places.setdefault(f"{_column_name(j)}列", j)
    at: dict[tuple[int, int], list[Mark]] = {}
    for mark in marks:
        if mark.row > 0:
            at.setdefault((mark.row, places.get(mark.column, 0)), []).append(mark)
    title, heads, severities, whole = _MARKED_WORDS.get(lang, _MARKED_WORDS["zh"])
    fills = {
        True: PatternFill("solid", fgColor=ERROR_FILL),
        False: PatternFill("solid", fgColor=WARNING_FILL),
    }
    bold = Font(bold=True)

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(spec.title_zh[:31])
    for j in range(width):
        head = header_cells[j] if j < len(header_cells) else None
        ws.column_dimensions[get_column_letter(j + 1)].width = min(
            40, max(_display_width(str(head or "")), 8) + 4
        )
    ws.freeze_panes = f"A{header_row + 1}"
    rows = dict(table)
    last = max([*rows, *(r for r, _ in at)], default=0)
    for row_no in range(1, last + 1):
        values = rows.get(row_no, [])
        wanted = max([len(values), *(j + 1 for r, j in at if r == row_no)])
        out = []
        for j in range(wanted):
            cell = WriteOnlyCell(ws)
            value = values[j] if j < len(values) else None
            if isinstance(value, datetime):
                cell.number_format = "yyyy-mm-dd hh:mm"
            set_cell(cell, value)
            if row_no == header_row:
                cell.font = bold
            found = at.get((row_no, j))
            if found:
                cell.fill = fills[any(m.error for m in found)]
                text = "\n".join(m.text for m in found)
                cell.comment = Comment(
                    text, "foodtrace", width=300, height=min(400, 60 + 40 * len(found))
                )
            out.append(cell)
        ws.append(out)

    listing = wb.create_sheet(title)
    listing.column_dimensions["A"].width = 8
    listing.column_dimensions["B"].width = 20
    listing.column_dimensions["C"].width = 10
    listing.column_dimensions["D"].width = 80
    head_cells = []
    for text in heads:
        cell = set_cell(WriteOnlyCell(listing), text, Kind.TEXT)
        cell.font = bold
        head_cells.append(cell)
    listing.append(head_cells)
    for mark in sorted(marks, key=lambda m: (m.row, places.get(m.column, -1), not m.error)):
        listing.append(
            [
                set_cell(WriteOnlyCell(listing), mark.row if mark.row else whole),
                set_cell(WriteOnlyCell(listing), mark.column, Kind.TEXT),
                set_cell(WriteOnlyCell(listing), severities[0 if mark.error else 1], Kind.TEXT),
                set_cell(WriteOnlyCell(listing), mark.text, Kind.TEXT),
            ]
        )
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _append(
    *,
    session: Session,
    ledger_id: int,
    kind: RecordKind,
    items: Sequence[tuple[ParsedRecord, Any]],
    actor: str,
    clock: Clock,
    keep: bool,
    on_error: Callable[[ParsedRecord, RecordError], None],
    progress: Callable[[int, int], None] | None,
    in_file: dict[int, int],
) -> list[tuple[ParsedRecord, Recorded]]:
    """Record ``items`` in order as one :class:`Batch` inside a SAVEPOINT, kept only if ``keep``.

    The batch checks every record in the state the records above it leave,
    builds the entries in memory and writes them with one statement per table
    (a dry run writes nothing). At the first refused record the savepoint is
    rolled back and the file goes through :func:`_append_checked`, which goes
    on past each refused row, so that every refused row is reported.
    """
    done: list[tuple[ParsedRecord, Recorded]] = []
    total = len(items)
    outer = session.begin_nested()
    try:
        with Batch(session=session, ledger_id=ledger_id, clock=clock) as batch:
            for start in range(0, total, CHUNK):
                chunk = items[start : start + CHUNK]
                models = [model for _, model in chunk]
                recorded = batch.record_many(kind=kind, models=models, actor=actor)
                done += zip((rec for rec, _ in chunk), recorded, strict=True)
                if progress is not None and len(chunk) == CHUNK:
                    progress(start + CHUNK, total)
            if not keep:
                batch.close()  # a dry run: everything was checked, nothing need be written
    except RecordError:
        outer.rollback()
        return _append_checked(
            session=session,
            ledger_id=ledger_id,
            kind=kind,
            items=items,
            actor=actor,
            clock=clock,
            keep=keep,
            on_error=on_error,
            progress=progress,
            in_file=in_file,
        )
    except BaseException:
        outer.rollback()
        raise
    if progress is not None and total and total % CHUNK:
        progress(total, total)
    if keep:
        outer.commit()
    else:
        outer.rollback()
    return done


def _append_checked(
    *,
    session: Session,
    ledger_id: int,
    kind: RecordKind,
    items: Sequence[tuple[ParsedRecord, Any]],
    actor: str,
    clock: Clock,
    keep: bool,
    on_error: Callable[[ParsedRecord, RecordError], None],
    progress: Callable[[int, int], None] | None,
    in_file: dict[int, int],
) -> list[tuple[ParsedRecord, Recorded]]:
    """Record ``items`` one by one inside one SAVEPOINT, released only if ``keep`` and all succeed.

    The path of a file with refused rows (see :func:`_append`).
    Records go in chunks of :data:`CHUNK` under a SAVEPOINT each. When one is
    refused, its chunk is rolled back, the records before it are replayed, and
    the import goes on after it; so every record is checked in the state the
    good records above it leave, at the cost of one savepoint per chunk (plus
    one per refused record) rather than one per record. On PostgreSQL each
    released savepoint is a subtransaction that stays in the transaction, and
    with thousands of them every later statement gets slower.
    """
    done: list[tuple[ParsedRecord, Recorded]] = []
    # Refused records not yet passed, largest first: a new refusal always lies
    # before the smallest pending one, because a chunk never runs past it.
    pending: list[int] = []
    refused = 0
    total = len(items)
    outer = session.begin_nested()
    try:
        pos = 0
        reported = 0
        while pos < total:
            if pending and pos == pending[-1]:
                pending.pop()
                pos += 1
                continue
            end = min(pos + CHUNK, total, pending[-1] if pending else total)
            batch: list[tuple[ParsedRecord, Recorded]] = []
            i = pos
            try:
                with session.begin_nested():
                    for i in range(pos, end):
                        rec, model = items[i]
                        recorded = record(
                            session=session,
                            ledger_id=ledger_id,
                            kind=kind,
                            data=model,
                            actor=actor,
                            clock=clock,
                            # the head row moves once per chunk, when it is released
                            defer_head=True,
                        )
                        batch.append((rec, recorded))
                        in_file[recorded.seq] = rec.rows[0]
            except RecordError as exc:
                pending.append(i)
                refused += 1
                on_error(items[i][0], exc)
                continue  # the rollback undid pos..i-1 too: replay them
            done += batch
            pos = end
            if progress is not None and (pos - reported >= CHUNK or pos == total):
                progress(pos, total)
                reported = pos
        if progress is not None and total and reported < total:
            progress(total, total)
    except BaseException:
        outer.rollback()
        raise
    if keep and not refused:
        outer.commit()
    else:
        outer.rollback()
    return done


def import_file(
    *,
    session: Session,
    ledger_id: int,
    kind: RecordKind | str,
    filename: str,
    content: bytes,
    actor: str,
    clock: Clock,
    dry_run: bool,
    progress: Callable[[int, int], None] | None = None,
    limits: Limits | None = None,
) -> ImportResult:
    """:func:`parse` then :func:`run_import`: the one call a route makes."""
    parsed = parse(kind, filename, content, limits)
    return run_import(
        session=session,
        ledger_id=ledger_id,
        kind=kind,
        parsed=parsed,
        actor=actor,
        clock=clock,
        dry_run=dry_run,
        progress=progress,
    )


def request_digest(kind: RecordKind | str, content: bytes) -> str:
    """What an import's idempotency key stands for: the record kind and the file's bytes."""
    return hashlib.sha256(
        b"foodtrace import\x00" + str(known_kind(kind)).encode() + b"\x00" + content
    ).hexdigest()


@dataclass(frozen=True)
class Answer:
    """An import's answer as the caller rendered it: its status and its bytes."""

    status: int
    body: bytes
    replayed: bool = False


def _answered(session: Session, ledger_id: int, key: str, digest: str) -> Answer | None:
    seen = session.get(ImportKey, (ledger_id, key), populate_existing=True)
    if seen is None:
        return None
    if seen.request_digest != digest:
        raise Conflict(
            f"idempotency key {key!r} was used for another file (entries "
            f"{seen.first_seq}-{seen.last_seq}); nothing was written"
        )
    return Answer(seen.status, bytes(seen.answer), replayed=True)


def import_once(
    *,
    session: Session,
    ledger_id: int,
    kind: RecordKind | str,
    filename: str,
    content: bytes,
    actor: str,
    clock: Clock,
    key: str,
    answer: Callable[[ImportResult], tuple[int, bytes]],
    progress: Callable[[int, int], None] | None = None,
    limits: Limits | None = None,
) -> Answer:
    """Import a file (not a dry run) under an idempotency key, as every other write is.

    The first import that writes anything under ``key`` stores ``answer(result)`` in
    the same transaction as its entries; the same file under the same key later gets
    that answer again (``replayed``) and writes nothing, another file :class:`Conflict`.
    An import that wrote nothing (a bad row) stores nothing: a retry checks it again.
    The key is looked up once before the file is read (a retry of a finished import
    answers at once) and again under the ledger's head lock, which the import then
    keeps: of two tries running together, the second waits and replays the first.
    """
    kind = known_kind(kind)
    digest = request_digest(kind, content)
    held = _answered(session, ledger_id, key, digest)
    if held is not None:
        return held
    parsed = parse(kind, filename, content, limits)
    lock_head(session=session, ledger_id=ledger_id)
    held = _answered(session, ledger_id, key, digest)
    if held is not None:
        return held
    result = run_import(
        session=session,
        ledger_id=ledger_id,
        kind=kind,
        parsed=parsed,
        actor=actor,
        clock=clock,
        dry_run=False,
        progress=progress,
    )
    status, body = answer(result)
    if result.written and result.first_seq is not None and result.last_seq is not None:
        session.add(
            ImportKey(
                ledger_id=ledger_id,
                key=key,
                request_digest=digest,
                status=status,
                answer=body,
                first_seq=result.first_seq,
                last_seq=result.last_seq,
                created_at=format_instant(clock.now()),
            )
        )
        session.flush()
    return Answer(status, body)


__all__ = [
    "IMPORTABLE",
    "Answer",
    "Column",
    "ImportResult",
    "Limits",
    "Mark",
    "Parsed",
    "ParsedRecord",
    "RowError",
    "columns",
    "import_file",
    "import_once",
    "marked_xlsx",
    "parse",
    "request_digest",
    "run_import",
    "template_csv",
    "template_xlsx",
    "title",
    "TooLarge",
]
