"""The enterprise portal's pages: Today, a form for every record, the ledger, lots, master data.

Handlers parse the form, call one core function and render; the rules live in
the core. Every page takes :data:`PageEnterpriseUser` (the cookie session), and
every post :data:`CsrfUser` as well.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlmodel import Session

from enterprise_portal.forms import (
    Options,
    deviates,
    field_key,
    flatten,
    limits_text,
    parse,
    prefill,
    spec_for,
)
from foodtrace.accounts.service import (
    ENTERPRISE_ROLES,
    add_user,
    create_api_token,
    enterprise_users,
    list_api_tokens,
    reads_of,
    revoke_api_token,
    user_changes,
)
from foodtrace.attachments.service import store_attachment
from foodtrace.db import FoodtraceSession
from foodtrace.errors import Conflict, NotFound, RecordError
from foodtrace.ledger import service as ledger
from foodtrace.ledger.models import Entry
from foodtrace.records import obligations, queries
from foodtrace.records.projection import TABLES
from foodtrace.records.service import record
from schemas.params import FormCount, FormDate, Seq
from schemas.records import SYSTEM_KINDS, RecordKind
from webapp.deps import ClockDep, EngineDep, verify_cached
from webapp.i18n import N_, translations
from webapp.paging import first_part, wanted
from webapp.timeline import lot_timeline
from webapp.user_changes import apply_user_change
from webapp.web import (
    CsrfUser,
    PageEnterpriseAdmin,
    PageEnterpriseUser,
    redirect,
    render,
    request_locale,
)

PageSeq = Annotated[Seq, Path()]
"""An entry's seq in a page's path (/ledger/{seq})."""

router = APIRouter(include_in_schema=False)

KIND_LABELS = {
    "enterprise": N_("Registration"),
    "product": N_("Product"),
    "supplier": N_("Supplier"),
    "customer": N_("Customer"),
    "material_check": N_("Incoming material check"),
    "production_lot": N_("Production lot"),
    "ccp_record": N_("CCP reading"),
    "corrective_action": N_("Corrective action"),
    "release_test": N_("Release test"),
    "sale": N_("Sale"),
    "self_inspection": N_("Self-inspection"),
    "correction": N_("Correction"),
    "recall_action": N_("Recall action"),
    "public_declaration": N_("Public declaration"),
}
FORM_KINDS = [
    (
        "material_check",
        N_("Incoming material check"),
        N_("Art. 50: what came in, from whom, accepted or not."),
    ),
    ("production_lot", N_("Production lot"), N_("Art. 46: the lot and the material lots it used.")),
    (
        "ccp_record",
        N_("CCP reading"),
        N_("A reading of a critical control point, checked against its limits."),
    ),
    ("corrective_action", N_("Corrective action"), N_("Close a CCP deviation.")),
    ("release_test", N_("Release test"), N_("Art. 51: the lot's test items and conclusion.")),
    ("sale", N_("Sale"), N_("Art. 51: who bought how much of which lot.")),
    ("self_inspection", N_("Self-inspection"), N_("Daily check, weekly review, monthly report.")),
    ("product", N_("Product"), N_("Product, CCP plan and release-test items.")),
    ("supplier", N_("Supplier"), N_("A supplier of materials.")),
    ("customer", N_("Customer"), N_("A buyer of your products.")),
]
ROLE_LABELS = {"enterprise_user": N_("Operator"), "enterprise_admin": N_("Enterprise admin")}


def _kind(kind: str) -> RecordKind:
    try:
        k = RecordKind(kind)
    except ValueError:
        raise NotFound(kind) from None
    if k in (RecordKind.ENTERPRISE, RecordKind.CORRECTION, *SYSTEM_KINDS):
        raise NotFound(kind)
    return k


@router.get("/records")
def records_index(request: Request, pair: PageEnterpriseUser) -> Response:
    return render(request, "records_index.html", {"kinds": FORM_KINDS}, user=pair[0])


@router.get("/today")
def today(
    request: Request, pair: PageEnterpriseUser, engine: EngineDep, clock: ClockDep
) -> Response:
    eid, now = pair[1].enterprise_id, clock.now()
    with FoodtraceSession(engine) as session:
        view = obligations.today_view(
            session=session, enterprise_id=eid, now=now, limit=wanted(request, "recorded")
        )
        total = obligations.recorded_today_count(session=session, enterprise_id=eid, now=now)
        recalls = _recalls(session, eid)
    part = first_part(request, view.recorded, "recorded", total=total)
    return render(
        request,
        "today.html",
        {"today": view, "part": part, "kind_labels": KIND_LABELS, "recalls": recalls},
        user=pair[0],
    )


def _recalls(session: Session, enterprise_id: int) -> list[Any]:
    """The recalls waiting for the enterprise's actions, each with its progress (top of
    Today: a recall comes before every other record owed)."""
    from foodtrace.accounts.models import Enterprise
    from foodtrace.cases import service as cases
    from webapp.public import case_public

    ent = session.get(Enterprise, enterprise_id)
    out = []
    for ref, _case in cases.open_recalls(session, ent) if ent is not None else []:
        view = cases.case_view(session, ref, enterprise_id=enterprise_id)
        out.append(
            case_public(session, view, next_states=[], only=ent.credit_code, with_trail=False)
        )
    return out


def _query_values(request: Request) -> dict[str, str]:
    q = dict(request.query_params)
    if "lot" in q and "lot_code" not in q:
        q["lot_code"] = q.pop("lot")
    if "reading" in q:
        q["reading_seq"] = q.pop("reading")
    q.pop("saved", None)
    q.pop("warn", None)
    return q


def _form_page(
    request: Request,
    pair: Any,
    session: Session,
    kind: RecordKind,
    values: dict[str, str],
    now: Any,
    *,
    errors: dict[str, list[dict[str, Any]]] | None = None,
    action: str,
    prompt: str | None = None,
    confirm: tuple[str, str] | None = None,
    saved: str | None = None,
    saved_warnings: list[dict[str, Any]] | None = None,
    correcting: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    opts = Options(session, pair[1].enterprise_id)
    spec = spec_for(kind, opts, values, now)
    return render(
        request,
        "record_form.html",
        {
            "spec": spec,
            "values": values,
            "errors": errors or {},
            "action": action,
            "prompt": prompt,
            "confirm_name": confirm[0] if confirm else None,
            "confirm_label": confirm[1] if confirm else None,
            "saved": saved,
            "saved_warnings": saved_warnings or [],
            "correcting": correcting is not None,
            "original": correcting,
            "heading": None,
        },
        user=pair[0],
        status_code=status_code,
    )


@router.get("/records/{kind}/new")
def new_record(
    kind: str, request: Request, pair: PageEnterpriseUser, engine: EngineDep, clock: ClockDep
) -> Response:
    k = _kind(kind)
    with FoodtraceSession(engine) as session:
        opts = Options(session, pair[1].enterprise_id)
        values = prefill(k, opts, _query_values(request), clock.now(), pair[0].display)
        saved = request.query_params.get("saved")
        warns = [
            {"type": w, "msg": w, "ctx": {}}
            for w in request.query_params.get("warn", "").split(",")
            if w
        ]
        return _form_page(
            request,
            pair,
            session,
            k,
            values,
            clock.now(),
            action=request.url.path,
            saved=saved,
            saved_warnings=warns,
        )


async def _posted(request: Request) -> tuple[dict[str, str], list[Any]]:
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    files = [
        f
        for k, f in form.multi_items()
        if k == "attachments" and not isinstance(f, str) and f.filename
    ]
    return values, files


def _problems(exc: RecordError, rows_map: dict[str, list[int]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for p in exc.problems:
        key = field_key([str(x) for x in p.loc], rows_map)
        out.setdefault(key, []).append(
            {"loc": list(p.loc), "msg": p.msg, "type": p.type, "ctx": p.ctx}
        )
    return out


def _precheck(
    kind: RecordKind, data: dict[str, Any], values: dict[str, str], opts: Options, locale: str
) -> tuple[str, tuple[str, str]] | None:
    """A question to ask before saving: a reading outside its limits, a sale of an untested lot."""
    t = translations(locale)
    if kind is RecordKind.CCP_RECORD and not data.get("corrective_action"):
        param = opts.plan_parameter(data.get("lot_code", ""), values.get("point", ""))
        if (
            param
            and deviates(param, data.get("value"), data.get("result"))
            and not values.get("confirm_open")
        ):
            return (
                t.gettext(
                    "This reading is outside the critical limits %(limits)s. Enter the "
                    "corrective action taken, or confirm to save it as an open deviation "
                    "that stays on the Today list until a corrective action closes it."
                )
                % {"limits": limits_text(param)},
                ("confirm_open", t.gettext("Save without corrective action (open deviation)")),
            )
    if kind is RecordKind.SALE and data.get("lot_code") and not values.get("confirm_unreleased"):
        if opts.lot(data["lot_code"]) and not opts.released(data["lot_code"]):
            return (
                t.gettext(
                    "Lot %(lot)s has no passing release test. A product may leave the plant "
                    "only after passing it (Food Safety Law Art. 52). If it was shipped anyway, "
                    "the sale must still be recorded, and it will stand as a finding."
                )
                % {"lot": data["lot_code"]},
                ("confirm_unreleased", t.gettext("Record the sale anyway")),
            )
    return None


@router.post("/records/{kind}/new")
async def save_record(
    kind: str,
    request: Request,
    pair: PageEnterpriseUser,
    user: CsrfUser,
    engine: EngineDep,
    clock: ClockDep,
) -> Response:
    k = _kind(kind)
    values, files = await _posted(request)
    locale = request_locale(request)
    from foodtrace.db import WRITE_OPTION

    with FoodtraceSession(engine.execution_options(**{WRITE_OPTION: True})) as session:
        opts = Options(session, pair[1].enterprise_id)
        if values.get("save") != "1":  # a choice changed: offer the matching options
            return _form_page(
                request,
                pair,
                session,
                k,
                prefill(k, opts, values, clock.now(), user.display),
                clock.now(),
                action=request.url.path,
            )
        spec = spec_for(k, opts, values, clock.now())
        data, rows_map = parse(spec, values, opts)
        question = _precheck(k, data, values, opts, locale)
        if question:
            return _form_page(
                request,
                pair,
                session,
                k,
                values,
                clock.now(),
                action=request.url.path,
                prompt=question[0],
                confirm=question[1],
                status_code=200,
            )
        try:
            shas = []
            for f in files:
                att = store_attachment(
                    session=session,
                    enterprise_id=pair[1].enterprise_id,
                    content=await f.read(),
                    media_type=f.content_type or "",
                    filename=f.filename or "",
                    now=clock.now(),
                )
                shas.append(att.sha256)
            if shas:
                data["attachments"] = shas
            result = record(
                session=session,
                ledger_id=pair[1].enterprise_id,
                kind=k,
                data=data,
                actor=user.principal.username,
                clock=clock,
            )
            session.commit()
        except RecordError as exc:
            session.rollback()
            return _form_page(
                request,
                pair,
                session,
                k,
                values,
                clock.now(),
                action=request.url.path,
                errors=_problems(exc, rows_map),
                status_code=422,
            )
        except Conflict as exc:
            session.rollback()
            return _form_page(
                request,
                pair,
                session,
                k,
                values,
                clock.now(),
                action=request.url.path,
                errors={"": [{"type": "conflict", "msg": str(exc), "ctx": {}}]},
                status_code=409,
            )
    warn = ",".join(w.type for w in result.warnings)
    keep = {
        n: values[n]
        for n in ("lot_code", "period")
        if values.get(n)
        and k in (RecordKind.CCP_RECORD, RecordKind.SALE, RecordKind.SELF_INSPECTION)
    }
    from urllib.parse import urlencode

    return redirect(
        f"/records/{k.value}/new?" + urlencode({"saved": result.seq, "warn": warn, **keep})
    )


def _entry_view(
    session: Session, eid: int, seq: int
) -> tuple[Any, dict[str, Any], list[dict[str, Any]]]:
    entry = ledger.get_entry(session=session, ledger_id=eid, seq=seq)
    env = json.loads(entry.body)
    fixes = queries.corrections_of(session=session, enterprise_id=eid, seqs=[seq]).get(seq, [])
    history = []
    for s in fixes:
        fix = json.loads(ledger.get_entry(session=session, ledger_id=eid, seq=s).body)
        history.append(
            {
                "seq": s,
                "recorded_at": fix["recorded_at"],
                "actor": fix["actor"],
                "reason": fix["body"]["reason"],
            }
        )
    return queries.entry_public(entry, corrected_by=fixes, with_body=True), env, history


@router.get("/ledger/{seq}")
def entry_page(
    seq: PageSeq, request: Request, pair: PageEnterpriseUser, engine: EngineDep
) -> Response:
    with FoodtraceSession(engine) as session:
        entry, env, history = _entry_view(session, pair[1].enterprise_id, seq)
    return render(
        request,
        "entry.html",
        {
            "entry": entry,
            "history": history,
            "kind_labels": KIND_LABELS,
            "body_text": json.dumps(env["body"], ensure_ascii=False, indent=2),
            "correctable": entry.kind not in ("correction", "enterprise", *SYSTEM_KINDS),
            "saved": request.query_params.get("saved"),
        },
        user=pair[0],
    )


def _current_body(session: Session, eid: int, seq: int) -> dict[str, Any]:
    """The record's current content: the latest correction's, or the original's."""
    entry, env, history = _entry_view(session, eid, seq)
    if history:
        latest = json.loads(
            ledger.get_entry(session=session, ledger_id=eid, seq=history[-1]["seq"]).body
        )
        return latest["body"]["record"]
    return env["body"]


