"""Form specifications for every record kind, and turning posted forms into records.

A spec is a list of fields (and of repeated rows, for a lot's materials or a
test's items). The same spec renders the form, parses the post, and places the
core's problems next to the field they concern. Labels are English message
ids, translated by the templates. Choices come from the enterprise's master
data, so the CCP form offers the lot's plan parameters with their limits and
the production form offers accepted material lots with what remains of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlmodel import Session

from foodtrace.clock import CST
from foodtrace.records.projection import DbStore, dec, dec_str
from schemas.records import RecordKind


@dataclass
class Field:
    name: str
    label: str
    widget: str = "text"  # text date datetime decimal int select textarea check file hidden
    required: bool = True
    choices: list[tuple[str, str]] | None = None
    hint: str | None = None
    translate_choices: bool = False
    readonly: bool = False


@dataclass
class Rows:
    name: str
    label: str
    fields: list[Field]
    count: int
    hint: str | None = None


@dataclass
class Spec:
    kind: RecordKind
    title: str
    items: list[Field | Rows] = field(default_factory=list)
    multipart: bool = False


def _local_now(now: datetime) -> str:
    return now.astimezone(CST).strftime("%Y-%m-%dT%H:%M")


YES_NO = [("true", "Yes"), ("false", "No")]
MATERIAL_TYPES = [
    ("raw_material", "Raw material"),
    ("food_additive", "Food additive"),
    ("food_related_product", "Food-related product"),
]
PERIODS = [("daily", "Daily check"), ("weekly", "Weekly review"), ("monthly", "Monthly report")]
CHECKLISTS = {
    "daily": [
        "Staff health and hygiene",
        "Raw material storage",
        "Production area hygiene",
        "CCP monitoring records complete",
        "Equipment cleaning and disinfection",
        "Finished goods storage",
    ],
    "weekly": [
        "Food safety risks reviewed",
        "Supplier qualifications current",
        "Deviations and corrective actions reviewed",
        "Pest control",
    ],
    "monthly": [
        "Food safety management summary",
        "Self-inspection problems rectified",
        "Release testing and recalls reviewed",
        "Training and staff health certificates",
    ],
}


class Options:
    """Choices drawn from the enterprise's master data and records."""

    def __init__(self, session: Session, enterprise_id: int) -> None:
        self.store = DbStore(session, enterprise_id)

    def suppliers(self) -> list[tuple[str, str]]:
        return [(s["code"], f"{s['name']} ({s['code']})") for s in self.store.find("suppliers")]

    def customers(self) -> list[tuple[str, str]]:
        return [(c["code"], f"{c['name']} ({c['code']})") for c in self.store.find("customers")]

    def products(self) -> list[tuple[str, str]]:
        return [(p["code"], f"{p['name']} ({p['code']})") for p in self.store.find("products")]

    def product(self, code: str) -> dict[str, Any] | None:
        found = self.store.find("products", code=code)
        return json.loads(found[0]["data"]) if found else None

    def lots(self, limit: int = 60) -> list[tuple[str, str]]:
        lots = sorted(
            self.store.find("lots"),
            key=lambda x: (x["production_date"], x["record_seq"]),
            reverse=True,
        )[:limit]
        names = {p["record_seq"]: p["name"] for p in self.store.find("products")}
        return [
            (x["code"], f"{x['code']} · {names.get(x['product_seq'], '')} · {x['production_date']}")
            for x in lots
        ]

    def lot(self, code: str) -> dict[str, Any] | None:
        found = self.store.find("lots", code=code)
        return found[0] if found else None

    def lot_product(self, lot_code: str) -> dict[str, Any] | None:
        lot = self.lot(lot_code)
        if lot is None:
            return None
        return json.loads(self.store.find("products", record_seq=lot["product_seq"])[0]["data"])

    def lot_units(self, lot_code: str) -> list[tuple[str, str]]:
        product = self.lot_product(lot_code)
        if not product:
            return []
        return [(product["unit"], product["unit"])] + [
            (p["unit"], f"{p['unit']} (= {p['quantity']} {product['unit']})")
            for p in product.get("packaging", [])
        ]

    def released(self, lot_code: str) -> bool:
        lot = self.lot(lot_code)
        return bool(lot) and any(
            t["conclusion"] == "pass"
            for t in self.store.find("release_tests", lot_seq=lot["record_seq"])
        )

    def material_lots(self) -> list[tuple[str, str]]:
        out = []
        for ml in sorted(
            self.store.find("material_lots", accepted=True),
            key=lambda x: x["record_seq"],
            reverse=True,
        ):
            used = sum(
                (
                    dec(e["quantity"])
                    for e in self.store.find("lot_inputs", material_lot_seq=ml["record_seq"])
                ),
                Decimal(0),
            )
            left = dec(ml["quantity"]) - used
            if left <= 0:
                continue
            out.append(
                (ml["code"], f"{ml['code']} · {ml['material_name']} · {dec_str(left)} {ml['unit']}")
            )
        return out

    def material_unit(self, code: str) -> str | None:
        found = self.store.find("material_lots", code=code)
        return found[0]["unit"] if found else None

    def plan_points(self, lot_code: str) -> list[tuple[str, str]]:
        product = self.lot_product(lot_code)
        if not product:
            return []
        out = []
        for point in product.get("ccp_plan", []):
            for p in point["parameters"]:
                out.append(
                    (
                        f"{point['code']}/{p['code']}",
                        f"{point['code']} {point['name']} · {p['name']} {limits_text(p)}",
                    )
                )
        return out

    def plan_parameter(self, lot_code: str, point: str) -> dict[str, Any] | None:
        product = self.lot_product(lot_code)
        if not product or "/" not in point:
            return None
        ccp, param = point.split("/", 1)
        for pt in product.get("ccp_plan", []):
            if pt["code"] == ccp:
                return next((p for p in pt["parameters"] if p["code"] == param), None)
        return None

    def open_deviations(self) -> list[tuple[str, str]]:
        closed = {a["reading_seq"] for a in self.store.find("corrective_actions")}
        lots = {x["record_seq"]: x["code"] for x in self.store.find("lots")}
        return [
            (
                str(r["record_seq"]),
                f"#{r['record_seq']} · {lots.get(r['lot_seq'], '')} · "
                f"{r['ccp']} {r['parameter']} = {r['value'] or r['result']} {r['unit'] or ''}",
            )
            for r in self.store.find("ccp_readings", deviation=True)
            if not r["corrective_action"] and r["record_seq"] not in closed
        ]


