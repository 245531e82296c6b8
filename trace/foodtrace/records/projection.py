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

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, Protocol

from sqlalchemy import Table, and_, bindparam, delete, event, select, update
from sqlmodel import Session

from foodtrace.accounts.models import Enterprise
from foodtrace.attachments.models import Attachment
from foodtrace.bulk import insert_rows
from foodtrace.canonical import dumps as canonical_dumps
from foodtrace.cases.models import Case, CaseLot, CaseStep, RecallAction, RecalledLot, Referral
from foodtrace.db import FoodtraceSession
from foodtrace.digital_link import ai10_problem
from foodtrace.errors import FieldProblem, RecordError
from foodtrace.ledger.models import Entry
from foodtrace.records.models import (
    CcpReading,
    Correction,
    CorrectiveAction,
    Customer,
    Lot,
    LotInput,
    MaterialLot,
    Product,
    PublicDeclarationRow,
    ReleaseTest,
    Sale,
    SelfInspection,
    Supplier,
)
from schemas.records import CASE_TRANSITIONS, SYSTEM_KINDS, CaseState, RecordKind

TABLES: dict[str, Table] = {
    m.__tablename__: m.__table__  # type: ignore[misc]
    for m in (
        Enterprise,
        Product,
        Supplier,
        Customer,
        MaterialLot,
        Lot,
        LotInput,
        CcpReading,
        CorrectiveAction,
        ReleaseTest,
        Sale,
        SelfInspection,
        Correction,
        RecallAction,
        PublicDeclarationRow,
        Case,
        CaseLot,
        CaseStep,
        RecalledLot,
        Referral,
    )
}
"""Every derived table, by name."""

AUTHORITY_TABLES = frozenset({"cases", "case_lots", "case_steps", "recalled_lots", "referrals"})
"""Derived tables of an authority's ledger: their owner column is ``ledger_id``."""


def owner_column(table: str) -> str:
    if table == "enterprises":
        return "id"
    return "ledger_id" if table in AUTHORITY_TABLES else "enterprise_id"


def primary_key(table: str) -> tuple[str, ...]:
    return _PRIMARY_KEYS[table]


_PRIMARY_KEYS = {name: tuple(c.name for c in t.primary_key.columns) for name, t in TABLES.items()}


Row = dict[str, Any]


class Store(Protocol):
    """Where derived rows live: the database, or memory during verification."""

    enterprise_id: int

    def find(self, table: str, **where: Any) -> list[Row]:
        """This enterprise's rows of ``table`` whose columns equal ``where``."""
        ...

    def total(self, table: str, column: str, **where: Any) -> Decimal:
        """The sum of ``column`` (decimal text) over the rows ``find(table, **where)`` gives."""
        ...

    def put(self, table: str, row: Row, *, replace: bool) -> None:
        """Insert ``row``; with ``replace``, overwrite the row with the same primary key."""
        ...

    def delete(self, table: str, **where: Any) -> None: ...

    def entry_kind(self, seq: int) -> str | None:
        """The kind of entry ``seq`` of this ledger, or None if there is none."""
        ...

    def entry_body(self, seq: int) -> Row | None:
        """The body of entry ``seq`` (a release test or a correction), or None."""
        ...

    def has_attachment(self, sha256: str) -> bool: ...


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


def _amount(value: Any) -> Decimal:
    return Decimal(0) if value is None else dec(value)


def _sum(rows: Iterable[Row], column: str) -> Decimal:
    return sum((_amount(r[column]) for r in rows), Decimal(0))


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

    def _cache(self) -> dict[tuple[Any, ...], list[Row]]:
        return self.session.info.setdefault(_FIND_CACHE, {})

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
        found = cache.get(key)
        if found is None:
            found = cache[key] = _sum(self.find(table, **where), column)
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
            totals[tuple([row[c] for c in cols])] -= _amount(row[column])

    def _count_in(self, table: str, row: Row) -> None:
        for cols, column, totals in self._totals.get(table, ()):
            totals[tuple([row[c] for c in cols])] += _amount(row[column])

    def total(self, table: str, column: str, **where: Any) -> Decimal:
        """Kept up to date by every write once asked for (a running total per key, like the
        equality indexes): a lot's thousandth sale costs what its first did."""
        cols = tuple(sorted(where))
        totals = self._total_of.get((table, cols, column))
        if totals is None:
            totals = self._total_of[table, cols, column] = defaultdict(Decimal)
            for row in self.tables[table].values():
                totals[tuple([row[c] for c in cols])] += _amount(row[column])
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
    return (session.get_bind().url, ledger_id)  # a URL is a hashable tuple; str() renders it


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