@router.get("/ledger/{seq}/correct")
def correct_page(
    seq: PageSeq, request: Request, pair: PageEnterpriseUser, engine: EngineDep, clock: ClockDep
) -> Response:
    with FoodtraceSession(engine) as session:
        entry, env, _ = _entry_view(session, pair[1].enterprise_id, seq)
        k = _kind(entry.kind)
        values = flatten(k, _current_body(session, pair[1].enterprise_id, seq))
        original = {"seq": seq, "text": json.dumps(env["body"], ensure_ascii=False, indent=2)}
        return _form_page(
            request,
            pair,
            session,
            k,
            values,
            clock.now(),
            action=request.url.path,
            correcting=original,
        )


@router.post("/ledger/{seq}/correct")
async def save_correction(
    seq: PageSeq,
    request: Request,
    pair: PageEnterpriseUser,
    user: CsrfUser,
    engine: EngineDep,
    clock: ClockDep,
) -> Response:
    values, _ = await _posted(request)
    from foodtrace.db import WRITE_OPTION

    with FoodtraceSession(engine.execution_options(**{WRITE_OPTION: True})) as session:
        entry, env, _ = _entry_view(session, pair[1].enterprise_id, seq)
        k = _kind(entry.kind)
        original = {"seq": seq, "text": json.dumps(env["body"], ensure_ascii=False, indent=2)}
        opts = Options(session, pair[1].enterprise_id)
        if values.get("save") != "1":
            return _form_page(
                request,
                pair,
                session,
                k,
                values,
                clock.now(),
                action=request.url.path,
                correcting=original,
            )
        data, rows_map = parse(spec_for(k, opts, values, clock.now()), values, opts)
        # Statutory snapshots are rebuilt by the core from the master data.
        for key in ("supplier", "buyer"):
            data.pop(key, None)
        prior = _current_body(session, pair[1].enterprise_id, seq)
        if prior.get("attachments") and "attachments" not in data:
            data["attachments"] = prior["attachments"]
        try:
            result = record(
                session=session,
                ledger_id=pair[1].enterprise_id,
                kind=RecordKind.CORRECTION,
                data={"corrects": seq, "reason": values.get("reason", ""), "record": data},
                actor=user.principal.username,
                clock=clock,
            )
            session.commit()
        except RecordError as exc:
            session.rollback()
            errors = _problems(exc, rows_map)
            return _form_page(
                request,
                pair,
                session,
                k,
                values,
                clock.now(),
                action=request.url.path,
                errors=errors,
                correcting=original,
                status_code=422,
            )
    return redirect(f"/ledger/{seq}?saved={result.seq}")


