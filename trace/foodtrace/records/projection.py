"""From entries to derived rows: one function per record kind, shared by append and verify.

``apply_entry`` takes an entry (already validated by its schema) and writes the
rows it derives into a :class:`Store`. At append time the store is the
database (:class:`DbStore`), inside the append transaction; at verification
time it is memory (:class:`MemoryStore`), filled by replaying the ledger from
its canonical bytes, and then compared with the database. Because both paths
run the same code in the same order, a derived row that disagrees with the
ledger can only come from an edit behind the application's back.

The functions also refuse records whose references do not hold (a material
lot that does not exist, a CCP parameter not in the plan, a unit that does
not match): those checks need the ledger's state, so they live here, before
anything is written.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, Table, and_, bindparam, delete, event, select, update
from sqlmodel import Session

from foodtrace.attachments.models import Attachment
from foodtrace.bulk import insert_rows
from foodtrace.db import FoodtraceSession
from foodtrace.errors import FieldProblem, RecordError
from foodtrace.ledger.models import Entry
from foodtrace.records.derive import (
    Applied,
    Ctx,
    Row,
    Store,
    amount,
    dec,
    instant,
    product_data,
    total_of,
)
from foodtrace.records.kinds import REGISTRY, Owner
from foodtrace.records.kinds.ccp_record import _reading_row
from schemas.records import SYSTEM_KINDS, RecordKind

TABLES: dict[str, Table] = {t.name: t for k in REGISTRY for t in k.tables}
"""Every derived table, by name, in the registry's order."""

AUTHORITY_TABLES = frozenset(
    t.name for k in REGISTRY if k.owner is Owner.AUTHORITY for t in k.tables
)
"""Derived tables of an authority's ledger: their owner column is ``ledger_id``."""


def owner_column(table: str) -> str:
    if table == "enterprises":
        return "id"
    return "ledger_id" if table in AUTHORITY_TABLES else "enterprise_id"


def primary_key(table: str) -> tuple[str, ...]:
    return _PRIMARY_KEYS[table]


_PRIMARY_KEYS = {name: tuple(c.name for c in t.primary_key.columns) for name, t in TABLES.items()}


_FIND: dict[tuple[str, tuple[str, ...]], Any] = {}


def _find_statement(table: str, cols: tuple[str, ...]) -> Any:
    """``SELECT … WHERE owner = :_owner AND col = :w_col …``, built once per shape."""
    stmt = _FIND.get((table, cols))
    if stmt is None:
        t = TABLES[table]
        stmt = select(t).where(
            t.c[owner_column(table)] == bindparam("_owner"),
            *(t.c[c] == bindparam(f"w_{c}") for c in cols),
        )
        _FIND[(table, cols)] = stmt
    return stmt


_FIND_CACHE = "foodtrace.find_cache"

_Totals = dict[tuple[Any, ...], Decimal]
"""A running total of a column in memory: column values -> the sum of the rows' amounts."""


@event.listens_for(FoodtraceSession, "after_transaction_end")
def _forget_found_rows(session: Session, _transaction: Any) -> None:
    # What one transaction read may change once it ends (or a savepoint rolls back).
    session.info.pop(_FIND_CACHE, None)


