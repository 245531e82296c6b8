"""The Merkle log over HTTP: the verifier key, checkpoints and proofs of every ledger.

What reveals only hashes and sizes is public (the key, the list of ledgers,
checkpoints, consistency proofs); an inclusion proof or tlog-proof bundle of a
private entry needs the credentials of its enterprise or of a regulator over
it (:class:`web.deps.LedgerAccess`). Hashes in JSON are base64, as in
checkpoints and tlog-proof bundles.
"""

from __future__ import annotations

import base64
from typing import Annotated, NoReturn

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.responses import PlainTextResponse
from sqlalchemy import select

from foodtrace.accounts.service import log_reads
from foodtrace.db import read_session, write_session
from foodtrace.ledger.checkpoints import (
    LedgerDamaged,
    checkpoint_at,
    fresh_checkpoint,
    is_public_entry,
    leaf_hashes,
    proof_against,
)
from foodtrace.ledger.models import Ledger, SignedCheckpoint
from foodtrace.ledger.service import get_entry
from foodtrace.tlog import merkle
from foodtrace.tlog.signer import CheckpointSigner, SignerError
from schemas.api import (
    ConsistencyProofPublic,
    InclusionProofPublic,
    LedgerListedPublic,
    LedgersPublic,
)
from schemas.params import Count, Seq
from web.deps import (
    ClockDep,
    EngineDep,
    LedgerAccess,
    LedgerAccessDep,
    OptionalPrincipal,
    SessionDep,
)

router = APIRouter(tags=["ledger proofs"])

TEXT = "text/plain; charset=utf-8"
Size = Annotated[Count, Query(description="a tree size (number of entries)")]


def _signer(request: Request) -> CheckpointSigner:
    return request.app.state.signer


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _bad_query(name: str, msg: str) -> NoReturn:
    """422 naming the query parameter, in the shape of every other 422."""
    raise HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail=[{"loc": ["query", name], "msg": msg, "type": "value_error"}],
    )


def _conflict(exc: Exception) -> HTTPException:
    """The stored ledger no longer matches what was signed: no checkpoint or proof is served."""
    return HTTPException(
        status.HTTP_409_CONFLICT,
        detail=f"{exc}; the ledger's checkpoints are withheld until it is repaired "
        "(foodtrace verify names the entry)",
    )


def _fresh(
    request: Request, engine: EngineDep, clock: ClockDep, ledger: Ledger
) -> SignedCheckpoint:
    assert ledger.id is not None
    try:
        return fresh_checkpoint(
            engine=engine, ledger_id=ledger.id, signer=_signer(request), clock=clock
        )
    except (LedgerDamaged, SignerError) as exc:
        raise _conflict(exc) from None


def _log_regulator(engine: EngineDep, access: LedgerAccess, clock: ClockDep, what: str) -> None:
    """A regulator's proof of a private entry reads the enterprise's records: it is logged.

    In a write transaction of its own, deliberately, not the request's (as the regulator's
    read log of ``regulator_view.reads``): the proof routes read in a read session, and
    anonymous callers of public entries write nothing; a request-wide write session would
    take SQLite's write lock for every proof, while ``fresh_checkpoint`` signs the
    checkpoint in a write session of its own, which would wait for that lock."""
    if not access.regulator_of_enterprise:
        return
    principal = access.principal
    assert principal is not None
    assert principal.authority_id is not None
    assert access.ledger.id is not None
    with write_session(engine) as ws:
        log_reads(
            session=ws,
            enterprise_ids={access.ledger.id},
            authority_id=principal.authority_id,
            username=principal.username,
            what=what,
            now=clock.now(),
        )


@router.get(
    "/.well-known/foodtrace/checkpoint-key",
    response_class=PlainTextResponse,
    responses={200: {"content": {TEXT: {}}}},
)
def checkpoint_key(request: Request) -> PlainTextResponse:
    """The platform's checkpoint verifier key (C2SP ``name+keyid+base64``), one a line.

    The first line is the key that signs now; after a key rotation the earlier
    keys follow, one a line, for the checkpoints they signed. Verify against a
    copy obtained out of band (pinned): this endpoint is for finding the key,
    not for trusting it.
    """
    keys = _signer(request).verifiers
    return PlainTextResponse("".join(k.vkey + "\n" for k in keys), media_type=TEXT)


@router.get("/api/v1/ledgers", response_model=LedgersPublic)
def ledgers(session: SessionDep, _principal: OptionalPrincipal) -> LedgersPublic:
    """Every ledger's credit code and origin: what a witness needs to watch them all."""
    rows = session.execute(
        select(Ledger.credit_code, Ledger.origin, Ledger.owner_kind).order_by(Ledger.credit_code)
    ).all()
    data = [LedgerListedPublic(credit_code=c, origin=o, owner_kind=k) for c, o, k in rows]
    return LedgersPublic(data=data, count=len(data))


@router.get(
    "/api/v1/ledgers/{credit_code}/checkpoint",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {TEXT: {}}, "description": "the signed checkpoint note"},
        409: {"description": "the stored ledger no longer extends what was signed"},
    },
)
def latest_checkpoint(
    access: LedgerAccessDep, request: Request, engine: EngineDep, clock: ClockDep
) -> PlainTextResponse:
    """The ledger's latest signed checkpoint (C2SP tlog-checkpoint note), signed now if it grew.

    A ledger without entries gets the checkpoint of the empty tree (size 0).
    """
    signed = _fresh(request, engine, clock, access.ledger)
    return PlainTextResponse(signed.note, media_type=TEXT)