def dec(value: str) -> Decimal:
    return Decimal(value)


def dec_str(value: Decimal) -> str:
    """A decimal as a plain string without exponent or trailing zeros: 2000, 0.5."""
    text = format(value.normalize(), "f")
    return text


def canonical_json(value: Any) -> str:
    return canonical_dumps(value).decode("utf-8")


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class Applied:
    """What applying one entry found worth telling the user (the entry was still written)."""

    warnings: list[FieldProblem] = field(default_factory=list)

    def warn(self, *loc: str | int, msg: str, type: str, **ctx: Any) -> None:  # noqa: A002
        self.warnings.append(FieldProblem(tuple(loc), msg, type, ctx))


@dataclass
class Ctx:
    store: Store
    record_seq: int
    current_seq: int
    out: Applied

    @property
    def replace(self) -> bool:
        return self.record_seq != self.current_seq

    def base(self) -> Row:
        return {
            "enterprise_id": self.store.enterprise_id,
            "record_seq": self.record_seq,
            "current_seq": self.current_seq,
        }

    def put(self, table: str, row: Row) -> None:
        self.store.put(table, {**self.base(), **row}, replace=self.replace)

    def one(self, table: str, loc: tuple[str | int, ...], what: str, **where: Any) -> Row:
        rows = self.store.find(table, **where)
        if not rows:
            value = next(iter(where.values()))
            raise RecordError.at(
                *loc, msg=f"{what} {value!r} does not exist", type="not_found", value=value
            )
        return rows[0]

    def unique(self, table: str, loc: tuple[str | int, ...], what: str, **where: Any) -> None:
        for row in self.store.find(table, **where):
            if row["record_seq"] != self.record_seq:
                value = next(iter(where.values()))
                raise RecordError.at(
                    *loc,
                    msg=f"{what} {value!r} already exists (entry {row['record_seq']}); "
                    "to change it, record a correction",
                    type="duplicate",
                    value=value,
                    seq=row["record_seq"],
                )

    def attachments(self, body: Row) -> None:
        for i, sha in enumerate(body.get("attachments", [])):
            if not self.store.has_attachment(sha):
                raise RecordError.at(
                    "attachments", i, msg=f"no attachment {sha} was uploaded", type="not_found"
                )


def unit_factor(product: Row, unit: str, loc: tuple[str | int, ...]) -> Decimal:
    """How many base units one ``unit`` is, from the product's declared packaging only."""
    data = product_data(product)
    if unit == data["unit"]:
        return Decimal(1)
    for pack in data.get("packaging", []):
        if pack["unit"] == unit:
            return dec(pack["quantity"])
    allowed = " / ".join([data["unit"], *(p["unit"] for p in data.get("packaging", []))])
    raise RecordError.at(
        *loc,
        msg=f"product {data['code']!r} is counted in {allowed}; {unit!r} is not one of its "
        "declared units (units never change silently)",
        type="unit_mismatch",
        allowed=allowed,
    )


def product_data(product: Row) -> Row:
    """The product's record, parsed from its row's ``data`` (read-only: it is shared)."""
    return _parse_product(product["data"])


@lru_cache(maxsize=1024)
def _parse_product(data: str) -> Row:
    # A CCP reading, a release test and a sale each read their product's plan: parse once.
    return json.loads(data)


def product_of(ctx: Ctx, lot: Row) -> Row:
    return ctx.store.find("products", record_seq=lot["product_seq"])[0]


# --------------------------------------------------------------- per kind


def _enterprise(ctx: Ctx, b: Row) -> None:
    if ctx.replace:
        old = ctx.store.find("enterprises")
        if old and old[0]["credit_code"] != b["credit_code"]:
            raise RecordError.at(
                "credit_code",
                msg="the credit code names the ledger and cannot be corrected",
                type="immutable",
            )
    row = {
        "id": ctx.store.enterprise_id,
        "record_seq": ctx.record_seq,
        "current_seq": ctx.current_seq,
        "credit_code": b["credit_code"],
        "name": b["name"],
        "kind": b["kind"],
        "region_code": b["region_code"],
        "licence_no": b.get("licence_no"),
        "address": b["address"],
        "contact": b["contact"],
    }
    ctx.store.put("enterprises", row, replace=ctx.replace)


