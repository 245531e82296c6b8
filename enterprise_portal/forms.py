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
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from types import UnionType
from typing import Any
from urllib.parse import urlencode

from sqlmodel import Session

from foodtrace.clock import CST
from foodtrace.records.derive import dec, dec_str, instant
from foodtrace.records.kinds import REGISTRY, KindSpec
from foodtrace.records.kinds.release_test import released
from foodtrace.records.obligations import expected_readings
from foodtrace.records.projection import DbStore
from schemas.records import RecordKind
from web.i18n import N_


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
    hint_args: dict[str, Any] | None = None
    """Values for a translated hint's placeholders (the hint is then a catalogue id)."""
    default: str = ""
    """The value a new row starts with (a row holding only defaults is empty)."""


MAX_ROWS = 100
"""The most rows a repeating part of a form shows (the schemas' longest lists)."""


@dataclass
class Rows:
    """A repeating part of a form: rows of the same fields, as many as the user needs.

    The form shows one empty row more than are filled in; "add a row" and "remove"
    are submit buttons that redraw the form with its values kept (forms.js does the
    same in place). ``{name}.rows`` carries the count from one drawing to the next.
    """

    name: str
    label: str
    fields: list[Field]
    count: int
    hint: str | None = None
    fixed: int = 0
    """The first rows are given (a checklist's items): they have no remove button, and
    their read-only fields stay read-only."""
    tag: str = ""
    """What the given rows were drawn for (the checklist's period), posted back with them."""


def row_count(values: dict[str, str], name: str, fields: list[Field], start: int = 0) -> int:
    """How many rows a repeating part shows: those posted (``{name}.rows``), every filled
    row, the ``start`` given ones, and one empty row more than the last filled one."""
    defaults = {f.name: f.default for f in fields}
    last = -1
    prefix = name + "."
    for key, v in values.items():
        if not key.startswith(prefix) or v == "":
            continue
        index, _, sub = key[len(prefix) :].partition(".")
        if index.isdigit() and sub and v != defaults.get(sub, ""):
            last = max(last, int(index))
    posted = values.get(prefix + "rows", "")
    shown = int(posted) if posted.isdigit() else 0
    return max(1, min(MAX_ROWS, max(shown, last + 2, start + 1 if start else 0)))


def edit_rows(values: dict[str, str], add: str = "", remove: str = "") -> dict[str, str]:
    """The form's values after an "add a row" (``add`` = the part's name) or a "remove"
    (``remove`` = ``name.index``) button: the rows after a removed one move up."""
    out = dict(values)
    if add:
        posted = out.get(f"{add}.rows", "")
        count = int(posted) if posted.isdigit() else 0
        out[f"{add}.rows"] = str(min(MAX_ROWS, max(count, 1) + 1))
    name, _, index = remove.rpartition(".")
    if name and index.isdigit():
        gone = int(index)
        prefix = name + "."
        moved: dict[str, str] = {}
        for key in [k for k in out if k.startswith(prefix)]:
            i, _, sub = key[len(prefix) :].partition(".")
            if not i.isdigit() or not sub:
                continue
            v = out.pop(key)
            if int(i) != gone:
                moved[f"{name}.{int(i) - (int(i) > gone)}.{sub}"] = v
        out.update(moved)
        posted = out.get(f"{name}.rows", "")
        if posted.isdigit():
            out[f"{name}.rows"] = str(max(1, int(posted) - 1))
    return out


def rows(
    values: dict[str, str],
    name: str,
    label: str,
    fields: list[Field],
    *,
    start: int = 0,
    hint: str | None = None,
    fixed: int = 0,
    tag: str = "",
) -> Rows:
    """A repeating part sized by :func:`row_count`."""
    return Rows(
        name, label, fields, row_count(values, name, fields, start), hint, fixed=fixed, tag=tag
    )


@dataclass
class Spec:
    kind: str
    title: str
    items: list[Field | Rows] = field(default_factory=list)
    multipart: bool = False
    links: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    """Links shown above the form: an address, a message id and its values."""


def _local_now(now: datetime) -> str:
    return now.astimezone(CST).strftime("%Y-%m-%dT%H:%M")


def _local(at: datetime) -> str:
    """An instant as a datetime-local input shows it (China Standard Time)."""
    return at.astimezone(CST).strftime("%Y-%m-%dT%H:%M")


Gettext = Callable[[str], str]
"""The page's translation of a message id (the user's language)."""

YES_NO = [("true", N_("Yes")), ("false", N_("No"))]
MATERIAL_TYPES = [
    ("raw_material", N_("Raw material")),
    ("food_additive", N_("Food additive")),
    ("food_related_product", N_("Food-related product")),
]
PERIODS = [
    ("daily", N_("Daily check")),
    ("weekly", N_("Weekly review")),
    ("monthly", N_("Monthly report")),
]
CHECKLISTS = {
    "daily": [
        N_("Staff health and hygiene"),
        N_("Raw material storage"),
        N_("Production area hygiene"),
        N_("CCP monitoring records complete"),
        N_("Equipment cleaning and disinfection"),
        N_("Finished goods storage"),
    ],
    "weekly": [
        N_("Food safety risks reviewed"),
        N_("Supplier qualifications current"),
        N_("Deviations and corrective actions reviewed"),
        N_("Pest control"),
    ],
    "monthly": [
        N_("Food safety management summary"),
        N_("Self-inspection problems rectified"),
        N_("Release testing and recalls reviewed"),
        N_("Training and staff health certificates"),
    ],
}


