"""A kind's spreadsheet: its columns, as its import template shows them and an import reads
them (``foodtrace.imports``)."""

from __future__ import annotations

from dataclasses import dataclass

TEXT, CODE, DECIMAL, INT, DATE, INSTANT, BOOL, ENUM, DECIMALS = (
    "text",
    "code",
    "decimal",
    "int",
    "date",
    "instant",
    "bool",
    "enum",
    "decimals",
)


@dataclass(frozen=True)
class Column:
    """One spreadsheet column: the record field it fills and how a user should write it.

    ``key`` is the field of the record, dotted for a field of a nested list
    item (``materials.quantity``: one material per row). ``type`` says how a
    cell is read; ``choices`` are ``(value, label)`` pairs for enumerations and
    yes/no fields, the label being what the template's dropdown offers.
    """

    key: str
    header_zh: str
    header_en: str
    required: bool
    example: str
    note_zh: str = ""
    type: str = TEXT
    choices: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ImportSpec:
    title_zh: str
    columns: tuple[Column, ...]
    group_by: tuple[str, ...] = ()
    """For nested kinds: consecutive rows with the same values here form one record."""
    items: str = ""
    """For nested kinds: the list field each row adds one item to."""


def col(
    key: str,
    zh: str,
    en: str,
    example: str,
    note: str = "",
    *,
    req: bool = True,
    type: str = TEXT,  # noqa: A002
    choices: tuple[tuple[str, str], ...] = (),
) -> Column:
    return Column(key, zh, en, req, example, note, type, choices)


YES_NO = (("true", "是"), ("false", "否"))
OK_NG = (("true", "合格"), ("false", "不合格"))
PASS_FAIL = (("pass", "合格"), ("fail", "不合格"))

EVENT_TIME = col(
    "event_time",
    "发生时间",
    "Event time",
    "",
    "可不填；不填则为导入时间。北京时间 YYYY-MM-DD HH:MM",
    req=False,
    type=INSTANT,
)
CREDIT = (
    col(
        "credit_code",
        "统一社会信用代码",
        "Credit code",
        "91370404MA3793PC3E",
        "18位；对方为登记注册的企业时必填",
        req=False,
        type=CODE,
    ),
    col(
        "credit_code_confirmed",
        "信用代码已核实",
        "Credit code confirmed",
        "否",
        "早期代码校验位不符时，核实无误后填“是”",
        req=False,
        type=BOOL,
        choices=YES_NO,
    ),
)