class DbStore:
    """The derived tables in the database, scoped to one enterprise.

    Lookups are remembered until this table is written through the store or
    the transaction (or savepoint) ends: an import asks for the same lot,
    product and customer thousands of times. Every write to a derived table in
    the append path goes through :meth:`put` or :meth:`delete`.
    """

    def __init__(self, session: Session, enterprise_id: int) -> None:
        self.session = session
        self.enterprise_id = enterprise_id

    def _where(self, table: str, where: dict[str, Any]) -> Any:
        t = TABLES[table]
        conds = [t.c[owner_column(table)] == self.enterprise_id]
        conds += [t.c[k] == v for k, v in where.items()]
        return and_(*conds)

    def _cache(self) -> dict[tuple[Any, ...], Any]:
        # values: a find's rows (list[Row]) or, under a key ending in "total", a Decimal
        cache: dict[tuple[Any, ...], Any] = self.session.info.setdefault(_FIND_CACHE, {})
        return cache

    def find(self, table: str, **where: Any) -> list[Row]:
        if len(where) == 1:  # the usual lookup: a code, a record seq
            ((col, value),) = where.items()
            cols: tuple[str, ...] = (col,)
            key = (self.enterprise_id, table, cols, (value,))
        else:
            cols = tuple(sorted(where))
            key = (self.enterprise_id, table, cols, tuple(where[c] for c in cols))
        cache = self._cache()
        rows = cache.get(key)
        if rows is None:
            params = {"_owner": self.enterprise_id, **{f"w_{c}": where[c] for c in cols}}
            result = self.session.connection().execute(_find_statement(table, cols), params)
            rows = cache[key] = [dict(r._mapping) for r in result]
        return [dict(r) for r in rows]

    def total(self, table: str, column: str, **where: Any) -> Decimal:
        # Remembered like the rows it sums (and forgotten with them): an import of a lot's
        # sales asks for the lot's earlier sales once per sale.
        cols = tuple(sorted(where))
        key = (self.enterprise_id, table, cols, tuple(where[c] for c in cols), "total", column)
        cache = self._cache()
        found: Decimal | None = cache.get(key)
        if found is None:
            found = cache[key] = total_of(self.find(table, **where), column)
        return found

    def prefetch(self, table: str, column: str, values: Iterable[Any]) -> None:
        """Remember ``find(table, column=v)`` for every ``v`` with one query, not one each:
        a walk over a material lot's hundred lots then reads them in one round trip."""
        cache = self._cache()
        key = (self.enterprise_id, table, (column,))
        todo = sorted({v for v in values if (*key, (v,)) not in cache})
        if not todo:
            return
        t = TABLES[table]
        found: dict[Any, list[Row]] = {v: [] for v in todo}
        for i in range(0, len(todo), 1000):
            result = self.session.connection().execute(
                select(t).where(
                    t.c[owner_column(table)] == self.enterprise_id,
                    t.c[column].in_(todo[i : i + 1000]),
                )
            )
            for r in result:
                row = dict(r._mapping)
                found[row[column]].append(row)
        for v, rows in found.items():
            cache[(*key, (v,))] = rows

    def remember(self, table: str, rows: list[Row], **where: Any) -> None:
        """Remember ``rows`` as the answer of ``find(table, **where)``.

        Requires: ``rows`` are every row of this enterprise's ``table`` whose columns
        equal ``where``, read in this transaction (a trail reads many keys in one query).
        """
        cols = tuple(sorted(where))
        self._cache()[(self.enterprise_id, table, cols, tuple(where[c] for c in cols))] = rows

    def _invalidate(self, table: str) -> None:
        cache = self._cache()
        for key in [k for k in cache if k[1] == table]:
            del cache[key]

    def put(self, table: str, row: Row, *, replace: bool) -> None:
        t = TABLES[table]
        self._invalidate(table)
        if replace:
            key = {k: row[k] for k in primary_key(table)}
            done = self.session.execute(update(t).where(self._where(table, key)).values(row))
            if done.rowcount == 1:  # type: ignore[attr-defined]
                return
        self.session.connection().execute(t.insert(), row)

    def delete(self, table: str, **where: Any) -> None:
        self._invalidate(table)
        self.session.execute(delete(TABLES[table]).where(self._where(table, where)))

    def entry_kind(self, seq: int) -> str | None:
        return self.session.execute(
            select(Entry.kind).where(Entry.ledger_id == self.enterprise_id, Entry.seq == seq)
        ).scalar_one_or_none()

    def entry_body(self, seq: int) -> Row | None:
        data = self.session.execute(
            select(Entry.body).where(Entry.ledger_id == self.enterprise_id, Entry.seq == seq)
        ).scalar_one_or_none()
        return None if data is None else json.loads(data)["body"]

    def has_attachment(self, sha256: str) -> bool:
        return (
            self.session.execute(
                select(Attachment.sha256).where(
                    Attachment.enterprise_id == self.enterprise_id, Attachment.sha256 == sha256
                )
            ).first()
            is not None
        )


