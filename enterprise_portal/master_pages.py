"""Master data pages: products (with their CCP plans and release-test items), suppliers and
customers, each with its versions, an edit form and (for the parties) inactive (issue 24,
item 12).

The ledger stays append-only: an edit writes a new version of the record as a correction
entry (``corrects`` the record's first entry, ``record`` the whole new version, ``reason``
why), exactly as the ledger page's correction flow does, so the derived row's
``current_seq`` moves to it and the history is the record's entry and its corrections,
oldest first. A supplier or customer set inactive is a version whose record says
``inactive: true``: the forms stop offering it, and every record that names it still
shows it. Editing is the enterprise admin's (a CCP plan's limits decide what is a
deviation); every user of the enterprise reads the pages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from sqlmodel import Session

from enterprise_portal.forms import (
    Field,
    Options,
    Rows,
    Spec,
    error_summary,
    flatten,
    limits_text,
    parse,
    place_errors,
    spec_for,
)
from enterprise_portal.pages import _posted, _problems
from foodtrace.db import FoodtraceSession
from foodtrace.errors import NotFound, RecordError
from foodtrace.ledger import service as ledger
from foodtrace.records import queries
from foodtrace.records.service import record, validate
from schemas.records import RecordKind
from web.deps import ClockDep, EngineDep, WriteSessionDep
from web.i18n import N_
from web.web import CsrfUser, PageEnterpriseAdmin, PageEnterpriseUser, redirect, render

router = APIRouter(include_in_schema=False)

UNCHANGED = N_("error.unchanged")
"""The Chinese of a version that changes nothing (problem type ``unchanged``)."""


@dataclass(frozen=True)
class Table:
    kind: RecordKind
    title: str
    one: str
    edit: str
    parties: bool


TABLES = {
    "products": Table(
        RecordKind.PRODUCT, N_("Products"), N_("Product"), N_("Edit product %(name)s"), False
    ),
    "suppliers": Table(
        RecordKind.SUPPLIER, N_("Suppliers"), N_("Supplier"), N_("Edit supplier %(name)s"), True
    ),
    "customers": Table(
        RecordKind.CUSTOMER, N_("Customers"), N_("Customer"), N_("Edit customer %(name)s"), True
    ),
}

FIELD_LABELS = {
    "code": N_("Code"),
    "name": N_("Name"),
    "category": N_("Category"),
    "standard": N_("Product standard"),
    "gtin": N_("Barcode (GTIN)"),
    "specification": N_("Specification"),
    "unit": N_("Base unit"),
    "packaging": N_("Packaging units"),
    "shelf_life_days": N_("Shelf life (days)"),
    "storage": N_("Storage conditions"),
    "ccp_plan": N_("CCP plan"),
    "release_items": N_("Release-test items"),
    "credit_code": N_("Unified social credit code"),
    "credit_code_confirmed": N_("Credit code confirmed"),
    "licence_no": N_("Licence number"),
    "address": N_("Address"),
    "contact": N_("Contact (person and phone)"),
    "inactive": N_("Inactive"),
}
"""What the history calls each field of a master record (its form's label)."""

INACTIVE = Field(
    "inactive",
    N_("Inactive: no longer offered in the forms (its records still show it)"),
    "check",
    required=False,
)

MasterWhat = Annotated[str, Path()]
MasterCode = Annotated[str, Path(max_length=64)]


def _table(what: str) -> Table:
    found = TABLES.get(what)
    if found is None:
        raise NotFound(what)
    return found


def _row(session: Session, eid: int, what: str, code: str) -> dict[str, Any]:
    """The master record's derived row (its current version), or 404."""
    for row in queries.list_rows(session=session, enterprise_id=eid, table=what):
        if row["code"] == code:
            return row
    raise NotFound(f"{_table(what).kind} {code!r}")


def _shown(value: Any) -> str:
    """A field's value as the history shows it (lists as one line each item)."""
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, list):
        return "；".join(_shown(v) for v in value)
    if isinstance(value, dict):
        if "parameters" in value:  # a CCP point
            params = "，".join(
                f"{p.get('name', '')}"
                + (f" {limits_text(p)}" if p.get("kind") != "pass_fail" else "")
                + (f" /{p['frequency_minutes']}min" if p.get("frequency_minutes") else "")
                for p in value["parameters"]
            )
            return f"{value.get('code', '')} {value.get('name', '')}：{params}"
        if "item" in value:  # a release-test item
            return " ".join(str(value.get(k) or "") for k in ("item", "limit", "unit")).strip()
        if "quantity" in value:  # a packaging unit
            return f"{value.get('unit', '')} = {value.get('quantity', '')}"
        return "，".join(f"{v}" for v in value.values())
    return "" if value is None else str(value)


def _ordered(rec: dict[str, Any]) -> dict[str, Any]:
    """A record's fields in its form's order (the entry's are in canonical, sorted order)."""
    order = list(FIELD_LABELS)
    return dict(sorted(rec.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99))


