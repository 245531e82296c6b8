"""Recording: validate a record, append it as a ledger entry, write its derived rows.

Everything happens in the caller's transaction, under the ledger's head lock;
the caller commits (or rolls back, and then nothing was written).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any, get_args

from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlmodel import Session

from foodtrace.accounts.models import Platform
from foodtrace.bulk import insert_rows
from foodtrace.canonical import canonical_bytes, leaf_hash
from foodtrace.clock import Clock, local_date
from foodtrace.errors import Conflict, FieldProblem, RecordError
from foodtrace.ledger import service as ledger
from foodtrace.ledger.models import Entry, IdempotencyKey, Ledger
from foodtrace.records.derive import Applied, Store
from foodtrace.records.kinds import BY_KIND
from foodtrace.records.kinds.ccp_record import open_deviation
from foodtrace.records.kinds.public_declaration import declaration_due, lots_to_declare
from foodtrace.records.projection import (
    BatchStore,
    DbStore,
    DirectReplay,
    apply_entry,
    carry_cache,
    correction_target,
    resume_cache,
)
from foodtrace.tlog.merkle import CompactRange
from schemas.records import (
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
    schema = BY_KIND[kind].schema
    if isinstance(data, schema):
        return data
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json", exclude_none=True)
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise problems_from(exc) from None


def _not_in_future(value: Any, now: datetime, loc: tuple[str | int, ...]) -> None:
    """Refuse an instant later than ``now`` (with :data:`CLOCK_SKEW`) or a date after today."""
    _future(value, now, now + CLOCK_SKEW, local_date(now), loc)


def _future(
    value: Any, now: datetime, latest: datetime, today: date, loc: tuple[str | int, ...]
) -> None:
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return
    if isinstance(value, BaseModel):
        for name, v in value.__dict__.items():  # the model's fields, in order
            t = type(v)
            if t is not str and t is not int and t is not bool and v is not None:
                _future(v, now, latest, today, (*loc, name))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            t = type(v)
            if t is not str and t is not int and t is not bool and v is not None:
                _future(v, now, latest, today, (*loc, i))
    elif isinstance(value, datetime):
        if value > latest:
            raise RecordError.at(
                *loc,
                msg=f"{format_instant(value)} is in the future (now {format_instant(now)})",
                type="future",
            )
    elif isinstance(value, date) and value > today:
        raise RecordError.at(
            *loc, msg=f"{value} is in the future (today is {today})", type="future"
        )


def known_kind(kind: str) -> RecordKind:
    """The registered kind named ``kind`` (``records/kinds``); ValueError if there is none."""
    found = BY_KIND.get(kind)
    if found is None:
        raise ValueError(f"{kind!r} is not a record kind")
    return found.kind  # type: ignore[return-value]  # a RecordKind, or a str a test registered


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
    snap = BY_KIND[kind].snapshot
    if snap is not None:
        found = store.find(snap.table, code=body[snap.code_field])
        if not found:
            raise RecordError.at(
                snap.code_field,
                msg=f"{snap.what} {body[snap.code_field]!r} does not exist; "
                f"record the {snap.what} first",
                type="not_found",
            )
        body[snap.into] = _snapshot(found[0], snap.keys)
    elif kind == RecordKind.CORRECTION:
        target = known_kind(correction_target(store, body["corrects"]))
        if target is RecordKind.ENTERPRISE and not may_correct_registration:
            raise RecordError.at(
                "corrects",
                msg="an enterprise's registration (its region, licence, name) is corrected by "
                "the platform admin",
                type="immutable",
            )
        try:
            inner = BY_KIND[target].schema.model_validate(body["record"])
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


@cache
def _instant_fields(schema: type[BaseModel]) -> tuple[str, ...]:
    """The fields of ``schema`` written by ``format_instant`` (``schemas.types.Instant``),
    in the schema's order."""
    out = []
    for name, info in schema.model_fields.items():
        metadata = [*info.metadata]
        for arg in get_args(info.annotation):  # Optional[Instant]
            metadata += getattr(arg, "__metadata__", ())
        if any(getattr(m, "func", None) is format_instant for m in metadata):
            out.append(name)
    return tuple(out)