@router.get("/ledger")
def ledger_page(
    request: Request,
    pair: PageEnterpriseUser,
    engine: EngineDep,
    page: Annotated[FormCount, Query()] = None,
    since: Annotated[FormDate, Query()] = None,
    until: Annotated[FormDate, Query()] = None,
) -> Response:
    q = request.query_params
    eid = pair[1].enterprise_id
    page = page or 0
    kind = q.get("kind") or None
    if kind not in KIND_LABELS:
        kind = None
    lot = (q.get("lot") or "").strip() or None
    from datetime import date, datetime, timedelta

    from foodtrace.clock import CST
    from schemas.types import format_instant

    def day_start(day: date | None, plus: int = 0) -> str | None:
        if day is None:
            return None
        return format_instant(
            datetime.combine(day + timedelta(days=plus), datetime.min.time(), CST)
        )

    with FoodtraceSession(engine) as session:
        report = verify_cached(request, eid)
        if lot:
            seqs = _lot_seqs(session, eid, lot)
            if kind:  # the kinds of the ledger's entries (two small columns), not the entries
                of_kind = session.execute(
                    select(Entry.seq).where(Entry.ledger_id == eid, Entry.kind == kind)
                ).scalars()
                seqs &= set(of_kind)
            count = len(seqs)
            # only the page's entries are read (a lot with 22k sales: 50 of them, not 22k)
            shown = sorted(seqs, reverse=True)[page * 50 : (page + 1) * 50]
            entries = list(
                session.execute(
                    select(Entry)
                    .where(Entry.ledger_id == eid, Entry.seq.in_(shown))
                    .order_by(Entry.seq.desc())
                ).scalars()
            )
        else:
            entries, count = ledger.list_entries(
                session=session,
                ledger_id=eid,
                offset=page * 50,
                limit=50,
                kind=kind,
                since=day_start(since),
                until=day_start(until, 1),
            )
        fixes = queries.corrections_of(
            session=session, enterprise_id=eid, seqs=[e.seq for e in entries]
        )
        rows = []
        for e in entries:
            pub = queries.entry_public(e, corrected_by=fixes.get(e.seq), with_body=True)
            rows.append(
                {**pub.model_dump(), "summary": obligations.summary(e.kind, pub.body or {})}
            )
    base = {k: v for k, v in q.items() if k != "page" and v}
    from urllib.parse import urlencode

    return render(
        request,
        "ledger.html",
        {
            "report": report,
            "entries": rows,
            "count": count,
            "kind_labels": KIND_LABELS,
            "f": {
                "kind": kind,
                "lot": lot,
                "since": since.isoformat() if since else None,
                "until": until.isoformat() if until else None,
            },
            "prev_url": f"/ledger?{urlencode({**base, 'page': page - 1})}" if page > 0 else None,
            "next_url": f"/ledger?{urlencode({**base, 'page': page + 1})}"
            if (page + 1) * 50 < count
            else None,
        },
        user=pair[0],
    )