def limits_text(p: dict[str, Any]) -> str:
    if p.get("kind") == "pass_fail":
        return "(pass/fail)"
    parts = []
    if p.get("min") is not None:
        parts.append(f"≥ {p['min']}")
    if p.get("max") is not None:
        parts.append(f"≤ {p['max']}")
    return f"({' '.join(parts)} {p.get('unit', '')})".replace(" )", ")")


def deviates(p: dict[str, Any], value: str | None, result: str | None) -> bool:
    """Whether a reading lies outside the parameter's critical limits."""
    if p.get("kind") == "pass_fail":
        return result == "fail"
    try:
        v = Decimal(value or "")
    except ArithmeticError:
        return False
    return (p.get("min") is not None and v < Decimal(p["min"])) or (
        p.get("max") is not None and v > Decimal(p["max"])
    )


def spec_for(kind: RecordKind, opts: Options, values: dict[str, str], now: datetime) -> Spec:
    """The form of one record kind; ``values`` are what the user chose so far (e.g. the lot)."""
    K = RecordKind
    lot = values.get("lot_code", "")
    if kind is K.SUPPLIER or kind is K.CUSTOMER:
        items: list[Field | Rows] = [
            Field("code", "Code", hint="Your own short code, e.g. SUGAR01"),
            Field("name", "Name"),
            Field(
                "credit_code",
                "Unified social credit code",
                required=False,
                hint="Required when it is a registered enterprise",
            ),
        ]
        if kind is K.SUPPLIER:
            items.append(Field("licence_no", "Licence number", required=False))
        items += [Field("address", "Address"), Field("contact", "Contact (person and phone)")]
        return Spec(kind, "Supplier" if kind is K.SUPPLIER else "Customer", items)
    if kind is K.MATERIAL_CHECK:
        return Spec(
            kind,
            "Incoming material check",
            [
                Field("supplier_code", "Supplier", "select", choices=opts.suppliers()),
                Field("material_name", "Material name"),
                Field(
                    "material_type",
                    "Material type",
                    "select",
                    choices=MATERIAL_TYPES,
                    translate_choices=True,
                ),
                Field("specification", "Specification", hint="e.g. 50 kg/bag"),
                Field("quantity", "Quantity", "decimal"),
                Field("unit", "Unit", hint="e.g. kg"),
                Field("batch_no", "Supplier's batch number", required=False),
                Field("production_date", "Production date", "date", required=False),
                Field("shelf_life", "Shelf life", hint="e.g. 24 months"),
                Field("receipt_date", "Receipt date", "date"),
                Field(
                    "material_lot",
                    "Our material lot code",
                    hint="The code you write on the received goods",
                ),
                Field(
                    "supplier_licence_checked", "Supplier licence checked", "check", required=False
                ),
                Field("supplier_licence_no", "Supplier licence number", required=False),
                Field("certificate_no", "Certificate or inspection report number"),
                Field(
                    "accepted",
                    "Acceptance result",
                    "select",
                    choices=[("true", "Accepted"), ("false", "Rejected")],
                    translate_choices=True,
                ),
                Field("inspector", "Inspector"),
                Field(
                    "attachments",
                    "Certificate or report scans",
                    "file",
                    required=False,
                    hint="PDF or photo",
                ),
                Field("notes", "Notes", "textarea", required=False),
            ],
            multipart=True,
        )
    if kind is K.PRODUCTION_LOT:
        return Spec(
            kind,
            "Production lot",
            [
                Field("product_code", "Product", "select", choices=opts.products()),
                Field("lot_code", "Lot code"),
                Field("production_date", "Production date", "date"),
                Field("started_at", "Production started", "datetime"),
                Field("ended_at", "Production ended", "datetime"),
                Field("quantity", "Quantity produced", "decimal"),
                Field("unit", "Unit", hint="The product's unit or a declared packaging unit"),
                Rows(
                    "materials",
                    "Materials used",
                    [
                        Field(
                            "material_lot", "Material lot", "select", choices=opts.material_lots()
                        ),
                        Field("quantity", "Quantity used", "decimal"),
                    ],
                    count=5,
                    hint="Accepted material lots, with what remains of each",
                ),
                Field("notes", "Notes", "textarea", required=False),
            ],
        )
    if kind is K.CCP_RECORD:
        point = values.get("point", "")
        param = opts.plan_parameter(lot, point) if lot else None
        items = [
            Field("lot_code", "Lot", "select", choices=opts.lots()),
            Field(
                "point",
                "CCP and parameter",
                "select",
                choices=opts.plan_points(lot) if lot else [],
                hint="Choose the lot first: its product's CCP plan is offered here",
            ),
        ]
        if param is None or param.get("kind") != "pass_fail":
            items += [
                Field(
                    "value",
                    "Measured value",
                    "decimal",
                    required=False,
                    hint=limits_text(param) if param else None,
                )
            ]
        if param is None or param.get("kind") == "pass_fail":
            items += [
                Field(
                    "result",
                    "Result",
                    "select",
                    required=False,
                    choices=[("pass", "Pass"), ("fail", "Fail")],
                    translate_choices=True,
                )
            ]
        items += [
            Field("measured_at", "Measured at", "datetime"),
            Field("operator", "Operator"),
            Field(
                "corrective_action",
                "Corrective action",
                "textarea",
                required=False,
                hint="Required when the reading is outside its critical limits",
            ),
        ]
        return Spec(kind, "CCP reading", items)
    if kind is K.CORRECTIVE_ACTION:
        return Spec(
            kind,
            "Corrective action",
            [
                Field("reading_seq", "Open deviation", "select", choices=opts.open_deviations()),
                Field("action", "What was done", "textarea"),
                Field("taken_at", "Done at", "datetime"),
                Field("operator", "Operator"),
            ],
        )
    if kind is K.RELEASE_TEST:
        product = opts.lot_product(lot) if lot else None
        n = max(4, len(product["release_items"]) if product else 0)
        return Spec(
            kind,
            "Release test",
            [
                Field("lot_code", "Lot", "select", choices=opts.lots()),
                Field("tested_at", "Tested at", "datetime"),
                Rows(
                    "items",
                    "Test items",
                    [
                        Field("item", "Item"),
                        Field("limit", "Limit"),
                        Field("unit", "Unit", required=False),
                        Field("result", "Result"),
                        Field("passed", "Passed", "select", choices=YES_NO, translate_choices=True),
                    ],
                    count=n,
                ),
                Field(
                    "conclusion",
                    "Conclusion",
                    "select",
                    choices=[("pass", "Pass"), ("fail", "Fail")],
                    translate_choices=True,
                ),
                Field("inspector", "Inspector"),
                Field("report_no", "Report number"),
                Field("attachments", "Report scans", "file", required=False, hint="PDF or photo"),
            ],
            multipart=True,
        )
    if kind is K.SALE:
        return Spec(
            kind,
            "Sale",
            [
                Field("lot_code", "Lot", "select", choices=opts.lots()),
                Field("quantity", "Quantity", "decimal"),
                Field(
                    "unit",
                    "Unit",
                    "select" if lot else "text",
                    choices=opts.lot_units(lot) if lot else None,
                ),
                Field("sale_date", "Sale date", "date"),
                Field("customer_code", "Buyer", "select", choices=opts.customers()),
                Field("document_no", "Delivery note or invoice number", required=False),
                Field("notes", "Notes", "textarea", required=False),
            ],
        )
    if kind is K.SELF_INSPECTION:
        period = values.get("period") or "daily"
        checklist = CHECKLISTS.get(period, CHECKLISTS["daily"])
        return Spec(
            kind,
            "Self-inspection",
            [
                Field("period", "Kind", "select", choices=PERIODS, translate_choices=True),
                Field(
                    "period_date",
                    "Date",
                    "date",
                    hint="The day, the week's Monday or the month's 1st",
                ),
                Rows(
                    "items",
                    "Checklist",
                    [
                        Field("item", "Item", readonly=True),
                        Field(
                            "result",
                            "Result",
                            "select",
                            translate_choices=True,
                            choices=[
                                ("ok", "OK"),
                                ("problem", "Problem"),
                                ("not_applicable", "Not applicable"),
                            ],
                        ),
                        Field("note", "Note", required=False),
                    ],
                    count=len(checklist),
                ),
                Field("problems", "Problems found", "textarea", required=False),
                Field("rectification", "Rectification", "textarea", required=False),
                Field("inspector", "Inspector"),
            ],
        )
    if kind is K.PRODUCT:
        return Spec(
            kind,
            "Product",
            [
                Field("code", "Code"),
                Field("name", "Name"),
                Field("category", "Category"),
                Field("standard", "Product standard", required=False, hint="e.g. GB 7101"),
                Field("gtin", "Barcode (GTIN)", required=False),
                Field("specification", "Specification", hint="e.g. 500 mL/bottle"),
                Field("unit", "Base unit", hint="e.g. bottle"),
                Rows(
                    "packaging",
                    "Packaging units",
                    [
                        Field("unit", "Packaging unit", hint="e.g. case"),
                        Field("quantity", "Base units in one", "decimal"),
                    ],
                    count=2,
                ),
                Field("shelf_life_days", "Shelf life (days)", "int", required=False),
                Field("storage", "Storage conditions", required=False),
                Rows(
                    "ccp",
                    "CCP plan (one row per monitored parameter)",
                    [
                        Field("point", "CCP code", hint="e.g. CCP1"),
                        Field("point_name", "CCP name"),
                        Field("code", "Parameter code", hint="e.g. temperature"),
                        Field("name", "Parameter name"),
                        Field(
                            "kind",
                            "Kind",
                            "select",
                            translate_choices=True,
                            choices=[("numeric", "Measured value"), ("pass_fail", "Pass/fail")],
                        ),
                        Field("unit", "Unit", required=False),
                        Field("min", "Minimum", "decimal", required=False),
                        Field("max", "Maximum", "decimal", required=False),
                        Field(
                            "frequency_minutes",
                            "Every (minutes)",
                            "int",
                            required=False,
                            hint="Empty: once per lot",
                        ),
                    ],
                    count=6,
                ),
                Rows(
                    "release_items",
                    "Release-test items",
                    [
                        Field("item", "Item"),
                        Field("limit", "Limit"),
                        Field("unit", "Unit", required=False),
                        Field("method", "Method", required=False),
                    ],
                    count=6,
                ),
            ],
        )
    raise ValueError(kind)