def _product(ctx: Ctx, b: Row) -> None:
    ctx.unique("products", ("code",), "product code", code=b["code"])
    if b.get("gtin"):
        ctx.unique("products", ("gtin",), "product with GTIN", gtin=b["gtin"])
    ctx.put(
        "products",
        {
            "code": b["code"],
            "name": b["name"],
            "gtin": b.get("gtin"),
            "unit": b["unit"],
            "shelf_life_days": b.get("shelf_life_days"),
            "data": canonical_json(b),
        },
    )


def _party(table: str, what: str) -> Callable[[Ctx, Row], None]:
    def apply(ctx: Ctx, b: Row) -> None:
        ctx.unique(table, ("code",), what, code=b["code"])
        row = {k: b.get(k) for k in ("code", "name", "credit_code", "address", "contact")}
        if table == "suppliers":
            row["licence_no"] = b.get("licence_no")
        ctx.put(table, row)

    return apply


def _material_check(ctx: Ctx, b: Row) -> None:
    supplier = ctx.one("suppliers", ("supplier_code",), "supplier", code=b["supplier_code"])
    ctx.unique("material_lots", ("material_lot",), "material lot", code=b["material_lot"])
    ctx.attachments(b)
    ctx.put(
        "material_lots",
        {
            "code": b["material_lot"],
            "material_name": b["material_name"],
            "material_type": b["material_type"],
            "quantity": b["quantity"],
            "unit": b["unit"],
            "batch_no": b.get("batch_no"),
            "production_date": b.get("production_date"),
            "receipt_date": b["receipt_date"],
            "supplier_seq": supplier["record_seq"],
            "supplier_credit_code": supplier["credit_code"],
            "accepted": b["accepted"],
        },
    )


def _production_lot(ctx: Ctx, b: Row) -> None:
    product = ctx.one("products", ("product_code",), "product", code=b["product_code"])
    ctx.unique("lots", ("lot_code",), "lot code", code=b["lot_code"])
    not_gs1 = ai10_problem(b["lot_code"]) if product["gtin"] else None
    if not_gs1 is not None:  # accepted (factories use such codes), but not in a GS1 code
        ctx.out.warn(
            "lot_code",
            msg=f"lot code {b['lot_code']!r} is not a GS1 batch/lot number ({not_gs1}): its QR "
            "code carries the platform address /lot/<credit code>/<lot>, not the GS1 Digital "
            "Link of the product's GTIN",
            type="not_gs1_lot",
        )
    factor = unit_factor(product, b["unit"], ("unit",))
    inputs = []
    for i, use in enumerate(b["materials"]):
        loc: tuple[str | int, ...] = ("materials", i)
        ml = ctx.one(
            "material_lots", (*loc, "material_lot"), "material lot", code=use["material_lot"]
        )
        if not ml["accepted"]:
            raise RecordError.at(
                *loc,
                "material_lot",
                msg=f"material lot {ml['code']!r} was rejected at its incoming check "
                f"(entry {ml['record_seq']}) and cannot be used",
                type="rejected_material",
                value=ml["code"],
            )
        if use["unit"] != ml["unit"]:
            raise RecordError.at(
                *loc,
                "unit",
                msg=f"material lot {ml['code']!r} is counted in {ml['unit']!r}, not "
                f"{use['unit']!r} (units never change silently)",
                type="unit_mismatch",
                allowed=ml["unit"],
            )
        if ml["receipt_date"] > b["production_date"]:
            raise RecordError.at(
                *loc,
                "material_lot",
                msg=f"material lot {ml['code']!r} was received on {ml['receipt_date']}, "
                f"after the lot's production date {b['production_date']}",
                type="received_after_production",
                date=ml["receipt_date"],
            )
        used = sum(
            (
                dec(e["quantity"])
                for e in ctx.store.find("lot_inputs", material_lot_seq=ml["record_seq"])
                if e["record_seq"] != ctx.record_seq
            ),
            Decimal(0),
        )
        if used + dec(use["quantity"]) > dec(ml["quantity"]):
            ctx.out.warn(
                *loc,
                "quantity",
                msg=f"material lot {ml['code']!r} had {dec_str(dec(ml['quantity']) - used)} "
                f"{ml['unit']} left; this uses {use['quantity']}",
                type="over_consumption",
            )
        inputs.append((i, ml["record_seq"], use))
    best_before = None
    if product["shelf_life_days"]:
        best_before = (
            date.fromisoformat(b["production_date"]) + timedelta(days=product["shelf_life_days"])
        ).isoformat()
    ctx.put(
        "lots",
        {
            "code": b["lot_code"],
            "product_seq": product["record_seq"],
            "gtin": product["gtin"],
            "production_date": b["production_date"],
            "started_at": b["started_at"],
            "ended_at": b["ended_at"],
            "quantity": b["quantity"],
            "unit": b["unit"],
            "quantity_base": dec_str(dec(b["quantity"]) * factor),
            "best_before": best_before,
        },
    )
    ctx.store.delete("lot_inputs", record_seq=ctx.record_seq)
    for line, ml_seq, use in inputs:
        ctx.store.put(
            "lot_inputs",
            {
                **ctx.base(),
                "line": line,
                "material_lot_seq": ml_seq,
                "quantity": use["quantity"],
                "unit": use["unit"],
            },
            replace=False,
        )