def _lot_seqs(session: Session, eid: int, lot_code: str) -> set[int]:
    """Every entry about a lot: the lot, its readings, tests, sales, their corrections.

    Only the seq columns are read (a lot with 22k sales: 22k integers, not 22k rows)."""
    t = TABLES
    lot_seq = session.execute(
        select(t["lots"].c.record_seq).where(
            t["lots"].c.enterprise_id == eid, t["lots"].c.code == lot_code
        )
    ).scalar_one_or_none()
    if lot_seq is None:
        return set()
    seqs = {lot_seq}
    for table in ("ccp_readings", "release_tests", "sales"):
        c = t[table].c
        seqs |= set(
            session.execute(
                select(c.record_seq).where(c.enterprise_id == eid, c.lot_seq == lot_seq)
            ).scalars()
        )
    readings, actions = t["ccp_readings"].c, t["corrective_actions"].c
    seqs |= set(
        session.execute(
            select(actions.record_seq)
            .join(t["ccp_readings"], readings.record_seq == actions.reading_seq)
            .where(
                actions.enterprise_id == eid,
                readings.enterprise_id == eid,
                readings.lot_seq == lot_seq,
            )
        ).scalars()
    )
    corrections = t["corrections"].c
    targets = sorted(seqs)
    for i in range(0, len(targets), 10_000):  # within every database's bound-parameter limit
        seqs |= set(
            session.execute(
                select(corrections.record_seq).where(
                    corrections.enterprise_id == eid,
                    corrections.corrects_seq.in_(targets[i : i + 10_000]),
                )
            ).scalars()
        )
    return seqs