def prefill(
    kind: RecordKind, opts: Options, values: dict[str, str], now: datetime, display_name: str
) -> dict[str, str]:
    """Sensible starting values: today, now, the user's name, the lot's test items."""
    out: dict[str, str] = {}
    today = now.astimezone(CST).date().isoformat()
    local_now = _local_now(now)
    for name in ("receipt_date", "production_date", "sale_date", "period_date"):
        out[name] = today
    for name in ("measured_at", "tested_at", "taken_at", "started_at", "ended_at"):
        out[name] = local_now
    for name in ("inspector", "operator"):
        out[name] = display_name
    out["accepted"] = "true"
    if kind is RecordKind.RELEASE_TEST and values.get("lot_code"):
        product = opts.lot_product(values["lot_code"])
        for i, item in enumerate((product or {}).get("release_items", [])):
            out[f"items.{i}.item"] = item["item"]
            out[f"items.{i}.limit"] = item["limit"]
            out[f"items.{i}.unit"] = item.get("unit") or ""
            out[f"items.{i}.passed"] = "true"
        out["conclusion"] = "pass"
    if kind is RecordKind.SELF_INSPECTION:
        period = values.get("period") or "daily"
        for i, item in enumerate(CHECKLISTS.get(period, CHECKLISTS["daily"])):
            out[f"items.{i}.item"] = item
            out[f"items.{i}.result"] = "ok"
    if kind is RecordKind.PRODUCT:
        for i in range(6):
            out[f"ccp.{i}.kind"] = "numeric"
    return {**out, **{k: v for k, v in values.items() if v != ""}}