def _ccp_record(ctx: Ctx, b: Row) -> None:
    lot = ctx.one("lots", ("lot_code",), "lot", code=b["lot_code"])
    plan = product_data(product_of(ctx, lot)).get("ccp_plan", [])
    point = next((p for p in plan if p["code"] == b["ccp"]), None)
    if point is None:
        codes = ", ".join(p["code"] for p in plan) or "none"
        raise RecordError.at(
            "ccp",
            msg=f"{b['ccp']!r} is not in the product's CCP plan (plan: {codes})",
            type="not_in_plan",
            allowed=codes,
        )
    param = next((p for p in point["parameters"] if p["code"] == b["parameter"]), None)
    if param is None:
        codes = ", ".join(p["code"] for p in point["parameters"])
        raise RecordError.at(
            "parameter",
            msg=f"{b['parameter']!r} is not a parameter of {point['code']} (plan: {codes})",
            type="not_in_plan",
            allowed=codes,
        )
    if param["kind"] == "numeric":
        if "value" not in b:
            raise RecordError.at(
                "value", msg=f"{param['code']} is measured: give value and unit", type="missing"
            )
        if b.get("unit") != param["unit"]:
            raise RecordError.at(
                "unit",
                msg=f"{param['code']} is measured in {param['unit']!r}, not {b.get('unit')!r}",
                type="unit_mismatch",
                allowed=param["unit"],
            )
        value = dec(b["value"])
        deviation = ("min" in param and value < dec(param["min"])) or (
            "max" in param and value > dec(param["max"])
        )
    else:
        if "result" not in b:
            raise RecordError.at(
                "result", msg=f"{param['code']} is a pass/fail check: give result", type="missing"
            )
        deviation = b["result"] == "fail"
    if instant(b["measured_at"]) < instant(lot["started_at"]) - timedelta(days=1):
        raise RecordError.at(
            "measured_at",
            msg=f"lot {lot['code']!r} started at {lot['started_at']}; "
            "a reading more than a day earlier cannot belong to it",
            type="before_lot",
            date=lot["started_at"],
        )
    if deviation:
        open_deviation(ctx.out, b)
    ctx.put("ccp_readings", _reading_row(b, lot["record_seq"], deviation))


def _reading_row(b: Row, lot_seq: int, deviation: bool) -> Row:
    """A reading's row in ``ccp_readings``, but for its owner and seqs."""
    return {
        "lot_seq": lot_seq,
        "ccp": b["ccp"],
        "parameter": b["parameter"],
        "value": b.get("value"),
        "unit": b.get("unit"),
        "result": b.get("result"),
        "measured_at": b["measured_at"],
        "deviation": deviation,
        "corrective_action": b.get("corrective_action"),
    }


def open_deviation(out: Applied, b: Row) -> None:
    """Warn of a reading outside its limits that names no corrective action."""
    if not b.get("corrective_action"):
        out.warn(
            "value" if "value" in b else "result",
            msg="outside the critical limits: recorded as an open deviation until a "
            "corrective action closes it",
            type="open_deviation",
        )