_BODY_KINDS = frozenset({RecordKind.RELEASE_TEST, RecordKind.CORRECTION})
"""Entries whose bodies a replay keeps: a public declaration states its release test's items."""


_Index = dict[tuple[Any, ...], set[tuple[Any, ...]]]
"""An equality index of a table in memory: column values -> primary keys."""


class MemoryStore:
    """Derived rows in memory, with equality indexes built on first use.

    Verification replays a whole ledger through it (one ``put`` and a few
    ``find`` per entry), so each table keeps its own list of indexes and a
    lookup that finds one row skips the sort.
    """

    def __init__(self, enterprise_id: int, attachments: Iterable[str] = ()) -> None:
        self.enterprise_id = enterprise_id
        self.tables: dict[str, dict[tuple[Any, ...], Row]] = defaultdict(dict)
        self.kinds: dict[int, str] = {}
        self.bodies: dict[int, Row] = {}
        self.attachments = set(attachments)
        self._indexes: dict[tuple[str, tuple[str, ...]], _Index] = {}
        self._by_table: dict[str, list[tuple[tuple[str, ...], _Index]]] = defaultdict(list)
        self._totals: dict[str, list[tuple[tuple[str, ...], str, _Totals]]] = defaultdict(list)
        self._total_of: dict[tuple[str, tuple[str, ...], str], _Totals] = {}
        self.versions: dict[str, int] = defaultdict(int)
        """How many times each table was written: what was read from it is still true while
        its count stays (:class:`DirectReplay` keeps lookups that long)."""

    def _pk(self, table: str, row: Row) -> tuple[Any, ...]:
        return tuple([row[k] for k in _PRIMARY_KEYS[table]])

    def _index(self, table: str, cols: tuple[str, ...]) -> _Index:
        idx = self._indexes.get((table, cols))
        if idx is None:
            idx = defaultdict(set)
            for pk, row in self.tables[table].items():
                idx[tuple([row[c] for c in cols])].add(pk)
            self._indexes[(table, cols)] = idx
            self._by_table[table].append((cols, idx))
        return idx

    def _unindex(self, table: str, pk: tuple[Any, ...], row: Row) -> None:
        for cols, idx in self._by_table.get(table, ()):
            idx[tuple([row[c] for c in cols])].discard(pk)
        for cols, column, totals in self._totals.get(table, ()):
            totals[tuple([row[c] for c in cols])] -= amount(row[column])

    def _count_in(self, table: str, row: Row) -> None:
        for cols, column, totals in self._totals.get(table, ()):
            totals[tuple([row[c] for c in cols])] += amount(row[column])

    def total(self, table: str, column: str, **where: Any) -> Decimal:
        """Kept up to date by every write once asked for (a running total per key, like the
        equality indexes): a lot's thousandth sale costs what its first did."""
        cols = tuple(sorted(where))
        totals = self._total_of.get((table, cols, column))
        if totals is None:
            totals = self._total_of[table, cols, column] = defaultdict(Decimal)
            for row in self.tables[table].values():
                totals[tuple([row[c] for c in cols])] += amount(row[column])
            self._totals[table].append((cols, column, totals))
        return totals.get(tuple([where[c] for c in cols]), Decimal(0))

    def find(self, table: str, **where: Any) -> list[Row]:
        rows = self.tables[table]
        if not where:
            return [dict(r) for r in rows.values()]
        if len(where) == 1:  # the usual lookup: by code, by record seq
            ((col, value),) = where.items()
            cols: tuple[str, ...] = (col,)
            key: tuple[Any, ...] = (value,)
        else:
            cols = tuple(sorted(where))
            key = tuple([where[c] for c in cols])
        idx = self._indexes.get((table, cols))
        pks = (self._index(table, cols) if idx is None else idx).get(key)
        if not pks:
            return []
        if len(pks) == 1:
            for pk in pks:
                return [dict(rows[pk])]
        return [dict(rows[pk]) for pk in sorted(pks)]

    def put(self, table: str, row: Row, *, replace: bool) -> None:
        pk = self._pk(table, row)
        rows = self.tables[table]
        old = rows.get(pk)
        if old is not None:
            if not replace:
                raise RecordError.at(msg=f"duplicate derived row {table}{pk}", type="duplicate")
            self._unindex(table, pk, old)
        self.versions[table] += 1
        rows[pk] = dict(row)
        for cols, idx in self._by_table.get(table, ()):
            idx[tuple([row[c] for c in cols])].add(pk)
        self._count_in(table, row)

    def put_new(self, table: str, row: Row) -> None:
        """``put(table, row, replace=False)`` of a row the caller hands over (kept, not copied)."""
        pk = tuple([row[k] for k in _PRIMARY_KEYS[table]])
        rows = self.tables[table]
        if pk in rows:
            raise RecordError.at(msg=f"duplicate derived row {table}{pk}", type="duplicate")
        self.versions[table] += 1
        rows[pk] = row
        for cols, idx in self._by_table.get(table, ()):
            idx[tuple([row[c] for c in cols])].add(pk)
        self._count_in(table, row)

    def delete(self, table: str, **where: Any) -> None:
        self.versions[table] += 1
        for row in self.find(table, **where):
            pk = self._pk(table, row)
            self._unindex(table, pk, self.tables[table].pop(pk))

    def remember(self, seq: int, kind: str, body: Row) -> None:
        """Note entry ``seq`` as the replay reaches it (bodies only of the kinds asked for)."""
        self.kinds[seq] = kind
        if kind in _BODY_KINDS:
            self.bodies[seq] = body

    def entry_kind(self, seq: int) -> str | None:
        return self.kinds.get(seq)

    def entry_body(self, seq: int) -> Row | None:
        return self.bodies.get(seq)

    def has_attachment(self, sha256: str) -> bool:
        return sha256 in self.attachments


