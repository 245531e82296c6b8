"""The platform's signer in the app, and the background task that keeps checkpoints current."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import Engine

from foodtrace.clock import Clock
from foodtrace.db import read_session, write_session
from foodtrace.tlog.service import checkpoint, grown_ledgers
from foodtrace.tlog.signer import CheckpointSigner, SignerError

log = logging.getLogger("foodtrace.checkpoints")


def sign_grown(engine: Engine, signer: CheckpointSigner, clock: Clock) -> int:
    """Sign a checkpoint of every ledger that grew (one transaction each); how many were signed.

    A ledger the signer refuses (its stored tree is not consistent with what was
    signed before: a restored backup, a rewrite) is logged loudly and skipped;
    verification names it.
    """
    with read_session(engine) as session:
        ids = grown_ledgers(session=session)
    signed = 0
    for ledger_id in ids:
        try:
            with write_session(engine) as session:
                checkpoint(session=session, ledger_id=ledger_id, signer=signer, clock=clock)
            signed += 1
        except SignerError as exc:
            log.error("checkpoint of ledger %s refused: %s", ledger_id, exc)
    return signed


async def run(engine: Engine, signer: CheckpointSigner, clock: Clock, interval: float) -> None:
    """Every ``interval`` seconds, sign what grew (in a worker thread: it does I/O)."""
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(sign_grown, engine, signer, clock)
        except Exception:  # keep serving; the next round tries again
            log.exception("signing checkpoints failed")
