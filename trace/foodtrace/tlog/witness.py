"""A witness of the platform's ledgers: each new checkpoint must extend the last one seen.

DESIGN.md ("Proofs"): a regulator keeps the last checkpoint it saw of each
ledger and checks every newer one against it with an RFC 9162 consistency
proof (the C2SP tlog-witness idea), so that a rewritten, truncated or forked
ledger cannot pass. ``foodtrace witness`` runs this against a server, e.g.
daily. For each ledger it

1. fetches the latest checkpoint (``GET /api/v1/ledgers/{code}/checkpoint``),
   verifies its signature with the verifier keys it was *given* (never the
   server's key endpoint) and checks its origin, ``<platform>/ledger/<code>``;
2. compares it with the last checkpoint it kept for that ledger: a smaller
   size is a truncation, the same size with another root a rewrite, and a
   larger size needs a consistency proof (``…/proof/consistency?from=&to=``,
   hashes in base64) that it verifies itself against both signed roots;
3. keeps the new checkpoint, only when every check held.

State file (JSON, written atomically)::

    {"version": 1, "ledgers": {<credit code>: <the last signed checkpoint note seen>}}

The notes are kept verbatim, so the state is itself evidence: any two notes a
witness has seen can be shown to anyone holding the verifier key.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

from foodtrace.tlog.checkpoint import (
    Checkpoint,
    CheckpointError,
    open_checkpoint,
    verify_tlog_proof,
)
from foodtrace.tlog.merkle import EMPTY_ROOT, HASH_SIZE, ProofError, verify_consistency
from foodtrace.tlog.note import NoteError, Verifier, parse_note
from foodtrace.tlog.signer import atomic_write, read_state

STATE_VERSION = 1
_random = random.SystemRandom()  # which old entries get audited must not be predictable


class HttpClient(Protocol):
    """What the witness needs of an HTTP client: ``httpx.Client(base_url=server)`` or a test's."""

    def get(self, url: str, *, params: dict[str, Any] | None = None) -> Any: ...


class WitnessError(ProofError, RuntimeError):
    """The witness cannot run at all (unreadable state, no ledger list)."""


@dataclass(frozen=True)
class Outcome:
    """What the witness found for one ledger."""

    credit_code: str
    ok: bool
    message: str
    size: int | None = None
    """The size of the checkpoint now kept (the new one when ok, else the one seen before)."""


def load_state(path: Path) -> dict[str, str]:
    """The last checkpoint seen of each ledger; empty when there is no state file yet."""

    def parse(doc: Any) -> dict[str, str]:
        ledgers = doc["ledgers"]
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in ledgers.items()):
            raise ValueError("ledgers must map credit codes to notes")
        return dict(ledgers)

    found = read_state(path, STATE_VERSION, parse, lambda m: WitnessError(f"witness state {m}"))
    return found or {}


def save_state(path: Path, state: dict[str, str]) -> None:
    doc = {"version": STATE_VERSION, "ledgers": dict(sorted(state.items()))}
    atomic_write(path, json.dumps(doc, indent=1, ensure_ascii=False).encode("utf-8") + b"\n")


def list_ledgers(client: HttpClient) -> list[str]:
    """The credit codes of every ledger the server lists (``GET /api/v1/ledgers``)."""
    try:
        r = client.get("/api/v1/ledgers")
        if r.status_code != 200:
            raise WitnessError(f"cannot list the server's ledgers ({_detail(r)})")
        return [str(x["credit_code"]) for x in r.json()["data"]]
    except WitnessError:  # a ValueError too (tlog.errors): not to be wrapped twice
        raise
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise WitnessError(f"cannot list the server's ledgers: {exc}") from None