class BatchStore:
    """A :class:`DbStore` whose new rows wait in memory and are written one statement per table.

    Reads see the database (through the DbStore's cache) plus the rows put
    since the last :meth:`flush`. Inserts (``replace=False``) are held back;
    a replacement or a delete (a correction) first writes what is held, then
    goes to the database, so the order of writes is kept. Entries of the batch
    not yet written are answered from memory (:meth:`remember`).
    """

    def __init__(self, db: DbStore, fresh_from: int) -> None:
        self.db = db
        self.enterprise_id = db.enterprise_id
        self.held = MemoryStore(db.enterprise_id)
        self.rows: dict[str, list[Row]] = {}
        self.kinds: dict[int, str] = {}
        self.bodies: dict[int, Row] = {}
        self.fresh_from = fresh_from
        """No row in the database names a seq from here on: the batch's entries are not
        written, and a derived row only ever names its own entry or earlier ones."""
        self.applying = fresh_from
        """The seq whose rows are being applied (set by the batch)."""
        self.versions: dict[str, int] = defaultdict(int)
        """How many times each table was written through the store (as
        :attr:`MemoryStore.versions`; the batch holds the ledger's lock, so no one else
        writes its rows)."""

    def _fresh(self, where: dict[str, Any]) -> bool:
        """Whether only held rows can match: ``where`` names a seq of this batch."""
        for col, value in where.items():
            if col in SEQ_COLUMNS and type(value) is int and value >= self.fresh_from:
                return True
        return False

    def find(self, table: str, **where: Any) -> list[Row]:
        if table not in self.rows:
            return [] if self._fresh(where) else self.db.find(table, **where)
        held = self.held.find(table, **where)
        return held if self._fresh(where) else self.db.find(table, **where) + held

    def total(self, table: str, column: str, **where: Any) -> Decimal:
        held = self.held.total(table, column, **where) if table in self.rows else Decimal(0)
        return held if self._fresh(where) else self.db.total(table, column, **where) + held

    def put(self, table: str, row: Row, *, replace: bool) -> None:
        self.versions[table] += 1
        if replace:
            self.flush()
            self.db.put(table, row, replace=True)
            return
        # Every column, as the database would return the row (all defaults are NULL).
        if _COLUMN_SETS[table].issuperset(row):  # in column order, as below
            full = dict.fromkeys(_COLUMNS[table])
            full.update(row)
        else:
            full = {c: row.get(c) for c in _COLUMNS[table]}
        self.held.put(table, full, replace=False)
        self.rows.setdefault(table, []).append(full)

    def put_new(self, table: str, row: Row) -> None:
        """``put(table, row, replace=False)`` of a row naming every column (kept, not copied)."""
        self.held.put_new(table, row)
        self.versions[table] += 1
        self.rows.setdefault(table, []).append(row)

    def delete(self, table: str, **where: Any) -> None:
        self.versions[table] += 1
        if table in self.rows and self.held.find(table, **where):
            self.flush()
        if not self._fresh(where):  # else nothing in the database can match
            self.db.delete(table, **where)

    def remember(self, seq: int, kind: str, body: Row) -> None:
        """Note entry ``seq`` of the batch (not yet written) as it is appended."""
        self.kinds[seq] = kind
        if kind in _BODY_KINDS:
            self.bodies[seq] = body

    def entry_kind(self, seq: int) -> str | None:
        return self.kinds.get(seq) or self.db.entry_kind(seq)

    def entry_body(self, seq: int) -> Row | None:
        body = self.bodies.get(seq)
        return body if body is not None else self.db.entry_body(seq)

    def has_attachment(self, sha256: str) -> bool:
        return self.db.has_attachment(sha256)

    def flush(self) -> None:
        """Write the held rows: one statement per table (a COPY on PostgreSQL, see bulk)."""
        if not self.rows:
            return
        conn = self.db.session.connection()
        for table, rows in self.rows.items():
            insert_rows(conn, TABLES[table], rows)
            self.db._invalidate(table)
        self.rows = {}
        self.held = MemoryStore(self.enterprise_id)
        # The rows written name seqs up to the one being applied: read those from the database.
        self.fresh_from = max(self.fresh_from, self.applying + 1)