def _corrective_action(ctx: Ctx, b: Row) -> None:
    reading = ctx.one("ccp_readings", ("reading_seq",), "CCP reading", record_seq=b["reading_seq"])
    if not reading["deviation"]:
        raise RecordError.at(
            "reading_seq",
            msg=f"reading {b['reading_seq']} is within its limits: there is no deviation to close",
            type="no_deviation",
        )
    if instant(b["taken_at"]) < instant(reading["measured_at"]):
        raise RecordError.at(
            "taken_at", msg="a corrective action cannot precede the reading", type="date_order"
        )
    ctx.put("corrective_actions", {"reading_seq": b["reading_seq"], "taken_at": b["taken_at"]})


def _release_test(ctx: Ctx, b: Row) -> None:
    lot = ctx.one("lots", ("lot_code",), "lot", code=b["lot_code"])
    if instant(b["tested_at"]) < instant(lot["started_at"]):
        raise RecordError.at(
            "tested_at",
            msg=f"lot {lot['code']!r} started at {lot['started_at']}; it cannot be tested earlier",
            type="before_lot",
            date=lot["started_at"],
        )
    ctx.attachments(b)
    required = [i["item"] for i in product_data(product_of(ctx, lot))["release_items"]]
    tested = {i["item"] for i in b["items"]}
    missing = [i for i in required if i not in tested]
    if missing:
        ctx.out.warn(
            "items",
            msg="the product's release test also requires: " + ", ".join(missing),
            type="missing_items",
            items=", ".join(missing),
        )
    ctx.put(
        "release_tests",
        {
            "lot_seq": lot["record_seq"],
            "tested_at": b["tested_at"],
            "conclusion": b["conclusion"],
            "report_no": b["report_no"],
            "items": canonical_json([[i["item"], i["passed"]] for i in b["items"]]),
        },
    )


def _sale(ctx: Ctx, b: Row) -> None:
    lot = ctx.one("lots", ("lot_code",), "lot", code=b["lot_code"])
    customer = ctx.one("customers", ("customer_code",), "customer", code=b["customer_code"])
    factor = unit_factor(product_of(ctx, lot), b["unit"], ("unit",))
    if b["sale_date"] < lot["production_date"]:
        raise RecordError.at(
            "sale_date",
            msg=f"lot {lot['code']!r} was produced on {lot['production_date']}; "
            "it cannot be sold before",
            type="before_lot",
            date=lot["production_date"],
        )
    released = any(
        t["conclusion"] == "pass"
        for t in ctx.store.find("release_tests", lot_seq=lot["record_seq"])
    )
    if not released:
        ctx.out.warn(
            "lot_code",
            msg=f"lot {lot['code']!r} has no passing release test: a product may leave the "
            "plant only after passing it (Art. 52). The sale is recorded as a finding.",
            type="unreleased_sale",
        )
    base_qty = dec(b["quantity"]) * factor
    sold = ctx.store.total("sales", "quantity_base", lot_seq=lot["record_seq"])
    if ctx.replace:  # a correction: the sale it corrects is not sold besides it
        sold -= _sum(
            (
                s
                for s in ctx.store.find("sales", record_seq=ctx.record_seq)
                if s["lot_seq"] == lot["record_seq"]
            ),
            "quantity_base",
        )
    if sold + base_qty > dec(lot["quantity_base"]):
        ctx.out.warn(
            "quantity",
            msg=f"lot {lot['code']!r} produced {lot['quantity_base']}; sales would reach "
            f"{dec_str(sold + base_qty)} (mass balance)",
            type="oversold",
        )
    ctx.put(
        "sales",
        {
            "lot_seq": lot["record_seq"],
            "quantity": b["quantity"],
            "unit": b["unit"],
            "quantity_base": dec_str(base_qty),
            "sale_date": b["sale_date"],
            "customer_seq": customer["record_seq"],
            "buyer_name": b["buyer"]["name"],
            "buyer_credit_code": b["buyer"].get("credit_code"),
            "released": released,
        },
    )


def _self_inspection(ctx: Ctx, b: Row) -> None:
    ctx.put(
        "self_inspections",
        {
            "period": b["period"],
            "period_date": b["period_date"],
            "problems_found": sum(1 for i in b["items"] if i["result"] == "problem"),
        },
    )