def _text_dump(model: BaseModel, instants: tuple[str, ...]) -> dict[str, Any] | None:
    """``model.model_dump(mode="json", exclude_none=True, exclude={"event_time"})`` of a
    record whose values are exact ``str`` or Instants, without pydantic's serializer
    (a fifth of the cost of an imported reading); None for any other value.

    Holds for a schema with no serializer but Instant's (its fields' text is dumped as
    it is): ``tests/test_fast_validation.py`` checks the CCP reading's schema, the one
    kind that takes this way, and compares both dumps on generated readings.
    """
    out = {}
    for name, value in model.__dict__.items():
        if type(value) is str:
            out[name] = value
        elif value is None or name == "event_time":
            continue
        elif type(value) is datetime and name in instants:
            out[name] = format_instant(value)
        else:
            return None
    return out


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

    A batch of one (:class:`Batch`): the same code writes an import's records.
    """
    kind = known_kind(kind)
    _refuse_system_kind(kind)
    model = validate(kind, data)
    with Batch(session=session, ledger_id=ledger_id, clock=clock, defer_head=defer_head) as batch:
        return batch.record(
            kind=kind,
            data=model,
            actor=actor,
            idempotency_key=idempotency_key,
            may_correct_registration=may_correct_registration,
            facts=facts,
        )


def _refuse_system_kind(kind: RecordKind) -> None:
    if BY_KIND[kind].system:
        raise RecordError.at(
            msg=f"a {kind} is written by the platform when a lot is released; "
            "it cannot be recorded",
            type="system_kind",
        )


_OPEN_BATCHES = "foodtrace.open_batches"


class Batch:
    """Records appended to one ledger in order, written with one statement per table.

    Takes the ledger's head lock when created. Each :meth:`record` checks and
    projects a record against the ledger as the records before it leave it
    (the database plus what the batch holds), builds its entry — canonical
    bytes, leaf hash, the chain link, the Merkle compact range — in memory,
    and holds its rows. :meth:`flush` (also on leaving a ``with`` block without
    an error) writes the held entries, derived rows and idempotency keys with
    one statement per table (a COPY on PostgreSQL: bulk.insert_rows) and moves
    the head once. The caller commits, or
    rolls back and nothing was written: the batch is as all-or-nothing as the
    transaction it runs in. The entries are the ones :func:`record` would have
    written one by one (it is a batch of one).
    """

    def __init__(
        self, *, session: Session, ledger_id: int, clock: Clock, defer_head: bool = False
    ) -> None:
        open_batches = session.info.setdefault(_OPEN_BATCHES, set())
        if ledger_id in open_batches:
            raise RuntimeError(f"ledger {ledger_id} already has an open batch in this session")
        self.session = session
        self.ledger_id = ledger_id
        self.clock = clock
        self.defer_head = defer_head
        self.head = ledger.lock_head(session=session, ledger_id=ledger_id)
        resume_cache(session, ledger_id, self.head.size, bytes(self.head.head_hash))
        self.store = BatchStore(DbStore(session, ledger_id), fresh_from=self.head.size + 1)
        self._direct = DirectReplay(self.store)
        self.tree = CompactRange.from_bytes(self.head.size, bytes(self.head.compact_range))
        self.size = self.head.size
        self.head_hash = bytes(self.head.head_hash)
        self.entries: list[dict[str, Any]] = []
        self.keys: list[dict[str, Any]] = []
        self._replays: dict[str, tuple[str, Recorded]] = {}
        open_batches.add(ledger_id)
        self._open = True
        self._failed = False
        self._now: datetime | None = None
        self._now_text = ""

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        try:
            if exc_type is None and self._open:
                self.flush()
        finally:
            self.close()

    def close(self) -> None:
        """Stop using the batch (what it holds and has not flushed is dropped)."""
        if self._open:
            self.session.info.get(_OPEN_BATCHES, set()).discard(self.ledger_id)
            self._open = False

    def __len__(self) -> int:
        return len(self.entries)

    def record(
        self,
        *,
        kind: RecordKind,
        data: dict[str, Any] | BaseModel,
        actor: str,
        idempotency_key: str | None = None,
        may_correct_registration: bool = False,
        facts: dict[str, Any] | None = None,
    ) -> Recorded:
        """Check and append one record (see :func:`record`).

        A record refused while its rows are applied may leave part of them held,
        or written (a correction replaces rows at once), as :func:`record`
        always did: the batch then refuses to flush, and the caller rolls back.
        A refusal before that (the schema, the ledger, an idempotency conflict,
        a missing supplier) leaves the batch as it was.
        """
        if not self._open:
            raise RuntimeError("the batch is closed")
        if self._failed:
            raise RuntimeError("a record of this batch was refused: roll back")
        return self._record(
            kind=kind,
            data=data,
            actor=actor,
            idempotency_key=idempotency_key,
            may_correct_registration=may_correct_registration,
            facts=facts,
        )

    def _record(
        self,
        *,
        kind: RecordKind,
        data: dict[str, Any] | BaseModel,
        actor: str,
        idempotency_key: str | None,
        may_correct_registration: bool,
        facts: dict[str, Any] | None,
    ) -> Recorded:
        kind = known_kind(kind)
        _refuse_system_kind(kind)
        model = validate(kind, data)
        head = self.head
        if BY_KIND[kind].owner != head.owner_kind:
            raise RecordError.at(
                msg=f"a {kind} record does not belong in the ledger of {head.credit_code}",
                type="wrong_ledger",
            )
        digest = _digest(kind, model) if idempotency_key is not None else ""
        if idempotency_key is not None:
            replay = self._replay_of(idempotency_key, digest)
            if replay is not None:
                return replay
        now = self.clock.now()
        _not_in_future(model, now, ())
        stamp = self._stamp(now)
        store = self.store
        body = prepare(kind, model, store, now, may_correct_registration=may_correct_registration)
        event_time = self._event_time(kind, model, body, now)
        if facts:
            body.update(facts)
        seq = self.size + 1
        to_declare = lots_to_declare(store, kind, body)
        # From here on a refusal may leave rows held or written: the batch is done.
        self._failed = True
        store.applying = seq
        if kind is RecordKind.CCP_RECORD and (reading := self._direct.reading(seq, body)):
            # Most of a ledger: the row straight from the kept lookups (DirectReplay)
            store.put_new("ccp_readings", reading)
            applied = Applied()
            if reading["deviation"]:
                open_deviation(applied, body)
        else:
            applied = apply_entry(store, seq, kind, body)
        to_declare |= lots_to_declare(store, kind, body)
        row = self._append(kind, body, actor, event_time, stamp)
        declared = _declare(batch=self, lots=to_declare, now=now)
        self._failed = False
        out = Recorded(
            seq=seq,
            kind=kind,
            hash=row["hash"].hex(),
            prev_hash=row["prev_hash"].hex(),
            recorded_at=row["recorded_at"],
            event_time=row["event_time"],
            body=body,
            warnings=applied.warnings,
            followed_by=declared,
        )
        if idempotency_key is not None:
            self.keys.append(
                {
                    "ledger_id": self.ledger_id,
                    "key": idempotency_key,
                    "request_digest": digest,
                    "seq": seq,
                }
            )
            self._replays[idempotency_key] = (digest, out)
        return out

    def record_many(
        self, *, kind: RecordKind, models: Sequence[BaseModel], actor: str
    ) -> list[Recorded]:
        """Record ``models`` (validated records of ``kind``) in order, as :meth:`record`
        would one by one, without idempotency keys: an import's rows.

        CCP readings, most of what is imported, take a loop of their own: the steps of
        :meth:`_record` that a reading needs, in the same order and with the same
        functions, without what only other kinds need (lookups of suppliers and
        customers, declarations, corrections). A reading the kept lookups cannot take
        (:class:`DirectReplay` answers None: an unknown lot, a value the plan does not
        admit …) goes through :meth:`_record`, which applies it or refuses it as always.
        ``tests/test_direct_replay.py`` compares the entries, rows and warnings of both.
        """
        kind = known_kind(kind)
        schema = BY_KIND[kind].schema
        if kind is not RecordKind.CCP_RECORD or self.head.owner_kind != "enterprise":
            return [self.record(kind=kind, data=m, actor=actor) for m in models]
        if not self._open:
            raise RuntimeError("the batch is closed")
        if self._failed:
            raise RuntimeError("a record of this batch was refused: roll back")
        out: list[Recorded] = []
        store, direct, clock = self.store, self._direct, self.clock
        text = kind.value  # the entry's kind as plain text: the same bytes, a shorter encode
        instants = _instant_fields(schema)
        salts = ledger.new_salts(len(models))
        seen: datetime | None = None
        for i, model in enumerate(models):
            if type(model) is not schema:
                out.append(self.record(kind=kind, data=model, actor=actor))
                continue
            now = clock.now()
            if now != seen:  # _not_in_future's bounds, once per clock reading
                seen, latest, today = now, now + CLOCK_SKEW, local_date(now)
            body = _text_dump(model, instants)
            if body is None:
                _future(model, now, latest, today, ())
                body = model.model_dump(mode="json", exclude_none=True, exclude={"event_time"})
            else:  # only text and instants: the instants are what _future would look at
                for name in instants:
                    value = getattr(model, name)
                    if value is not None and value > latest:
                        _future(value, now, latest, today, (name,))
            seq = self.size + 1
            reading = direct.reading(seq, body)
            if reading is None:  # the generic way applies it, or refuses it naming the field
                out.append(self.record(kind=kind, data=model, actor=actor))
                continue
            stamp = self._stamp(now)
            event_time = self._event_time(kind, model, body, now)
            store.applying = seq
            store.put_new("ccp_readings", reading)
            applied = Applied()
            if reading["deviation"]:
                open_deviation(applied, body)
            row = self._append(text, body, actor, event_time, stamp, salts[i])
            out.append(
                Recorded(
                    seq=seq,
                    kind=kind,
                    hash=row["hash"].hex(),
                    prev_hash=row["prev_hash"].hex(),
                    recorded_at=stamp,
                    event_time=event_time,
                    body=body,
                    warnings=applied.warnings,
                )
            )
        return out

    def _stamp(self, now: datetime) -> str:
        """``format_instant(now)``, once per distinct clock reading (a bulk import's rows
        mostly share one)."""
        if now != self._now:
            self._now, self._now_text = now, format_instant(now)
        return self._now_text

    def _event_time(
        self, kind: RecordKind, model: BaseModel, body: dict[str, Any], now: datetime
    ) -> str:
        """The entry's event time: the record's ``event_time``, else its natural time field,
        else the time of recording."""
        if model.event_time is not None:  # type: ignore[attr-defined]
            return format_instant(model.event_time)  # type: ignore[attr-defined]
        natural = BY_KIND[kind].natural_time
        if natural and getattr(model, natural) is not None:
            # The body has it as format_instant wrote it (schemas.types.Instant's serializer)
            return body[natural]  # type: ignore[no-any-return]
        return self._stamp(now)

    def _replay_of(self, key: str, digest: str) -> Recorded | None:
        held = self._replays.get(key)
        if held is not None:
            if held[0] != digest:
                raise Conflict(
                    f"idempotency key {key!r} was used for a different request "
                    f"(entry {held[1].seq})"
                )
            return replace(held[1], replayed=True, warnings=[], followed_by=[])
        seen = self.session.get(IdempotencyKey, (self.ledger_id, key))
        if seen is None:
            return None
        if seen.request_digest != digest:
            raise Conflict(
                f"idempotency key {key!r} was used for a different request (entry {seen.seq})"
            )
        return _replay(self.session, self.ledger_id, seq=seen.seq)

    def _append(
        self,
        kind: str,
        body: dict[str, Any],
        actor: str,
        event_time: str,
        recorded_at: str,
        salt: str | None = None,
    ) -> dict[str, Any]:
        """Build the next entry in memory: its bytes, hash, chain link and Merkle leaf."""
        seq = self.size + 1
        entry = ledger.entry_dict(
            origin=self.head.origin,
            seq=seq,
            prev_hash=self.head_hash if self.size else None,
            kind=kind,
            body=body,
            actor=actor,
            event_time=event_time,
            recorded_at=recorded_at,
            salt=salt or ledger.new_salt(),
        )
        data = canonical_bytes(entry)
        digest = leaf_hash(data)
        self.tree.append(digest)
        row = {
            "ledger_id": self.ledger_id,
            "seq": seq,
            "kind": kind,
            "event_time": event_time,
            "recorded_at": recorded_at,
            "prev_hash": bytes.fromhex(entry["prev_hash"]),
            "hash": digest,
            "body": data,
        }
        self.entries.append(row)
        self.store.remember(seq, kind, body)
        self.size = seq
        self.head_hash = digest
        return row

    def flush(self) -> None:
        """Write what the batch holds (entries, derived rows, idempotency keys); move the head."""
        if not self._open:
            raise RuntimeError("the batch is closed")
        if self._failed:
            raise RuntimeError("a record of this batch was refused: roll back")
        self.store.flush()
        if not self.entries:
            return
        conn = self.session.connection()
        insert_rows(conn, _ENTRIES, self.entries)
        if self.keys:
            insert_rows(conn, _KEYS, self.keys)
        ledger.move_head(
            session=self.session,
            head=self.head,
            size=self.size,
            head_hash=self.head_hash,
            compact_range=self.tree.to_bytes(),
            defer=self.defer_head,
        )
        carry_cache(self.session, self.ledger_id, self.size, self.head_hash)
        self.entries = []
        self.keys = []
        self._replays = {}


def _declare(*, batch: Batch, lots: set[int], now: datetime) -> list[int]:
    """Append the public declaration each of ``lots`` needs now (projection.declaration_due).

    In the same batch, right after the entry that made it due, so a lot is
    never released without its declaration, nor declared without the record
    behind it. Returns the seqs appended.
    """
    out = []
    store = batch.store
    for lot_seq in sorted(lots):
        found = store.find("lots", record_seq=lot_seq)
        body = declaration_due(store, found[0]) if found else None
        if body is None:
            continue
        PublicDeclaration.model_validate(body)  # exactly the public fields, nothing else
        seq = batch.size + 1
        store.applying = seq
        apply_entry(store, seq, RecordKind.PUBLIC_DECLARATION, body)
        stamp = batch._stamp(now)
        batch._append(RecordKind.PUBLIC_DECLARATION, body, SYSTEM_ACTOR, stamp, stamp)
        out.append(seq)
    return out


_ENTRIES = Entry.__table__  # type: ignore[attr-defined]
_KEYS = IdempotencyKey.__table__  # type: ignore[attr-defined]


def declare_released(*, session: Session, ledger_id: int, clock: Clock) -> list[int]:
    """Append the public declaration of every lot that is released but has none; their seqs.

    For ledgers written before public declarations existed (migration
    0006_public_declarations): a lot gets its declaration with its release test,
    so only those older lots lack one. Running it again appends nothing.
    """
    with Batch(session=session, ledger_id=ledger_id, clock=clock) as batch:
        if batch.head.owner_kind != "enterprise":
            return []
        store = batch.store
        declared = {r["lot_seq"] for r in store.find("public_declarations")}
        lots = {lot["record_seq"] for lot in store.find("lots")} - declared
        return _declare(batch=batch, lots=lots, now=clock.now())


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


__all__ = ["Batch", "Entry", "Recorded", "record", "register_enterprise", "validate"]
