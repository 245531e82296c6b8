"""An enterprise's own records of a period, for the bureau: XLSX and PDF (issue 24, item 14).

"November's records for the bureau": every entry of the enterprise's ledger whose event
time falls in the period (a reading's measured time, a sale's date, a master record's time
of recording), one sheet per record kind, Chinese headers (the import templates' where the
kind has one), each record as it stands now (a corrected record shows its latest
correction, and says which entry corrected it and why), then the corrections themselves.
The public declarations the platform writes after a release test are left out: they
restate the release test, which is in.

Every cell goes through :mod:`foodtrace.sheets` (text is never a formula). The PDF is A4
landscape, a table per kind with its header repeated on every page, the enterprise, the
period and the page on every page; its font is a CJK font found on the machine (Debian's
fonts-noto-cjk), embedded as a subset.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from foodtrace.clock import CST
from foodtrace.ledger.models import Entry
from foodtrace.records import queries
from foodtrace.records.kinds import BY_KIND, REGISTRY, Owner
from foodtrace.records.kinds.columns import Column as ImportColumn
from foodtrace.sheets import Column, Kind, Sheet
from schemas.records import SYSTEM_KINDS, RecordKind
from schemas.types import format_instant

TITLES = {
    "enterprise": "企业登记",
    "product": "产品",
    "supplier": "供应商",
    "customer": "客户",
    "material_check": "进货查验",
    "production_lot": "生产批次",
    "ccp_record": "关键控制点监控",
    "corrective_action": "纠偏措施",
    "release_test": "出厂检验",
    "sale": "销售记录",
    "self_inspection": "自查记录",
    "recall_action": "召回措施",
    "correction": "更正记录",
}
"""Each kind's sheet (an Excel sheet's name: at most 31 characters, none of []:*?/\\)."""

HEADERS = {
    # the fields of kinds without an import template (product, recall action, enterprise)
    "code": "编码",
    "name": "名称",
    "category": "类别",
    "standard": "产品标准",
    "gtin": "商品条码",
    "specification": "规格",
    "unit": "计量单位",
    "packaging": "包装单位",
    "shelf_life_days": "保质期（天）",
    "storage": "贮存条件",
    "ccp_plan": "关键控制点计划",
    "release_items": "出厂检验项目",
    "case": "案件编号",
    "action": "措施",
    "at": "时间",
    "lot_code": "批号",
    "customer_code": "客户编码",
    "quantity": "数量",
    "method": "处置方式",
    "note": "说明",
    "open_items": "未完成事项",
    "credit_code": "统一社会信用代码",
    "kind": "类型",
    "licence_no": "许可证编号",
    "workshop_registration_no": "小作坊登记证编号",
    "region_code": "行政区划代码",
    "address": "地址",
    "contact": "联系方式",
    "legal_representative": "法定代表人",
    "inactive": "已停用",
    "corrects": "更正的记录号",
    "reason": "更正原因",
    "record": "更正后的内容",
}
PARTY_HEADERS = {
    "supplier": "供货者（名称、信用代码、地址、联系方式）",
    "buyer": "购货者（名称、信用代码、地址、联系方式）",
}
"""The master data a check or a sale copied into its entry (Art. 50, 51)."""
LEADING = (
    Column("记录号", Kind.NUMBER),
    Column("发生时间"),
    Column("录入时间"),
    Column("录入人"),
)
CORRECTED = Column("更正情况")
YES_NO = {True: "是", False: "否"}
ENUMS = {
    "kind": {"manufacturer": "食品生产企业", "workshop": "食品小作坊", "distributor": "食品经营者"},
    "action": {
        "notification": "通知客户",
        "recovery": "召回",
        "disposal": "处置",
        "completed": "召回完成",
    },
}
"""The Chinese of the values of fields that have no import column to say it."""


def day_start(day: date) -> str:
    """The instant a local (China Standard Time) day begins, as entries write it."""
    return format_instant(datetime.combine(day, datetime.min.time(), CST))


def local(instant: str) -> str:
    """An entry's instant as local time, ``YYYY-MM-DD HH:MM``."""
    when = datetime.fromisoformat(instant.replace("Z", "+00:00")).astimezone(CST)
    return when.strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class _Field:
    key: str
    header: str
    column: ImportColumn | None = None
    items: tuple[ImportColumn, ...] = ()