def _recall_action(ctx: Ctx, b: Row) -> None:
    lot = customer = None
    if b.get("lot_code"):
        lot = ctx.one("lots", ("lot_code",), "lot", code=b["lot_code"])
    if b.get("customer_code"):
        customer = ctx.one("customers", ("customer_code",), "customer", code=b["customer_code"])
    base = None
    if b.get("quantity") is not None:
        if lot is None:
            raise RecordError.at("lot_code", msg="a quantity needs its lot", type="missing")
        base = dec_str(dec(b["quantity"]) * unit_factor(product_of(ctx, lot), b["unit"], ("unit",)))
    if lot is not None and customer is not None and b["action"] == "recovery":
        sold = sum(
            (
                dec(s["quantity_base"])
                for s in ctx.store.find("sales", lot_seq=lot["record_seq"])
                if s["customer_seq"] == customer["record_seq"]
            ),
            Decimal(0),
        )
        if base is not None and dec(base) > sold:
            ctx.out.warn(
                "quantity",
                msg=f"{customer['name']} was sold {dec_str(sold)} of lot {lot['code']!r}; "
                f"{base} recovered is more than that",
                type="over_recovered",
                sold=dec_str(sold),
                recovered="0",
                most=dec_str(sold),
                unit=product_data(product_of(ctx, lot))["unit"],
            )
    ctx.put(
        "recall_actions",
        {
            "case_ref": b["case"],
            "action": b["action"],
            "lot_seq": lot["record_seq"] if lot else None,
            "customer_seq": customer["record_seq"] if customer else None,
            "quantity": b.get("quantity"),
            "unit": b.get("unit"),
            "quantity_base": base,
            "at": b["at"],
        },
    )


# ------------------------------------------------- the public declaration
#
# DESIGN.md, "QR codes and the consumer page": when a lot is released, the
# enterprise's ledger gets a public declaration entry holding exactly the
# consumer-facing facts. The platform writes it in the transaction of the
# release test (records.service), computing it here from the derived rows; the
# projection recomputes it the same way and refuses a declaration that does not
# state what the ledger says, so a replay proves each declaration true to the
# records before it.
#
# What makes a declaration due, for a lot:
# - none yet, and the lot's latest release test (by tested_at) passes: the first
#   declaration (a failing test of an unreleased lot is never published);
# - one already, and the facts it would state now differ from the latest one (a
#   failing re-test, a correction of the test, the lot, its materials, the
#   product, a supplier or the producer): a new declaration naming the one it
#   supersedes. Nothing is deleted; the consumer page shows the latest.


def _current_body(store: Store, row: Row) -> Row:
    """The record a derived row stands for now: its entry's body, or its latest correction's."""
    body = store.entry_body(row["current_seq"])
    if body is None:
        raise RecordError.at(msg=f"entry {row['current_seq']} is missing", type="not_found")
    return body if row["current_seq"] == row["record_seq"] else body["record"]


def latest_release_test(store: Store, lot_seq: int) -> Row | None:
    """The lot's latest release test by the time it was tested (then by seq)."""
    tests = store.find("release_tests", lot_seq=lot_seq)
    return max(tests, key=lambda t: (instant(t["tested_at"]), t["record_seq"]), default=None)


def latest_declaration(store: Store, lot_seq: int) -> Row | None:
    return max(
        store.find("public_declarations", lot_seq=lot_seq),
        key=lambda r: r["record_seq"],
        default=None,
    )


def declared_facts(store: Store, lot: Row) -> Row:
    """The consumer-facing facts of a lot as the ledger states them now.

    Product, specification, standard, GTIN, producer and licence, lot, production
    date, best-before, the latest release test's conclusion and items, and the
    names of the suppliers of its main ingredients (raw materials, not additives
    or packaging). Never a customer, a quantity, an inspector or a note.
    """
    ent = _first(store, "enterprises", "the enterprise's registration")
    product = _first(store, "products", "product", record_seq=lot["product_seq"])
    pdata = product_data(product)
    producer = {"name": ent["name"], "credit_code": ent["credit_code"], "address": ent["address"]}
    if ent.get("licence_no"):
        producer["licence_no"] = ent["licence_no"]
    facts: Row = {
        "lot_code": lot["code"],
        "product": product["name"],
        "specification": pdata["specification"],
        "producer": producer,
        "production_date": lot["production_date"],
    }
    optional = {
        "gtin": lot.get("gtin"),
        "standard": pdata.get("standard"),
        "best_before": lot.get("best_before"),
    }
    facts.update({k: v for k, v in optional.items() if v})
    test = latest_release_test(store, lot["record_seq"])
    if test is not None:
        body = _current_body(store, test)
        facts["release_test"] = {
            "conclusion": body["conclusion"],
            "items": [
                {k: i[k] for k in ("item", "result", "unit", "limit", "passed") if k in i}
                for i in body["items"]
            ],
        }
    ingredients: list[Row] = []
    for use in sorted(store.find("lot_inputs", record_seq=lot["record_seq"]), key=_line):
        ml = _first(store, "material_lots", "material lot", record_seq=use["material_lot_seq"])
        if ml["material_type"] != "raw_material":
            continue
        suppliers = store.find("suppliers", record_seq=ml["supplier_seq"])
        if not suppliers:
            continue
        item = {"material": ml["material_name"], "supplier": suppliers[0]["name"]}
        if item not in ingredients:
            ingredients.append(item)
    facts["main_ingredients"] = ingredients
    return facts