@router.get("/lots")
def lots_page(request: Request, pair: PageEnterpriseUser, engine: EngineDep) -> Response:
    with FoodtraceSession(engine) as session:
        rows = queries.list_rows(session=session, enterprise_id=pair[1].enterprise_id, table="lots")
        products = {
            p["record_seq"]: p["name"]
            for p in queries.list_rows(
                session=session, enterprise_id=pair[1].enterprise_id, table="products"
            )
        }
    rows.sort(key=lambda r: (r["production_date"], r["record_seq"]), reverse=True)
    return render(request, "lots.html", {"lots": rows, "products": products}, user=pair[0])


@router.get("/lots/{lot_code}")
def lot_page(
    lot_code: str, request: Request, pair: PageEnterpriseUser, engine: EngineDep
) -> Response:
    with FoodtraceSession(engine) as session:
        view = queries.lot_view(
            session=session, enterprise_id=pair[1].enterprise_id, lot_code=lot_code
        )
    timeline, released = lot_timeline(view)
    return render(
        request, "lot.html", {"lot": view, "timeline": timeline, "released": released}, user=pair[0]
    )


@router.get("/master/{what}")
def master_page(
    what: str, request: Request, pair: PageEnterpriseUser, engine: EngineDep
) -> Response:
    tables = {
        "products": ("product", N_("Products")),
        "suppliers": ("supplier", N_("Suppliers")),
        "customers": ("customer", N_("Customers")),
    }
    if what not in tables:
        raise NotFound(what)
    with FoodtraceSession(engine) as session:
        rows = queries.list_rows(session=session, enterprise_id=pair[1].enterprise_id, table=what)
    return render(
        request,
        "master.html",
        {
            "rows": rows,
            "kind": tables[what][0],
            "title": tables[what][1],
            "limit_text": limits_text,
        },
        user=pair[0],
    )