def witness(
    *,
    client: HttpClient,
    verifiers: Iterable[Verifier],
    state: dict[str, str],
    platform: str,
    ledgers: Sequence[str] | None = None,
    audit: int | None = None,
) -> list[Outcome]:
    """Check the latest checkpoint of each ledger against ``state``, updating it where all holds.

    ``ledgers``: the credit codes to check; by default every ledger the server
    lists, and every ledger seen before (a ledger that disappears from the list
    is still checked, and fails loudly).

    ``audit``: also check the bytes the server serves (:func:`audit_entries`):
    every entry new since the last checkpoint seen, and ``audit`` entries seen
    before, drawn at random (all of them when ``audit`` is at least their
    number). Private entries need the client to carry the credentials of the
    ledger's enterprise or of a regulator over it.
    """
    keys = list(verifiers)
    codes = {c.upper() for c in ledgers} if ledgers else set(list_ledgers(client)) | set(state)
    outcomes = []
    for code in sorted(codes):
        outcome, note = _witness_one(client, code, keys, platform, state.get(code), audit)
        if outcome.ok and note is not None:
            state[code] = note
        outcomes.append(outcome)
    return outcomes


def _detail(r: Any) -> str:
    try:
        detail = r.json().get("detail")
    except (ValueError, AttributeError):
        detail = r.text[:200]
    return f"HTTP {r.status_code}: {detail}"