class Options:
    """Choices drawn from the enterprise's master data and records."""

    def __init__(self, session: Session, enterprise_id: int) -> None:
        self.store = DbStore(session, enterprise_id)

    def suppliers(self, chosen: str | None = None) -> list[tuple[str, str]]:
        """Active suppliers, and ``chosen`` (the one a record being corrected names): an
        inactive supplier is not offered for new records; its records still show it."""
        return [
            (s["code"], f"{s['name']} ({s['code']})")
            for s in self.store.find("suppliers")
            if not s.get("inactive") or s["code"] == chosen
        ]

    def customers(self, chosen: str | None = None) -> list[tuple[str, str]]:
        """Active customers, and ``chosen`` (as :meth:`suppliers`)."""
        return [
            (c["code"], f"{c['name']} ({c['code']})")
            for c in self.store.find("customers")
            if not c.get("inactive") or c["code"] == chosen
        ]

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

    def unsold(self, lot_code: str) -> dict[str, str] | None:
        """What a lot made and has not sold yet, in its product's base unit (the sale form
        says it before the sale is saved)."""
        lot = self.lot(lot_code)
        product = self.lot_product(lot_code)
        if lot is None or product is None:
            return None
        sold = sum(
            (dec(s["quantity_base"]) for s in self.store.find("sales", lot_seq=lot["record_seq"])),
            Decimal(0),
        )
        return {"left": dec_str(dec(lot["quantity_base"]) - sold), "unit": product["unit"]}

    def released(self, lot_code: str) -> bool:
        lot = self.lot(lot_code)
        return lot is not None and released(
            self.store.find("release_tests", lot_seq=lot["record_seq"])
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

    def missing_readings(self, lot_code: str, point: str, until: str) -> list[str]:
        """When the readings of one CCP parameter that a lot still lacks were due, as
        local times (``YYYY-MM-DDTHH:MM``, none after ``until``): the plan's frequency
        from the start of production, less the times the recorded readings took."""
        lot = self.lot(lot_code)
        param = self.plan_parameter(lot_code, point)
        if lot is None or param is None:
            return []
        ccp, code = point.split("/", 1)
        taken = sorted(
            instant(r["measured_at"])
            for r in self.store.find("ccp_readings", lot_seq=lot["record_seq"])
            if r["ccp"] == ccp and r["parameter"] == code
        )
        need = expected_readings(param, lot["started_at"], lot["ended_at"])
        if len(taken) >= need:
            return []
        start, freq = instant(lot["started_at"]), param.get("frequency_minutes")
        if not freq:
            return [_local(start)][: need - len(taken)] if _local(start) <= until else []
        slots = [start + timedelta(minutes=freq * k) for k in range(need)]
        for t in taken:  # each reading stands for the slot nearest to it
            if slots:
                slots.remove(min(slots, key=lambda s: abs(s - t)))
        return [x for x in map(_local, slots[: need - len(taken)]) if x <= until]

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


def _party_form(kind: str, opts: Options, values: dict[str, str], now: datetime) -> Spec:
    items: list[Field | Rows] = [
        Field("code", N_("Code"), hint=N_("Your own short code, e.g. SUGAR01")),
        Field("name", N_("Name")),
        Field(
            "credit_code",
            N_("Unified social credit code"),
            required=False,
            hint=N_("Required when it is a registered enterprise"),
        ),
    ]
    if kind is RecordKind.SUPPLIER:
        items.append(Field("licence_no", N_("Licence number"), required=False))
    items += [
        Field("address", N_("Address")),
        Field("contact", N_("Contact (person and phone)")),
    ]
    return Spec(kind, N_("Supplier") if kind is RecordKind.SUPPLIER else "Customer", items)


def _material_check_form(kind: str, opts: Options, values: dict[str, str], now: datetime) -> Spec:
    return Spec(
        kind,
        N_("Incoming material check"),
        [
            Field(
                "supplier_code",
                N_("Supplier"),
                "select",
                choices=opts.suppliers(values.get("supplier_code")),
            ),
            Field("material_name", N_("Material name")),
            Field(
                "material_type",
                N_("Material type"),
                "select",
                choices=MATERIAL_TYPES,
                translate_choices=True,
            ),
            Field("specification", N_("Specification"), hint=N_("e.g. 50 kg/bag")),
            Field("quantity", N_("Quantity"), "decimal"),
            Field("unit", N_("Unit"), hint=N_("e.g. kg")),
            Field("batch_no", N_("Supplier's batch number"), required=False),
            Field("production_date", N_("Production date"), "date", required=False),
            Field("shelf_life", N_("Shelf life"), hint=N_("e.g. 24 months")),
            Field("receipt_date", N_("Receipt date"), "date"),
            Field(
                "material_lot",
                N_("Our material lot code"),
                hint=N_("The code you write on the received goods"),
            ),
            Field(
                "supplier_licence_checked",
                N_("Supplier licence checked"),
                "check",
                required=False,
            ),
            Field("supplier_licence_no", N_("Supplier licence number"), required=False),
            Field("certificate_no", N_("Certificate or inspection report number")),
            Field(
                "accepted",
                N_("Acceptance result"),
                "select",
                choices=[("true", N_("Accepted")), ("false", N_("Rejected"))],
                translate_choices=True,
            ),
            Field("inspector", N_("Inspector")),
            Field(
                "attachments",
                N_("Certificate or report scans"),
                "file",
                required=False,
                hint=N_("PDF or photo"),
            ),
            Field("notes", N_("Notes"), "textarea", required=False),
        ],
        multipart=True,
    )


def _production_lot_form(kind: str, opts: Options, values: dict[str, str], now: datetime) -> Spec:
    return Spec(
        kind,
        N_("Production lot"),
        [
            Field("product_code", N_("Product"), "select", choices=opts.products()),
            Field(
                "lot_code",
                N_("Lot code"),
                hint=N_(
                    "Up to 20 letters, digits or - . _ / fit the GS1 code on the package; a "
                    "longer code, or one with Chinese characters, is accepted and its QR "
                    "code carries the platform address instead."
                ),
            ),
            Field("production_date", N_("Production date"), "date"),
            Field("started_at", N_("Production started"), "datetime"),
            Field("ended_at", N_("Production ended"), "datetime"),
            Field("quantity", N_("Quantity produced"), "decimal"),
            Field("unit", N_("Unit"), hint=N_("The product's unit or a declared packaging unit")),
            rows(
                values,
                "materials",
                N_("Materials used"),
                [
                    Field(
                        "material_lot",
                        N_("Material lot"),
                        "select",
                        choices=opts.material_lots(),
                    ),
                    Field("quantity", N_("Quantity used"), "decimal"),
                ],
                hint=N_("Accepted material lots, with what remains of each"),
            ),
            Field("notes", N_("Notes"), "textarea", required=False),
        ],
    )


def _ccp_record_form(kind: str, opts: Options, values: dict[str, str], now: datetime) -> Spec:
    lot = values.get("lot_code", "")
    point = values.get("point", "")
    param = opts.plan_parameter(lot, point) if lot else None
    items: list[Field | Rows] = [
        Field("lot_code", N_("Lot"), "select", choices=opts.lots()),
        Field(
            "point",
            N_("CCP and parameter"),
            "select",
            choices=opts.plan_points(lot) if lot else [],
            hint=N_("Choose the lot first: its product's CCP plan is offered here"),
        ),
    ]
    if param is None or param.get("kind") != "pass_fail":
        items += [
            Field(
                "value",
                N_("Measured value"),
                "decimal",
                required=False,
                hint=limits_text(param) if param else None,
            )
        ]
    if param is None or param.get("kind") == "pass_fail":
        items += [
            Field(
                "result",
                N_("Result"),
                "select",
                required=False,
                choices=[("pass", N_("Pass")), ("fail", N_("Fail"))],
                translate_choices=True,
            )
        ]
    items += [
        Field("measured_at", N_("Measured at"), "datetime"),
        Field("due_for", "", "hidden", required=False),
        Field("operator", N_("Operator")),
        Field(
            "corrective_action",
            N_("Corrective action"),
            "textarea",
            required=False,
            hint=N_("Required when the reading is outside its critical limits"),
        ),
    ]
    spec = Spec(kind, N_("CCP reading"), items)
    due = opts.missing_readings(lot, point, until=_local_now(now)) if param else []
    if len(due) > 1:
        spec.links.append(
            (
                "/records/ccp_record/batch?" + urlencode({"lot_code": lot, "point": point}),
                N_("%(n)s readings of this parameter are missing: record them in one table"),
                {"n": len(due)},
            )
        )
    return spec


def ccp_readings_spec(opts: Options, values: dict[str, str]) -> Spec:
    """Several readings of one CCP parameter of one lot, one row each (catching up)."""
    lot, point = values.get("lot_code", ""), values.get("point", "")
    param = opts.plan_parameter(lot, point) if lot else None
    fields = [Field("measured_at", N_("Measured at"), "datetime")]
    if param is None or param.get("kind") != "pass_fail":
        fields.append(Field("value", N_("Measured value"), "decimal"))
    if param is None or param.get("kind") == "pass_fail":
        fields.append(
            Field(
                "result",
                N_("Result"),
                "select",
                choices=[("pass", N_("Pass")), ("fail", N_("Fail"))],
                translate_choices=True,
            )
        )
    fields.append(Field("corrective_action", N_("Corrective action"), required=False))
    return Spec(
        RecordKind.CCP_RECORD,
        N_("Several CCP readings"),
        [
            Field("lot_code", N_("Lot"), "select", choices=opts.lots()),
            Field(
                "point",
                N_("CCP and parameter"),
                "select",
                choices=opts.plan_points(lot) if lot else [],
                hint=limits_text(param)
                if param
                else N_("Choose the lot first: its product's CCP plan is offered here"),
            ),
            rows(
                values,
                "readings",
                N_("Readings"),
                fields,
                tag=f"{lot} {point}",
                hint=N_(
                    "The times the plan asks for and that have no reading yet are filled in. "
                    "A row without a value is not saved."
                ),
            ),
            Field("operator", N_("Operator")),
        ],
    )


def prefill_readings(
    opts: Options, values: dict[str, str], now: datetime, display_name: str
) -> dict[str, str]:
    """The several-readings form's start: the missing readings' times, the user's name."""
    lot, point = values.get("lot_code", ""), values.get("point", "")
    _redraw(values, "readings", f"{lot} {point}")
    out = {"operator": display_name, "readings.tag": f"{lot} {point}"}
    if lot and point:
        for i, at in enumerate(opts.missing_readings(lot, point, until=_local_now(now))):
            out[f"readings.{i}.measured_at"] = at
    return {**out, **{k: v for k, v in values.items() if v != ""}}


def parse_readings(
    spec: Spec, form: dict[str, str], opts: Options
) -> list[tuple[int, dict[str, Any]]]:
    """The readings a several-readings form holds, each with its form row: the rows with a
    value, a result or a corrective action (a proposed time alone is not a reading)."""
    lot, point = form.get("lot_code", "").strip(), form.get("point", "")
    param = opts.plan_parameter(lot, point) if lot else None
    ccp, _, code = point.partition("/")
    part = next(i for i in spec.items if isinstance(i, Rows))
    out = []
    for i in range(part.count):

        def raw(name: str, i: int = i) -> str:
            return (form.get(f"readings.{i}.{name}") or "").strip()

        if not (raw("value") or raw("result") or raw("corrective_action")):
            continue
        data: dict[str, Any] = {
            "lot_code": lot,
            "ccp": ccp,
            "parameter": code,
            "operator": form.get("operator", "").strip(),
        }
        if raw("measured_at"):
            data["measured_at"] = _datetime(raw("measured_at"))
        if raw("value"):
            data["value"] = number_text(raw("value")) or raw("value")
            if param and param.get("unit"):
                data["unit"] = param["unit"]
        for name in ("result", "corrective_action"):
            if raw(name):
                data[name] = raw(name)
        out.append((i, data))
    return out


def readings_question(
    readings: list[tuple[int, dict[str, Any]]], form: dict[str, str], opts: Options
) -> Question | None:
    """Ask before saving readings outside the critical limits without a corrective action."""
    if form.get("confirm_open"):
        return None
    param = opts.plan_parameter(form.get("lot_code", ""), form.get("point", ""))
    if param is None:
        return None
    rows_out = [
        str(i + 1)
        for i, r in readings
        if not r.get("corrective_action") and deviates(param, r.get("value"), r.get("result"))
    ]
    if not rows_out:
        return None
    return (
        N_(
            "Rows %(rows)s are outside the critical limits %(limits)s. Enter the corrective "
            "action taken in each, or confirm to save them as open deviations that stay on "
            "the Today list until a corrective action closes them."
        ),
        {"rows": ", ".join(rows_out), "limits": limits_text(param)},
        ("confirm_open", N_("Save without corrective action (open deviations)")),
    )


def _corrective_action_form(
    kind: str, opts: Options, values: dict[str, str], now: datetime
) -> Spec:
    return Spec(
        kind,
        N_("Corrective action"),
        [
            Field("reading_seq", N_("Open deviation"), "select", choices=opts.open_deviations()),
            Field("action", N_("What was done"), "textarea"),
            Field("taken_at", N_("Done at"), "datetime"),
            Field("operator", N_("Operator")),
        ],
    )


def _release_test_form(kind: str, opts: Options, values: dict[str, str], now: datetime) -> Spec:
    return Spec(
        kind,
        N_("Release test"),
        [
            Field("lot_code", N_("Lot"), "select", choices=opts.lots()),
            Field("tested_at", N_("Tested at"), "datetime"),
            rows(
                values,
                "items",
                N_("Test items"),
                [
                    Field("item", N_("Item")),
                    Field("limit", N_("Limit")),
                    Field("unit", N_("Unit"), required=False),
                    Field("result", N_("Result")),
                    Field("passed", N_("Passed"), "select", choices=YES_NO, translate_choices=True),
                ],
                hint=N_("The product's test items are filled in: give each its result"),
            ),
            Field(
                "conclusion",
                N_("Conclusion"),
                "select",
                choices=[("pass", N_("Pass")), ("fail", N_("Fail"))],
                translate_choices=True,
            ),
            Field("inspector", N_("Inspector")),
            Field("report_no", N_("Report number")),
            Field(
                "attachments",
                N_("Report scans"),
                "file",
                required=False,
                hint=N_("PDF or photo"),
            ),
        ],
        multipart=True,
    )


def _sale_form(kind: str, opts: Options, values: dict[str, str], now: datetime) -> Spec:
    lot = values.get("lot_code", "")
    left = opts.unsold(lot) if lot else None
    return Spec(
        kind,
        N_("Sale"),
        [
            Field("lot_code", N_("Lot"), "select", choices=opts.lots()),
            Field(
                "quantity",
                N_("Quantity"),
                "decimal",
                hint=N_("%(left)s %(unit)s of this lot are not sold yet") if left else None,
                hint_args=left,
            ),
            Field(
                "unit",
                N_("Unit"),
                "select" if lot else "text",
                choices=opts.lot_units(lot) if lot else None,
            ),
            Field("sale_date", N_("Sale date"), "date"),
            Field(
                "customer_code",
                N_("Buyer"),
                "select",
                choices=opts.customers(values.get("customer_code")),
            ),
            Field("document_no", N_("Delivery note or invoice number"), required=False),
            Field("notes", N_("Notes"), "textarea", required=False),
        ],
    )


def _self_inspection_form(kind: str, opts: Options, values: dict[str, str], now: datetime) -> Spec:
    period = values.get("period") or "daily"
    checklist = CHECKLISTS.get(period, CHECKLISTS["daily"])
    return Spec(
        kind,
        N_("Self-inspection"),
        [
            Field("period", N_("Kind"), "select", choices=PERIODS, translate_choices=True),
            Field(
                "period_date",
                N_("Date"),
                "date",
                hint=N_("The day, the week's Monday or the month's 1st"),
            ),
            rows(
                values,
                "items",
                N_("Checklist"),
                [
                    Field("item", N_("Item"), readonly=True),
                    Field(
                        "result",
                        N_("Result"),
                        "select",
                        translate_choices=True,
                        choices=[
                            ("ok", N_("OK")),
                            ("problem", N_("Problem")),
                            ("not_applicable", N_("Not applicable")),
                        ],
                    ),
                    Field("note", N_("Note"), required=False),
                ],
                fixed=len(checklist),
                tag=period,
                hint=N_("Choose a result for every item; add a row for an item of your own"),
            ),
            Field("problems", N_("Problems found"), "textarea", required=False),
            Field("rectification", N_("Rectification"), "textarea", required=False),
            Field("inspector", N_("Inspector")),
        ],
    )


def _product_form(kind: str, opts: Options, values: dict[str, str], now: datetime) -> Spec:
    return Spec(
        kind,
        N_("Product"),
        [
            Field("code", N_("Code")),
            Field("name", N_("Name")),
            Field("category", N_("Category")),
            Field("standard", N_("Product standard"), required=False, hint=N_("e.g. GB 7101")),
            Field("gtin", N_("Barcode (GTIN)"), required=False),
            Field("specification", N_("Specification"), hint=N_("e.g. 500 mL/bottle")),
            Field("unit", N_("Base unit"), hint=N_("e.g. bottle")),
            rows(
                values,
                "packaging",
                N_("Packaging units"),
                [
                    Field("unit", N_("Packaging unit"), hint=N_("e.g. case")),
                    Field("quantity", N_("Base units in one"), "decimal"),
                ],
            ),
            Field("shelf_life_days", N_("Shelf life (days)"), "int", required=False),
            Field("storage", N_("Storage conditions"), required=False),
            rows(
                values,
                "ccp",
                N_("CCP plan (one row per monitored parameter)"),
                [
                    Field("point", N_("CCP code"), hint=N_("e.g. CCP1")),
                    Field("point_name", N_("CCP name")),
                    Field("code", N_("Parameter code"), hint=N_("e.g. temperature")),
                    Field("name", N_("Parameter name")),
                    Field(
                        "kind",
                        N_("Kind"),
                        "select",
                        translate_choices=True,
                        choices=[
                            ("numeric", N_("Measured value")),
                            ("pass_fail", N_("Pass/fail")),
                        ],
                        default="numeric",
                    ),
                    Field("unit", N_("Unit"), required=False),
                    Field("min", N_("Minimum"), "decimal", required=False),
                    Field("max", N_("Maximum"), "decimal", required=False),
                    Field(
                        "frequency_minutes",
                        N_("Every (minutes)"),
                        "int",
                        required=False,
                        hint=N_("Empty: once per lot"),
                    ),
                ],
            ),
            rows(
                values,
                "release_items",
                N_("Release-test items"),
                [
                    Field("item", N_("Item")),
                    Field("limit", N_("Limit")),
                    Field("unit", N_("Unit"), required=False),
                    Field("method", N_("Method"), required=False),
                ],
            ),
        ],
    )


def prefill(
    kind: str,
    opts: Options,
    values: dict[str, str],
    now: datetime,
    display_name: str,
    gettext: Gettext = str,
) -> dict[str, str]:
    """Starting values that record nothing nobody checked: today's date where the record
    is of today (a receipt, a production run, a sale, a period), now, the user's name, the
    lot's test items. Never an outcome (accepted, passed, a test's conclusion, an item
    found normal) and never a date the user did not give (a material's production date)."""
    out: dict[str, str] = {}
    today = now.astimezone(CST).date().isoformat()
    local_now = _local_now(now)
    for name in ("receipt_date", "sale_date", "period_date"):
        out[name] = today
    for name in ("measured_at", "tested_at", "taken_at", "started_at", "ended_at"):
        out[name] = local_now
    for name in ("inspector", "operator"):
        out[name] = display_name
    form = FORMS[kind]
    if form.prefill is not None:
        form.prefill(opts, values, out, today, gettext)
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
    kind_form = FORMS[spec.kind]

    def value(f: Field, key: str) -> Any:
        raw = (form.get(key) or "").strip()
        if f.widget == "check":
            return raw in ("on", "true", "1")
        if raw == "":
            return None
        if f.widget == "datetime":
            return _datetime(raw)
        if f.widget in ("decimal", "int"):
            number = number_text(raw)
            if number is None:
                return raw  # refused by the core, and said plainly by number_problems
            if f.widget == "int":
                return int(number) if number.lstrip("-").isdigit() else number
            return number
        if f.widget == "select" and f.choices == YES_NO or f.name == "accepted":
            return raw == "true"
        return raw

    for item in spec.items:
        if isinstance(item, Rows):
            found, used = [], []
            for i in range(item.count):
                row = {f.name: value(f, f"{item.name}.{i}.{f.name}") for f in item.fields}
                meaningful = {k: v for k, v in row.items() if v is not None}
                if kind_form.meaningful is not None:
                    meaningful = kind_form.meaningful(item.name, i, row, form)
                if not any(v not in (None, False) for v in meaningful.values()):
                    continue
                found.append({k: v for k, v in row.items() if v is not None})
                used.append(i)
            data[item.name] = found
            rows_map[item.name] = used
        elif item.widget not in ("file", "hidden"):  # a hidden field is the form's own state
            v = value(item, item.name)
            if v is not None:
                data[item.name] = v
    if kind_form.finish is not None:
        kind_form.finish(data, rows_map, opts)
    return data, rows_map


_NUMBER = re.compile(r"[+-]?[0-9]+([.][0-9]+)?")
_GROUPED = re.compile(r"[+-]?[0-9]{1,3}(,[0-9]{3})+([.][0-9]+)?")
NOT_A_NUMBER = N_("error.not_a_number")
ROWS_EMPTY = N_("error.rows_empty")


def number_text(raw: str) -> str | None:
    """A number as typed, in plain digits: full-width digits and thousands separators
    ("1,000", "１，０００") are read as 1000; None if it is not a number."""
    text = unicodedata.normalize("NFKC", raw).strip().replace(" ", "")
    if _NUMBER.fullmatch(text):
        return text
    if _GROUPED.fullmatch(text):
        return text.replace(",", "")
    return None


def _number_fields(spec: Spec) -> Iterable[tuple[str, Field]]:
    for item in spec.items:
        if isinstance(item, Rows):
            for i in range(item.count):
                for f in item.fields:
                    yield f"{item.name}.{i}.{f.name}", f
        else:
            yield item.name, item


def number_problems(spec: Spec, form: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Number fields whose text is not a number, each with a problem that says so plainly
    (the browser's "match the requested format" is no help)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for key, f in _number_fields(spec):
        raw = (form.get(key) or "").strip()
        if f.widget in ("decimal", "int") and raw and number_text(raw) is None:
            out[key] = [
                {
                    "type": "not_a_number",
                    "msg": "write the number in digits, e.g. 1000 or 85.5",
                    "ctx": {"value": raw},
                }
            ]
    return out


def _field_keys(
    spec: Spec, also: dict[str, str] | None = None
) -> dict[str, tuple[Rows | None, int | None, Field | None]]:
    """Every place on the form a problem can point at: each field (each row's too), each
    repeating part and each of its rows; ``also`` the fields the page adds (name: label)."""
    out: dict[str, tuple[Rows | None, int | None, Field | None]] = {
        name: (None, None, Field(name, label)) for name, label in (also or {}).items()
    }
    for item in spec.items:
        if isinstance(item, Rows):
            out[item.name] = (item, None, None)
            for i in range(item.count):
                out[f"{item.name}.{i}"] = (item, i, None)
                for f in item.fields:
                    out[f"{item.name}.{i}.{f.name}"] = (item, i, f)
        else:
            out[item.name] = (None, None, item)
    return out


# Where a problem about a value the form derives is shown: beside the field it comes from.
_DERIVED = {"unit": ("value", "quantity"), "ccp": ("point",), "parameter": ("point",)}


def place_errors(
    spec: Spec, errors: dict[str, list[dict[str, Any]]], also: dict[str, str] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """The problems re-keyed to what the form shows: a derived value's problem beside the
    field it comes from, a row's problem on the row, an unknown place at the top; an empty
    repeating part is asked to have a row."""
    keys = _field_keys(spec, also)
    out: dict[str, list[dict[str, Any]]] = {}
    for key, problems in errors.items():
        place = key
        if place not in keys:
            head, _, last = place.rpartition(".")
            near = [f"{head}.{n}" if head else n for n in _DERIVED.get(last, ())]
            place = next((n for n in near if n in keys), "")
            if not place and head in keys:
                place = head
        if place and keys[place][0] is not None and keys[place][1] is None:
            problems = [
                {**p, "type": "rows_empty"} if p.get("type") in ("too_short", "missing") else p
                for p in problems
            ]
        out.setdefault(place, []).extend(problems)
    return out


def error_summary(
    spec: Spec, errors: dict[str, list[dict[str, Any]]], also: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """The form's problems for the summary at its top, in the form's order: each with the
    id it links to and the visible labels that name the field (a part's label and row
    number for a row's field)."""
    keys = _field_keys(spec, also)
    order = {k: n for n, k in enumerate(keys)}
    out = []
    for key in sorted(errors, key=lambda k: order.get(k, -1)):
        part, row, f = keys.get(key, (None, None, None))
        target = key or None
        if part is not None and f is None and row is not None:
            target = f"{part.name}.{row}.{part.fields[0].name}"
        elif part is not None and row is None:
            target = f"{part.name}-part"
        out.append(
            {
                "target": target,
                "part": part.label if part else None,
                "row": row + 1 if row is not None else None,
                "field": f.label if f else None,
                "problems": errors[key],
            }
        )
    return out


def flatten(kind: str, body: dict[str, Any]) -> dict[str, str]:
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
    for key in ("measured_at", "tested_at", "taken_at", "started_at", "ended_at"):
        if key in body:
            out[key] = (
                datetime.fromisoformat(body[key].replace("Z", "+00:00"))
                .astimezone(CST)
                .strftime("%Y-%m-%dT%H:%M")
            )
    form = FORMS.get(kind)
    if form is not None and form.flatten is not None:
        form.flatten(body, out)
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


# ------------------------------------------------ each kind's form, in one registry
#
# The web-only part of a record kind (the core's part is its KindSpec in
# foodtrace/records/kinds): the fields its form shows, and where a kind needs them,
# its own starting values, which repeated rows count as filled in, how the posted
# fields become the record, how a stored record refills the form, and a question
# to ask before saving. A kind with no form of its own gets ``generic_form``,
# derived from its schema.


def _production_lot_prefill(
    opts: Options, values: dict[str, str], out: dict[str, str], today: str, gettext: Gettext
) -> None:
    out["production_date"] = today


def _redraw(values: dict[str, str], name: str, tag: str) -> None:
    """Forget a repeating part's posted rows that were drawn for another ``tag`` (the
    checklist of another period, the test items of another product)."""
    if values.get(f"{name}.tag", "") not in ("", tag):
        for key in [k for k in values if k.startswith(name + ".")]:
            del values[key]


def _release_test_prefill(
    opts: Options, values: dict[str, str], out: dict[str, str], today: str, gettext: Gettext
) -> None:
    product = opts.lot_product(values["lot_code"]) if values.get("lot_code") else None
    _redraw(values, "items", product["code"] if product else "")
    if product:
        out["items.tag"] = product["code"]
        for i, item in enumerate(product.get("release_items", [])):
            out[f"items.{i}.item"] = item["item"]
            out[f"items.{i}.limit"] = item["limit"]
            out[f"items.{i}.unit"] = item.get("unit") or ""


def _self_inspection_prefill(
    opts: Options, values: dict[str, str], out: dict[str, str], today: str, gettext: Gettext
) -> None:
    # The items are stored as the user read them: in the page's language at the time.
    period = values.get("period") or "daily"
    _redraw(values, "items", period)
    out["items.tag"] = period
    for i, item in enumerate(CHECKLISTS.get(period, CHECKLISTS["daily"])):
        out[f"items.{i}.item"] = gettext(item)


def _ccp_record_prefill(
    opts: Options, values: dict[str, str], out: dict[str, str], today: str, gettext: Gettext
) -> None:
    lot, point = values.get("lot_code", ""), values.get("point", "")
    if values.get("due_for") != f"{lot} {point}":  # the parameter chosen now: its time
        values.pop("measured_at", None)
        values["due_for"] = f"{lot} {point}"
    if lot and point:
        # the next reading the plan's frequency asks for, not yet recorded (catching up)
        due = opts.missing_readings(lot, point, until=out["measured_at"])
        if due:
            out["measured_at"] = due[0]


def _self_inspection_rows(
    rows: str, i: int, row: dict[str, Any], form: dict[str, str]
) -> dict[str, Any]:
    return row if row.get("item") else {}


def _product_rows(rows: str, i: int, row: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
    if rows == "ccp":
        return row if row.get("point") or row.get("code") else {}
    return {k: v for k, v in row.items() if v is not None}


def _ccp_record_finish(data: dict[str, Any], rows_map: dict[str, list[int]], opts: Options) -> None:
    point = data.pop("point", "")
    if "/" in point:
        data["ccp"], data["parameter"] = point.split("/", 1)
        param = opts.plan_parameter(data.get("lot_code", ""), point)
        if param and param.get("unit") and "value" in data:
            data["unit"] = param["unit"]
    else:
        data["ccp"] = data["parameter"] = ""


def _production_lot_finish(
    data: dict[str, Any], rows_map: dict[str, list[int]], opts: Options
) -> None:
    for use in data.get("materials", []):
        use["unit"] = opts.material_unit(use.get("material_lot", "")) or ""


def _corrective_action_finish(
    data: dict[str, Any], rows_map: dict[str, list[int]], opts: Options
) -> None:
    if str(data.get("reading_seq", "")).isdigit():
        data["reading_seq"] = int(data["reading_seq"])


def _product_finish(data: dict[str, Any], rows_map: dict[str, list[int]], opts: Options) -> None:
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


def _ccp_record_flatten(body: dict[str, Any], out: dict[str, str]) -> None:
    out["point"] = f"{body.get('ccp')}/{body.get('parameter')}"


def _product_flatten(body: dict[str, Any], out: dict[str, str]) -> None:
    i = 0
    for point in body.get("ccp_plan", []):
        for p in point["parameters"]:
            out.update({f"ccp.{i}.point": point["code"], f"ccp.{i}.point_name": point["name"]})
            out.update({f"ccp.{i}.{k}": _text(v) for k, v in p.items()})
            i += 1


Question = tuple[str, dict[str, str], tuple[str, str]]
"""A question before saving: a message id and its values, and the confirming checkbox
(its name and its label's message id)."""


def _ccp_record_question(
    data: dict[str, Any], values: dict[str, str], opts: Options
) -> Question | None:
    if data.get("corrective_action"):
        return None
    param = opts.plan_parameter(data.get("lot_code", ""), values.get("point", ""))
    if (
        param
        and deviates(param, data.get("value"), data.get("result"))
        and not values.get("confirm_open")
    ):
        return (
            N_(
                "This reading is outside the critical limits %(limits)s. Enter the "
                "corrective action taken, or confirm to save it as an open deviation "
                "that stays on the Today list until a corrective action closes it."
            ),
            {"limits": limits_text(param)},
            ("confirm_open", N_("Save without corrective action (open deviation)")),
        )
    return None


def _sale_question(data: dict[str, Any], values: dict[str, str], opts: Options) -> Question | None:
    if not data.get("lot_code") or values.get("confirm_unreleased"):
        return None
    if opts.lot(data["lot_code"]) and not opts.released(data["lot_code"]):
        return (
            N_(
                "Lot %(lot)s has no passing release test. A product may leave the plant "
                "only after passing it (Food Safety Law Art. 52). If it was shipped anyway, "
                "the sale must still be recorded, and it will stand as a finding."
            ),
            {"lot": data["lot_code"]},
            ("confirm_unreleased", N_("Record the sale anyway")),
        )
    return None


Build = Callable[[str, Options, dict[str, str], datetime], Spec]
Prefill = Callable[[Options, dict[str, str], dict[str, str], str, "Gettext"], None]


@dataclass(frozen=True)
class KindForm:
    """The page form of one record kind (see above)."""

    kind: str
    build: Build
    prefill: Prefill | None = None
    meaningful: Callable[[str, int, dict[str, Any], dict[str, str]], dict[str, Any]] | None = None
    finish: Callable[[dict[str, Any], dict[str, list[int]], Options], None] | None = None
    flatten: Callable[[dict[str, Any], dict[str, str]], None] | None = None
    question: Callable[[dict[str, Any], dict[str, str], Options], Question | None] | None = None
    keep: tuple[str, ...] = ()
    """Values kept for the next record after saving one (the next reading of the lot)."""


def _widget(annotation: Any) -> tuple[str, list[tuple[str, str]] | None]:
    """A form widget for a schema field's type (generic forms)."""
    from datetime import date
    from enum import Enum
    from typing import Literal, Union, get_args, get_origin

    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (Union, UnionType) and len(args) == 1:
        return _widget(args[0])
    base = getattr(annotation, "__origin__", annotation)
    if get_origin(annotation) is Literal:
        return "select", [(str(v), str(v)) for v in get_args(annotation)]
    if isinstance(base, type) and issubclass(base, Enum):
        return "select", [(str(m.value), str(m.value)) for m in base]
    if base is bool:
        return "check", None
    if base is datetime:
        return "datetime", None
    if base is date:
        return "date", None
    if base is int:
        return "int", None
    return "text", None


def generic_form(spec: KindSpec) -> KindForm:
    """A form derived from the kind's schema, one field per scalar field, labelled by the
    field's ``title`` (a message id): for the simple kinds that need no form of their own."""

    def build(kind: str, opts: Options, values: dict[str, str], now: datetime) -> Spec:
        items: list[Field | Rows] = []
        for name, info in spec.schema.model_fields.items():
            if name == "event_time":
                continue
            widget, choices = _widget(info.annotation)
            items.append(
                Field(
                    name,
                    info.title or name,
                    widget,
                    required=info.is_required() and widget != "check",
                    choices=choices,
                    hint=info.description,
                )
            )
        return Spec(kind, spec.label, items)

    return KindForm(spec.kind, build)


_OWN_FORMS = (
    KindForm(
        RecordKind.MATERIAL_CHECK,
        _material_check_form,
    ),
    KindForm(
        RecordKind.PRODUCTION_LOT,
        _production_lot_form,
        prefill=_production_lot_prefill,
        finish=_production_lot_finish,
    ),
    KindForm(
        RecordKind.CCP_RECORD,
        _ccp_record_form,
        prefill=_ccp_record_prefill,
        finish=_ccp_record_finish,
        flatten=_ccp_record_flatten,
        question=_ccp_record_question,
        keep=("lot_code", "point"),
    ),
    KindForm(
        RecordKind.CORRECTIVE_ACTION, _corrective_action_form, finish=_corrective_action_finish
    ),
    KindForm(
        RecordKind.RELEASE_TEST,
        _release_test_form,
        prefill=_release_test_prefill,
    ),
    KindForm(RecordKind.SALE, _sale_form, question=_sale_question, keep=("lot_code", "period")),
    KindForm(
        RecordKind.SELF_INSPECTION,
        _self_inspection_form,
        prefill=_self_inspection_prefill,
        meaningful=_self_inspection_rows,
        keep=("lot_code", "period"),
    ),
    KindForm(
        RecordKind.PRODUCT,
        _product_form,
        meaningful=_product_rows,
        finish=_product_finish,
        flatten=_product_flatten,
    ),
    KindForm(RecordKind.SUPPLIER, _party_form),
    KindForm(RecordKind.CUSTOMER, _party_form),
)


def forms_for(kinds: Iterable[KindSpec]) -> dict[str, KindForm]:
    """The form of every kind users enter on a page, in the records index's order: the
    kinds with a form of their own (daily records first, then master data), then the
    others, each with its generic form."""
    wanted = [k for k in kinds if k.form]
    own = {f.kind: f for f in _OWN_FORMS}
    out = {f.kind: f for f in _OWN_FORMS if f.kind in {k.kind for k in wanted}}
    for k in wanted:
        out.setdefault(k.kind, own.get(k.kind) or generic_form(k))
    return out


FORMS: dict[str, KindForm] = forms_for(REGISTRY)


def spec_for(kind: str, opts: Options, values: dict[str, str], now: datetime) -> Spec:
    """The form of one record kind; ``values`` are what the user chose so far (e.g. the lot)."""
    return FORMS[kind].build(kind, opts, values, now)
