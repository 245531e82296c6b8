"""Checkpoints and proofs of the stored ledgers (DESIGN.md, "Merkle log and checkpoints", "Proofs").

The database side of :mod:`foodtrace.tlog`: the signed checkpoints table, the
proofs made from the stored leaf hashes, the platform's signer opened against
the stored platform, and a ledger's bundle written from its stored entries.

Proofs are computed from the leaf hashes stored in ``entries.hash``: each
proof reads the ledger's hashes up to the tree size, O(n) rows and O(n)
hashing (under a second of hashing per million entries, plus reading them).
That is fine at today's ledger sizes; a ledger of tens of millions of entries
would want stored subtree hashes (tiles) instead. A stored hash that was
tampered with yields a proof that fails against the signed root, so nothing
here trusts it either: the signer checks every consistency proof against the
(size, root) it recorded itself, and a consumer checks the inclusion proof
against the signed root.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import BinaryIO

from sqlalchemy import Engine, select, text
from sqlmodel import Session

from foodtrace.clock import Clock
from foodtrace.db import is_write_connection, read_session, write_session
from foodtrace.errors import NotFound
from foodtrace.ledger.models import Entry, Ledger, SignedCheckpoint
from foodtrace.ledger.service import appended_in_transaction, get_entry, iter_entries
from foodtrace.tlog import merkle
from foodtrace.tlog.bundle import write_bundle
from foodtrace.tlog.checkpoint import Checkpoint, TLogProof
from foodtrace.tlog.signer import CheckpointSigner, InconsistentCheckpointError, load_signed_state
from schemas.types import format_instant

CHECKPOINT_INTERVAL = timedelta(seconds=1)
"""DESIGN.md: checkpoints are issued at most a second apart while a ledger grows."""

PUBLIC_KINDS = frozenset({"public_declaration", "public_recall"})
"""Entry kinds proven to anyone (DESIGN.md, "QR codes and the consumer page"): an
enterprise's public declaration of a released lot and an authority's public recall.
Every other entry is private: its proof (which carries its bytes) is for the ledger's
owner and the regulators over it only."""


def is_public_entry(data: bytes) -> bool:
    """Whether an entry, given by its canonical bytes, is one of the public kinds.

    The kind is read from the bytes, the source of truth, never from the derived
    ``entries.kind`` column: a column changed behind the app's back must not make a
    private entry public.
    """
    try:
        entry = json.loads(data)
    except ValueError:
        return False
    return isinstance(entry, dict) and entry.get("kind") in PUBLIC_KINDS


class LedgerDamaged(RuntimeError):
    """The stored entries cannot give the tree the head row describes (a gap, a missing row)."""


def leaf_hashes(*, session: Session, ledger_id: int, size: int) -> list[bytes]:
    """The stored leaf hashes of entries 1..size, in order (O(size) rows)."""
    return leaf_hashes_after(session=session, ledger_id=ledger_id, after=0, size=size)


def leaf_hashes_after(*, session: Session, ledger_id: int, after: int, size: int) -> list[bytes]:
    """The stored leaf hashes of entries after+1..size, in order (O(size - after) rows)."""
    rows = session.execute(
        select(Entry.seq, Entry.hash)
        .where(Entry.ledger_id == ledger_id, Entry.seq > after, Entry.seq <= size)
        .order_by(Entry.seq)
    ).all()
    for i, (seq, _h) in enumerate(rows, after + 1):
        if seq != i:
            raise LedgerDamaged(f"ledger {ledger_id} has no entry {i}")
    if len(rows) != size - after:
        raise LedgerDamaged(f"ledger {ledger_id} has {after + len(rows)} entries, not {size}")
    return [bytes(h) for _seq, h in rows]


def inclusion_proof(*, session: Session, ledger_id: int, seq: int, size: int) -> list[bytes]:
    """RFC 9162 inclusion proof of entry ``seq`` (leaf seq - 1) in the tree of ``size`` entries."""
    if not 1 <= seq <= size:
        raise ValueError(f"requires 1 <= seq <= size, got seq {seq}, size {size}")
    return merkle.inclusion_proof(
        seq - 1, leaf_hashes(session=session, ledger_id=ledger_id, size=size)
    )


def consistency_proof(*, session: Session, ledger_id: int, size1: int, size2: int) -> list[bytes]:
    """RFC 9162 consistency proof from the tree of ``size1`` entries to that of ``size2``.

    When a checkpoint was signed at ``size1`` (the usual case: the signer and
    witnesses ask from the last size they saw) its stored compact range and the
    entries after it give the proof in O(log n + size2 - size1); otherwise it is
    made from every leaf hash up to ``size2``. A compact range edited behind the
    application's back gives a proof that fails against the signed roots.
    """
    if not 0 < size1 <= size2:
        raise ValueError(f"requires 0 < size1 <= size2, got {size1} and {size2}")
    stored = session.execute(
        select(SignedCheckpoint.compact_range).where(
            SignedCheckpoint.ledger_id == ledger_id,
            SignedCheckpoint.size == size1,
            SignedCheckpoint.compact_range.is_not(None),  # type: ignore[union-attr]
        )
    ).scalar_one_or_none()
    if stored is None:
        return merkle.consistency_proof(
            size1, leaf_hashes(session=session, ledger_id=ledger_id, size=size2)
        )
    try:
        old = merkle.CompactRange.from_bytes(size1, bytes(stored))
    except ValueError as exc:
        raise LedgerDamaged(f"ledger {ledger_id}: checkpoint {size1}'s range: {exc}") from None
    rows = session.execute(
        select(Entry.seq, Entry.hash)
        .where(Entry.ledger_id == ledger_id, Entry.seq > size1, Entry.seq <= size2)
        .order_by(Entry.seq)
    ).all()
    if [seq for seq, _h in rows] != list(range(size1 + 1, size2 + 1)):
        raise LedgerDamaged(f"ledger {ledger_id} lacks entries between {size1} and {size2}")
    return merkle.consistency_proof_from(old, [bytes(h) for _s, h in rows])


def head_root(head: Ledger) -> bytes:
    """The Merkle root at the head's size, from the compact range in the head row.

    A head row whose compact range does not fit its size was edited behind the
    application's back: :class:`LedgerDamaged`, never a signature over it.
    """
    try:
        return merkle.CompactRange.from_bytes(head.size, bytes(head.compact_range)).root()
    except ValueError as exc:
        raise LedgerDamaged(f"ledger {head.credit_code}: its head row is damaged ({exc})") from None


def latest_checkpoint(*, session: Session, ledger_id: int) -> SignedCheckpoint | None:
    return session.execute(
        select(SignedCheckpoint)
        .where(SignedCheckpoint.ledger_id == ledger_id)
        .order_by(SignedCheckpoint.size.desc())  # type: ignore[attr-defined]
        .limit(1)
    ).scalar_one_or_none()


def checkpoint_at(*, session: Session, ledger_id: int, size: int) -> SignedCheckpoint | None:
    """The checkpoint signed at exactly ``size``, if one was."""
    return session.get(SignedCheckpoint, (ledger_id, size))


def signed_checkpoints(*, session: Session, ledger_id: int, up_to: int) -> list[SignedCheckpoint]:
    """Every checkpoint of the ledger signed at a size up to ``up_to``, smallest first."""
    return list(
        session.execute(
            select(SignedCheckpoint)
            .where(SignedCheckpoint.ledger_id == ledger_id, SignedCheckpoint.size <= up_to)
            .order_by(SignedCheckpoint.size)
        ).scalars()
    )


def _is_current(latest: SignedCheckpoint | None, head: Ledger, now: datetime, force: bool) -> bool:
    if latest is None:
        return False
    if latest.size >= head.size:
        return True
    return not force and now - _instant(latest.signed_at) < CHECKPOINT_INTERVAL


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


CHECKPOINT_LOCK = 0x6674_6370  # "ftcp": first key of a ledger's (PostgreSQL) checkpoint lock


def _lock_for_checkpoint(session: Session, ledger_id: int) -> Ledger:
    """Serialise the checkpoints of one ledger, without stopping its appends; its head, re-read.

    PostgreSQL: a transaction-level advisory lock of the ledger (two int4 keys, a key
    space apart from the background signer's leader lock); the head row is only read,
    so appends to the ledger go on while it is signed, and the re-read sees every append
    committed before the lock was granted (READ COMMITTED). SQLite: the write session
    already holds the database's write lock.
    """
    conn = session.connection()
    if not is_write_connection(conn):
        raise RuntimeError(
            "signing a checkpoint needs a write session (foodtrace.db.write_session)"
        )
    if conn.dialect.name == "postgresql":
        conn.execute(
            text("SELECT pg_advisory_xact_lock(:ns, :id)"), {"ns": CHECKPOINT_LOCK, "id": ledger_id}
        )
    head = session.get(Ledger, ledger_id, populate_existing=True)
    if head is None:
        raise NotFound(f"no ledger {ledger_id}")
    return head


@dataclass
class Checkpoints:
    """What :func:`checkpoints` found or signed, per ledger."""

    latest: dict[int, SignedCheckpoint]
    """the latest signed checkpoint of each ledger not refused (new or found current)"""
    issued: list[int]
    """the ledgers signed anew"""
    refused: dict[int, InconsistentCheckpointError]
    """the ledgers the signer refused (their stored tree does not extend what it signed)"""


def checkpoints(
    *,
    session: Session,
    ledger_ids: Iterable[int],
    signer: CheckpointSigner,
    clock: Clock,
    force: bool = False,
) -> Checkpoints:
    """Each ledger's latest signed checkpoint, issuing new ones where out of date.

    A new one is signed when the ledger has grown since the latest and that is
    at least a second old, or at once with ``force`` (a proof was asked for).
    Signing needs a write session; one ledger's checkpoints are issued one at a
    time (:func:`_lock_for_checkpoint`) and cover committed entries only:
    appending and checkpointing in one transaction is refused, since a signed
    size can never be signed again with another root. The ledgers due are
    signed with one call of the signer (one write of its state); a ledger the
    signer refuses maps to the refusal, and the others are signed all the same.
    """
    ids = sorted(set(ledger_ids))  # one lock order for every caller
    for ledger_id in ids:
        if appended_in_transaction(session, ledger_id):
            raise RuntimeError(
                "checkpoint() in the transaction that appended to the ledger: commit first"
            )
    now = clock.now()
    found = Checkpoints({}, [], {})
    due: list[tuple[int, Ledger, bytes]] = []  # (ledger id, head, root)
    for ledger_id in ids:
        head = session.get(Ledger, ledger_id)
        if head is None:
            raise NotFound(f"no ledger {ledger_id}")
        latest = latest_checkpoint(session=session, ledger_id=ledger_id)
        if not _is_current(latest, head, now, force):
            head = _lock_for_checkpoint(session, ledger_id)
            latest = latest_checkpoint(session=session, ledger_id=ledger_id)
        if _is_current(latest, head, now, force):
            assert latest is not None
            found.latest[ledger_id] = latest
        else:
            due.append((ledger_id, head, head_root(head)))
    notes = signer.sign_many(
        [
            (Checkpoint(head.origin, head.size, root), partial(_prover, session, ledger_id))
            for ledger_id, head, root in due
        ]
    )
    for (ledger_id, head, root), note in zip(due, notes, strict=True):
        if isinstance(note, InconsistentCheckpointError):
            found.refused[ledger_id] = note
            continue
        found.latest[ledger_id] = signed = SignedCheckpoint(
            ledger_id=ledger_id,
            size=head.size,
            root=root,
            note=note,
            signed_at=format_instant(now),
            compact_range=bytes(head.compact_range),
        )
        session.add(signed)
        found.issued.append(ledger_id)
    session.flush()
    return found


def _prover(session: Session, ledger_id: int, size1: int, size2: int) -> list[bytes]:
    return consistency_proof(session=session, ledger_id=ledger_id, size1=size1, size2=size2)


def checkpoint(
    *,
    session: Session,
    ledger_id: int,
    signer: CheckpointSigner,
    clock: Clock,
    force: bool = False,
) -> SignedCheckpoint:
    """The ledger's latest signed checkpoint, issuing a new one when it is out of date
    (:func:`checkpoints` for one ledger; the signer's refusal is raised)."""
    found = checkpoints(
        session=session, ledger_ids=[ledger_id], signer=signer, clock=clock, force=force
    )
    if ledger_id in found.refused:
        raise found.refused[ledger_id]
    return found.latest[ledger_id]


def fresh_checkpoint(
    *, engine: Engine, ledger_id: int, signer: CheckpointSigner, clock: Clock
) -> SignedCheckpoint:
    """The ledger's latest signed checkpoint, signed on demand first if the ledger grew since.

    Reads first, so that asking for a current checkpoint takes no write lock
    (on SQLite a write session locks the whole database); only a ledger that
    grew is signed, in a write transaction of its own. An empty ledger gets the
    checkpoint of the empty tree (size 0, root SHA-256 of nothing).

    Raises :class:`LedgerDamaged` when a checkpoint was signed at a size beyond
    the stored entries (signed entries were removed), and the signer's
    :class:`~foodtrace.tlog.signer.InconsistentCheckpointError` when the stored
    tree does not extend what was signed before. The checkpoint returned is
    detached from any session.
    """
    with read_session(engine) as session:
        head = session.get(Ledger, ledger_id)
        if head is None:
            raise NotFound(f"no ledger {ledger_id}")
        latest = latest_checkpoint(session=session, ledger_id=ledger_id)
        _check_not_behind(latest, head)
        if latest is not None and latest.size == head.size:
            session.expunge(latest)
            return latest
    with write_session(engine) as session:
        signed = checkpoint(
            session=session, ledger_id=ledger_id, signer=signer, clock=clock, force=True
        )
        head = session.get(Ledger, ledger_id)
        assert head is not None
        _check_not_behind(signed, head)
        session.expunge(signed)
    return signed


def _check_not_behind(latest: SignedCheckpoint | None, head: Ledger) -> None:
    if latest is not None and latest.size > head.size:
        raise LedgerDamaged(
            f"ledger {head.credit_code}: a checkpoint was signed at size {latest.size}, "
            f"but the ledger holds {head.size} entries: signed entries were removed"
        )


def proof_against(
    *, session: Session, ledger_id: int, seq: int, signed: SignedCheckpoint
) -> TLogProof:
    """The tlog-proof@v1 bundle of entry ``seq`` in the tree of the signed checkpoint ``signed``.

    Requires 1 <= seq <= signed.size. The extra line carries the entry's
    canonical bytes exactly as stored.
    """
    if not 1 <= seq <= signed.size:
        raise ValueError(f"requires 1 <= seq <= checkpoint size, got seq {seq}, size {signed.size}")
    entry = get_entry(session=session, ledger_id=ledger_id, seq=seq)
    hashes = inclusion_proof(session=session, ledger_id=ledger_id, seq=seq, size=signed.size)
    return TLogProof(
        index=seq - 1, hashes=tuple(hashes), checkpoint=signed.note, extra=bytes(entry.body)
    )


def entry_proof(
    *, session: Session, ledger_id: int, seq: int, signer: CheckpointSigner, clock: Clock
) -> TLogProof:
    """A tlog-proof@v1 bundle for entry ``seq``: its bytes, inclusion path and signed checkpoint.

    Uses the latest checkpoint when it covers the entry, else signs one on
    demand. Which entries may be proven to whom is the caller's decision
    (DESIGN.md: only public entries are ever proven to the public).
    """
    get_entry(session=session, ledger_id=ledger_id, seq=seq)
    signed = checkpoint(session=session, ledger_id=ledger_id, signer=signer, clock=clock)
    if signed.size < seq:
        signed = checkpoint(
            session=session, ledger_id=ledger_id, signer=signer, clock=clock, force=True
        )
    return proof_against(session=session, ledger_id=ledger_id, seq=seq, signed=signed)


class MissingKeyError(RuntimeError):
    """Checkpoints were signed, but the key that signed them is not here."""


def open_signer(*, session: Session, key_file: str) -> CheckpointSigner:
    """The platform's checkpoint signer, its key named after the stored platform name.

    The key is generated on the first start of an installation that has signed
    nothing yet. An installation that holds signed checkpoints but finds no key
    refuses to start (:class:`MissingKeyError`) rather than make a new one: a
    new key would sign a second history, and the published verifier key and the
    signer's record of what it signed (kept beside the key) would be lost.
    """
    from pathlib import Path

    from sqlalchemy import func

    from foodtrace.accounts.models import Platform

    platform = session.get(Platform, 1)
    if platform is None:
        raise RuntimeError("the platform is not initialised (run foodtrace migrate or serve)")
    if not Path(key_file).exists():
        signed = session.execute(select(func.count()).select_from(SignedCheckpoint)).scalar_one()
        if signed:
            raise MissingKeyError(
                f"the database holds {signed} signed checkpoints but the signing key "
                f"{key_file} is missing: restore the key and its .state.json from their backup "
                "(README, 'The signing key'); a new key is never made for a database that "
                "another key signed"
            )
    return CheckpointSigner.open(key_file, name=platform.name)


class RolledBackError(RuntimeError):
    """The database is behind what the signer signed: it was restored from an older state."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            "the database is behind the checkpoints this platform signed (restored from an "
            "older backup?): "
            + "; ".join(problems)
            + ". Appending now would fork these ledgers. Re-append the lost entries with "
            "`foodtrace recover-ledger <export bundle>` (RELIABILITY.md, 'Backup and restore'), "
            "or restore a later backup; then start again."
        )
        self.problems = problems


def behind_the_signer(*, session: Session, signed_state: dict[str, tuple[int, bytes]]) -> list[str]:
    """Ledgers the database holds fewer entries of than the signer signed, or another tree.

    ``signed_state`` is the signer's record of what it last signed per origin
    (``tlog.signer.load_signed_state``). Cheap: one head row per origin. A
    ledger that is longer than its last signed size but forked below it passes
    here; the signer refuses to sign it and ``verify`` names it.
    """
    problems = []
    heads = {h.origin: h for h in session.execute(select(Ledger)).scalars()}
    for origin, (size, root) in sorted(signed_state.items()):
        head = heads.get(origin)
        if head is None:
            problems.append(f"{origin}: signed at size {size}, but the database has no such ledger")
        elif head.size < size:
            problems.append(
                f"{origin}: the database ends at size {head.size}, the signer last signed size "
                f"{size} (entries {head.size + 1}..{size} are missing)"
            )
        elif head.size == size and head_root(head) != root:
            problems.append(f"{origin}: size {size} has another root than the one signed")
    return problems


def check_not_behind_the_signer(*, session: Session, key_file: str) -> None:
    """Refuse to serve a database that lost signed entries (:class:`RolledBackError`).

    A server started on a database restored from an older backup would append
    new entries where signed ones were: a fork that the signer refuses and no
    recovery can undo. Stopping at start-up keeps the lost tail recoverable.
    """
    problems = behind_the_signer(session=session, signed_state=load_signed_state(key_file))
    if problems:
        raise RolledBackError(problems)


def grown_ledgers(*, session: Session) -> list[int]:
    """Ledgers with entries that no signed checkpoint covers yet."""
    from sqlalchemy import func

    last = (
        select(SignedCheckpoint.ledger_id, func.max(SignedCheckpoint.size).label("size"))
        .group_by(SignedCheckpoint.ledger_id)
        .subquery()
    )
    rows = session.execute(
        select(Ledger.id)
        .outerjoin(last, last.c.ledger_id == Ledger.id)
        .where(Ledger.size > func.coalesce(last.c.size, 0))
        .order_by(Ledger.id)
    ).scalars()
    return list(rows)


def export_ledger(
    *, session: Session, ledger_id: int, signed: SignedCheckpoint, out: BinaryIO
) -> int:
    """Write the bundle of a ledger up to its signed checkpoint ``signed``; the entries written.

    Entries are written exactly as stored, with every checkpoint signed up to
    ``signed.size``. Entries appended after it are left for the next export, so
    that the bundle needs no snapshot of a ledger that keeps growing: what was
    signed never changes. Raises :class:`LedgerDamaged` on a gap in the stored
    entries (``foodtrace verify`` then names it).
    """
    head = session.get(Ledger, ledger_id)
    if head is None:
        raise LedgerDamaged(f"no ledger {ledger_id}")
    notes = [
        cp.note
        for cp in signed_checkpoints(session=session, ledger_id=ledger_id, up_to=signed.size)
    ]

    def entries() -> Iterator[bytes]:
        for expected, row in enumerate(iter_entries(session=session, ledger_id=ledger_id), 1):
            if row.seq > signed.size:
                return
            if row.seq != expected:
                raise LedgerDamaged(f"ledger {head.credit_code} has no entry {expected}")
            yield bytes(row.body)

    write_bundle(out, origin=head.origin, entries=entries(), size=signed.size, checkpoints=notes)
    return signed.size