def _hashes(values: Any) -> list[bytes]:
    if not isinstance(values, list):
        raise ProofError("the proof's hashes are not a list")
    out = []
    for i, v in enumerate(values):
        try:
            raw = base64.b64decode(str(v).encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise ProofError(f"proof hash {i} is not base64") from None
        if len(raw) != HASH_SIZE:
            raise ProofError(f"proof hash {i} has {len(raw)} bytes, not {HASH_SIZE}")
        out.append(raw)
    return out


def _witness_one(
    client: HttpClient,
    code: str,
    keys: list[Verifier],
    platform: str,
    last: str | None,
    audit: int | None = None,
) -> tuple[Outcome, str | None]:
    outcome, note = _extends(client, code, keys, platform, last)
    if audit is None or not outcome.ok or note is None:
        return outcome, note
    new = Checkpoint.parse(parse_note(note).text)
    old_size = Checkpoint.parse(parse_note(last).text).size if last is not None else 0
    earlier = range(1, old_size + 1)
    picked = earlier if audit >= len(earlier) else sorted(_random.sample(earlier, audit))
    seqs = [*picked, *range(old_size + 1, new.size + 1)]
    problem = audit_entries(client, code, keys, new, seqs)
    if problem is not None:
        kept = old_size if last is not None else None
        seen = f"; last seen: size {old_size}" if last is not None else ""
        return Outcome(code, False, problem + seen, kept), None
    return Outcome(code, True, f"{outcome.message}; {len(seqs)} entries audited", new.size), note


def audit_entries(
    client: HttpClient, code: str, keys: list[Verifier], signed: Checkpoint, seqs: Iterable[int]
) -> str | None:
    """Check that the bytes served for each entry are the leaf the signed tree holds at its place.

    For each ``seq`` the server's tlog-proof bundle (the entry's bytes, an
    inclusion proof and a signed checkpoint) must verify with the given keys,
    name leaf ``seq - 1``, carry an entry whose ``seq`` is ``seq``, and its
    checkpoint must be ``signed`` or a later one consistent with it. This sees
    an entry's bytes edited behind the server's back even when its stored hash
    was left alone (the log's own consistency cannot). The first problem found,
    or None.
    """
    origin = signed.origin
    for seq in seqs:
        try:
            r = client.get(f"/api/v1/ledgers/{code}/entries/{seq}/tlog-proof")
        except httpx.HTTPError as exc:
            return f"entry {seq}: cannot fetch its proof: {exc}"
        if r.status_code != 200:
            return f"entry {seq}: the server gave no proof ({_detail(r)})"
        try:
            proven = verify_tlog_proof(r.text, verifiers=keys, origin=origin)
        except (ProofError, NoteError, CheckpointError) as exc:
            return (
                f"entry {seq}: the bytes served are not the leaf the signed tree holds ({exc}): "
                "the entry was altered"
            )
        if proven.index != seq - 1:
            return f"entry {seq}: the server proved leaf {proven.index + 1} instead"
        try:
            claimed = json.loads(proven.data).get("seq")
        except (ValueError, AttributeError):
            claimed = None
        if claimed != seq:
            return f"entry {seq}: the proven bytes say seq {claimed!r}"
        later = proven.checkpoint
        if later.size < signed.size or (later.size == signed.size and later.root != signed.root):
            return (
                f"entry {seq}: proven against size {later.size}, which does not extend the "
                f"checkpoint at size {signed.size}"
            )
        if later.size > signed.size:
            problem = _consistent(client, code, signed, later)
            if problem is not None:
                return f"entry {seq}: {problem}"
    return None


def _consistent(client: HttpClient, code: str, old: Checkpoint, new: Checkpoint) -> str | None:
    """None when the server proves ``new`` extends ``old`` (old.size < new.size), else why not."""
    if old.size == 0:
        return None if old.root == EMPTY_ROOT else "a checkpoint at size 0 with a non-empty root"
    try:
        p = client.get(
            f"/api/v1/ledgers/{code}/proof/consistency",
            params={"from": old.size, "to": new.size},
        )
    except httpx.HTTPError as exc:
        return f"cannot fetch the consistency proof from size {old.size} to {new.size}: {exc}"
    if p.status_code != 200:
        return f"no consistency proof from size {old.size} to {new.size} ({_detail(p)})"
    try:
        proof = _hashes(p.json().get("hashes"))
        verify_consistency(
            size1=old.size, size2=new.size, proof=proof, root1=old.root, root2=new.root
        )
    except (ProofError, ValueError, AttributeError) as exc:
        return (
            f"the checkpoint at size {new.size} is not consistent with the one seen at size "
            f"{old.size}: the ledger was rewritten or forked ({exc})"
        )
    return None


def _extends(
    client: HttpClient, code: str, keys: list[Verifier], platform: str, last: str | None
) -> tuple[Outcome, str | None]:
    """The witness proper: the latest signed checkpoint extends the last one seen."""
    origin = f"{platform}/ledger/{code}"
    old = Checkpoint.parse(parse_note(last).text) if last is not None else None
    seen = f"; last seen: size {old.size}" if old is not None else ""
    kept = old.size if old is not None else None

    def fail(message: str) -> tuple[Outcome, None]:
        return Outcome(code, False, message + seen, kept), None

    try:
        r = client.get(f"/api/v1/ledgers/{code}/checkpoint")
    except httpx.HTTPError as exc:
        return fail(f"cannot fetch the checkpoint: {exc}")
    if r.status_code != 200:
        return fail(f"the server gave no checkpoint ({_detail(r)})")
    note = r.text
    try:
        new, _ = open_checkpoint(note, keys, origin=origin)
    except (NoteError, CheckpointError) as exc:
        return fail(f"the checkpoint does not verify: {exc}")
    if old is None:
        return Outcome(code, True, f"first seen at size {new.size}", new.size), note
    if new.size < old.size:
        return fail(
            f"the ledger went back from size {old.size} to {new.size}: "
            "truncated, or restored from an older backup"
        )
    if new.size == old.size:
        if new.root != old.root:
            return fail(
                f"two different signed roots at size {new.size} (seen "
                f"{base64.b64encode(old.root).decode()}, now {base64.b64encode(new.root).decode()})"
                ": the ledger was rewritten (a fork)"
            )
        return Outcome(code, True, f"unchanged at size {new.size}", new.size), note
    if old.size == 0:
        if old.root != EMPTY_ROOT:
            return fail("the checkpoint seen at size 0 has a root other than the empty tree's")
        return Outcome(code, True, f"size 0 -> {new.size}", new.size), note
    problem = _consistent(client, code, old, new)
    if problem is not None:
        return fail(problem)
    return Outcome(code, True, f"size {old.size} -> {new.size}, consistent", new.size), note