@router.get("/api/v1/ledgers/{credit_code}/proof/inclusion", response_model=InclusionProofPublic)
def inclusion_proof(
    access: LedgerAccessDep,
    request: Request,
    session: SessionDep,
    engine: EngineDep,
    clock: ClockDep,
    seq: Annotated[Seq, Query(description="the entry (leaf index seq - 1)")],
    size: Annotated[
        Seq | None,
        Query(description="the tree size; default: the latest checkpoint, signed now"),
    ] = None,
) -> InclusionProofPublic:
    """RFC 9162 inclusion proof of entry ``seq`` in the tree of ``size`` entries.

    Public for the public entries (public declarations, public recalls); for a
    private entry it needs the credentials of its enterprise or of a regulator
    over it.
    """
    ledger = access.ledger
    assert ledger.id is not None
    if size is not None and size > ledger.size:
        _bad_query("size", f"size {size} is beyond the ledger's {ledger.size} entries")
    limit = ledger.size if size is None else size
    if seq > limit:
        _bad_query("seq", f"seq {seq} is beyond the tree size {limit}")
    entry = get_entry(session=session, ledger_id=ledger.id, seq=seq)
    private = not is_public_entry(bytes(entry.body))
    if private:
        access.require_private(f"entry {seq}")
    note: str | None
    if size is None:
        signed = _fresh(request, engine, clock, ledger)
        size, note = signed.size, signed.note
    else:
        cp = checkpoint_at(session=session, ledger_id=ledger.id, size=size)
        note = cp.note if cp is not None else None
    # A session of its own: the request's may predate the checkpoint just signed
    # (a SQLite read transaction keeps the snapshot it started with).
    try:
        with read_session(engine) as fresh:
            leaves = leaf_hashes(session=fresh, ledger_id=ledger.id, size=size)
    except LedgerDamaged as exc:
        raise _conflict(exc) from None
    proof = merkle.inclusion_proof(seq - 1, leaves)
    if private:
        _log_regulator(engine, access, clock, f"inclusion proof of ledger entry {seq}")
    return InclusionProofPublic(
        origin=ledger.origin,
        seq=seq,
        index=seq - 1,
        size=size,
        leaf_hash=_b64(leaves[seq - 1]),
        hashes=[_b64(h) for h in proof],
        root=_b64(merkle.root(leaves)),
        checkpoint=note,
    )


@router.get(
    "/api/v1/ledgers/{credit_code}/proof/consistency",
    response_model=ConsistencyProofPublic,
    response_model_by_alias=True,
)
def consistency_proof(
    access: LedgerAccessDep,
    session: SessionDep,
    from_: Annotated[Count, Query(alias="from", description="the older tree size")],
    to: Annotated[Count, Query(description="the newer tree size")],
) -> ConsistencyProofPublic:
    """RFC 9162 consistency proof from the tree of ``from`` entries to that of ``to``.

    Public: it reveals only hashes of subtrees.
    """
    ledger = access.ledger
    assert ledger.id is not None
    if to > ledger.size:
        _bad_query("to", f"to {to} is beyond the ledger's {ledger.size} entries")
    if from_ > to:
        _bad_query("from", f"from {from_} is larger than to {to}")
    hashes: list[bytes] = []
    if 0 < from_ < to:
        try:
            leaves = leaf_hashes(session=session, ledger_id=ledger.id, size=to)
        except LedgerDamaged as exc:
            raise _conflict(exc) from None
        hashes = merkle.consistency_proof(from_, leaves)
    return ConsistencyProofPublic(
        origin=ledger.origin, from_=from_, to=to, hashes=[_b64(h) for h in hashes]
    )


@router.get(
    "/api/v1/ledgers/{credit_code}/entries/{seq}/tlog-proof",
    response_class=PlainTextResponse,
    responses={200: {"content": {TEXT: {}}, "description": "a C2SP tlog-proof@v1 bundle"}},
)
def tlog_proof(
    access: LedgerAccessDep,
    request: Request,
    session: SessionDep,
    engine: EngineDep,
    clock: ClockDep,
    seq: Annotated[Seq, Path()],
) -> PlainTextResponse:
    """The C2SP tlog-proof@v1 bundle of entry ``seq`` against the latest checkpoint.

    Its ``extra`` line carries the entry's canonical bytes (base64), so a
    verifier hashes them itself. Public for the public entries; a private
    entry needs the credentials of its enterprise or of a regulator over it.
    """
    ledger = access.ledger
    assert ledger.id is not None
    if seq > ledger.size:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no entry {seq}")
    entry = get_entry(session=session, ledger_id=ledger.id, seq=seq)
    private = not is_public_entry(bytes(entry.body))
    if private:
        access.require_private(f"entry {seq}")
    signed = _fresh(request, engine, clock, ledger)
    try:
        with read_session(engine) as fresh:  # see inclusion_proof
            bundle = proof_against(session=fresh, ledger_id=ledger.id, seq=seq, signed=signed)
    except LedgerDamaged as exc:
        raise _conflict(exc) from None
    if private:
        _log_regulator(engine, access, clock, f"tlog-proof of ledger entry {seq}")
    return PlainTextResponse(bundle.text(), media_type=TEXT)