def changes(before: dict[str, Any] | None, after: dict[str, Any]) -> list[dict[str, str]]:
    """The fields a version changed, each with its label's message id and both values."""
    if before is None:
        return []
    out = []
    for key in [*after, *(k for k in before if k not in after)]:
        if before.get(key) == after.get(key) or key == "event_time":
            continue
        out.append(
            {
                "label": FIELD_LABELS.get(key, key),
                "before": _shown(before.get(key)),
                "after": _shown(after.get(key)),
            }
        )
    return out


def versions(session: Session, eid: int, record_seq: int) -> list[dict[str, Any]]:
    """The record's versions, oldest first: its first entry, then each correction of it
    (seq, when, who, why, the record as that version states it, what it changed)."""
    seqs = [
        record_seq,
        *queries.corrections_of(session=session, enterprise_id=eid, seqs=[record_seq]).get(
            record_seq, []
        ),
    ]
    out: list[dict[str, Any]] = []
    before = None
    for n, seq in enumerate(seqs, start=1):
        env = json.loads(ledger.get_entry(session=session, ledger_id=eid, seq=seq).body)
        body = env["body"]
        rec = body["record"] if env["kind"] == RecordKind.CORRECTION else body
        out.append(
            {
                "n": n,
                "seq": seq,
                "recorded_at": env["recorded_at"],
                "actor": env["actor"],
                "reason": body.get("reason") if env["kind"] == RecordKind.CORRECTION else None,
                "record": rec,
                "changes": changes(before, rec),
            }
        )
        before = rec
    return out


def _admin(pair: Any) -> bool:
    return bool(pair[0].principal.role == "enterprise_admin")


@router.get("/master/{what}")
def master_page(
    what: MasterWhat, request: Request, pair: PageEnterpriseUser, engine: EngineDep
) -> Response:
    table = _table(what)
    with FoodtraceSession(engine) as session:
        rows = queries.list_rows(session=session, enterprise_id=pair[1].enterprise_id, table=what)
    rows.sort(key=lambda r: (bool(r.get("inactive")), r["record_seq"]))  # inactive last
    return render(
        request,
        "master.html",
        {
            "rows": rows,
            "what": what,
            "kind": table.kind,
            "title": table.title,
            "limit_text": limits_text,
            "can_edit": _admin(pair),
        },
        user=pair[0],
    )


@router.get("/master/{what}/{code}")
def master_item_page(
    what: MasterWhat,
    code: MasterCode,
    request: Request,
    pair: PageEnterpriseUser,
    engine: EngineDep,
) -> Response:
    table = _table(what)
    eid = pair[1].enterprise_id
    with FoodtraceSession(engine) as session:
        row = _row(session, eid, what, code)
        history = versions(session, eid, row["record_seq"])
    return render(
        request,
        "master_item.html",
        {
            "row": row,
            "what": what,
            "table": table,
            "current": _ordered(history[-1]["record"]),
            "history": list(reversed(history)),
            "labels": FIELD_LABELS,
            "shown": _shown,
            "limit_text": limits_text,
            "can_edit": _admin(pair),
            "saved": request.query_params.get("saved"),
        },
        user=pair[0],
    )


def _rows_in(values: dict[str, str], name: str) -> int:
    """How many rows of the list ``name`` the values fill (``name.<i>.<field>``)."""
    found = [
        int(k.split(".")[1])
        for k in values
        if k.startswith(name + ".") and k.count(".") >= 2 and k.split(".")[1].isdigit()
    ]
    return max(found) + 1 if found else 0


def edit_spec(table: Table, opts: Options, values: dict[str, str], now: Any) -> Spec:
    """The kind's own form, for a new version: the code stays (it names the record), every
    list has a row for each of the version's items and one more, and a party can be set
    inactive."""
    spec = spec_for(table.kind, opts, values, now)
    items: list[Field | Rows] = []
    for item in spec.items:
        if isinstance(item, Rows):
            item = replace(item, count=max(item.count, _rows_in(values, item.name) + 1))
        elif item.name == "code":
            item = replace(item, readonly=True, hint=None)
        items.append(item)
    if table.parties:
        items.append(INACTIVE)
    return replace(spec, items=items)


def _edit_page(
    request: Request,
    pair: Any,
    session: Session,
    table: Table,
    row: dict[str, Any],
    values: dict[str, str],
    now: Any,
    *,
    errors: dict[str, list[dict[str, Any]]] | None = None,
    status_code: int = 200,
) -> Response:
    opts = Options(session, pair[1].enterprise_id)
    from web.i18n import translations
    from web.web import request_locale

    t = translations(request_locale(request))
    spec = edit_spec(table, opts, values, now)
    also = {"reason": N_("Reason for the correction")}
    placed = place_errors(spec, errors or {}, also)
    return render(
        request,
        "record_form.html",
        {
            "spec": spec,
            "values": values,
            "errors": placed,
            "summary": error_summary(spec, placed, also),
            "action": request.url.path,
            "prompt": None,
            "confirm_name": None,
            "confirm_label": None,
            "saved": None,
            "saved_warnings": [],
            "correcting": True,
            "original": None,
            "heading": t.gettext(table.edit) % {"name": row["name"]},
        },
        user=pair[0],
        status_code=status_code,
    )