def _fields(kind: str) -> list[_Field]:
    """The columns of a kind's sheet, in its import template's order (a nested list's
    columns as one), then any field the template does not have."""
    spec = BY_KIND[kind]
    out: list[_Field] = []
    if spec.imports is not None:
        nested: dict[str, list[ImportColumn]] = {}
        for c in spec.imports.columns:
            if c.key == "event_time" or c.key == "credit_code_confirmed":
                continue
            if "." in c.key:
                name = c.key.split(".")[0]
                if name not in nested:
                    nested[name] = []
                    out.append(_Field(name, ""))
                nested[name].append(c)
            else:
                out.append(_Field(c.key, c.header_zh, c))
        out = [
            _Field(
                f.key, " / ".join(c.header_zh for c in nested[f.key]), None, tuple(nested[f.key])
            )
            if f.key in nested
            else f
            for f in out
        ]
    known = {f.key for f in out}
    for name in spec.schema.model_fields:
        if name in known or name in ("event_time", "credit_code_confirmed", "attachments"):
            continue
        out.append(_Field(name, HEADERS.get(name, name)))
    if spec.snapshot is not None:
        out.append(_Field(spec.snapshot.into, PARTY_HEADERS[spec.snapshot.into]))
    return out


def _text(value: Any, column: ImportColumn | None = None) -> Any:
    """A field's value as its cell shows it: a choice by its Chinese label, an instant in
    local time, a list item per line."""
    if column is not None and column.choices:
        labels = dict(column.choices)
        key = str(value).lower() if isinstance(value, bool) else str(value)
        if key in labels:
            return labels[key]
    if isinstance(value, bool):
        return YES_NO[value]
    if isinstance(value, str) and len(value) >= 20 and value[10:11] == "T" and value[4:5] == "-":
        try:
            return local(value)
        except ValueError:
            return value
    if isinstance(value, dict):
        if "parameters" in value:  # a CCP point of a product's plan
            params = "，".join(_param(p) for p in value["parameters"])
            return f"{value.get('code', '')} {value.get('name', '')}：{params}"
        return "，".join(str(_text(v)) for v in value.values() if v not in (None, ""))
    if isinstance(value, list):
        return "\n".join(str(_text(v)) for v in value)
    return value


def _param(p: dict[str, Any]) -> str:
    limits = " ".join(
        part
        for part in (
            f"≥{p['min']}" if p.get("min") is not None else "",
            f"≤{p['max']}" if p.get("max") is not None else "",
        )
        if part
    )
    every = f"，每 {p['frequency_minutes']} 分钟" if p.get("frequency_minutes") else ""
    unit = p.get("unit") or ""
    return f"{p.get('name', '')} {limits}{unit}{every}".strip() if limits else p.get("name", "")


def _cell(f: _Field, body: dict[str, Any]) -> Any:
    value = body.get(f.key)
    if value is None:
        return None
    if f.items and isinstance(value, list):
        lines = []
        for item in value:
            parts = [
                str(_text(item.get(c.key.split(".", 1)[1]), c))
                for c in f.items
                if item.get(c.key.split(".", 1)[1]) not in (None, "")
            ]
            lines.append(" ".join(parts))
        return "\n".join(lines)
    if f.column is None and f.key in ENUMS and isinstance(value, str):
        return ENUMS[f.key].get(value, value)
    if f.key == "packaging" and isinstance(value, list):
        return "；".join(f"1 {p.get('unit', '')} = {p.get('quantity', '')}" for p in value)
    if f.key == "release_items" and isinstance(value, list):
        return "\n".join(
            " ".join(str(i.get(k)) for k in ("item", "limit", "unit") if i.get(k))
            + (f"（{i['method']}）" if i.get("method") else "")
            for i in value
        )
    if f.key == "record" and isinstance(value, dict):
        return "；".join(f"{HEADERS.get(k, k)}：{_text(v)}" for k, v in value.items())
    return _text(value, f.column)


