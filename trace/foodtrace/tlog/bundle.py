"""A ledger bundle: one file with a ledger's entries and its signed checkpoints, checked offline.

``foodtrace export-ledger`` writes it; ``foodtrace verify-bundle`` checks it
with the platform's verifier key alone (no database, no server). The format
is JSON Lines, ASCII, one object per line, each line exactly as
``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)``
writes it, and every line ends in ``\\n``::

    {"checkpoints":K,"entries":N,"format":"foodtrace-ledger-bundle/v1","origin":"<origin>"}
    {"bytes":"<base64 of entry 1's canonical bytes, as stored>","seq":1}
    ...                                                      (N entry lines, seq 1..N)
    {"checkpoint":"<signed checkpoint note, verbatim>"}
    ...                                                      (K lines, sizes increasing)

The bundle covers the ledger up to its latest signed checkpoint, whose size is
N. Nothing in it goes unchecked, so that any change to it fails verification:
lines must be in that exact serialisation (a re-spaced or re-escaped line is
refused), base64 must be canonical (the bits after the last byte zero), and
each checkpoint note must be in its canonical form.

Verification (:func:`verify_bundle`), naming the first failure:

1. the header and line layout;
2. each checkpoint: its note's signature by one of the given verifier keys,
   its origin the bundle's, sizes increasing, the last one of size N;
3. each entry in seq order: its leaf hash SHA-256(0x00 || bytes) recomputed,
   the bytes in RFC 8785 form, ``v``, ``seq`` (the run 1, 2, 3 …), ``log`` the
   ledger's origin, ``prev_hash`` the previous entry's recomputed hash (64
   zeros for seq 1);
4. the RFC 9162 Merkle root rebuilt from the recomputed leaf hashes at each
   checkpoint's size, against the signed root.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from foodtrace.canonical import ENTRY_VERSION, ZERO_HASH, CanonicalError, canonical_bytes, leaf_hash
from foodtrace.tlog.checkpoint import Checkpoint, CheckpointError, open_checkpoint
from foodtrace.tlog.errors import ProofError
from foodtrace.tlog.merkle import CompactRange
from foodtrace.tlog.note import NoteError, Verifier, parse_note

BUNDLE_FORMAT = "foodtrace-ledger-bundle/v1"


class BundleError(ProofError):
    """The bundle does not verify; ``where`` names the first failing line, entry or checkpoint."""

    def __init__(self, where: str, message: str) -> None:
        self.where = where
        self.message = message
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class VerifiedBundle:
    """What a verified bundle proves: these entries are the ledger's, as signed."""

    origin: str
    size: int
    root: bytes
    checkpoint_sizes: tuple[int, ...]
    signed_by: tuple[str, ...] = field(default=())
    """The verifier keys (``name+keyid``) whose signatures were verified."""

    def summary(self) -> str:
        sizes = ", ".join(map(str, self.checkpoint_sizes))
        return (
            f"ok  {self.origin}: {self.size} entries, {len(self.checkpoint_sizes)} signed "
            f"checkpoints (sizes {sizes}), root {base64.b64encode(self.root).decode()} "
            f"signed by {', '.join(self.signed_by)}"
        )


