"""The platform's signer in the app, and the background task that keeps checkpoints current.

With several server processes (``TRACE_WORKERS``, the container) every one has
the task, but only one of them signs in the background at a time: the one
that holds the *leader lock* — a PostgreSQL session-level advisory lock, or on
SQLite an ``flock`` on a file beside the signing key. When the leader dies its
connection (or file) closes, the lock goes with it, and another worker takes
over on its next round.

The lock is for economy, not for safety: signing is safe from any number of
processes at once, which is also why every worker may still sign on demand
when a proof is asked for. :func:`foodtrace.ledger.checkpoints.checkpoints` takes a
checkpoint lock of each ledger (on PostgreSQL an advisory lock, which appends
do not wait for) and re-reads the head and the latest checkpoint under it, so
one ledger is signed by one transaction at a time; and the signer
checks and updates its state file under an ``flock`` of ``<key>.lock``, which
serialises processes that share the key file (they must: the state lives
beside the key, docker/compose.yaml mounts one volume for it). Without the
leader lock N workers would each scan for grown ledgers every second and queue
on the same checkpoint locks.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from foodtrace.clock import Clock
from foodtrace.db import read_session, write_session
from foodtrace.ledger.checkpoints import LedgerDamaged, checkpoints, grown_ledgers
from foodtrace.tlog.signer import CheckpointSigner

log = logging.getLogger("foodtrace.checkpoints")


def sign_grown(engine: Engine, signer: CheckpointSigner, clock: Clock) -> int:
    """Sign a checkpoint of every ledger that grew; how many were signed.

    One transaction and one call of the signer (one write of its state) for the
    round. A ledger the signer refuses (its stored tree is not consistent with
    what was signed before: a restored backup, a rewrite) is logged loudly and
    skipped; verification names it. A ledger found damaged (entries missing
    under a signed size) fails the round's transaction, and the round is done
    again ledger by ledger, so that it does not stop the others being signed.
    """
    with read_session(engine) as session:
        ids = grown_ledgers(session=session)
    if not ids:
        return 0
    try:
        return _sign(engine, ids, signer, clock)
    except LedgerDamaged as exc:
        log.error("signing the grown ledgers together failed (%s): one by one", exc)
    signed = 0
    for ledger_id in ids:
        try:
            signed += _sign(engine, [ledger_id], signer, clock)
        except LedgerDamaged as exc:
            log.error("checkpoint of ledger %s: %s", ledger_id, exc)
    return signed


def _sign(engine: Engine, ids: list[int], signer: CheckpointSigner, clock: Clock) -> int:
    """Sign the ledgers ``ids`` in one transaction; how many were signed (refusals logged)."""
    with write_session(engine) as session:
        found = checkpoints(session=session, ledger_ids=ids, signer=signer, clock=clock)
    for ledger_id, refusal in found.refused.items():
        log.error("checkpoint of ledger %s refused: %s", ledger_id, refusal)
    return len(found.issued)


LEADER_LOCK_ID = 0x66_74_63_6B  # "ftck": the advisory lock key of the background signer


class LeaderLock:
    """Held by at most one process of an installation: the one that signs in the background."""

    def __init__(self, engine: Engine, key_file: str | Path) -> None:
        self.engine = engine
        self.path = Path(key_file).with_name(Path(key_file).name + ".leader")
        self._conn: Connection | None = None
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None or self._fd is not None

    def acquire(self) -> bool:
        """Whether this process leads now: keeps its lock, or tries (never waits) to get it."""
        if self.engine.dialect.name == "postgresql":
            return self._acquire_pg()
        return self._acquire_file()

    def _acquire_pg(self) -> bool:
        if self._conn is not None:
            try:  # still ours while the session lives
                self._conn.execute(text("SELECT 1"))
                return True
            except SQLAlchemyError:
                self.release()
        try:
            conn = self.engine.connect()
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LEADER_LOCK_ID})
            if got.scalar_one():
                conn.commit()  # the lock is session-level: it outlives this transaction
                self._conn = conn
                return True
            conn.close()
        except SQLAlchemyError as exc:
            log.warning("leader lock: database unavailable (%s)", type(exc).__name__)
        return False

    def _acquire_file(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LEADER_LOCK_ID})
                conn.commit()
            except SQLAlchemyError:
                pass  # a dead session holds no lock
            finally:
                conn.close()
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # releases the flock


async def run(engine: Engine, signer: CheckpointSigner, clock: Clock, interval: float) -> None:
    """Every ``interval`` seconds, sign what grew if this process leads (in a worker thread:
    it does I/O)."""
    leader = LeaderLock(engine, signer.key_file)
    try:
        while True:
            await asyncio.sleep(interval)
            try:
                if await asyncio.to_thread(leader.acquire):
                    await asyncio.to_thread(sign_grown, engine, signer, clock)
            except Exception:  # keep serving; the next round tries again
                log.exception("signing checkpoints failed")
    finally:
        leader.release()