def _line(row: Row) -> int:
    return int(row["line"])


def _first(store: Store, table: str, what: str, **where: Any) -> Row:
    rows = store.find(table, **where)
    if not rows:
        raise RecordError.at(msg=f"{what} {where or ''} is missing", type="not_found")
    return rows[0]


def facts_digest(facts: Row) -> str:
    return hashlib.sha256(canonical_dumps(facts)).hexdigest()


def declaration_due(store: Store, lot: Row) -> Row | None:
    """The body of the public declaration the lot needs now, or None (see above)."""
    facts = declared_facts(store, lot)
    previous = latest_declaration(store, lot["record_seq"])
    if previous is None:
        if facts.get("release_test", {}).get("conclusion") != "pass":
            return None
        return facts
    if previous["facts_sha256"] == facts_digest(facts):
        return None
    return {**facts, "supersedes": previous["record_seq"]}


def lots_to_declare(store: Store, kind: str, body: Row) -> set[int]:
    """The lots (record seqs) whose public declaration an entry of ``kind`` may change.

    Called before and after the entry applies: a corrected release test may move
    from one lot to another, and both then need a look.
    """
    if kind == RecordKind.RELEASE_TEST:
        return {lot["record_seq"] for lot in store.find("lots", code=body.get("lot_code"))}
    if kind != RecordKind.CORRECTION:
        return set()
    seq = body["corrects"]
    target = store.entry_kind(seq)
    if target == RecordKind.RELEASE_TEST:
        lots = {t["lot_seq"] for t in store.find("release_tests", record_seq=seq)}
        named = (body.get("record") or {}).get("lot_code")
        return lots | {lot["record_seq"] for lot in store.find("lots", code=named)}
    declared = {r["lot_seq"] for r in store.find("public_declarations")}
    if not declared:
        return set()
    lots: set[int] = set()
    if target == RecordKind.PRODUCTION_LOT:
        lots = {seq}
    elif target == RecordKind.MATERIAL_CHECK:
        lots = {u["record_seq"] for u in store.find("lot_inputs", material_lot_seq=seq)}
    elif target == RecordKind.SUPPLIER:
        for ml in store.find("material_lots", supplier_seq=seq):
            lots |= {
                u["record_seq"] for u in store.find("lot_inputs", material_lot_seq=ml["record_seq"])
            }
    elif target == RecordKind.PRODUCT:
        lots = {lot["record_seq"] for lot in store.find("lots", product_seq=seq)}
    elif target == RecordKind.ENTERPRISE:
        lots = declared
    return lots & declared


def _public_declaration(ctx: Ctx, b: Row) -> None:
    lot = ctx.one("lots", ("lot_code",), "lot", code=b["lot_code"])
    facts = declared_facts(ctx.store, lot)
    previous = latest_declaration(ctx.store, lot["record_seq"])
    expected = facts if previous is None else {**facts, "supersedes": previous["record_seq"]}
    if b != expected:
        differ = sorted(k for k in set(b) | set(expected) if b.get(k) != expected.get(k))
        raise RecordError.at(
            msg="the public declaration does not state the lot's recorded facts "
            f"(it differs in {', '.join(differ)})",
            type="declaration_mismatch",
        )
    ctx.put(
        "public_declarations",
        {
            "lot_seq": lot["record_seq"],
            "conclusion": (facts.get("release_test") or {}).get("conclusion"),
            "facts_sha256": facts_digest(facts),
        },
    )


# ------------------------------------------------- an authority's ledger


