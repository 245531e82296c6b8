"""Appending to a ledger and checking its hash chain.

An entry (DESIGN.md, "The ledger")::

    {"v": 1, "log": <origin>, "seq": n, "kind": ..., "event_time": ..., "recorded_at": ...,
     "actor": ..., "salt": <16 random bytes, base64>, "body": {...},
     "prev_hash": <hex of entry n-1's hash, 64 zeros for n = 1>, ["corrects": m]}

is stored as its RFC 8785 bytes, and its hash is SHA-256(0x00 || bytes): the
RFC 9162 leaf hash. The head row also carries the ledger's Merkle tree as a
compact range (``foodtrace.tlog.merkle.CompactRange``), moved with every append.
"""

from __future__ import annotations

import base64
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, event, func, select
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlmodel import Session

from foodtrace.canonical import ENTRY_VERSION, ZERO_HASH, canonical_bytes, leaf_hash
from foodtrace.db import FoodtraceSession, is_write_connection
from foodtrace.errors import NotFound
from foodtrace.ledger.models import Entry, Ledger
from foodtrace.tlog.merkle import CompactRange
from schemas.types import format_instant


def new_ledger(
    *, session: Session, owner_kind: str, credit_code: str, platform_name: str, now: datetime
) -> Ledger:
    """Create an empty ledger; its origin is fixed here, from the stored platform name."""
    ledger = Ledger(
        owner_kind=owner_kind,
        credit_code=credit_code,
        origin=f"{platform_name}/ledger/{credit_code}",
        size=0,
        head_hash=bytes(32),
        compact_range=b"",
        created_at=format_instant(now),
    )
    session.add(ledger)
    session.flush()
    return ledger


@dataclass
class Head:
    """A ledger's head row as locked for an append (``lock_head``): the ``Ledger`` columns
    an append reads, without an ORM object (``Ledger`` rows loaded in the same session are
    kept equal to it, see :func:`_follow`)."""

    id: int
    owner_kind: str
    credit_code: str
    origin: str
    size: int
    head_hash: bytes
    compact_range: bytes
    created_at: str


def lock_head(*, session: Session, ledger_id: int) -> Head:
    """Lock the ledger's head row for this transaction; appends are serialised on it.

    PostgreSQL: ``SELECT … FOR NO KEY UPDATE`` (READ COMMITTED). SQLite: the session
    must be a write session (``BEGIN IMMEDIATE``), which already holds the
    database's write lock, so two writers can never read the same head.

    One Core statement built once (every API append takes this lock): no ORM
    load, no statement to compile or cache key to compute per call. A ``Ledger``
    of this id already in the session is refreshed from the locked row, as an ORM
    re-read (``populate_existing``) would.
    """
    conn = session.connection()
    if not is_write_connection(conn):
        raise RuntimeError("appending needs a write session (foodtrace.db.write_session)")
    if not isinstance(session, FoodtraceSession):  # its listeners write the deferred heads
        raise RuntimeError(
            "appending needs a write session of foodtrace.db (a FoodtraceSession), "
            f"not a {type(session).__name__}"
        )
    # Within one transaction the lock is already held: reuse the head read then
    # (it follows every append). Any transaction's end, savepoints included,
    # forgets it, so a rolled-back savepoint can never leave a stale head.
    held = session.info.setdefault(_HELD, {})
    if ledger_id in held:
        return held[ledger_id]
    row = conn.execute(_LOCK_HEAD, {"b_id": ledger_id}).first()
    if row is None:
        raise NotFound(f"no ledger {ledger_id}")
    head = Head(*row)
    head.head_hash, head.compact_range = bytes(head.head_hash), bytes(head.compact_range)
    _follow(session, head)
    held[ledger_id] = head
    return head


