"""Verification: recompute everything from the stored canonical bytes, trust no stored hash.

For one ledger, in seq order: the seq run (1, 2, 3 … with no gap), each
entry's hash recomputed from its bytes, the envelope (version, origin, seq,
kind, times) against the row's columns, every ``prev_hash`` link against the
previous *recomputed* hash, and the head row against the last entry. Then the
derived tables are rebuilt in memory by replaying every entry through the same
projection the append path uses, and compared row by row with the database;
and every attachment an entry references is rehashed. The report names the
first bad entry.

The Merkle log is checked from the same recomputed leaf hashes: the head
row's compact range must be the one they give, and every stored checkpoint
must have the root they give at its size, say in its note what its columns
say, and (given the platform's verifier key) carry a valid signature. A
ledger rewritten with a consistent chain of new hashes passes the chain checks
but not its signed checkpoints.

Given the signer's own record of the last (size, root) it signed for each
ledger (kept beside its key, outside the database: ``signed_state``), the
ledger must also reach that size with that root. A database restored from an
older backup passes every other check, since it is a consistent earlier state,
and fails this one: entries that were signed are missing.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import re
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from sqlalchemy import Engine, func, literal, select, union_all
from sqlmodel import Session

from foodtrace.attachments.models import Attachment
from foodtrace.canonical import (
    ENTRY_VERSION,
    ZERO_HASH,
    CanonicalError,
    canonical_bytes,
    canonical_entry,
    leaf_hash,
)
from foodtrace.db import FoodtraceSession
from foodtrace.errors import RecordError
from foodtrace.ledger.models import Ledger, SignedCheckpoint
from foodtrace.ledger.service import entry_tuples
from foodtrace.records.derive import Row
from foodtrace.records.projection import (
    TABLES,
    DirectReplay,
    MemoryStore,
    apply_entry,
    owner_column,
    primary_key,
)
from foodtrace.tlog.checkpoint import Checkpoint, CheckpointError
from foodtrace.tlog.merkle import CompactRange
from foodtrace.tlog.note import NoteError, Verifier, open_note, parse_note
from schemas.records import RecordKind


@dataclass(frozen=True)
class Problem:
    """One check that failed: at which entry (None when not tied to one), which check, what."""

    seq: int | None
    check: str
    message: str


@dataclass
class Report:
    credit_code: str
    size: int
    entries_checked: int = 0
    checkpoints_checked: int = 0
    signatures_checked: bool = False
    """Whether checkpoint signatures were verified (only with the platform's verifier key)."""
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        """The problem at the lowest seq (problems tied to no entry come last)."""
        if not self.problems:
            return None
        return min(self.problems, key=lambda p: (p.seq is None, p.seq or 0))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return bool(a) == bool(b) and a is not None and b is not None
    return a == b


def _raw(value: Any) -> bytes:
    """A stored binary column as bytes, whatever type someone wrote into it."""
    if type(value) is bytes:
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    return repr(value).encode("utf-8")


_CCP = str(RecordKind.CCP_RECORD)
_ENVELOPE = itemgetter("seq", "kind", "prev_hash", "recorded_at", "event_time", "v", "log")

SignedState = Mapping[str, tuple[int, bytes]]
"""The signer's last signed (size, root) per origin (``tlog.signer.load_signed_state``)."""


def verify_ledger(
    *,
    session: Session,
    ledger_id: int,
    verifiers: Iterable[Verifier] | None = None,
    signed_state: SignedState | None = None,
) -> Report:
    """Check one ledger completely; see the module docstring for what is checked.

    ``verifiers``: the platform's verifier key(s), to check checkpoint signatures;
    without them the checkpoints' roots are still checked against the entries.
    ``signed_state``: the signer's record of what it last signed per origin; the
    ledger must reach that size with that root (not behind it: an older backup).
    """
    head = session.get(Ledger, ledger_id)
    if head is None:
        raise ValueError(f"no ledger {ledger_id}")
    report = Report(credit_code=head.credit_code, size=head.size)
    keys = None if verifiers is None else list(verifiers)
    report.signatures_checked = keys is not None
    bad = report.problems.append
    attachments = {
        sha: (content_sha,)
        for sha, content_sha in (
            (a.sha256, hashlib.sha256(a.content).hexdigest())
            for a in session.execute(
                select(Attachment).where(Attachment.enterprise_id == ledger_id)
            ).scalars()
        )
    }
    for sha, (actual,) in attachments.items():
        if sha != actual:
            bad(Problem(None, "attachment", f"attachment {sha} has content hashing to {actual}"))
    memory = MemoryStore(ledger_id, attachments)
    expected_seq = 1
    prev = ZERO_HASH
    tree = CompactRange()
    checkpoints = _Checkpoints(session, head, keys, bad)
    checkpoints.reached(tree)
    last_signed = _LastSigned((signed_state or {}).get(head.origin), bad)
    due = min(checkpoints.due(), last_signed.due())
    origin = head.origin
    direct = DirectReplay(memory)
    remember = memory.remember
    for seq, kind, event_time, recorded_at, stored_prev, stored_hash, data in entry_tuples(
        session=session, ledger_id=ledger_id
    ):
        report.entries_checked += 1
        if seq != expected_seq:
            bad(
                Problem(
                    expected_seq, "seq", f"entry {expected_seq} is missing (next stored: {seq})"
                )
            )
            expected_seq = seq
        if type(data) is not bytes:
            data = _raw(data)
        if type(stored_hash) is not bytes:
            stored_hash = _raw(stored_hash)
        if type(stored_prev) is not bytes:
            stored_prev = _raw(stored_prev)
        digest = leaf_hash(data)
        tree.append(digest)
        if tree.size == due:  # a stored checkpoint's size or the signer's: check the root
            checkpoints.reached(tree)
            last_signed.reached(tree)
            due = min(checkpoints.due(), last_signed.due())
        if digest != stored_hash:
            bad(
                Problem(
                    seq,
                    "hash",
                    f"stored hash {stored_hash.hex()[:16]}… but the bytes "
                    f"hash to {digest.hex()[:16]}…",
                )
            )
        env = canonical_entry(data)
        canonical = env is not None
        if env is None:
            try:
                env = json.loads(data)
                if not isinstance(env, dict):
                    raise ValueError("not an object")
            except ValueError as exc:
                bad(Problem(seq, "bytes", f"stored bytes are not an entry: {exc}"))
                prev = digest.hex()
                expected_seq += 1
                continue
            try:
                canonical = canonical_bytes(env) == data
            except CanonicalError:
                canonical = False
        if not canonical:
            bad(Problem(seq, "canonical", "stored bytes are not the RFC 8785 form of the entry"))
        prev_hex = stored_prev.hex()
        try:  # every envelope field as the row states it (the usual case, checked at once)
            usual = _ENVELOPE(env) == (
                seq,
                kind,
                prev_hex,
                recorded_at,
                event_time,
                ENTRY_VERSION,
                origin,
            )
        except KeyError:
            usual = False
        if not usual:
            for name, in_bytes, in_row in (
                ("v", env.get("v"), ENTRY_VERSION),
                ("log", env.get("log"), head.origin),
                ("seq", env.get("seq"), seq),
                ("kind", env.get("kind"), kind),
                ("recorded_at", env.get("recorded_at"), recorded_at),
                ("event_time", env.get("event_time"), event_time),
                ("prev_hash", env.get("prev_hash"), prev_hex),
            ):
                if in_bytes != in_row:
                    bad(
                        Problem(
                            seq,
                            name,
                            f"{name} is {in_bytes!r} in the entry's bytes but {in_row!r} "
                            "in the table",
                        )
                    )
        if env.get("prev_hash") != prev:
            bad(
                Problem(
                    seq,
                    "chain",
                    f"prev_hash {str(env.get('prev_hash'))[:16]}… does not match "
                    f"the hash of entry {seq - 1} ({prev[:16]}…)",
                )
            )
        body = env.get("body") or {}
        entry_kind = str(env.get("kind"))
        remember(seq, entry_kind, body)
        # A CCP reading (most entries) straight to its row when it applies cleanly; the
        # generic replay otherwise, which also names what does not apply.
        if entry_kind != _CCP or not direct.ccp_record(seq, body):
            try:
                apply_entry(memory, seq, entry_kind, body)
            except (RecordError, KeyError, TypeError, ValueError) as exc:
                bad(Problem(seq, "replay", f"entry does not apply: {exc}"))
        prev = digest.hex()
        expected_seq = seq + 1
    last = expected_seq - 1
    if head.size != last:
        bad(
            Problem(
                min(head.size, last) + 1,
                "head",
                f"the head row says {head.size} entries but {last} are stored",
            )
        )
    elif head.size and head.head_hash.hex() != prev:
        bad(Problem(last, "head", "the head row's hash is not the last entry's hash"))
    _compare_derived(session, ledger_id, memory, bad, last)
    if head.size == last and bytes(head.compact_range) != tree.to_bytes():
        bad(
            Problem(
                None,
                "merkle",
                "the head row's Merkle compact range is not the one the entries give "
                f"(root {tree.root().hex()[:16]}…)",
            )
        )
    checkpoints.beyond(tree)
    last_signed.beyond(tree)
    report.checkpoints_checked = checkpoints.checked
    return report


class _LastSigned:
    """The signer's record of the ledger's last signed checkpoint, checked when the tree reaches it.

    The database's own checkpoints cannot show that a whole signed tail is
    missing when the database was restored from a backup taken before it: the
    backup holds the checkpoints of its own time only. The signer's record,
    kept outside the database, still says how far the ledger had been signed.
    """

    def __init__(self, signed: tuple[int, bytes] | None, bad: Any) -> None:
        self.size, self.root = signed if signed is not None else (0, b"")
        self.bad = bad
        self.done = self.size == 0

    def due(self) -> int | float:
        """The tree size at which :meth:`reached` has something to check (inf: none)."""
        return float("inf") if self.done else self.size

    def reached(self, tree: CompactRange) -> None:
        if self.done or tree.size != self.size:
            return
        self.done = True
        root = tree.root()
        if root != self.root:
            self.bad(
                Problem(
                    self.size,
                    "signer",
                    f"the signer last signed this ledger at size {self.size} with root "
                    f"{self.root.hex()[:16]}…, but the entries give {root.hex()[:16]}…: an entry "
                    f"among 1..{self.size} is not the one that was signed",
                )
            )

    def beyond(self, tree: CompactRange) -> None:
        if self.done:
            return
        self.bad(
            Problem(
                tree.size + 1,
                "signer",
                f"the signer last signed this ledger at size {self.size} (root "
                f"{self.root.hex()[:16]}…), but it ends at {tree.size}: signed entries "
                f"{tree.size + 1}..{self.size} are missing (a database restored from an older "
                "backup? RELIABILITY.md, 'Recovering the lost tail')",
            )
        )


class _Checkpoints:
    """The stored checkpoints of a ledger, checked as the recomputed tree reaches each size."""

    def __init__(
        self, session: Session, head: Ledger, keys: list[Verifier] | None, bad: Any
    ) -> None:
        self.pending = list(
            session.execute(
                select(SignedCheckpoint)
                .where(SignedCheckpoint.ledger_id == head.id)
                .order_by(SignedCheckpoint.size.desc())  # type: ignore[attr-defined]
            ).scalars()
        )  # largest first: the next one due is popped from the end
        self.origin = head.origin
        self.keys = keys
        self.bad = bad
        self.checked = 0
        self.last_good = 0

    def due(self) -> int | float:
        """The tree size at which :meth:`reached` has something to check (inf: none)."""
        return self.pending[-1].size if self.pending else float("inf")

    def reached(self, tree: CompactRange) -> None:
        while self.pending and self.pending[-1].size == tree.size:
            self._check(self.pending.pop(), tree.root(), tree.to_bytes())

    def beyond(self, tree: CompactRange) -> None:
        """Checkpoints larger than the ledger: entries that were signed are gone."""
        for cp in reversed(self.pending):
            self.checked += 1
            self.bad(
                Problem(
                    tree.size + 1,
                    "checkpoint",
                    f"a checkpoint was signed at size {cp.size}, but the ledger ends at "
                    f"{tree.size}: signed entries were removed",
                )
            )

    def _check(self, cp: SignedCheckpoint, root: bytes, tree: bytes) -> None:
        self.checked += 1
        where = f"checkpoint at size {cp.size}"
        stored_root = bytes(cp.root)
        problem = None
        try:
            text = (
                parse_note(cp.note).text
                if self.keys is None
                else open_note(cp.note, self.keys).text
            )
            said = Checkpoint.parse(text)
            if (said.origin, said.size, said.root) != (self.origin, cp.size, stored_root):
                problem = (
                    f"{where}: its signed note says {said.origin} size {said.size} root "
                    f"{said.root.hex()[:16]}…, its columns size {cp.size} root "
                    f"{stored_root.hex()[:16]}…"
                )
        except (NoteError, CheckpointError) as exc:
            problem = f"{where}: {exc}"
        if problem is None and stored_root != root:
            first = self.last_good + 1
            problem = (
                f"{where} signed root {stored_root.hex()[:16]}… but the entries give "
                f"{root.hex()[:16]}…: an entry among {first}..{cp.size} was rewritten"
            )
        if problem is None and cp.compact_range is not None and bytes(cp.compact_range) != tree:
            problem = (
                f"{where}: its stored compact range is not the tree the entries give (the "
                "next consistency proof is made from it)"
            )
        if problem is not None:
            self.bad(Problem(cp.size, "checkpoint", problem))
        else:
            self.last_good = cp.size


def _rows_equal(
    expected: Mapping[Any, Row], rows: list[tuple[Any, ...]], cols: tuple[str, ...], at: list[int]
) -> bool:
    """Whether the stored rows are the expected ones exactly, column for column.

    The usual case, compared as tuples (a CCP reading's row per entry: no dict
    each). A replayed row whose columns are not the table's, in its order, or
    any difference at all, answers False: :func:`_rows_agree` then decides.
    """
    if len(rows) != len(expected):
        return False
    want = {}
    for pk, row in expected.items():
        if tuple(row) != cols:
            return False
        want[pk] = tuple(row.values())
    return want == {tuple([r[i] for i in at]): r for r in rows}


def _rows_agree(expected: Mapping[Any, Row], stored: Mapping[Any, Row]) -> bool:
    """Whether every row is in both and every column the replay gives is stored as given."""
    if expected.keys() != stored.keys():
        return False
    for pk, want in expected.items():
        have = stored[pk]
        if want != have and not all(_same(v, have.get(c)) for c, v in want.items()):
            return False
    return True


def _stored_rows(
    conn: Any, name: str, table: Any, ledger_id: int
) -> tuple[tuple[str, ...], Iterable[Sequence[Any]]]:
    """The ledger's rows of a derived table, as tuples of its columns.

    On PostgreSQL straight from the driver in binary format (a CCP reading's row
    per entry: no SQLAlchemy row each). The columns are integers, text and
    booleans, which psycopg returns as SQLAlchemy would.
    """
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        cols = tuple(c.name for c in table.columns)
        with conn.connection.driver_connection.cursor(binary=True) as cur:
            quoted = ", ".join(f'"{c}"' for c in cols)  # "limit" is a column of cases
            cur.execute(
                f'SELECT {quoted} FROM "{name}" WHERE "{owner_column(name)}" = %s', (ledger_id,)
            )
            return cols, cur.fetchall()
    result = conn.execute(select(table).where(table.c[owner_column(name)] == ledger_id))
    return tuple(result.keys()), result


def _compare_derived(
    session: Session, ledger_id: int, memory: MemoryStore, bad: Any, last: int
) -> None:
    newest = 0
    conn = session.connection()
    # Which derived tables hold rows of this ledger, in one round trip: an enterprise's
    # ledger has none in an authority's tables (and often none in several of its own),
    # and a table with no stored and no expected row needs no read of its own.
    held = {
        name
        for name, count in conn.execute(
            union_all(
                *(
                    select(literal(name), func.count()).where(
                        table.c[owner_column(name)] == ledger_id
                    )
                    for name, table in TABLES.items()
                )
            )
        )
        if count
    }
    for name, table in TABLES.items():
        if name not in held and not memory.tables.get(name):
            continue
        cols, result = _stored_rows(conn, name, table, ledger_id)
        rows = [tuple(r) for r in result]
        at = [cols.index(k) for k in primary_key(name)]
        expected = memory.tables.get(name, {})
        if "current_seq" in cols:
            i = cols.index("current_seq")
            newest = max(newest, max((r[i] or 0 for r in rows), default=0))
        if _rows_equal(expected, rows, cols, at):
            continue
        stored = {tuple([r[i] for i in at]): dict(zip(cols, r, strict=True)) for r in rows}
        if _rows_agree(expected, stored):
            continue
        for pk in sorted(set(stored) | set(expected)):
            want, have = expected.get(pk), stored.get(pk)
            if have is None:
                assert want is not None
                bad(
                    Problem(
                        want["current_seq"],
                        "derived",
                        f"{name} row {pk} is missing from the database",
                    )
                )
            elif want is None:
                bad(
                    Problem(
                        have.get("record_seq"), "derived", f"{name} row {pk} has no entry behind it"
                    )
                )
            else:
                diff = [c for c in want if not _same(want[c], have.get(c))]
                if diff:
                    differs = ", ".join(
                        f"{c}: stored {have.get(c)!r}, entry says {want[c]!r}" for c in diff
                    )
                    # Name the later of the entry the row should come from and the
                    # (existing) entry it says it comes from: that entry's effect disagrees.
                    seq = want["current_seq"]
                    claimed = have.get("current_seq")
                    if isinstance(claimed, int) and 1 <= claimed <= last:
                        seq = max(seq, claimed)
                    bad(Problem(seq, "derived", f"{name} row {pk} differs: {differs}"))
    if newest > last:
        bad(
            Problem(
                last + 1,
                "truncation",
                f"derived rows come from entries up to {newest}, but the ledger ends at {last}: "
                "entries were removed",
            )
        )


def verify_all(
    *,
    session: Session,
    credit_code: str | None = None,
    verifiers: Iterable[Verifier] | None = None,
    signed_state: SignedState | None = None,
) -> list[Report]:
    """Verify one ledger (by credit code) or all of them."""
    q = select(Ledger.id).order_by(Ledger.id)
    if credit_code:
        q = q.where(Ledger.credit_code == credit_code)
    keys = None if verifiers is None else list(verifiers)
    return [
        verify_ledger(session=session, ledger_id=i, verifiers=keys, signed_state=signed_state)
        for i in session.execute(q).scalars()
    ]


def verify_consistently(
    *,
    engine: Engine,
    ledger_id: int | None = None,
    credit_code: str | None = None,
    verifiers: Iterable[Verifier] | None = None,
    signed_state: SignedState | None = None,
) -> list[Report]:
    """Verify in one consistent snapshot, so that appends running meanwhile raise no alarm.

    PostgreSQL reads under READ COMMITTED see each statement's own snapshot; the
    head row, the entries and the derived tables are read by several statements,
    so verification runs REPEATABLE READ. A SQLite read transaction is already
    one snapshot.

    ``signed_state`` must be read before this is called, while the server may
    be signing: the signer only ever signs committed entries, so what it had
    signed when the state was read is in the snapshot taken afterwards.
    """
    options = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
    with FoodtraceSession(engine.execution_options(**options)) as session:
        if ledger_id is not None:
            return [
                verify_ledger(
                    session=session,
                    ledger_id=ledger_id,
                    verifiers=verifiers,
                    signed_state=signed_state,
                )
            ]
        return verify_all(
            session=session,
            credit_code=credit_code,
            verifiers=verifiers,
            signed_state=signed_state,
        )


def verify_parallel(
    *,
    engine: Engine,
    processes: int,
    credit_code: str | None = None,
    ledger_ids: Iterable[int] | None = None,
    verifiers: Iterable[Verifier] | None = None,
    signed_state: SignedState | None = None,
) -> list[Report]:
    """:func:`verify_consistently` over every ledger (or one credit code, or the ledgers
    ``ledger_ids``), in ``processes``.

    Ledgers are independent, and verifying one is CPU work in Python (hashing,
    parsing, replaying): one process per core verifies that many ledgers at
    once. Each worker process has its own engine and checks whole ledgers, the
    largest first; the reports come back in ledger order, as from
    :func:`verify_consistently`. On PostgreSQL every worker's transaction
    imports the snapshot of the caller's (``pg_export_snapshot``), so all
    ledgers are still seen as of one instant. With one process, one ledger, or
    SQLite (whose writers and readers share one file), the ledgers are verified
    one after another in this process, as :func:`verify_consistently` does.
    """
    keys = None if verifiers is None else list(verifiers)
    only = None if ledger_ids is None else sorted(set(ledger_ids))
    options = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
    with FoodtraceSession(engine.execution_options(**options)) as session:
        q = select(Ledger.id, Ledger.size).order_by(Ledger.id)  # type: ignore[call-overload]
        if credit_code:
            q = q.where(Ledger.credit_code == credit_code)
        if only is not None:
            q = q.where(Ledger.id.in_(only))  # type: ignore[union-attr]
        ledgers = session.execute(q).all()
        if processes <= 1 or len(ledgers) <= 1 or engine.dialect.name != "postgresql":
            return [
                verify_ledger(
                    session=session, ledger_id=i, verifiers=keys, signed_state=signed_state
                )
                for i, _ in ledgers
            ]
        # The snapshot stays importable while this transaction is open: until the end.
        snapshot = session.connection().exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
        url = engine.url.render_as_string(hide_password=False)
        with ProcessPoolExecutor(
            max_workers=min(processes, len(ledgers)),
            mp_context=_worker_context(),
            initializer=_start_worker,
            initargs=(url,),
        ) as pool:
            futures = {
                i: pool.submit(_verify_in_worker, i, snapshot, keys, signed_state)
                for i, _ in sorted(ledgers, key=lambda r: -r[1])  # largest first: even ends
            }
            return [futures[i].result() for i, _ in ledgers]


def _worker_context() -> Any:
    # fork where there is one: a worker starts in milliseconds with everything imported,
    # instead of importing the application again. A worker never touches the caller's
    # engine or its connections (it makes its own), and leaves with os._exit.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


_worker_engine: Engine | None = None
_SNAPSHOT_ID = re.compile(r"[0-9A-Fa-f]+(-[0-9A-Fa-f]+)+")


def _start_worker(url: str) -> None:
    global _worker_engine
    from foodtrace.db import make_engine

    _worker_engine = make_engine(url, pool_size=1)


def _verify_in_worker(
    ledger_id: int,
    snapshot: str,
    keys: list[Verifier] | None,
    signed_state: SignedState | None,
) -> Report:
    assert _worker_engine is not None, "not a worker process"
    if not _SNAPSHOT_ID.fullmatch(snapshot):  # it is spliced into the statement below
        raise ValueError(f"not a snapshot id: {snapshot!r}")
    engine = _worker_engine.execution_options(isolation_level="REPEATABLE READ")
    with FoodtraceSession(engine) as session:
        # The first statement of the transaction: it then sees what the caller's sees.
        session.connection().exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
        return verify_ledger(
            session=session, ledger_id=ledger_id, verifiers=keys, signed_state=signed_state
        )