_COLUMNS = {name: tuple(c.name for c in t.columns) for name, t in TABLES.items()}
_COLUMN_SETS = {name: frozenset(cols) for name, cols in _COLUMNS.items()}
SEQ_COLUMNS = frozenset(
    {
        "record_seq",
        "current_seq",
        "lot_seq",
        "material_lot_seq",
        "product_seq",
        "supplier_seq",
        "customer_seq",
        "reading_seq",
        "case_seq",
        "corrects_seq",
    }
)
"""Columns that name an entry of the same ledger by its seq (always an earlier or the same
entry as the one the row derives from)."""


# Master data and lots read by one append are read again by the next: the CCP
# reading of a lot reads its lot and product, every time. Between transactions
# of one process the rows are kept per ledger, with the (size, head hash) the
# ledger had when the transaction that read them committed. They are used only
# while the locked head still has that size and hash: any later append to the
# ledger, from any process, moves the head and drops them. Within a transaction
# every write through a store drops the cached rows of its table first.
CARRIED_TABLES = frozenset({"products", "suppliers", "customers", "lots", "material_lots"})
_CARRIED: dict[tuple[Any, int], tuple[int, bytes, dict[tuple[Any, ...], list[Row]]]] = {}
_CARRY = "foodtrace.carry_heads"
_MAX_CARRIED_LEDGERS = 256
_MAX_CARRIED_ROWS = 512


def _ledger_key(session: Session, ledger_id: int) -> tuple[Any, int]:
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    return (engine.url, ledger_id)  # a URL is a hashable tuple; str() renders it