def _authority_row(ctx: Ctx, **row: Any) -> Row:
    return {
        "ledger_id": ctx.store.enterprise_id,
        "record_seq": ctx.record_seq,
        "current_seq": ctx.current_seq,
        **row,
    }


def _failed_sample(ctx: Ctx, b: Row) -> None:
    ctx.store.put(
        "cases",
        _authority_row(
            ctx,
            credit_code=b["credit_code"],
            enterprise=b["enterprise"]["name"],
            lot_code=b["lot_code"],
            product=b["product"],
            test_item=b["test_item"],
            result=b["result"],
            limit=b["limit"],
            report_no=b["report_no"],
            sampling_date=b["sampling_date"],
            state=CaseState.OPENED,
            opened_at=b["opened_at"],
        ),
        replace=ctx.replace,
    )
    for line, lot in enumerate(b["scope"]["lots"], start=1):
        ctx.store.put(
            "case_lots",
            _authority_row(
                ctx,
                line=line,
                credit_code=lot["credit_code"],
                lot_code=lot["lot_code"],
                reason=lot["reason"],
            ),
            replace=ctx.replace,
        )


def _case(ctx: Ctx, seq: int) -> Row:
    return ctx.one("cases", ("case_seq",), "case", record_seq=seq)


def _case_step(ctx: Ctx, b: Row) -> None:
    case = _case(ctx, b["case_seq"])
    state, target = CaseState(case["state"]), CaseState(b["state"])
    if target not in CASE_TRANSITIONS[state]:
        raise RecordError.at(
            "state",
            msg=f"case {case['record_seq']} is {state}; it cannot move to {target}",
            type="bad_transition",
            state=state,
        )
    if state is CaseState.OPENED and target is CaseState.CLOSED and not b.get("note"):
        raise RecordError.at(
            "note", msg="closing a case before any recall needs a note saying why", type="missing"
        )
    ctx.store.put("cases", {**case, "state": target, "current_seq": ctx.current_seq}, replace=True)
    by = b.get("by") or {}
    ctx.store.put(
        "case_steps",
        _authority_row(
            ctx,
            case_seq=b["case_seq"],
            state=target,
            note=b.get("note"),
            by_role=by.get("role", "regulator"),
            by_code=by.get("credit_code"),
        ),
        replace=ctx.replace,
    )


def _public_recall(ctx: Ctx, b: Row) -> None:
    _case(ctx, b["case_seq"])
    for line, lot in enumerate(b["lots"], start=1):
        ctx.store.put(
            "recalled_lots",
            _authority_row(
                ctx,
                line=line,
                case_seq=b["case_seq"],
                credit_code=lot["credit_code"],
                lot_code=lot["lot_code"],
                gtin=lot.get("gtin"),
            ),
            replace=ctx.replace,
        )


def _referral(ctx: Ctx, b: Row) -> None:
    _case(ctx, b["case_seq"])
    ctx.store.put(
        "referrals",
        _authority_row(
            ctx,
            case_seq=b["case_seq"],
            to_authority=b.get("to_authority"),
            region_codes=" ".join(sorted({e["region_code"] for e in b["enterprises"]})),
            data=canonical_json(b["enterprises"]),
        ),
        replace=ctx.replace,
    )


APPLY: dict[str, Callable[[Ctx, Row], None]] = {
    RecordKind.ENTERPRISE: _enterprise,
    RecordKind.PRODUCT: _product,
    RecordKind.SUPPLIER: _party("suppliers", "supplier code"),
    RecordKind.CUSTOMER: _party("customers", "customer code"),
    RecordKind.MATERIAL_CHECK: _material_check,
    RecordKind.PRODUCTION_LOT: _production_lot,
    RecordKind.CCP_RECORD: _ccp_record,
    RecordKind.CORRECTIVE_ACTION: _corrective_action,
    RecordKind.RELEASE_TEST: _release_test,
    RecordKind.SALE: _sale,
    RecordKind.SELF_INSPECTION: _self_inspection,
    RecordKind.RECALL_ACTION: _recall_action,
    RecordKind.PUBLIC_DECLARATION: _public_declaration,
    RecordKind.FAILED_SAMPLE: _failed_sample,
    RecordKind.CASE_STEP: _case_step,
    RecordKind.PUBLIC_RECALL: _public_recall,
    RecordKind.REFERRAL: _referral,
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
            found = self.points.get(key, False)
            if found is False:
                found = self.points[key] = self._point(*key)
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
