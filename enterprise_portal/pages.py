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
from sqlmodel import Session

from enterprise_portal.entry_view import entry_fields
from enterprise_portal.forms import (
    FORMS,
    Options,
    Spec,
    ccp_readings_spec,
    edit_rows,
    error_summary,
    field_key,
    flatten,
    number_problems,
    parse,
    parse_readings,
    place_errors,
    prefill,
    prefill_readings,
    readings_question,
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
from foodtrace.records import obligations, queries
from foodtrace.records.kinds import BY_KIND, REGISTRY, Owner
from foodtrace.records.service import known_kind, record
from schemas.params import FormCount, FormDate, Seq
from schemas.records import SYSTEM_KINDS, RecordKind
from web.deps import ClockDep, EngineDep, WriteSessionDep, verify_cached
from web.i18n import N_, translations
from web.labels import read_text
from web.paging import first_part, wanted
from web.timeline import lot_timeline
from web.user_changes import change_user_in
from web.web import (
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

KIND_LABELS = {k.kind: k.label for k in REGISTRY if not k.owner == Owner.AUTHORITY}
"""Every kind an enterprise's ledger holds, by its label's message id (records/kinds)."""
FORM_KINDS = [(kind, BY_KIND[kind].label, BY_KIND[kind].summary) for kind in FORMS]
"""The records index: each kind with a page form, its name and its one-line summary."""
ROLE_LABELS = {"enterprise_user": N_("Operator"), "enterprise_admin": N_("Enterprise admin")}


def _kind(kind: str) -> RecordKind:
    """A kind users enter on a page (it has a form); 404 for any other name."""
    if kind not in FORMS:
        raise NotFound(kind)
    return known_kind(kind)


@router.get("/records")
def records_index(request: Request, pair: PageEnterpriseUser) -> Response:
    return render(request, "records_index.html", {"kinds": FORM_KINDS}, user=pair[0])


OWED_PAGE = 25
"""Items of what is owed on one page of Today (each a kind and a lot, with its count)."""


@router.get("/today")
def today(
    request: Request,
    pair: PageEnterpriseUser,
    engine: EngineDep,
    clock: ClockDep,
    owed_page: Annotated[FormCount, Query()] = None,
) -> Response:
    eid, now = pair[1].enterprise_id, clock.now()
    with FoodtraceSession(engine) as session:
        view = obligations.today_view(
            session=session, enterprise_id=eid, now=now, limit=wanted(request, "recorded")
        )
        total = obligations.recorded_today_count(session=session, enterprise_id=eid, now=now)
        recalls = _recalls(session, eid)
    part = first_part(request, view.recorded, "recorded", total=total)
    groups = obligations.grouped(view.owed)
    counts = obligations.counts_by_code(groups)
    code = request.query_params.get("code")
    shown = [g for g in groups if g.code == code] if code in counts else groups
    page_no = owed_page or 0
    pages = max(1, -(-len(shown) // OWED_PAGE))
    page_no = min(page_no, pages - 1)
    from urllib.parse import urlencode

    def owed_url(n: int) -> str:
        query = {k: v for k, v in request.query_params.items() if k != "owed_page"}
        return f"/today?{urlencode({**query, 'owed_page': n})}#owed"

    return render(
        request,
        "today.html",
        {
            "today": view,
            "part": part,
            "kind_labels": KIND_LABELS,
            "recalls": recalls,
            "groups": shown[page_no * OWED_PAGE : (page_no + 1) * OWED_PAGE],
            "counts": counts,
            "code": code if code in counts else None,
            "owed_total": len(shown),
            "owed_from": page_no * OWED_PAGE + 1,
            "prev_owed": owed_url(page_no - 1) if page_no > 0 else None,
            "next_owed": owed_url(page_no + 1) if page_no + 1 < pages else None,
        },
        user=pair[0],
    )


def _recalls(session: Session, enterprise_id: int) -> list[Any]:
    """The recalls waiting for the enterprise's actions, each with its progress (top of
    Today: a recall comes before every other record owed)."""
    from foodtrace.accounts.models import Enterprise
    from foodtrace.cases import service as cases
    from web.public import case_public

    ent = session.get(Enterprise, enterprise_id)
    if ent is None:
        return []
    out = []
    for ref, _case in cases.open_recalls(session, ent):
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
    spec: Spec | None = None,
    notice: str | None = None,
) -> Response:
    opts = Options(session, pair[1].enterprise_id)
    spec = spec or spec_for(kind, opts, values, now)
    also = {"reason": N_("Reason for the correction")} if correcting is not None else None
    placed = place_errors(spec, errors or {}, also)
    return render(
        request,
        "record_form.html",
        {
            "spec": spec,
            "values": values,
            "errors": placed,
            "summary": error_summary(spec, placed, also),
            "notice": notice,
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
        values = prefill(
            k, opts, _query_values(request), clock.now(), pair[0].display, _gettext(request)
        )
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


def _gettext(request: Request) -> Any:
    """The page's translation function (the user's language)."""
    return translations(request_locale(request)).gettext


SAVE = ("1", "enter")
"""The save buttons' values: the Save button's, and the hidden first button's that Enter
in a field presses (a form's default button is its first; the rows' buttons come before
Save)."""


def _row_edit(values: dict[str, str]) -> dict[str, str] | None:
    """The values after an "add a row" or "remove" button (no JavaScript), else None."""
    add, remove = values.pop("add_row", ""), values.pop("remove_row", "")
    return edit_rows(values, add=add, remove=remove) if add or remove else None


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
    kind: str, data: dict[str, Any], values: dict[str, str], opts: Options, locale: str
) -> tuple[str, tuple[str, str]] | None:
    """A question to ask before saving: a reading outside its limits, a sale of an untested lot
    (the kind's form asks it)."""
    ask = FORMS[kind].question
    found = ask(data, values, opts) if ask is not None else None
    if found is None:
        return None
    t = translations(locale)
    message, args, (name, label) = found
    return t.gettext(message) % args, (name, t.gettext(label))


@router.post("/records/{kind}/new")
async def save_record(
    kind: str,
    request: Request,
    pair: PageEnterpriseUser,
    user: CsrfUser,
    session: WriteSessionDep,
    clock: ClockDep,
) -> Response:
    k = _kind(kind)
    values, files = await _posted(request)
    locale = request_locale(request)
    opts = Options(session, pair[1].enterprise_id)
    edited = _row_edit(values)
    if edited is not None or values.get("save") not in SAVE:
        # a row added or removed, or a choice changed: redraw the form, saving nothing
        return _form_page(
            request,
            pair,
            session,
            k,
            prefill(k, opts, edited or values, clock.now(), user.display, _gettext(request)),
            clock.now(),
            action=request.url.path,
        )
    spec = spec_for(k, opts, values, clock.now())
    data, rows_map = parse(spec, values, opts)
    not_numbers = number_problems(spec, values)
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
        if not_numbers:  # the core read the rest; a number it could not read is said plainly
            raise RecordError([])
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
            errors={**_problems(exc, rows_map), **not_numbers},
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
    keep = {n: values[n] for n in FORMS[k].keep if values.get(n)}
    from urllib.parse import urlencode

    return redirect(f"/records/{k}/new?" + urlencode({"saved": result.seq, "warn": warn, **keep}))


READINGS = "/records/ccp_record/batch"
"""The several-readings form: a lot's missing readings of one CCP parameter, in one table."""


def _readings_page(
    request: Request,
    pair: Any,
    session: Session,
    values: dict[str, str],
    now: Any,
    **kw: Any,
) -> Response:
    opts = Options(session, pair[1].enterprise_id)
    spec = ccp_readings_spec(opts, values)
    return _form_page(
        request, pair, session, RecordKind.CCP_RECORD, values, now, action=READINGS, spec=spec, **kw
    )


@router.get(READINGS)
def new_readings(
    request: Request, pair: PageEnterpriseUser, engine: EngineDep, clock: ClockDep
) -> Response:
    with FoodtraceSession(engine) as session:
        opts = Options(session, pair[1].enterprise_id)
        query = _query_values(request)
        values = prefill_readings(opts, query, clock.now(), pair[0].display)
        saved, count = request.query_params.get("saved"), request.query_params.get("count")
        notice = None
        if saved and count and count.isdigit():
            t = translations(request_locale(request))
            notice = t.gettext("CCP readings saved: %(n)s.") % {"n": count}
        return _readings_page(
            request, pair, session, values, clock.now(), saved=saved, notice=notice
        )


# Where a reading's problem is shown: the row's field, or the field the form shares.
_READING_FIELDS = {"measured_at", "value", "unit", "result", "corrective_action"}


@router.post(READINGS)
async def save_readings(
    request: Request,
    pair: PageEnterpriseUser,
    user: CsrfUser,
    session: WriteSessionDep,
    clock: ClockDep,
) -> Response:
    """Several readings of one parameter of one lot, all or none: each row is checked as
    the rows above it leave the ledger, and every refused row is reported."""
    values, _ = await _posted(request)
    opts = Options(session, pair[1].enterprise_id)
    edited = _row_edit(values)
    if edited is not None or values.get("save") not in SAVE:
        return _readings_page(
            request,
            pair,
            session,
            prefill_readings(opts, edited or values, clock.now(), user.display),
            clock.now(),
        )
    spec = ccp_readings_spec(opts, values)
    readings = parse_readings(spec, values, opts)
    not_numbers = number_problems(spec, values)
    errors: dict[str, list[dict[str, Any]]] = {}
    if not readings:
        errors.setdefault("readings", []).append(
            {"type": "rows_empty", "msg": "fill in at least one row", "ctx": {}}
        )
    question = readings_question(readings, values, opts) if not errors and not not_numbers else None
    if question:
        t = translations(request_locale(request))
        message, args, (name, label) = question
        return _readings_page(
            request,
            pair,
            session,
            values,
            clock.now(),
            prompt=t.gettext(message) % args,
            confirm=(name, t.gettext(label)),
        )
    done = []
    for row, data in readings:
        try:
            with session.begin_nested():  # a refused row leaves the rows above it as they were
                done.append(
                    record(
                        session=session,
                        ledger_id=pair[1].enterprise_id,
                        kind=RecordKind.CCP_RECORD,
                        data=data,
                        actor=user.principal.username,
                        clock=clock,
                    )
                )
        except RecordError as exc:
            for p in exc.problems:
                loc = [str(x) for x in p.loc if str(x) != "record"]
                head = loc[0] if loc else ""
                key = (
                    f"readings.{row}.{head}"
                    if head in _READING_FIELDS
                    else head or f"readings.{row}"
                )
                problem = {"loc": list(p.loc), "msg": p.msg, "type": p.type, "ctx": p.ctx}
                if problem not in errors.setdefault(key, []):  # a shared field's, once
                    errors[key].append(problem)
    errors.update(not_numbers)  # said plainly, instead of the core's words
    if errors:
        session.rollback()  # all or nothing
        return _readings_page(
            request, pair, session, values, clock.now(), errors=errors, status_code=422
        )
    from urllib.parse import urlencode

    keep = {"lot_code": values.get("lot_code", ""), "point": values.get("point", "")}
    return redirect(f"{READINGS}?" + urlencode({"saved": done[0].seq, "count": len(done), **keep}))


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
    seq: PageSeq, request: Request, pair: PageEnterpriseUser, engine: EngineDep, clock: ClockDep
) -> Response:
    eid = pair[1].enterprise_id
    with FoodtraceSession(engine) as session:
        entry, env, history = _entry_view(session, eid, seq)
        current = _latest(session, eid, history) if history else None  # the entry read once
        kind, body = entry.kind, env["body"]
        if kind == "correction":  # its record, labelled as the corrected entry's kind
            kind = ledger.get_entry(session=session, ledger_id=eid, seq=body["corrects"]).kind
            body = body.get("record") or {}
        fields = entry_fields(
            session, eid, kind, body, current, request_locale(request), clock.now()
        )
    return render(
        request,
        "entry.html",
        {
            "entry": entry,
            "fields": fields,
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
    _entry, env, history = _entry_view(session, eid, seq)
    return _latest(session, eid, history) if history else env["body"]


def _latest(session: Session, eid: int, history: list[dict[str, Any]]) -> dict[str, Any]:
    """The record as its latest correction (``history``'s last) gives it."""
    fix = ledger.get_entry(session=session, ledger_id=eid, seq=history[-1]["seq"])
    record: dict[str, Any] = json.loads(fix.body)["body"]["record"]
    return record


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
    session: WriteSessionDep,
    clock: ClockDep,
) -> Response:
    values, _ = await _posted(request)
    entry, env, _ = _entry_view(session, pair[1].enterprise_id, seq)
    k = _kind(entry.kind)
    original = {"seq": seq, "text": json.dumps(env["body"], ensure_ascii=False, indent=2)}
    opts = Options(session, pair[1].enterprise_id)
    edited = _row_edit(values)
    if edited is not None or values.get("save") not in SAVE:
        return _form_page(
            request,
            pair,
            session,
            k,
            edited or values,
            clock.now(),
            action=request.url.path,
            correcting=original,
        )
    spec = spec_for(k, opts, values, clock.now())
    data, rows_map = parse(spec, values, opts)
    not_numbers = number_problems(spec, values)
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
        if not_numbers:
            raise RecordError([])
    except RecordError as exc:
        session.rollback()
        errors = {**_problems(exc, rows_map), **not_numbers}
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


PAGE = 50
"""Entries on one page of the ledger page."""


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
        lines = queries.ledger_lines(
            session=session,
            enterprise_id=eid,
            kind=kind,
            lot_code=lot,
            since=day_start(since),
            until=day_start(until, 1),
            offset=page * PAGE,
            limit=PAGE,
        )
        names = queries.parameter_names(session, eid)
    count = lines.count
    base = {k: v for k, v in q.items() if k != "page" and v}
    from urllib.parse import urlencode

    return render(
        request,
        "ledger.html",
        {
            "report": report,
            "names": names,
            "entries": [e.model_dump() for e in lines.data],
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
            if (page + 1) * PAGE < count
            else None,
        },
        user=pair[0],
    )


LOTS_PAGE = 50
"""Lots on one page of the lots list."""
LOT_STATUSES = {
    "released": N_("Released"),
    "failed": N_("Release test failed"),
    "untested": N_("No release test"),
}


@router.get("/lots")
def lots_page(
    request: Request,
    pair: PageEnterpriseUser,
    engine: EngineDep,
    page: Annotated[FormCount, Query()] = None,
    since: Annotated[FormDate, Query()] = None,
    until: Annotated[FormDate, Query()] = None,
) -> Response:
    """The enterprise's lots: searched by code, filtered by product, production dates and
    release status in the database, a page at a time."""
    from urllib.parse import urlencode

    from foodtrace.records.lot_search import find_own_lots

    q = request.query_params
    eid = pair[1].enterprise_id
    page = page or 0
    code = (q.get("q") or "").strip()[:64] or None
    status = q.get("status") if q.get("status") in LOT_STATUSES else None
    with FoodtraceSession(engine) as session:
        products = queries.list_rows(session=session, enterprise_id=eid, table="products")
        by_code = {p["code"]: p["record_seq"] for p in products}
        product = q.get("product") if q.get("product") in by_code else None
        found = find_own_lots(
            session=session,
            enterprise_id=eid,
            code=code,
            product_seq=by_code[product] if product else None,
            since=since,
            until=until,
            status=status,
            offset=page * LOTS_PAGE,
            limit=LOTS_PAGE,
        )
    base = {k: v for k, v in q.items() if k != "page" and v}
    return render(
        request,
        "lots.html",
        {
            "lots": found.rows,
            "count": found.count,
            "first": page * LOTS_PAGE + 1,
            "products": {p["record_seq"]: p["name"] for p in products},
            "product_choices": [(p["code"], p["name"]) for p in products],
            "statuses": LOT_STATUSES,
            "f": {
                "q": code or "",
                "product": product,
                "status": status,
                "since": since.isoformat() if since else "",
                "until": until.isoformat() if until else "",
            },
            "prev_url": f"/lots?{urlencode({**base, 'page': page - 1})}" if page > 0 else None,
            "next_url": f"/lots?{urlencode({**base, 'page': page + 1})}"
            if (page + 1) * LOTS_PAGE < found.count
            else None,
        },
        user=pair[0],
    )


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
    request: Request,
    pair: PageEnterpriseAdmin,
    user: CsrfUser,
    session: WriteSessionDep,
    clock: ClockDep,
) -> Response:
    values, _ = await _posted(request)
    t = translations(request_locale(request))
    from foodtrace.accounts.models import Enterprise

    own = session.get(Enterprise, pair[1].enterprise_id)
    role = values.get("role", "")
    try:
        if role not in ENTERPRISE_ROLES:
            raise RecordError.at("role", msg="enterprise_user or enterprise_admin", type="invalid")
        add_user(
            session=session,
            username=values.get("username", "").strip(),
            password=values.get("password", ""),
            role=role,
            now=clock.now(),
            display_name=values.get("display_name") or None,
            enterprise_credit_code=own.credit_code if own else None,
        )
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
    session: WriteSessionDep,
    clock: ClockDep,
) -> Response:
    """Disable, enable or change the role of one of the enterprise's users."""
    values, _ = await _posted(request)
    outcome = change_user_in(
        session=session,
        request=request,
        clock=clock,
        actor=user.principal.username,
        username=username,
        form=values,
        enterprise_id=pair[1].enterprise_id,
    )
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
    request: Request,
    pair: PageEnterpriseAdmin,
    user: CsrfUser,
    session: WriteSessionDep,
    clock: ClockDep,
) -> Response:
    values, _ = await _posted(request)
    try:
        token = create_api_token(
            session=session,
            user_id=user.principal.user_id,
            name=values.get("name", ""),
            now=clock.now(),
        )
    except RecordError as exc:
        session.rollback()
        return _users_page(request, pair, session, error=str(exc))
    return _users_page(request, pair, session, new_token=token)


@router.post("/admin/tokens/{token_id}/revoke")
def revoke_token_page(
    token_id: Annotated[Seq, Path()],
    request: Request,
    pair: PageEnterpriseAdmin,
    user: CsrfUser,
    session: WriteSessionDep,
) -> Response:
    revoke_api_token(session=session, enterprise_id=pair[1].enterprise_id, token_id=token_id)
    return redirect("/admin/users")


@router.get("/reads")
def reads_page(request: Request, pair: PageEnterpriseUser, engine: EngineDep) -> Response:
    """Who at the regulator read this enterprise's records, newest first."""
    with FoodtraceSession(engine) as session:
        reads = reads_of(session=session, enterprise_id=pair[1].enterprise_id)
    gettext = translations(request_locale(request)).gettext
    reads = [{**r, "what": read_text(str(r["what"]), gettext)} for r in reads]
    return render(request, "reads.html", {"reads": reads}, user=pair[0])