def resume_cache(session: Session, ledger_id: int, size: int, head_hash: bytes) -> None:
    """Seed this transaction's find cache with the rows carried for the ledger at this head."""
    carried = _CARRIED.get(_ledger_key(session, ledger_id))
    if carried is None or carried[0] != size or carried[1] != head_hash:
        return
    cache = session.info.setdefault(_FIND_CACHE, {})
    for key, rows in carried[2].items():
        cache.setdefault(key, rows)


def carry_cache(session: Session, ledger_id: int, size: int, head_hash: bytes) -> None:
    """Keep the ledger's cached master rows if this transaction commits with this head."""
    session.info.setdefault(_CARRY, {})[ledger_id] = (size, bytes(head_hash))


@event.listens_for(FoodtraceSession, "after_commit")
def _carry_found_rows(session: Session) -> None:
    carry = session.info.pop(_CARRY, None)
    if not carry:
        return
    cache = session.info.get(_FIND_CACHE, {})
    for ledger_id, (size, head_hash) in carry.items():
        rows = {k: v for k, v in cache.items() if k[0] == ledger_id and k[1] in CARRIED_TABLES}
        if len(rows) > _MAX_CARRIED_ROWS:
            rows = {}
        if len(_CARRIED) >= _MAX_CARRIED_LEDGERS:
            _CARRIED.clear()
        _CARRIED[_ledger_key(session, ledger_id)] = (size, head_hash, rows)


@event.listens_for(FoodtraceSession, "after_soft_rollback")
def _drop_carry(session: Session, _previous: Any) -> None:
    session.info.pop(_CARRY, None)


# ------------------------------------------------------------------ helpers


# --------------------------------------------------------------- per kind


# ------------------------------------------------- an authority's ledger


APPLY: dict[str, Callable[[Ctx, Row], None]] = {
    k.kind: k.project for k in REGISTRY if k.project is not None
}


def correction_target(store: Store, seq: int) -> str:
    """The kind of entry ``seq`` if a correction may point at it; raise otherwise."""
    kind = store.entry_kind(seq)
    if kind is None:
        raise RecordError.at(
            "corrects", msg=f"there is no entry {seq} in this ledger", type="not_found"
        )
    if kind == RecordKind.CORRECTION:
        original = store.find("corrections", record_seq=seq)
        target = original[0]["corrects_seq"] if original else "?"
        raise RecordError.at(
            "corrects",
            msg=f"entry {seq} is itself a correction; correct entry {target} instead",
            type="correction_of_correction",
        )
    if kind in SYSTEM_KINDS:
        raise RecordError.at(
            "corrects",
            msg=f"entry {seq} is a {kind} the platform wrote; correct the record it states "
            "(the release test, the lot), and a new one follows",
            type="immutable",
        )
    return kind


def apply_entry(store: Store, seq: int, kind: str, body: Row) -> Applied:
    """Write the derived rows of entry ``seq``; raise :class:`RecordError` if it cannot apply."""
    out = Applied()
    if kind == RecordKind.CORRECTION:
        target_kind = correction_target(store, body["corrects"])
        try:
            APPLY[target_kind](Ctx(store, body["corrects"], seq, out), body["record"])
        except RecordError as exc:
            raise RecordError(
                [FieldProblem(("record", *p.loc), p.msg, p.type, p.ctx) for p in exc.problems]
            ) from None
        out.warnings = [
            FieldProblem(("record", *w.loc), w.msg, w.type, w.ctx) for w in out.warnings
        ]
        store.put(
            "corrections",
            {
                "enterprise_id": store.enterprise_id,
                "record_seq": seq,
                "current_seq": seq,
                "corrects_seq": body["corrects"],
                "reason": body["reason"],
            },
            replace=False,
        )
        return out
    APPLY[kind](Ctx(store, seq, seq, out), body)
    return out


# ------------------------------------------------- the replay's fast path


_Point = tuple[int, datetime, bool, Any, Decimal | None, Decimal | None]
"""What a CCP reading needs of its lot and plan: the lot's seq, the earliest instant a
reading of it may have (a day before its start), whether the parameter is measured, and
then its unit and limits (as decimals; None: no such limit)."""