def _kind_of_column(f: _Field) -> Kind:
    if f.column is not None and f.column.type in ("decimal", "int") and not f.items:
        return Kind.NUMBER
    return Kind.TEXT


KINDS = [
    k.kind
    for k in REGISTRY
    if k.owner is Owner.ENTERPRISE and k.kind not in SYSTEM_KINDS and k.kind in TITLES
]
"""The kinds an export has a sheet for, in the registry's order (the correction last)."""
KINDS = [k for k in KINDS if k != RecordKind.CORRECTION] + [RecordKind.CORRECTION]


def own_records(*, session: Session, enterprise_id: int, since: date, until: date) -> list[Sheet]:
    """The sheets of the enterprise's records whose event time is in ``since`` .. ``until``
    (both days included, China Standard Time): a sheet per kind that has any."""
    rows = session.execute(
        select(Entry.seq, Entry.kind, Entry.event_time, Entry.recorded_at, Entry.body)
        .where(
            Entry.ledger_id == enterprise_id,
            Entry.event_time >= day_start(since),
            Entry.event_time < day_start(until + timedelta(days=1)),
        )
        .order_by(Entry.seq)
    ).all()
    fixes = queries.corrections_of(
        session=session,
        enterprise_id=enterprise_id,
        seqs=[r.seq for r in rows if r.kind != RecordKind.CORRECTION],
    )
    latest = {seq: found[-1] for seq, found in fixes.items()}
    fix_bodies: dict[int, dict[str, Any]] = {}
    if latest:
        for seq, body in session.execute(
            select(Entry.seq, Entry.body).where(
                Entry.ledger_id == enterprise_id, Entry.seq.in_(sorted(latest.values()))
            )
        ):
            fix_bodies[seq] = json.loads(body)
    by_kind: dict[str, list[list[Any]]] = {}
    fields = {k: _fields(k) for k in KINDS}
    names = _plan_names(session, enterprise_id)
    for r in rows:
        if r.kind not in fields:
            continue
        env = json.loads(r.body)
        body = env["body"]
        note = None
        if r.seq in latest:
            fix = fix_bodies[latest[r.seq]]
            body = fix["body"]["record"]
            count = len(fixes[r.seq])
            note = f"已更正 {count} 次，现为第 {latest[r.seq]} 条所记：{fix['body']['reason']}"
        line = [r.seq, local(r.event_time), local(r.recorded_at), env.get("actor")]
        line += [_cell(f, body) for f in fields[r.kind]]
        if r.kind == RecordKind.CCP_RECORD:
            point, param = names.get(
                (body.get("lot_code"), body.get("ccp"), body.get("parameter")), ("", "")
            )
            for i, f in enumerate(fields[r.kind]):
                if f.key == "ccp" and point:
                    line[len(LEADING) + i] = f"{body['ccp']} {point}"
                elif f.key == "parameter" and param:
                    line[len(LEADING) + i] = param
        if r.kind != RecordKind.CORRECTION:
            line.append(note)
        by_kind.setdefault(r.kind, []).append(line)
    sheets = []
    for kind in KINDS:
        if kind not in by_kind:
            continue
        cols = [*LEADING, *(Column(f.header, _kind_of_column(f)) for f in fields[kind])]
        if kind != RecordKind.CORRECTION:
            cols.append(CORRECTED)
        sheets.append(Sheet(TITLES[kind], cols, by_kind[kind]))
    return sheets