def _follow(session: Session, head: Head) -> None:
    """Make a ``Ledger`` of ``head``'s id loaded in this session show ``head``'s size, hash
    and compact range, without marking it changed (the row is, or will be, written)."""
    if not session.identity_map:
        return
    loaded = session.identity_map.get(identity_key(Ledger, head.id))
    if loaded is not None:
        set_committed_value(loaded, "size", head.size)
        set_committed_value(loaded, "head_hash", head.head_hash)
        set_committed_value(loaded, "compact_range", head.compact_range)


_HELD = "foodtrace.locked_heads"


_PENDING = "foodtrace.pending_heads"
_APPENDED = "foodtrace.appended_ledgers"


@event.listens_for(FoodtraceSession, "after_transaction_end")
def _forget_locked_heads(session: Session, transaction: Any) -> None:
    # A rolled-back (sub)transaction takes its deferred head moves with it: the
    # head row still matches the entries that remain.
    session.info.pop(_HELD, None)
    session.info.pop(_PENDING, None)
    if transaction.parent is None:
        session.info.pop(_APPENDED, None)


def appended_in_transaction(session: Session, ledger_id: int) -> bool:
    """Whether this session's current transaction appended to the ledger (not yet committed).

    A checkpoint must cover committed entries only: once signed, a size can
    never be signed with another root, so signing entries that are then rolled
    back would stop the ledger from ever being checkpointed again.
    """
    return ledger_id in session.info.get(_APPENDED, ())


@event.listens_for(FoodtraceSession, "before_commit")
def _write_pending_heads(session: Session) -> None:
    """Move deferred heads before any commit, a savepoint's release included."""
    flush_heads(session)


def flush_heads(session: Session) -> None:
    """Write the head rows whose moves were deferred (see ``write_entry(defer_head=…)``)."""
    pending = session.info.pop(_PENDING, None)
    if pending:
        conn = session.connection()
        for head in pending.values():
            conn.execute(
                _MOVE_HEAD,
                {
                    "b_id": head.id,
                    "b_size": head.size,
                    "b_head_hash": head.head_hash,
                    "b_compact_range": head.compact_range,
                },
            )


