"""Recording: validate a record, append it as a ledger entry, write its derived rows.

Everything happens in the caller's transaction, under the ledger's head lock;
the caller commits (or rolls back, and then nothing was written).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import insert, select
from sqlmodel import Session

from foodtrace.accounts.models import Platform
from foodtrace.canonical import canonical_bytes
from foodtrace.clock import Clock, local_date
from foodtrace.errors import Conflict, FieldProblem, RecordError
from foodtrace.ledger import service as ledger
from foodtrace.ledger.models import Entry, IdempotencyKey, Ledger
from foodtrace.records.projection import (
    DbStore,
    Store,
    apply_entry,
    correction_target,
    declaration_due,
    lots_to_declare,
)
from schemas.records import (
    AUTHORITY_KINDS,
    RECORD_SCHEMAS,
    SYSTEM_KINDS,
    EnterpriseCreate,
    PublicDeclaration,
    RecordKind,
)
from schemas.types import format_instant

SYSTEM_ACTOR = "system"
"""The actor of the entries the platform writes itself (public declarations): no user's name
reaches the public through them."""

CLOCK_SKEW = timedelta(minutes=5)
"""How far ahead of the server's clock a stated time may be (device clocks drift)."""


@dataclass
class Recorded:
    """The result of recording: the entry as appended, and any warnings about it."""

    seq: int
    kind: str
    hash: str
    prev_hash: str
    recorded_at: str
    event_time: str
    body: dict[str, Any]
    warnings: list[FieldProblem] = field(default_factory=list)
    replayed: bool = False
    followed_by: list[int] = field(default_factory=list)
    """Entries the platform appended right after this one (a lot's public declaration)."""