def _line(obj: dict[str, Any]) -> bytes:
    return (
        json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
        + b"\n"
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def write_bundle(
    out: BinaryIO, *, origin: str, entries: Iterable[bytes], size: int, checkpoints: list[str]
) -> None:
    """Write a bundle of ``size`` entries (their canonical bytes, in seq order) and checkpoints."""
    out.write(
        _line(
            {
                "format": BUNDLE_FORMAT,
                "origin": origin,
                "entries": size,
                "checkpoints": len(checkpoints),
            }
        )
    )
    written = 0
    for seq, data in enumerate(entries, 1):
        out.write(_line({"seq": seq, "bytes": _b64(data)}))
        written = seq
    if written != size:
        raise ValueError(f"the bundle's header says {size} entries, {written} were given")
    for note in checkpoints:
        out.write(_line({"checkpoint": note}))


def _strict_lines(data: bytes) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each line as an object, refusing any line not in the bundle's exact serialisation."""
    if not data.endswith(b"\n"):
        raise BundleError("bundle", "does not end in a newline (truncated?)")
    for number, raw in enumerate(data[:-1].split(b"\n"), 1):
        where = f"line {number}"
        try:
            obj = json.loads(raw.decode("ascii"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise BundleError(where, f"not a JSON line of ASCII text ({exc})") from None
        if not isinstance(obj, dict) or _line(obj) != raw + b"\n":
            raise BundleError(where, "not in the bundle's serialisation (changed?)")
        yield number, obj


def _keys(obj: dict[str, Any], keys: set[str], where: str) -> None:
    if set(obj) != keys:
        raise BundleError(where, f"expected the fields {sorted(keys)}, found {sorted(obj)}")


def _canonical_b64(text: Any, where: str) -> bytes:
    if not isinstance(text, str):
        raise BundleError(where, "bytes are not a base64 string")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise BundleError(where, "bytes are not base64") from None
    if _b64(raw) != text:
        raise BundleError(where, "bytes are not in canonical base64 (changed?)")
    return raw


def _count(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BundleError("header", f"{what} is not a count")
    return value


def verify_bundle(data: bytes, *, verifiers: Iterable[Verifier]) -> VerifiedBundle:
    """Check a bundle with the verifier keys alone (see the module docstring); raise BundleError."""
    keys = list(verifiers)
    if not keys:
        raise ValueError("verifying a bundle needs at least one verifier key")
    lines = list(_strict_lines(data))
    if not lines:
        raise BundleError("bundle", "is empty")
    _n, header = lines[0]
    _keys(header, {"format", "origin", "entries", "checkpoints"}, "header")
    if header["format"] != BUNDLE_FORMAT:
        raise BundleError("header", f"format {header['format']!r}, expected {BUNDLE_FORMAT!r}")
    origin = header["origin"]
    if not isinstance(origin, str) or not origin:
        raise BundleError("header", "no origin")
    size = _count(header["entries"], "entries")
    n_checkpoints = _count(header["checkpoints"], "checkpoints")
    if len(lines) != 1 + size + n_checkpoints:
        raise BundleError(
            "bundle",
            f"the header announces {size} entries and {n_checkpoints} checkpoints, "
            f"but the bundle has {len(lines) - 1} lines after it (lines added or removed?)",
        )
    entry_lines = lines[1 : 1 + size]
    checkpoints = _checkpoints(lines[1 + size :], keys, origin, size)

    signed_by: dict[str, None] = {}
    for _cp, verified in checkpoints:
        signed_by.update(dict.fromkeys(verified))
    tree = CompactRange()
    pending = list(reversed(checkpoints))  # the next one due is popped from the end
    _check_roots(pending, tree, checkpoints)  # a checkpoint of the empty tree
    prev = ZERO_HASH
    for seq, (number, obj) in enumerate(entry_lines, 1):
        where = f"entry {seq} (line {number})"
        _keys(obj, {"seq", "bytes"}, where)
        if obj["seq"] != seq:
            raise BundleError(where, f"seq {obj['seq']!r} out of order: expected {seq}")
        raw = _canonical_b64(obj["bytes"], where)
        digest = leaf_hash(raw)
        _check_entry(raw, seq, origin, prev, where)
        tree.append(digest)
        prev = digest.hex()
        _check_roots(pending, tree, checkpoints)
    return VerifiedBundle(
        origin=origin,
        size=size,
        root=tree.root(),
        checkpoint_sizes=tuple(cp.size for cp, _ in checkpoints),
        signed_by=tuple(signed_by),
    )


def _check_roots(
    pending: list[tuple[Checkpoint, list[str]]],
    tree: CompactRange,
    checkpoints: list[tuple[Checkpoint, list[str]]],
) -> None:
    """Check the signed root of every checkpoint due at the tree's size (RFC 9162 MTH)."""
    while pending and pending[-1][0].size == tree.size:
        cp, _ = pending.pop()
        if tree.root() != cp.root:
            first = max((c.size for c, _ in checkpoints if c.size < cp.size), default=0) + 1
            raise BundleError(
                f"checkpoint at size {cp.size}",
                f"signed root {_b64(cp.root)} but the entries give {_b64(tree.root())}: "
                f"an entry among {first}..{cp.size} was changed",
            )


def _checkpoints(
    lines: list[tuple[int, dict[str, Any]]], keys: list[Verifier], origin: str, size: int
) -> list[tuple[Checkpoint, list[str]]]:
    """Every checkpoint line opened with the keys; sizes increasing, the last one ``size``."""
    out: list[tuple[Checkpoint, list[str]]] = []
    for number, obj in lines:
        where = f"checkpoint on line {number}"
        _keys(obj, {"checkpoint"}, where)
        note = obj["checkpoint"]
        if not isinstance(note, str):
            raise BundleError(where, "not a note")
        try:
            parsed = parse_note(note)
            # The note in its canonical form only: a signature whose base64 carries
            # stray padding bits would still verify, and the bundle would have changed.
            canonical = parsed.text + "\n" + "".join(s.line() for s in parsed.signatures)
            if canonical != note:
                raise BundleError(where, "the note is not in its canonical form (changed?)")
            cp, opened = open_checkpoint(note, keys, origin=origin)
        except (NoteError, CheckpointError) as exc:
            raise BundleError(where, str(exc)) from None
        where = f"checkpoint at size {cp.size} (line {number})"
        if cp.extensions:
            raise BundleError(where, "unexpected extension lines")
        if out and cp.size <= out[-1][0].size:
            raise BundleError(where, f"sizes must increase (follows size {out[-1][0].size})")
        if cp.size > size:
            raise BundleError(where, f"beyond the {size} entries of the bundle")
        out.append((cp, [f"{v.name}+{v.key_id:08x}" for v in opened.verified_by]))
    if not out:
        raise BundleError("bundle", "holds no signed checkpoint: nothing proves its entries")
    if out[-1][0].size != size:
        raise BundleError(
            "bundle",
            f"entries {out[-1][0].size + 1}..{size} are covered by no signed checkpoint",
        )
    return out


def _check_entry(raw: bytes, seq: int, origin: str, prev: str, where: str) -> None:
    try:
        entry = json.loads(raw)
        if not isinstance(entry, dict):
            raise ValueError("not an object")
        canonical = canonical_bytes(entry) == raw
    except (ValueError, CanonicalError) as exc:
        raise BundleError(where, f"the bytes are not an entry ({exc})") from None
    if not canonical:
        raise BundleError(where, "the bytes are not the RFC 8785 form of the entry")
    if entry.get("v") != ENTRY_VERSION:
        raise BundleError(where, f"format version {entry.get('v')!r}, expected {ENTRY_VERSION}")
    if entry.get("seq") != seq:
        raise BundleError(where, f"the entry says seq {entry.get('seq')!r}")
    if entry.get("log") != origin:
        raise BundleError(where, f"entry of log {entry.get('log')!r}, not of {origin!r}")
    if entry.get("prev_hash") != prev:
        raise BundleError(
            where,
            f"prev_hash {str(entry.get('prev_hash'))[:16]}… is not the hash of entry "
            f"{seq - 1} ({prev[:16]}…): entry {seq - 1} or this link was changed",
        )
