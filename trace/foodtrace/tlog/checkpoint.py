"""C2SP tlog-checkpoint notes and tlog-proof@v1 bundles (c2sp.org/tlog-checkpoint, /tlog-proof).

A checkpoint is the text of a signed note (:mod:`foodtrace.tlog.note`)::

    <origin>                       e.g. trace.example.cn/ledger/91370404MA3F42206T
    <tree size>                    ASCII decimal, no leading zeroes
    <root hash>                    base64 of the RFC 9162 root at that size
    [<extension line> ...]         optional, non-empty, opaque

A tlog-proof bundle lets anyone check offline, with the log's public key
alone, that an entry is in the log::

    c2sp.org/tlog-proof@v1
    extra <base64 of the entry's canonical bytes>     (foodtrace always sends it)
    index <zero-based leaf index>                      (seq - 1)
    <base64 inclusion proof hash, leaf's sibling first>  (zero or more lines)
    <empty line>
    <the signed checkpoint note, verbatim>

:func:`verify_tlog_proof` hashes the extra bytes as a leaf (0x00 || bytes),
checks the inclusion path against the checkpoint's root, and the checkpoint's
signature against the verifier keys it is given; :func:`verify_entry_proof`
also checks that those bytes are a foodtrace entry of that log at that place.

Where foodtrace departs from a SHOULD of the specs: tlog-checkpoint asks that
the log's key name match the origin line; here one platform key (named after
the platform, e.g. ``trace.example.cn``) signs the checkpoints of every ledger
(origin ``trace.example.cn/ledger/<credit code>``), so that one published
verifier key checks them all (DESIGN.md). Verifiers therefore check the origin
separately (``origin=``). Ed25519 is used rather than the ML-DSA-44
cosignatures tlog-checkpoint now recommends (DESIGN.md fixes Ed25519).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from foodtrace.canonical import CanonicalError, canonical_bytes, leaf_hash
from foodtrace.tlog.errors import ProofError
from foodtrace.tlog.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    RootMismatchError,
    verify_consistency,
    verify_inclusion,
)
from foodtrace.tlog.note import Note, Verifier, open_note

PROOF_HEADER = "c2sp.org/tlog-proof@v1"
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
MAX_SIZE = 2**63 - 1


class CheckpointError(ProofError):
    """A checkpoint that is malformed or is not the one expected."""


class MalformedProofError(ProofError):
    """Not a tlog-proof@v1 bundle."""


def _decimal(text: str, what: str, error: type[ValueError]) -> int:
    if not _DECIMAL.fullmatch(text) or int(text) > MAX_SIZE:
        raise error(f"{what} {text[:30]!r} is not a decimal without leading zeroes")
    return int(text)


def _hash(text: str, what: str, error: type[ValueError]) -> bytes:
    """Strict base64 of a 32-byte hash: only the canonical encoding is accepted."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise error(f"{what} is not base64") from None
    if len(raw) != HASH_SIZE or base64.b64encode(raw).decode("ascii") != text:
        raise error(f"{what} is not the base64 of a {HASH_SIZE}-byte hash")
    return raw


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: origin, size and root (the note text that gets signed)."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise CheckpointError(f"invalid origin {self.origin!r}")
        if not 0 <= self.size <= MAX_SIZE:
            raise CheckpointError(f"invalid tree size {self.size}")
        if len(self.root) != HASH_SIZE:
            raise CheckpointError(f"a root hash has {HASH_SIZE} bytes")
        if any(not line or "\n" in line for line in self.extensions):
            raise CheckpointError("extension lines must be non-empty single lines")

    def text(self) -> str:
        """The note text: origin, size, base64 root and extension lines, each ending in \\n."""
        lines = [self.origin, str(self.size), _b64(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Read a checkpoint's note text (signature not checked: see :func:`open_checkpoint`)."""
        if not text.endswith("\n"):
            raise CheckpointError("checkpoint text must end in a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3 or any(not line for line in lines):
            raise CheckpointError("a checkpoint has at least three non-empty lines")
        origin, size, root, *extensions = lines
        return cls(
            origin,
            _decimal(size, "tree size", CheckpointError),
            _hash(root, "root hash", CheckpointError),
            tuple(extensions),
        )


def open_checkpoint(
    note: str | bytes, verifiers: Iterable[Verifier], *, origin: str | None = None
) -> tuple[Checkpoint, Note]:
    """Verify a signed checkpoint note and parse it; when ``origin`` is given it must match."""
    opened = open_note(note, verifiers)
    checkpoint = Checkpoint.parse(opened.text)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(f"checkpoint of {checkpoint.origin!r}, expected one of {origin!r}")
    return checkpoint, opened


def verify_checkpoint_extends(
    old: str | bytes,
    new: str | bytes,
    proof: Iterable[bytes],
    *,
    verifiers: Iterable[Verifier],
) -> Checkpoint:
    """Check that signed checkpoint ``new`` extends ``old`` (the tlog-witness idea, DESIGN.md).

    A regulator keeps the last checkpoint it saw of each ledger and checks every
    newer one against it: both signatures, the same origin, and the RFC 9162
    consistency proof between them (from the empty tree, none is needed).
    Returns the new checkpoint, to be kept in place of the old one.
    """
    keys, hashes = list(verifiers), list(proof)
    before, _ = open_checkpoint(old, keys)
    after, _ = open_checkpoint(new, keys, origin=before.origin)
    if before.size == 0 and after.size > 0:
        # Every tree extends the empty one: nothing to prove, only the empty root to check.
        if hashes:
            raise ProofError("a consistency proof from the empty tree must be empty")
        if before.root != EMPTY_ROOT:
            raise RootMismatchError("empty tree", expected=before.root, computed=EMPTY_ROOT)
        return after
    verify_consistency(
        size1=before.size, size2=after.size, proof=hashes, root1=before.root, root2=after.root
    )
    return after


@dataclass(frozen=True)
class TLogProof:
    """A tlog-proof@v1 bundle: leaf index, inclusion path, signed checkpoint, optional extra."""

    index: int
    hashes: tuple[bytes, ...]
    checkpoint: str
    extra: bytes | None = None

    def text(self) -> str:
        lines = [PROOF_HEADER]
        if self.extra is not None:
            lines.append(f"extra {_b64(self.extra)}")
        lines.append(f"index {self.index}")
        lines.extend(_b64(h) for h in self.hashes)
        return "\n".join(lines) + "\n\n" + self.checkpoint

    @classmethod
    def parse(cls, text: str | bytes) -> TLogProof:
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                raise MalformedProofError("a tlog-proof is UTF-8 text") from None
        head, sep, checkpoint = text.partition("\n\n")
        if not sep:
            raise MalformedProofError("no empty line before the checkpoint")
        lines = head.split("\n")
        if lines[0] != PROOF_HEADER:
            raise MalformedProofError(f"the first line must be {PROOF_HEADER}")
        rest = lines[1:]
        extra = None
        if rest and rest[0].startswith("extra "):
            try:
                extra = base64.b64decode(rest[0][len("extra ") :].encode("ascii"), validate=True)
            except (binascii.Error, UnicodeEncodeError):
                raise MalformedProofError("extra data is not base64") from None
            rest = rest[1:]
        if not rest or not rest[0].startswith("index "):
            raise MalformedProofError("no index line")
        index = _decimal(rest[0][len("index ") :], "index", MalformedProofError)
        hashes = tuple(
            _hash(line, f"proof hash {i}", MalformedProofError) for i, line in enumerate(rest[1:])
        )
        return cls(index, hashes, checkpoint, extra)


@dataclass(frozen=True)
class VerifiedProof:
    """What a verified bundle proves: these bytes are leaf ``index`` of the signed checkpoint."""

    checkpoint: Checkpoint
    index: int
    data: bytes


def verify_tlog_proof(
    proof: str | bytes | TLogProof,
    *,
    verifiers: Iterable[Verifier],
    origin: str | None = None,
    data: bytes | None = None,
) -> VerifiedProof:
    """Check a bundle offline: signature, origin, and the leaf's inclusion path.

    The leaf is ``data`` if given, else the bundle's extra bytes; it is hashed
    here (SHA-256(0x00 || bytes)), never taken on trust.
    """
    bundle = proof if isinstance(proof, TLogProof) else TLogProof.parse(proof)
    if data is None:
        data = bundle.extra
    elif bundle.extra is not None and bundle.extra != data:
        raise MalformedProofError("the bundle's extra data is not the given entry")
    if data is None:
        raise MalformedProofError("no entry bytes: the bundle has no extra line and none given")
    checkpoint, _note = open_checkpoint(bundle.checkpoint, verifiers, origin=origin)
    verify_inclusion(
        index=bundle.index,
        size=checkpoint.size,
        leaf_hash=leaf_hash(data),
        proof=bundle.hashes,
        root=checkpoint.root,
    )
    return VerifiedProof(checkpoint, bundle.index, data)


@dataclass(frozen=True)
class ProvenEntry:
    """An entry whose inclusion in its ledger's signed checkpoint was verified."""

    entry: dict[str, Any]
    proof: VerifiedProof


def verify_entry_proof(
    proof: str | bytes | TLogProof, *, verifiers: Iterable[Verifier], origin: str | None = None
) -> ProvenEntry:
    """Verify a bundle from :func:`foodtrace.ledger.checkpoints.entry_proof` offline, with the
    published verifier key alone.

    Beyond :func:`~foodtrace.tlog.checkpoint.verify_tlog_proof` (signature,
    origin, inclusion of the hashed bytes): the bytes must be an entry in its
    RFC 8785 form whose ``log`` is the checkpoint's origin and whose ``seq`` is
    the proof's index + 1.
    """
    verified = verify_tlog_proof(proof, verifiers=verifiers, origin=origin)
    try:
        entry = json.loads(verified.data)
        if not isinstance(entry, dict) or canonical_bytes(entry) != verified.data:
            raise ValueError("not an entry in its canonical form")
    except (ValueError, CanonicalError) as exc:
        raise ProofError(f"the proven bytes are not an entry: {exc}") from None
    if entry.get("log") != verified.checkpoint.origin:
        raise ProofError(
            f"entry of log {entry.get('log')!r} in a checkpoint of {verified.checkpoint.origin!r}"
        )
    if entry.get("seq") != verified.index + 1:
        raise ProofError(f"entry seq {entry.get('seq')!r} at leaf index {verified.index}")
    return ProvenEntry(entry, verified)