def _current(session: Session, eid: int, row: dict[str, Any]) -> dict[str, Any]:
    return dict(versions(session, eid, row["record_seq"])[-1]["record"])


@router.get("/master/{what}/{code}/edit")
def edit_page(
    what: MasterWhat,
    code: MasterCode,
    request: Request,
    pair: PageEnterpriseAdmin,
    engine: EngineDep,
    clock: ClockDep,
) -> Response:
    table = _table(what)
    eid = pair[1].enterprise_id
    with FoodtraceSession(engine) as session:
        row = _row(session, eid, what, code)
        values = flatten(table.kind, _current(session, eid, row))
        return _edit_page(request, pair, session, table, row, values, clock.now())


def _new_version(
    session: Session,
    eid: int,
    table: Table,
    row: dict[str, Any],
    data: dict[str, Any],
    reason: str,
    actor: str,
    clock: Any,
) -> int:
    """Append the record's new version (a correction of its first entry); refuse a version
    that changes nothing (RecordError)."""
    current = _current(session, eid, row)
    data = {**data, "code": row["code"]}  # the code names the record: it stays
    if not data.get("inactive"):
        data.pop("inactive", None)  # an active party's record says nothing of it
    same = validate(table.kind, current).model_dump(mode="json", exclude_none=True)
    try:
        new = validate(table.kind, data).model_dump(mode="json", exclude_none=True)
    except RecordError as exc:
        raise RecordError(
            [type(p)(("record", *p.loc), p.msg, p.type, p.ctx) for p in exc.problems]
        ) from None
    if new == same:
        raise RecordError.at(msg="nothing was changed: no new version written", type="unchanged")
    result = record(
        session=session,
        ledger_id=eid,
        kind=RecordKind.CORRECTION,
        data={"corrects": row["record_seq"], "reason": reason, "record": data},
        actor=actor,
        clock=clock,
    )
    return result.seq


def _item_url(what: str, code: str, saved: int) -> str:
    return f"/master/{what}/{quote(code, safe='')}?saved={saved}"


@router.post("/master/{what}/{code}/edit")
async def save_edit(
    what: MasterWhat,
    code: MasterCode,
    request: Request,
    pair: PageEnterpriseAdmin,
    user: CsrfUser,
    session: WriteSessionDep,
    clock: ClockDep,
) -> Response:
    table = _table(what)
    eid = pair[1].enterprise_id
    row = _row(session, eid, what, code)
    values, _ = await _posted(request)
    values["code"] = row["code"]
    if values.get("save") != "1":  # a choice changed, or "add a row": show the form again
        return _edit_page(request, pair, session, table, row, values, clock.now())
    opts = Options(session, eid)
    data, rows_map = parse(edit_spec(table, opts, values, clock.now()), values, opts)
    try:
        seq = _new_version(
            session, eid, table, row, data, values.get("reason", ""), user.principal.username, clock
        )
    except RecordError as exc:
        session.rollback()
        return _edit_page(
            request,
            pair,
            session,
            table,
            row,
            values,
            clock.now(),
            errors=_problems(exc, rows_map),
            status_code=422,
        )
    return redirect(_item_url(what, row["code"], seq))


@router.post("/master/{what}/{code}/status")
async def set_status(
    what: MasterWhat,
    code: MasterCode,
    request: Request,
    pair: PageEnterpriseAdmin,
    user: CsrfUser,
    session: WriteSessionDep,
    clock: ClockDep,
) -> Response:
    """Set a supplier or customer inactive (or active again): a new version saying so."""
    table = _table(what)
    if not table.parties:
        raise NotFound(what)
    eid = pair[1].enterprise_id
    row = _row(session, eid, what, code)
    values, _ = await _posted(request)
    data = _current(session, eid, row)
    data["inactive"] = values.get("inactive") == "true"
    try:
        seq = _new_version(
            session, eid, table, row, data, values.get("reason", ""), user.principal.username, clock
        )
    except RecordError as exc:
        session.rollback()
        history = versions(session, eid, row["record_seq"])
        return render(
            request,
            "master_item.html",
            {
                "row": row,
                "what": what,
                "table": table,
                "current": _ordered(history[-1]["record"]),
                "history": list(reversed(history)),
                "labels": FIELD_LABELS,
                "shown": _shown,
                "limit_text": limits_text,
                "can_edit": True,
                "saved": None,
                "status_errors": [
                    {"loc": list(p.loc), "msg": p.msg, "type": p.type, "ctx": p.ctx}
                    for p in exc.problems
                ],
            },
            user=pair[0],
            status_code=422,
        )
    return redirect(_item_url(what, row["code"], seq))