def _plan_names(
    session: Session, enterprise_id: int
) -> dict[tuple[Any, Any, Any], tuple[str, str]]:
    """(lot code, CCP code, parameter code) -> the CCP's and the parameter's names in the plan
    of the lot's product: a reading names them by code, the sheet by what the plan calls them."""
    products = {
        p["record_seq"]: p["data"]
        for p in queries.list_rows(session=session, enterprise_id=enterprise_id, table="products")
    }
    out: dict[tuple[Any, Any, Any], tuple[str, str]] = {}
    for lot in queries.list_rows(session=session, enterprise_id=enterprise_id, table="lots"):
        for point in products.get(lot["product_seq"], {}).get("ccp_plan", []):
            for param in point.get("parameters", []):
                out[(lot["code"], point["code"], param["code"])] = (point["name"], param["name"])
    return out


def summary_sheet(
    sheets: Sequence[Sheet], *, name: str, credit_code: str, since: date, until: date, now: str
) -> Sheet:
    """The workbook's first sheet: whose records, of which period, how many of each kind."""
    rows: list[list[Any]] = [
        ["企业名称", name],
        ["统一社会信用代码", credit_code],
        ["期间", f"{since.isoformat()} 至 {until.isoformat()}"],
        ["导出时间", local(now)],
        ["说明", "期间内发生的全部记录，每类一页；已更正的记录显示更正后的内容并注明更正情况"],
    ]
    rows += [[s.title, f"{len(s.rows)} 条"] for s in sheets]
    if not sheets:
        rows.append(["记录", "该期间没有记录"])
    return Sheet("概要", [Column("项目"), Column("内容")], rows)


# -------------------------------------------------------------------------------- PDF


FONT_DIRS = (Path("/usr/share/fonts/opentype/noto"), Path("/usr/share/fonts"))
FONT_NAMES = ("NotoSansCJK-Regular.ttc", "NotoSansCJKsc-Regular.otf", "NotoSansSC-Regular.otf")


class NoCjkFont(RuntimeError):
    """No font that has Chinese characters is installed (Debian: fonts-noto-cjk)."""


@lru_cache(maxsize=1)
def cjk_font() -> tuple[str, int]:
    """The CJK font the PDF embeds: its file and, in a collection, the Simplified Chinese
    face's number."""
    for folder in FONT_DIRS:
        for name in FONT_NAMES:
            found = sorted(folder.rglob(name)) if folder.exists() else []
            for path in found:
                if path.suffix != ".ttc":
                    return str(path), 0
                # fontTools (fpdf2's font library) has no type information: read it as Any
                ttlib: Any = importlib.import_module("fontTools.ttLib")
                faces = ttlib.TTCollection(str(path), lazy=True).fonts
                for i, face in enumerate(faces):
                    full = str(face["name"].getDebugName(4) or "")
                    if full.endswith(" SC") and "Mono" not in full:
                        return str(path), i
                return str(path), 0
    raise NoCjkFont("no CJK font installed (apt-get install fonts-noto-cjk)")