def problems_from(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> RecordError:
    """A pydantic error as a :class:`RecordError` naming each field."""
    out = []
    for err in exc.errors(include_url=False):
        loc, msg = tuple(err["loc"]), err["msg"].removeprefix("Value error, ")
        # A model-level check names its field at the start of the message: "unit: …".
        named = _NAMED.match(msg)
        if named and not loc:
            loc, msg = (named.group(1),), named.group(2)
        ctx = {k: str(v) for k, v in (err.get("ctx") or {}).items() if k != "error"}
        out.append(FieldProblem((*prefix, *loc), msg, err["type"], ctx))
    return RecordError(out)


_NAMED = re.compile(r"^([a-z_]+)(?: or [a-z_]+)?: (.+)$", re.S)


def validate(kind: RecordKind, data: dict[str, Any] | BaseModel) -> BaseModel:
    """Check ``data`` against the schema of ``kind``; raise :class:`RecordError` naming fields."""
    schema = RECORD_SCHEMAS[kind]
    if isinstance(data, schema):
        return data
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json", exclude_none=True)
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise problems_from(exc) from None


def _not_in_future(value: Any, now: datetime, loc: tuple[str | int, ...]) -> None:
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _not_in_future(getattr(value, name), now, (*loc, name))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _not_in_future(v, now, (*loc, i))
    elif isinstance(value, datetime):
        if value > now + CLOCK_SKEW:
            raise RecordError.at(
                *loc,
                msg=f"{format_instant(value)} is in the future (now {format_instant(now)})",
                type="future",
            )
    elif isinstance(value, date) and value > local_date(now):
        raise RecordError.at(
            *loc, msg=f"{value} is in the future (today is {local_date(now)})", type="future"
        )


_NATURAL_TIME = {
    RecordKind.PRODUCTION_LOT: "ended_at",
    RecordKind.CCP_RECORD: "measured_at",
    RecordKind.CORRECTIVE_ACTION: "taken_at",
    RecordKind.RELEASE_TEST: "tested_at",
    RecordKind.RECALL_ACTION: "at",
}


def _snapshot(row: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: row[k] for k in keys if row.get(k) is not None}


def prepare(
    kind: RecordKind,
    model: BaseModel,
    store: Store,
    now: datetime,
    *,
    may_correct_registration: bool = False,
) -> dict[str, Any]:
    """The entry body for a validated record: its fields, plus the statutory facts it refers to.

    Art. 50 and 51 ask for the supplier's and the buyer's name, address and
    contact on the check and the sale; they are copied from the master data so
    that the entry is evidence on its own.
    """
    body = model.model_dump(mode="json", exclude_none=True, exclude={"event_time"})
    if kind == RecordKind.MATERIAL_CHECK:
        found = store.find("suppliers", code=body["supplier_code"])
        if not found:
            raise RecordError.at(
                "supplier_code",
                msg=f"supplier {body['supplier_code']!r} does not exist; record the supplier first",
                type="not_found",
            )
        body["supplier"] = _snapshot(
            found[0], ("name", "credit_code", "address", "contact", "licence_no")
        )
    elif kind == RecordKind.SALE:
        found = store.find("customers", code=body["customer_code"])
        if not found:
            raise RecordError.at(
                "customer_code",
                msg=f"customer {body['customer_code']!r} does not exist; record the customer first",
                type="not_found",
            )
        body["buyer"] = _snapshot(found[0], ("name", "credit_code", "address", "contact"))
    elif kind == RecordKind.CORRECTION:
        target = RecordKind(correction_target(store, body["corrects"]))
        if target is RecordKind.ENTERPRISE and not may_correct_registration:
            raise RecordError.at(
                "corrects",
                msg="an enterprise's registration (its region, licence, name) is corrected by "
                "the platform admin",
                type="immutable",
            )
        try:
            inner = RECORD_SCHEMAS[target].model_validate(body["record"])
        except ValidationError as exc:
            raise problems_from(exc, ("record",)) from None
        try:
            _not_in_future(inner, now, ())
        except RecordError as exc:
            raise RecordError(
                [FieldProblem(("record", *p.loc), p.msg, p.type, p.ctx) for p in exc.problems]
            ) from None
        body["record"] = prepare(target, inner, store, now)
    return body


def _digest(kind: RecordKind, model: BaseModel) -> str:
    data = {"kind": str(kind), "record": model.model_dump(mode="json", exclude_none=True)}
    return hashlib.sha256(canonical_bytes(data)).hexdigest()


def _replay(session: Session, ledger_id: int, seq: int) -> Recorded:
    entry = ledger.get_entry(session=session, ledger_id=ledger_id, seq=seq)
    env = json.loads(entry.body)
    return Recorded(
        seq=entry.seq,
        kind=entry.kind,
        hash=entry.hash.hex(),
        prev_hash=entry.prev_hash.hex(),
        recorded_at=entry.recorded_at,
        event_time=entry.event_time,
        body=env["body"],
        replayed=True,
    )


def record(
    *,
    session: Session,
    ledger_id: int,
    kind: RecordKind,
    data: dict[str, Any] | BaseModel,
    actor: str,
    clock: Clock,
    idempotency_key: str | None = None,
    may_correct_registration: bool = False,
    defer_head: bool = False,
    facts: dict[str, Any] | None = None,
) -> Recorded:
    """Append one record to ledger ``ledger_id``; refuse it, writing nothing, if it is invalid.

    ``may_correct_registration`` is for the platform admin only: an enterprise
    must not move itself out of its regulator's jurisdiction. ``facts`` are
    what the caller computed beside the record (a case's recall scope); they
    join the body and so the entry's hashed bytes.
    """
    kind = RecordKind(kind)
    if kind in SYSTEM_KINDS:
        raise RecordError.at(
            msg=f"a {kind} is written by the platform when a lot is released; "
            "it cannot be recorded",
            type="system_kind",
        )
    model = validate(kind, data)
    head = ledger.lock_head(session=session, ledger_id=ledger_id)
    if (kind in AUTHORITY_KINDS) != (head.owner_kind == "authority"):
        raise RecordError.at(
            msg=f"a {kind} record does not belong in the ledger of {head.credit_code}",
            type="wrong_ledger",
        )
    digest = _digest(kind, model) if idempotency_key is not None else ""
    if idempotency_key is not None:
        seen = session.get(IdempotencyKey, (ledger_id, idempotency_key))
        if seen is not None:
            if seen.request_digest != digest:
                raise Conflict(
                    f"idempotency key {idempotency_key!r} was used for a different request "
                    f"(entry {seen.seq})"
                )
            return _replay(session, ledger_id, seq=seen.seq)
    now = clock.now()
    _not_in_future(model, now, ())
    store = DbStore(session, ledger_id)
    body = prepare(kind, model, store, now, may_correct_registration=may_correct_registration)
    if facts:
        body.update(facts)
    seq = head.size + 1
    to_declare = lots_to_declare(store, kind, body)
    applied = apply_entry(store, seq, kind, body)
    to_declare |= lots_to_declare(store, kind, body)
    natural = _NATURAL_TIME.get(kind)
    event_time = model.event_time or (getattr(model, natural) if natural else None) or now
    entry = ledger.build_entry(
        head=head,
        kind=kind,
        body=body,
        actor=actor,
        event_time=format_instant(event_time),
        recorded_at=format_instant(now),
        salt=ledger.new_salt(),
    )
    appended = ledger.write_entry(session=session, head=head, entry=entry, defer_head=defer_head)
    declared = _declare(
        session=session, head=head, store=store, lots=to_declare, now=now, defer_head=defer_head
    )
    if idempotency_key is not None:
        session.execute(
            insert(IdempotencyKey).values(
                ledger_id=ledger_id, key=idempotency_key, request_digest=digest, seq=seq
            )
        )
    return Recorded(
        seq=seq,
        kind=kind,
        hash=appended.hash.hex(),
        prev_hash=appended.prev_hash.hex(),
        recorded_at=entry["recorded_at"],
        event_time=entry["event_time"],
        body=body,
        warnings=applied.warnings,
        followed_by=declared,
    )


def _declare(
    *,
    session: Session,
    head: Ledger,
    store: Store,
    lots: set[int],
    now: datetime,
    defer_head: bool,
) -> list[int]:
    """Append the public declaration each of ``lots`` needs now (projection.declaration_due).

    In the caller's transaction, right after the entry that made it due, so a
    lot is never released without its declaration, nor declared without the
    record behind it. Returns the seqs appended.
    """
    out = []
    for lot_seq in sorted(lots):
        found = store.find("lots", record_seq=lot_seq)
        body = declaration_due(store, found[0]) if found else None
        if body is None:
            continue
        PublicDeclaration.model_validate(body)  # exactly the public fields, nothing else
        seq = head.size + 1
        apply_entry(store, seq, RecordKind.PUBLIC_DECLARATION, body)
        entry = ledger.build_entry(
            head=head,
            kind=RecordKind.PUBLIC_DECLARATION,
            body=body,
            actor=SYSTEM_ACTOR,
            event_time=format_instant(now),
            recorded_at=format_instant(now),
            salt=ledger.new_salt(),
        )
        ledger.write_entry(session=session, head=head, entry=entry, defer_head=defer_head)
        out.append(seq)
    return out


def declare_released(*, session: Session, ledger_id: int, clock: Clock) -> list[int]:
    """Append the public declaration of every lot that is released but has none; their seqs.

    For ledgers written before public declarations existed (migration
    0006_public_declarations): a lot gets its declaration with its release test,
    so only those older lots lack one. Running it again appends nothing.
    """
    head = ledger.lock_head(session=session, ledger_id=ledger_id)
    if head.owner_kind != "enterprise":
        return []
    store = DbStore(session, ledger_id)
    declared = {r["lot_seq"] for r in store.find("public_declarations")}
    lots = {lot["record_seq"] for lot in store.find("lots")} - declared
    return _declare(
        session=session, head=head, store=store, lots=lots, now=clock.now(), defer_head=False
    )


def platform_name(session: Session) -> str:
    platform = session.get(Platform, 1)
    if platform is None:
        raise RuntimeError("the platform is not initialised (run foodtrace init or serve)")
    return platform.name


def register_enterprise(
    *, session: Session, data: dict[str, Any] | EnterpriseCreate, actor: str, clock: Clock
) -> Recorded:
    """Create an enterprise's ledger; its registration is the ledger's first entry."""
    model = validate(RecordKind.ENTERPRISE, data)
    assert isinstance(model, EnterpriseCreate)
    exists = session.execute(
        select(Ledger.id).where(Ledger.credit_code == model.credit_code)
    ).first()
    if exists:
        raise Conflict(f"an enterprise with credit code {model.credit_code} is already registered")
    head = ledger.new_ledger(
        session=session,
        owner_kind="enterprise",
        credit_code=model.credit_code,
        platform_name=platform_name(session),
        now=clock.now(),
    )
    assert head.id is not None
    return record(
        session=session,
        ledger_id=head.id,
        kind=RecordKind.ENTERPRISE,
        data=model,
        actor=actor,
        clock=clock,
    )


def entry_count(session: Session, ledger_id: int) -> int:
    return session.execute(select(Ledger.size).where(Ledger.id == ledger_id)).scalar_one()


__all__ = ["Entry", "Recorded", "record", "register_enterprise", "validate"]