def new_salt() -> str:
    """16 random bytes, base64: keeps a neighbour's hash in a public proof from being guessed."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


def new_salts(n: int) -> list[str]:
    """``n`` salts as :func:`new_salt` makes them, from one read of the random source (an
    import's rows: one system call rather than one per entry)."""
    raw = os.urandom(16 * n)
    return [base64.b64encode(raw[i : i + 16]).decode("ascii") for i in range(0, 16 * n, 16)]


def build_entry(
    *,
    head: Head | Ledger,
    kind: str,
    body: dict[str, Any],
    actor: str,
    event_time: str,
    recorded_at: str,
    salt: str,
) -> dict[str, Any]:
    """The entry that will be appended as seq ``head.size + 1``."""
    return entry_dict(
        origin=head.origin,
        seq=head.size + 1,
        prev_hash=head.head_hash if head.size else None,
        kind=kind,
        body=body,
        actor=actor,
        event_time=event_time,
        recorded_at=recorded_at,
        salt=salt,
    )


def entry_dict(
    *,
    origin: str,
    seq: int,
    prev_hash: bytes | None,
    kind: str,
    body: dict[str, Any],
    actor: str,
    event_time: str,
    recorded_at: str,
    salt: str,
) -> dict[str, Any]:
    """Entry ``seq`` of the ledger ``origin``; ``prev_hash`` None for the first (64 zeros)."""
    entry: dict[str, Any] = {
        "v": ENTRY_VERSION,
        "log": origin,
        "seq": seq,
        "kind": kind,
        "event_time": event_time,
        "recorded_at": recorded_at,
        "actor": actor,
        "salt": salt,
        "body": body,
        "prev_hash": bytes(prev_hash).hex() if prev_hash is not None else ZERO_HASH,
    }
    if "corrects" in body and kind == "correction":
        entry["corrects"] = body["corrects"]
    return entry


def move_head(
    *,
    session: Session,
    head: Head,
    size: int,
    head_hash: bytes,
    compact_range: bytes,
    defer: bool = False,
) -> None:
    """Move the (locked) head row after entries up to ``size`` were inserted.

    ``defer``: once, when the (sub)transaction commits (see ``write_entry``).
    """
    session.info.setdefault(_APPENDED, set()).add(head.id)
    if defer:
        session.info.setdefault(_PENDING, {})[head.id] = head
    else:
        session.connection().execute(
            _MOVE_HEAD,
            {
                "b_id": head.id,
                "b_size": size,
                "b_head_hash": head_hash,
                "b_compact_range": compact_range,
            },
        )
    # The row is written (or will be); the in-memory head follows it.
    head.size, head.head_hash, head.compact_range = size, head_hash, compact_range
    _follow(session, head)


@dataclass(frozen=True)
class Appended:
    seq: int
    hash: bytes
    prev_hash: bytes
    data: bytes


def write_entry(
    *, session: Session, head: Head, entry: dict[str, Any], defer_head: bool = False
) -> Appended:
    """Insert ``entry`` and move the head; the caller holds the head lock and commits.

    ``defer_head`` moves the head row once, when the (sub)transaction commits,
    instead of after every entry: on PostgreSQL each update of one row inside a
    transaction lengthens that row's version chain, so a bulk import that moved
    the head per entry would slow down row by row.

    The head's Merkle compact range takes the new leaf in O(log n) (one node
    hash per append on average).
    """
    if entry["seq"] != head.size + 1 or entry["log"] != head.origin:
        raise ValueError(f"entry seq {entry['seq']} does not follow head size {head.size}")
    data = canonical_bytes(entry)
    digest = leaf_hash(data)
    prev = bytes.fromhex(entry["prev_hash"])
    tree = CompactRange.from_bytes(head.size, head.compact_range)
    tree.append(digest)
    compact = tree.to_bytes()
    conn = session.connection()
    conn.execute(
        _ENTRIES.insert(),
        {
            "ledger_id": head.id,
            "seq": entry["seq"],
            "kind": entry["kind"],
            "event_time": entry["event_time"],
            "recorded_at": entry["recorded_at"],
            "prev_hash": prev,
            "hash": digest,
            "body": data,
        },
    )
    session.info.setdefault(_APPENDED, set()).add(head.id)
    if defer_head:
        session.info.setdefault(_PENDING, {})[head.id] = head
    else:
        conn.execute(
            _MOVE_HEAD,
            {
                "b_id": head.id,
                "b_size": entry["seq"],
                "b_head_hash": digest,
                "b_compact_range": compact,
            },
        )
    # The row is written; the in-memory head follows it.
    head.size, head.head_hash, head.compact_range = entry["seq"], digest, compact
    _follow(session, head)
    return Appended(entry["seq"], digest, prev, data)


_ENTRIES = Entry.__table__  # type: ignore[attr-defined]
_LEDGERS = Ledger.__table__  # type: ignore[attr-defined]
_LOCK_HEAD = (
    select(
        _LEDGERS.c.id,
        _LEDGERS.c.owner_kind,
        _LEDGERS.c.credit_code,
        _LEDGERS.c.origin,
        _LEDGERS.c.size,
        _LEDGERS.c.head_hash,
        _LEDGERS.c.compact_range,
        _LEDGERS.c.created_at,
    )
    .where(_LEDGERS.c.id == bindparam("b_id"))
    # FOR NO KEY UPDATE: appends exclude each other, but rows that merely reference the
    # ledger (a signed checkpoint, whose foreign key takes KEY SHARE) need not wait for them.
    .with_for_update(key_share=True)
)
_MOVE_HEAD = (
    _LEDGERS.update()
    .where(_LEDGERS.c.id == bindparam("b_id"))
    .values(
        size=bindparam("b_size"),
        head_hash=bindparam("b_head_hash"),
        compact_range=bindparam("b_compact_range"),
    )
)


def get_ledger(*, session: Session, credit_code: str) -> Ledger:
    ledger = session.execute(
        select(Ledger).where(Ledger.credit_code == credit_code)
    ).scalar_one_or_none()
    if ledger is None:
        raise NotFound(f"no ledger for credit code {credit_code}")
    return ledger


def get_entry(*, session: Session, ledger_id: int, seq: int) -> Entry:
    entry = session.get(Entry, (ledger_id, seq))
    if entry is None:
        raise NotFound(f"no entry {seq}")
    return entry


def list_entries(
    *,
    session: Session,
    ledger_id: int,
    offset: int = 0,
    limit: int = 50,
    kind: str | None = None,
    since: str | None = None,
    until: str | None = None,
    descending: bool = True,
    before: int | None = None,
) -> tuple[list[Entry], int]:
    """A page of a ledger's entries (newest first by default) and the count that match.

    ``before``: a keyset cursor, only entries with a smaller seq (newest first); with it
    the count is of every match, as without, so that pages can say "n of count".
    """
    conds = [Entry.ledger_id == ledger_id]
    if kind:
        conds.append(Entry.kind == kind)
    if since:
        conds.append(Entry.recorded_at >= since)
    if until:
        conds.append(Entry.recorded_at < until)
    count = session.execute(select(func.count()).select_from(Entry).where(*conds)).scalar_one()
    order = Entry.seq.desc() if descending else Entry.seq.asc()
    page = [*conds, Entry.seq < before] if before is not None else conds
    rows = session.execute(
        select(Entry).where(*page).order_by(order).offset(offset).limit(limit)
    ).scalars()
    return list(rows), count


def iter_entries(*, session: Session, ledger_id: int, batch: int = 2000) -> Iterator[Any]:
    """Every stored entry row of a ledger in seq order, read in batches (plain rows, no ORM)."""
    table = Entry.__table__  # type: ignore[attr-defined]
    last = 0
    while True:
        rows = session.execute(
            select(table)
            .where(table.c.ledger_id == ledger_id, table.c.seq > last)
            .order_by(table.c.seq)
            .limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


ENTRY_COLUMNS = ("seq", "kind", "event_time", "recorded_at", "prev_hash", "hash", "body")
_CURSOR_NAMES = itertools.count()


def entry_tuples(
    *, session: Session, ledger_id: int, batch: int = 2000
) -> Iterator[tuple[Any, ...]]:
    """Every stored entry of a ledger in seq order, as plain tuples of :data:`ENTRY_COLUMNS`.

    For a reader of every entry (verification). On PostgreSQL it is one
    server-side cursor in the session's transaction, fetched ``batch`` rows at a
    time in binary format: bytea arrives as its bytes rather than as hex text to
    decode, and no SQLAlchemy row is built (half the time per entry of
    :func:`iter_entries`). Elsewhere (SQLite, or a connection in autocommit, where
    a cursor cannot outlive its statement) the same rows in keyset batches.
    """
    conn = session.connection()
    raw = conn.connection.driver_connection
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        if not raw.autocommit:  # type: ignore[union-attr]
            name = f"foodtrace_entries_{next(_CURSOR_NAMES)}"
            with raw.cursor(name=name, binary=True) as cur:  # type: ignore[union-attr]
                cur.execute(
                    f"SELECT {', '.join(ENTRY_COLUMNS)} FROM entries"
                    " WHERE ledger_id = %s ORDER BY seq",
                    (ledger_id,),
                )
                while rows := cur.fetchmany(batch):  # a list each: no Python call per row
                    yield from rows
            return
    table = Entry.__table__  # type: ignore[attr-defined]
    cols = [table.c[c] for c in ENTRY_COLUMNS]
    last = 0
    while True:
        rows = session.execute(
            select(*cols)
            .where(table.c.ledger_id == ledger_id, table.c.seq > last)
            .order_by(table.c.seq)
            .limit(batch)
        ).all()
        if not rows:
            return
        yield from (tuple(r) for r in rows)
        last = rows[-1][0]