class DirectReplay:
    """The derived row of a CCP reading, straight into a :class:`MemoryStore` (a
    verification's replay) or a :class:`BatchStore` (an append, see ``records.service``).

    CCP readings are most of a ledger (48 of the 57 entries of a plant's day), and
    :func:`apply_entry` spends most of its time per reading finding the same lot,
    product and plan again. This keeps, per (lot code, CCP, parameter), what
    ``_ccp_record`` finds there, for as long as the store's ``lots`` and
    ``products`` tables are unchanged (any write to either drops it all), and
    computes the row with ``_ccp_record``'s own expressions.

    It only ever takes the case where ``_ccp_record`` succeeds: whatever would
    raise (no such lot, a CCP or parameter not in the plan, a unit that does not
    match, a missing value, a reading before its lot, a body that is not an
    object) returns False, and the caller applies the entry the generic way,
    which raises exactly as before (so does a plan whose limits are not decimals,
    even where ``_ccp_record`` would not have needed one). Warnings (an open
    deviation) are the caller's (:func:`open_deviation`). ``tests/test_direct_replay.py``
    compares the rows of both ways on generated readings, in memory and in a batch.
    """

    def __init__(self, store: MemoryStore | BatchStore) -> None:
        self.store = store
        self.points: dict[tuple[Any, Any, Any], _Point | None] = {}
        self.stamp = (-1, -1)

    def _point(self, lot_code: Any, ccp: Any, parameter: Any) -> _Point | None:
        lots = self.store.find("lots", code=lot_code)
        if not lots:
            return None
        lot = lots[0]
        products = self.store.find("products", record_seq=lot["product_seq"])
        if not products:
            return None
        plan = product_data(products[0]).get("ccp_plan", [])
        point = next((p for p in plan if p["code"] == ccp), None)
        if point is None:
            return None
        param = next((p for p in point["parameters"] if p["code"] == parameter), None)
        if param is None:
            return None
        earliest = instant(lot["started_at"]) - timedelta(days=1)
        if param["kind"] != "numeric":
            return lot["record_seq"], earliest, False, None, None, None
        low = dec(param["min"]) if "min" in param else None
        high = dec(param["max"]) if "max" in param else None
        return lot["record_seq"], earliest, True, param["unit"], low, high

    def ccp_record(self, seq: int, b: Row) -> bool:
        """Put the reading's row and return True, or return False having changed nothing."""
        row = self.reading(seq, b)
        if row is None:
            return False
        self.store.put_new("ccp_readings", row)
        return True

    def reading(self, seq: int, b: Row) -> Row | None:
        """The derived row of reading ``b`` (entry ``seq``), or None: apply it the generic way.

        The row names every column of ``ccp_readings``; nothing is put.
        """
        versions = self.store.versions
        stamp = (versions["lots"], versions["products"])
        if stamp != self.stamp:
            self.points.clear()
            self.stamp = stamp
        try:
            key = (b["lot_code"], b["ccp"], b["parameter"])
            if key not in self.points:
                self.points[key] = self._point(*key)
            found = self.points[key]
            if found is None:
                return None
            lot_seq, earliest, numeric, unit, low, high = found
            if numeric:
                if "value" not in b or b.get("unit") != unit:
                    return None
                value = dec(b["value"])
                # _ccp_record: ("min" in param and value < min) or ("max" in param and value > max)
                deviation = (low is not None and value < low) or (high is not None and value > high)
            else:
                if "result" not in b:
                    return None
                deviation = b["result"] == "fail"
            if instant(b["measured_at"]) < earliest:
                return None
        except Exception:  # noqa: BLE001 - the generic way raises it, or its own error
            return None
        return {
            "enterprise_id": self.store.enterprise_id,
            "record_seq": seq,
            "current_seq": seq,
            **_reading_row(b, lot_seq, deviation),
        }
