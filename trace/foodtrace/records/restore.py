"""Recovering a ledger's lost tail after a restore from an older backup (RELIABILITY.md).

A database restored to an earlier state is a consistent ledger that simply
ends too early: the signer (which remembers what it signed, outside the
database) refuses to sign it, and verification against the signer's record
names the missing entries. The entries themselves survive elsewhere, as their
canonical bytes: in an export of the ledger taken from the live database, a
regulator's or witness's copy, or ``foodtrace export-ledger``'s bundle.

:func:`append_exported` puts them back: each one, in seq order, exactly as
exported (the same bytes, so the same hashes and the same Merkle tree the
signer signed), after checking that it is an entry of this ledger in its
canonical form that follows the head (``seq`` and ``prev_hash``). Its derived
rows are written by the same projection that the append path and verification
use. Entries the ledger already holds are skipped when byte for byte the same,
so recovery can be rerun; one that differs means the ledger went on from the
backup with other entries (a fork), which this refuses to paper over.

Not recovered: idempotency keys (they are not part of an entry) and attachment
contents (content-addressed, stored beside the ledger; upload them again
first, an entry that cites a missing one is refused).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from sqlmodel import Session

from foodtrace.canonical import ENTRY_VERSION, ZERO_HASH, CanonicalError, canonical_bytes
from foodtrace.errors import RecordError
from foodtrace.ledger.models import Entry
from foodtrace.ledger.service import lock_head, write_entry
from foodtrace.records.projection import DbStore, apply_entry
from foodtrace.tlog.merkle import CompactRange


class RestoreError(ValueError):
    """An exported entry cannot be re-appended; ``seq`` names it (None when unknown)."""

    def __init__(self, seq: int | None, message: str) -> None:
        self.seq = seq
        super().__init__(f"entry {seq if seq is not None else '?'}: {message}")


@dataclass(frozen=True)
class Restored:
    appended: int
    """Entries written now."""
    already_present: int
    """Entries the ledger already held, byte for byte."""
    size: int
    """The ledger's size afterwards."""


def append_exported(
    *,
    session: Session,
    ledger_id: int,
    entries: Iterable[bytes],
    signed: tuple[int, bytes] | None = None,
) -> Restored:
    """Re-append exported entries (canonical bytes, in seq order) to ledger ``ledger_id``.

    Runs in the caller's write session under the ledger's head lock; the caller
    commits. Raises :class:`RestoreError`, naming the entry, at the first one
    that is not an entry of this ledger in canonical form, does not follow the
    head, differs from the stored entry of its seq, or whose derived rows
    cannot be applied; the caller then rolls back and nothing was written.

    ``signed``: the (size, root) the signer last signed for this ledger
    (``tlog.signer.load_signed_state``). When given, the Merkle root must be
    that root once the ledger reaches that size: an export whose entries link
    up but are not the ones that were signed is refused.
    """
    head = lock_head(session=session, ledger_id=ledger_id)
    store = DbStore(session, ledger_id)
    appended = present = 0
    previous: int | None = None
    for raw in entries:
        data = bytes(raw)
        try:
            env = json.loads(data)
            if not isinstance(env, dict):
                raise ValueError("not a JSON object")
            if canonical_bytes(env) != data:
                raise ValueError("not in its RFC 8785 canonical form")
        except (ValueError, CanonicalError) as exc:
            raise RestoreError(None, f"the exported bytes are not an entry: {exc}") from None
        seq = env.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise RestoreError(None, f"seq {seq!r} is not a positive integer")
        if previous is not None and seq != previous + 1:
            raise RestoreError(seq, f"the export is not in seq order: it comes after {previous}")
        previous = seq
        if env.get("v") != ENTRY_VERSION:
            raise RestoreError(seq, f"format version {env.get('v')!r}, not {ENTRY_VERSION}")
        if env.get("log") != head.origin:
            raise RestoreError(seq, f"an entry of {env.get('log')!r}, not of {head.origin!r}")
        if seq <= head.size:
            stored = session.get(Entry, (ledger_id, seq))
            if stored is None or bytes(stored.body) != data:
                raise RestoreError(
                    seq,
                    "the ledger holds another entry at this seq: it went on from the backup "
                    "with entries of its own, so the exported tail does not follow it",
                )
            present += 1
            continue
        if seq != head.size + 1:
            raise RestoreError(seq, f"does not follow the ledger's last entry {head.size}")
        want = head.head_hash.hex() if head.size else ZERO_HASH
        if env.get("prev_hash") != want:
            raise RestoreError(
                seq,
                f"prev_hash {str(env.get('prev_hash'))[:16]}… is not the hash of entry "
                f"{seq - 1} ({want[:16]}…)",
            )
        kind, body = env.get("kind"), env.get("body")
        if not isinstance(kind, str) or not isinstance(body, dict):
            raise RestoreError(seq, "the entry has no kind or no body")
        try:
            apply_entry(store, seq, kind, body)
        except (RecordError, KeyError, TypeError, ValueError) as exc:
            raise RestoreError(seq, f"its records do not apply: {exc}") from None
        done = write_entry(session=session, head=head, entry=env, defer_head=True)
        assert done.data == data  # the same bytes, so the same leaf hash
        appended += 1
        if signed is not None and head.size == signed[0]:
            root = CompactRange.from_bytes(head.size, bytes(head.compact_range)).root()
            if root != signed[1]:
                raise RestoreError(
                    seq,
                    f"at size {seq} the entries give root {root.hex()[:16]}…, but the signer "
                    f"signed {signed[1].hex()[:16]}…: these are not the entries that were signed",
                )
    return Restored(appended=appended, already_present=present, size=head.size)