def _users_page(request: Request, pair: Any, session: Session, **extra: Any) -> Response:
    eid = pair[1].enterprise_id
    users = enterprise_users(session=session, enterprise_id=eid)
    return render(
        request,
        "users.html",
        {
            "users": users,
            "tokens": list_api_tokens(session=session, enterprise_id=eid),
            "changes": user_changes(session=session, user_ids=[u.id for u in users if u.id]),
            "role_labels": ROLE_LABELS,
            **extra,
        },
        user=pair[0],
        status_code=extra.pop("status_code", 200) if "status_code" in extra else 200,
    )


@router.get("/admin/users")
def users_page(request: Request, pair: PageEnterpriseAdmin, engine: EngineDep) -> Response:
    with FoodtraceSession(engine) as session:
        return _users_page(request, pair, session)


@router.post("/admin/users")
async def add_user_page(
    request: Request, pair: PageEnterpriseAdmin, user: CsrfUser, engine: EngineDep, clock: ClockDep
) -> Response:
    values, _ = await _posted(request)
    t = translations(request_locale(request))
    with FoodtraceSession(engine) as session:
        from foodtrace.accounts.models import Enterprise

        own = session.get(Enterprise, pair[1].enterprise_id)
        role = values.get("role", "")
        try:
            if role not in ENTERPRISE_ROLES:
                raise RecordError.at(
                    "role", msg="enterprise_user or enterprise_admin", type="invalid"
                )
            add_user(
                session=session,
                username=values.get("username", "").strip(),
                password=values.get("password", ""),
                role=role,
                now=clock.now(),
                display_name=values.get("display_name") or None,
                enterprise_credit_code=own.credit_code if own else None,
            )
            session.commit()
        except (RecordError, Conflict) as exc:
            session.rollback()
            return _users_page(request, pair, session, error=str(exc))
        return _users_page(request, pair, session, notice=t.gettext("User added."))