def _datetime(value: str) -> str:
    """A datetime-local input (China Standard Time) as RFC 3339."""
    if len(value) == 16:
        value += ":00"
    if "+" in value[10:] or value.endswith("Z"):
        return value
    return value + "+08:00"


def parse(
    spec: Spec, form: dict[str, str], opts: Options
) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """The record a posted form describes, and each row list's form row numbers."""
    data: dict[str, Any] = {}
    rows_map: dict[str, list[int]] = {}

    def value(f: Field, key: str) -> Any:
        raw = (form.get(key) or "").strip()
        if f.widget == "check":
            return raw in ("on", "true", "1")
        if raw == "":
            return None
        if f.widget == "datetime":
            return _datetime(raw)
        if f.widget == "int":
            return int(raw) if raw.isdigit() else raw
        if f.widget == "select" and f.choices == YES_NO or f.name == "accepted":
            return raw == "true"
        return raw

    for item in spec.items:
        if isinstance(item, Rows):
            rows, used = [], []
            for i in range(item.count):
                row = {f.name: value(f, f"{item.name}.{i}.{f.name}") for f in item.fields}
                meaningful = {
                    k: v
                    for k, v in row.items()
                    if v is not None
                    and not (
                        item.name in ("items",)
                        and k in ("item", "limit", "unit", "passed", "result")
                        and spec.kind is RecordKind.RELEASE_TEST
                        and not form.get(f"items.{i}.result")
                    )
                }
                if spec.kind is RecordKind.SELF_INSPECTION:
                    meaningful = row if row.get("item") else {}
                if spec.kind is RecordKind.PRODUCT and item.name == "ccp":
                    meaningful = row if row.get("point") or row.get("code") else {}
                if not any(v not in (None, False) for v in meaningful.values()):
                    continue
                rows.append({k: v for k, v in row.items() if v is not None})
                used.append(i)
            data[item.name] = rows
            rows_map[item.name] = used
        elif item.widget != "file":
            v = value(item, item.name)
            if v is not None:
                data[item.name] = v
    kind = spec.kind
    if kind is RecordKind.CCP_RECORD:
        point = data.pop("point", "")
        if "/" in point:
            data["ccp"], data["parameter"] = point.split("/", 1)
            param = opts.plan_parameter(data.get("lot_code", ""), point)
            if param and param.get("unit") and "value" in data:
                data["unit"] = param["unit"]
        else:
            data["ccp"] = data["parameter"] = ""
    if kind is RecordKind.PRODUCTION_LOT:
        for use in data.get("materials", []):
            use["unit"] = opts.material_unit(use.get("material_lot", "")) or ""
    if kind is RecordKind.CORRECTIVE_ACTION and str(data.get("reading_seq", "")).isdigit():
        data["reading_seq"] = int(data["reading_seq"])
    if kind is RecordKind.PRODUCT:
        plan: dict[str, dict[str, Any]] = {}
        for row in data.pop("ccp", []):
            point = plan.setdefault(
                row.get("point", ""),
                {"code": row.get("point", ""), "name": row.get("point_name", ""), "parameters": []},
            )
            param = {
                k: row[k]
                for k in ("code", "name", "kind", "unit", "min", "max", "frequency_minutes")
                if k in row
            }
            point["parameters"].append(param)
        data["ccp_plan"] = list(plan.values())
        rows_map["ccp_plan"] = rows_map.pop("ccp", [])
    return data, rows_map