def _pdf_text(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    return text if len(text) <= 400 else text[:400] + "…"


def records_pdf(
    sheets: Iterable[Sheet], *, name: str, credit_code: str, since: date, until: date, now: str
) -> bytes:
    """The sheets as an A4 landscape PDF: a title page's lines, then a table per kind."""
    from fpdf import FPDF

    font, number = cjk_font()
    period = f"{since.isoformat()} 至 {until.isoformat()}"

    class Doc(FPDF):
        def header(self) -> None:
            self.set_font("cjk", size=8)
            self.set_text_color(90)
            self.cell(0, 5, f"{name}（{credit_code}） · 记录 {period}", align="L")
            self.ln(7)
            self.set_text_color(0)

        def footer(self) -> None:
            self.set_y(-10)
            self.set_font("cjk", size=8)
            self.set_text_color(90)
            self.cell(
                0, 5, f"导出时间 {local(now)} · 第 {self.page_no()} 页，共 {{nb}} 页", align="C"
            )

    pdf = Doc(orientation="L", unit="mm", format="A4")
    pdf.set_title(f"{name} 记录 {period}")
    pdf.set_creator("foodtrace")
    pdf.add_font("cjk", "", font, collection_font_number=number)
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.set_margins(10, 8, 10)
    pdf.add_page()
    pdf.set_font("cjk", size=16)
    pdf.cell(0, 10, f"{name} 记录", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=10)
    sheets = list(sheets)
    for label, value in (
        ("统一社会信用代码", credit_code),
        ("期间", period),
        ("导出时间", local(now)),
        *((s.title, f"{len(s.rows)} 条") for s in sheets),
    ):
        pdf.cell(45, 6, label)
        pdf.cell(0, 6, value, new_x="LMARGIN", new_y="NEXT")
    if not sheets:
        pdf.cell(0, 8, "该期间没有记录", new_x="LMARGIN", new_y="NEXT")
    for sheet in sheets:
        pdf.add_page()
        pdf.set_font("cjk", size=12)
        pdf.cell(0, 8, f"{sheet.title}（{len(sheet.rows)} 条）", new_x="LMARGIN", new_y="NEXT")
        _table(pdf, sheet)
    return bytes(pdf.output())


FONT_SIZE = 6.5
LINE = 3.0
PAD = 0.8


def _table(pdf: Any, sheet: Sheet) -> None:
    """A table of the sheet, its header row repeated on every page. Cells are wrapped here
    by the glyphs' widths (each measured once), not by fpdf's line breaker: a month of
    readings is thousands of cells."""
    pdf.set_font("cjk", size=FONT_SIZE)
    usable = pdf.w - pdf.l_margin - pdf.r_margin
    weights = _widths(sheet)
    widths = [usable * w / sum(weights) for w in weights]
    measured: dict[str, float] = {}

    def width(ch: str) -> float:
        found = measured.get(ch)
        if found is None:
            found = measured[ch] = pdf.get_string_width(ch)
        return found

    def wrap(text: str, room: float) -> list[str]:
        lines: list[str] = []
        for para in text.split("\n"):
            line, used = "", 0.0
            for ch in para:
                w = width(ch)
                if used + w > room and line:
                    lines.append(line)
                    line, used = "", 0.0
                line += ch
                used += w
            lines.append(line)
        return lines

    def draw(cells: list[list[str]], fill: bool) -> None:
        height = max(len(c) for c in cells) * LINE + 2 * PAD
        if pdf.get_y() + height > pdf.h - pdf.b_margin:
            pdf.add_page()
            if not fill:
                draw(header, True)
        x, y = pdf.l_margin, pdf.get_y()
        for lines, w in zip(cells, widths, strict=True):
            if fill:
                pdf.set_fill_color(226, 232, 240)
            pdf.rect(x, y, w, height, style="DF" if fill else "D")
            for n, text in enumerate(lines):
                pdf.text(x + PAD, y + PAD + (n + 1) * LINE - 0.7, text)
            x += w
        pdf.set_y(y + height)

    pdf.set_draw_color(180)
    header = [wrap(c.header, w - 2 * PAD) for c, w in zip(sheet.columns, widths, strict=True)]
    draw(header, True)
    for row in sheet.rows:
        draw([wrap(_pdf_text(v), w - 2 * PAD) for v, w in zip(row, widths, strict=True)], False)


def _units(text: str) -> float:
    """A text's width in half-width characters (a Chinese character is two)."""
    return sum(2.0 if ord(ch) >= 0x2E80 else 1.1 for ch in text)


def _widths(sheet: Sheet) -> tuple[float, ...]:
    """Column weights by what they hold: the widest of a sample of values (a long text
    counts as 40 characters, so that it wraps) and the header (up to 8, so that it wraps
    rather than widen a column of numbers)."""
    sample = sheet.rows[:200]
    out = []
    for i, col in enumerate(sheet.columns):
        widest = max(
            [
                min(_units(col.header), 8.0),
                *(min(max(map(_units, _pdf_text(r[i]).split("\n"))), 40.0) for r in sample),
            ]
        )
        out.append(max(4.0, widest) + 2.0)  # and the padding
    return tuple(out)