@router.post("/admin/users/{username}")
async def change_user_page(
    username: str,
    request: Request,
    pair: PageEnterpriseAdmin,
    user: CsrfUser,
    engine: EngineDep,
    clock: ClockDep,
) -> Response:
    """Disable, enable or change the role of one of the enterprise's users."""
    values, _ = await _posted(request)
    outcome = apply_user_change(
        request=request,
        engine=engine,
        clock=clock,
        actor=user.principal.username,
        username=username,
        form=values,
        enterprise_id=pair[1].enterprise_id,
    )
    with FoodtraceSession(engine) as session:
        return _users_page(
            request,
            pair,
            session,
            notice=outcome.notice,
            error=outcome.error,
            status_code=outcome.status_code,
        )


@router.post("/admin/tokens")
async def create_token_page(
    request: Request, pair: PageEnterpriseAdmin, user: CsrfUser, engine: EngineDep, clock: ClockDep
) -> Response:
    values, _ = await _posted(request)
    with FoodtraceSession(engine) as session:
        try:
            token = create_api_token(
                session=session,
                user_id=user.principal.user_id,
                name=values.get("name", ""),
                now=clock.now(),
            )
            session.commit()
        except RecordError as exc:
            return _users_page(request, pair, session, error=str(exc))
        return _users_page(request, pair, session, new_token=token)


@router.post("/admin/tokens/{token_id}/revoke")
def revoke_token_page(
    token_id: Annotated[Seq, Path()],
    request: Request,
    pair: PageEnterpriseAdmin,
    user: CsrfUser,
    engine: EngineDep,
) -> Response:
    with FoodtraceSession(engine) as session:
        revoke_api_token(session=session, enterprise_id=pair[1].enterprise_id, token_id=token_id)
        session.commit()
    return redirect("/admin/users")


@router.get("/reads")
def reads_page(request: Request, pair: PageEnterpriseUser, engine: EngineDep) -> Response:
    """Who at the regulator read this enterprise's records, newest first."""
    with FoodtraceSession(engine) as session:
        reads = reads_of(session=session, enterprise_id=pair[1].enterprise_id)
    return render(request, "reads.html", {"reads": reads}, user=pair[0])