def flatten(kind: RecordKind, body: dict[str, Any]) -> dict[str, str]:
    """A stored record as form values, for a correction form."""
    out: dict[str, str] = {}
    for k, v in body.items():
        if isinstance(v, list):
            for i, row in enumerate(v):
                if isinstance(row, dict):
                    for rk, rv in row.items():
                        out[f"{k}.{i}.{rk}"] = _text(rv)
        elif not isinstance(v, dict):
            out[k] = _text(v)
    if kind is RecordKind.CCP_RECORD:
        out["point"] = f"{body.get('ccp')}/{body.get('parameter')}"
    for key in ("measured_at", "tested_at", "taken_at", "started_at", "ended_at"):
        if key in body:
            out[key] = (
                datetime.fromisoformat(body[key].replace("Z", "+00:00"))
                .astimezone(CST)
                .strftime("%Y-%m-%dT%H:%M")
            )
    if kind is RecordKind.PRODUCT:
        i = 0
        for point in body.get("ccp_plan", []):
            for p in point["parameters"]:
                out.update({f"ccp.{i}.point": point["code"], f"ccp.{i}.point_name": point["name"]})
                out.update({f"ccp.{i}.{k}": _text(v) for k, v in p.items()})
                i += 1
    return out


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return "" if v is None else str(v)


def field_key(loc: list[str], rows_map: dict[str, list[int]]) -> str:
    """The form field a problem's location points at (row numbers as on the form)."""
    loc = [str(x) for x in loc]
    if loc and loc[0] == "record":
        loc = loc[1:]
    if loc and loc[0] == "ccp" or loc and loc[0] == "parameter":
        return "point"
    if loc and loc[0] == "ccp_plan":
        return "ccp"
    if len(loc) >= 2 and loc[0] in rows_map and loc[1].isdigit():
        used = rows_map[loc[0]]
        n = int(loc[1])
        if n < len(used):
            loc[1] = str(used[n])
    return ".".join(loc)
