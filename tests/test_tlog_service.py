"""The Merkle log of stored ledgers (SQLite and PostgreSQL): compact range, checkpoints, proofs."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlmodel import Session

from foodtrace.canonical import canonical_bytes, leaf_hash
from foodtrace.clock import SimulatedClock
from foodtrace.db import FoodtraceSession, read_session, write_session
from foodtrace.ledger.checkpoints import (
    checkpoint,
    consistency_proof,
    entry_proof,
    head_root,
    inclusion_proof,
)
from foodtrace.ledger.models import Entry, Ledger, SignedCheckpoint
from foodtrace.records.service import record
from foodtrace.tlog import merkle
from foodtrace.tlog.checkpoint import Checkpoint, open_checkpoint, verify_entry_proof
from foodtrace.tlog.note import NoteError, NoteSigner, Verifier, sign_note
from foodtrace.tlog.signer import CheckpointSigner, InconsistentCheckpointError
from foodtrace.verify import verify_ledger

from factories import BEVERAGE, add, beverage_ledger, customer, move_head

PLATFORM = "trace.example.cn"
ORIGIN = f"{PLATFORM}/ledger/{BEVERAGE}"


@pytest.fixture
def signer(tmp_path: Path) -> CheckpointSigner:
    return CheckpointSigner.open(tmp_path / "signing.key", name=PLATFORM)


def _stored_leaves(engine: Engine, lid: int) -> list[bytes]:
    """Leaf hashes recomputed from the stored bytes (not the stored hash column)."""
    with read_session(engine) as s:
        bodies = s.execute(select(Entry.body).where(Entry.ledger_id == lid).order_by(Entry.seq))
        return [leaf_hash(bytes(b)) for (b,) in bodies]


def _head(engine: Engine, lid: int) -> Ledger:
    with read_session(engine) as s:
        head = s.get(Ledger, lid)
        assert head is not None
        s.expunge(head)
        return head


def _customers(
    engine: Engine, clock: SimulatedClock, lid: int, codes: range, *, defer_head: bool
) -> None:
    """Append one customer per code in one transaction (``defer_head``: the import path)."""
    with write_session(engine) as session:
        for i in codes:
            record(
                session=session,
                ledger_id=lid,
                kind="customer",
                data=customer(code=f"C{i:03d}", name=f"经销商 {i}"),
                actor="qa",
                clock=clock,
                defer_head=defer_head,
            )


def _checkpoint(
    engine: Engine, clock: SimulatedClock, lid: int, signer: CheckpointSigner, **kw: bool
) -> SignedCheckpoint:
    with write_session(engine) as session:
        cp = checkpoint(session=session, ledger_id=lid, signer=signer, clock=clock, **kw)
        session.expunge(cp)
        return cp


def test_the_compact_range_is_the_root_of_all_leaves_after_many_appends(engine, clock) -> None:
    lid = beverage_ledger(engine, clock)  # 10 entries, one transaction each
    for n in range(11, 26):
        add(engine, clock, lid, "customer", customer(code=f"A{n}", name=f"经销商 {n}"))
        head = _head(engine, lid)
        leaves = _stored_leaves(engine, lid)
        assert head.size == len(leaves) == n
        assert head_root(head) == merkle.root(leaves)
    _customers(engine, clock, lid, range(100, 140), defer_head=True)  # deferred head moves
    _customers(engine, clock, lid, range(200, 207), defer_head=False)
    head, leaves = _head(engine, lid), _stored_leaves(engine, lid)
    assert head.size == len(leaves) == 25 + 40 + 7
    assert bytes(head.compact_range) == merkle.CompactRange.of(leaves).to_bytes()
    assert head_root(head) == merkle.root(leaves)
    with read_session(engine) as s:
        assert verify_ledger(session=s, ledger_id=lid).ok


def test_a_rolled_back_append_leaves_the_compact_range_as_it_was(engine, clock) -> None:
    lid = beverage_ledger(engine, clock)
    before = _head(engine, lid)
    session = FoodtraceSession(engine.execution_options(foodtrace_write=True))
    with session:
        for i in range(3):
            record(
                session=session,
                ledger_id=lid,
                kind="customer",
                data=customer(code=f"R{i}"),
                actor="qa",
                clock=clock,
                defer_head=i % 2 == 0,
            )
        session.flush()
        session.rollback()
    after = _head(engine, lid)
    assert (after.size, bytes(after.compact_range)) == (before.size, bytes(before.compact_range))
    add(engine, clock, lid, "customer", customer(code="NEXT"))
    assert head_root(_head(engine, lid)) == merkle.root(_stored_leaves(engine, lid))


def test_proofs_from_the_database_verify_against_the_head_root(engine, clock) -> None:
    lid = beverage_ledger(engine, clock)
    _customers(engine, clock, lid, range(12), defer_head=True)  # 21 entries
    leaves = _stored_leaves(engine, lid)
    with read_session(engine) as s:
        for size in (1, 2, 9, 16, 21):
            root = merkle.root(leaves[:size])
            for seq in range(1, size + 1):
                proof = inclusion_proof(session=s, ledger_id=lid, seq=seq, size=size)
                merkle.verify_inclusion(
                    index=seq - 1, size=size, leaf_hash=leaves[seq - 1], proof=proof, root=root
                )
            for size1 in range(1, size + 1):
                merkle.verify_consistency(
                    size1=size1,
                    size2=size,
                    proof=consistency_proof(session=s, ledger_id=lid, size1=size1, size2=size),
                    root1=merkle.root(leaves[:size1]),
                    root2=root,
                )


def test_a_checkpoint_is_signed_stored_and_verifies(engine, clock, signer) -> None:
    lid = beverage_ledger(engine, clock)
    cp = _checkpoint(engine, clock, lid, signer)
    leaves = _stored_leaves(engine, lid)
    assert (cp.size, bytes(cp.root)) == (10, merkle.root(leaves))
    assert cp.signed_at == "2026-03-02T00:30:00Z"
    opened, note = open_checkpoint(cp.note, [signer.verifier], origin=ORIGIN)
    assert opened == Checkpoint(ORIGIN, 10, merkle.root(leaves))
    assert note.signatures[0].name == PLATFORM
    assert signer.last_signed(ORIGIN) == (10, merkle.root(leaves))
    with read_session(engine) as s:
        report = verify_ledger(session=s, ledger_id=lid, verifiers=[signer.verifier])
    assert report.ok, report.problems
    assert (report.checkpoints_checked, report.signatures_checked) == (1, True)


def test_checkpoints_come_at_most_a_second_apart_and_on_demand(engine, clock, signer) -> None:
    lid = beverage_ledger(engine, clock)
    first = _checkpoint(engine, clock, lid, signer)
    add(engine, clock, lid, "customer", customer(code="N1"))
    assert _checkpoint(engine, clock, lid, signer).size == first.size == 10  # same instant
    assert _checkpoint(engine, clock, lid, signer, force=True).size == 11  # asked for
    add(engine, clock, lid, "customer", customer(code="N2"))
    clock.advance(timedelta(milliseconds=999))
    assert _checkpoint(engine, clock, lid, signer).size == 11
    clock.advance(timedelta(milliseconds=1))
    assert _checkpoint(engine, clock, lid, signer).size == 12
    clock.advance(timedelta(hours=1))  # not grown: no new signature
    assert _checkpoint(engine, clock, lid, signer, force=True).signed_at == ("2026-03-02T00:30:01Z")
    with read_session(engine) as s:
        sizes = s.execute(
            select(SignedCheckpoint.size).where(SignedCheckpoint.ledger_id == lid)
        ).scalars()
        assert sorted(sizes) == [10, 11, 12]
        report = verify_ledger(session=s, ledger_id=lid, verifiers=[signer.verifier])
    assert report.ok, report.problems
    assert report.checkpoints_checked == 3


def test_no_checkpoint_in_the_transaction_that_appended(engine, clock, signer) -> None:
    lid = beverage_ledger(engine, clock)
    with write_session(engine) as session:
        record(
            session=session,
            ledger_id=lid,
            kind="customer",
            data=customer(code="SAME"),
            actor="qa",
            clock=clock,
        )
        with pytest.raises(RuntimeError, match="commit first"):
            checkpoint(session=session, ledger_id=lid, signer=signer, clock=clock)
    assert signer.last_signed(ORIGIN) is None
    assert _checkpoint(engine, clock, lid, signer).size == 11


def test_an_entry_proof_verifies_offline_with_the_verifier_key_alone(engine, clock, signer) -> None:
    lid = beverage_ledger(engine, clock)
    _checkpoint(engine, clock, lid, signer)
    add(engine, clock, lid, "customer", customer(code="LATE"))
    with write_session(engine) as s:
        early = entry_proof(session=s, ledger_id=lid, seq=3, signer=signer, clock=clock).text()
        late = entry_proof(session=s, ledger_id=lid, seq=11, signer=signer, clock=clock).text()
    vkey = signer.verifier.vkey  # all a consumer has
    proven = verify_entry_proof(early, verifiers=[Verifier.from_vkey(vkey)], origin=ORIGIN)
    assert (proven.entry["seq"], proven.entry["kind"]) == (3, "customer")
    assert proven.proof.checkpoint.size == 10  # the checkpoint that already covered it
    proven = verify_entry_proof(late, verifiers=[Verifier.from_vkey(vkey)], origin=ORIGIN)
    assert (proven.entry["body"]["code"], proven.proof.checkpoint.size) == ("LATE", 11)

    stranger = NoteSigner.generate(PLATFORM).verifier
    with pytest.raises(NoteError):
        verify_entry_proof(late, verifiers=[stranger])
    forged = json.loads(proven.proof.data)
    forged["body"]["name"] = "另一家公司"
    lines = late.split("\n")
    lines[1] = "extra " + base64.b64encode(canonical_bytes(forged)).decode()
    with pytest.raises(merkle.RootMismatchError):
        verify_entry_proof("\n".join(lines), verifiers=[signer.verifier])


def _truncate_to(conn, lid: int, size: int) -> None:  # type: ignore[no-untyped-def]
    """What restoring a backup taken at ``size`` does (the entries after it were customers)."""
    conn.execute(
        text("DELETE FROM customers WHERE enterprise_id = :l AND record_seq > :n"),
        {"l": lid, "n": size},
    )
    conn.execute(
        text("DELETE FROM entries WHERE ledger_id = :l AND seq > :n"), {"l": lid, "n": size}
    )
    move_head(conn, lid)
    conn.execute(
        text("DELETE FROM checkpoints WHERE ledger_id = :l AND size > :n"), {"l": lid, "n": size}
    )


def test_a_restored_backup_cannot_fork_the_ledger(engine, clock, signer) -> None:
    lid = beverage_ledger(engine, clock)
    _customers(engine, clock, lid, range(3), defer_head=False)  # 13 entries
    signed = _checkpoint(engine, clock, lid, signer)
    assert signed.size == 13
    with engine.begin() as conn:
        _truncate_to(conn, lid, 10)
    clock.advance(timedelta(seconds=5))
    with pytest.raises(InconsistentCheckpointError, match="behind"):
        _checkpoint(engine, clock, lid, signer, force=True)
    # The restored ledger grows again, with other entries.
    _customers(engine, clock, lid, range(50, 53), defer_head=True)
    with pytest.raises(InconsistentCheckpointError, match="another root"):
        _checkpoint(engine, clock, lid, signer, force=True)
    add(engine, clock, lid, "customer", customer(code="MORE"))
    with pytest.raises(InconsistentCheckpointError, match="does not extend"):
        _checkpoint(engine, clock, lid, signer, force=True)
    assert signer.last_signed(ORIGIN) == (13, bytes(signed.root))
    with read_session(engine) as s:
        sizes = s.execute(
            select(SignedCheckpoint.size).where(SignedCheckpoint.ledger_id == lid)
        ).scalars()
        assert list(sizes) == []  # the restore dropped it, and nothing new was signed


def _rewrite_last_entry_consistently(conn, lid: int) -> None:  # type: ignore[no-untyped-def]
    """Rewrite the last entry (a new salt) with its hash, the head and the Merkle range redone.

    Chain, hashes, derived rows and compact range all agree afterwards; only the
    signed checkpoint still remembers the original.
    """
    seq, body = conn.execute(
        text("SELECT seq, body FROM entries WHERE ledger_id = :l ORDER BY seq DESC LIMIT 1"),
        {"l": lid},
    ).one()
    env = json.loads(bytes(body))
    env["salt"] = "AAAAAAAAAAAAAAAAAAAAAA=="
    data = canonical_bytes(env)
    conn.execute(
        text("UPDATE entries SET body = :b, hash = :h WHERE ledger_id = :l AND seq = :s"),
        {"b": data, "h": leaf_hash(data), "l": lid, "s": seq},
    )
    move_head(conn, lid)  # the size stays: no entry went


def _verify(conn, lid: int, signer: CheckpointSigner | None = None):  # type: ignore[no-untyped-def]
    with Session(bind=conn) as s:
        return verify_ledger(
            session=s, ledger_id=lid, verifiers=None if signer is None else [signer.verifier]
        )


def test_verification_catches_a_rewrite_that_only_the_checkpoint_remembers(
    engine, clock, signer
) -> None:
    lid = beverage_ledger(engine, clock)
    _checkpoint(engine, clock, lid, signer)
    with engine.connect() as conn, conn.begin():
        _rewrite_last_entry_consistently(conn, lid)
        report = _verify(conn, lid)
    assert [(p.seq, p.check) for p in report.problems] == [(10, "checkpoint")], report.problems
    assert "an entry among 1..10 was rewritten" in report.problems[0].message


def test_verification_catches_a_checkpoint_whose_root_disagrees(engine, clock, signer) -> None:
    lid = beverage_ledger(engine, clock)
    _checkpoint(engine, clock, lid, signer)
    add(engine, clock, lid, "customer", customer(code="X"))
    clock.advance(timedelta(seconds=2))
    _checkpoint(engine, clock, lid, signer)  # at 11
    # A checkpoint row whose root column disagrees with its own signed note.
    with engine.connect() as conn, conn.begin():
        conn.execute(
            text("UPDATE checkpoints SET root = :r WHERE ledger_id = :l AND size = 11"),
            {"r": bytes(32), "l": lid},
        )
        report = _verify(conn, lid, signer)
        assert [(p.seq, p.check) for p in report.problems] == [(11, "checkpoint")]
        assert "its signed note says" in report.problems[0].message
    # A note re-signed by another key with a false root: its signature fails.
    impostor = NoteSigner.generate(PLATFORM)
    with engine.connect() as conn, conn.begin():
        fake = Checkpoint(ORIGIN, 11, bytes(32))
        conn.execute(
            text("UPDATE checkpoints SET root = :r, note = :n WHERE ledger_id = :l AND size = 11"),
            {"r": bytes(32), "n": sign_note(fake.text(), [impostor]), "l": lid},
        )
        report = _verify(conn, lid, signer)
        assert [(p.seq, p.check) for p in report.problems] == [(11, "checkpoint")]
        assert "no known key signed" in report.problems[0].message
        # Without the platform key only the root can be checked, and it disagrees.
        report = _verify(conn, lid)
        assert [(p.seq, p.check) for p in report.problems] == [(11, "checkpoint")]
        assert "an entry among 11..11 was rewritten" in report.problems[0].message
        assert not report.signatures_checked


def test_verification_catches_signed_entries_that_were_removed(engine, clock, signer) -> None:
    lid = beverage_ledger(engine, clock)
    _customers(engine, clock, lid, range(3), defer_head=False)
    _checkpoint(engine, clock, lid, signer)  # at 13
    with engine.connect() as conn, conn.begin():
        conn.execute(text("DELETE FROM entries WHERE ledger_id = :l AND seq > 10"), {"l": lid})
        move_head(conn, lid)  # size 10
        report = _verify(conn, lid, signer)
    assert (11, "checkpoint") in [(p.seq, p.check) for p in report.problems], report.problems


def test_verification_catches_a_stale_compact_range(engine, clock) -> None:
    lid = beverage_ledger(engine, clock)
    with engine.connect() as conn, conn.begin():
        conn.execute(
            text("UPDATE ledgers SET compact_range = :c WHERE id = :l"),
            {"c": merkle.CompactRange.of([bytes(32)] * 10).to_bytes(), "l": lid},
        )
        report = _verify(conn, lid)
    assert [(p.seq, p.check) for p in report.problems] == [(None, "merkle")]


def test_the_next_signing_proves_from_the_stored_range_and_the_new_entries(
    engine, clock, signer
) -> None:
    """A checkpoint keeps the compact range it was signed at; the consistency proof from its
    size is made from that range and the entries since (not from every leaf), is the proof
    all the leaves give, and a range edited behind the app is named by verify and refused
    by the signer."""
    from sqlalchemy import event

    lid = beverage_ledger(engine, clock)
    cp = _checkpoint(engine, clock, lid, signer)
    assert bytes(cp.compact_range) == bytes(_head(engine, lid).compact_range)
    _customers(engine, clock, lid, range(1, 14), defer_head=False)  # size 10 -> 23
    leaves = _stored_leaves(engine, lid)
    entry_reads: list[str] = []

    def seen(conn, cursor, statement, params, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if "FROM entries" in statement:
            entry_reads.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        with read_session(engine) as s:
            proof = consistency_proof(session=s, ledger_id=lid, size1=10, size2=23)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert proof == merkle.consistency_proof(10, leaves)
    assert len(entry_reads) == 1
    assert "seq >" in entry_reads[0]
    with read_session(engine) as s:  # from a size never signed: every leaf, same answer
        assert consistency_proof(session=s, ledger_id=lid, size1=7, size2=23) == (
            merkle.consistency_proof(7, leaves)
        )
    clock.advance(timedelta(seconds=2))
    assert _checkpoint(engine, clock, lid, signer).size == 23

    # The stored range of the checkpoint at 23, edited: verify names it, the signer refuses.
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE checkpoints SET compact_range = :r WHERE ledger_id = :l AND size = 23"),
            {"r": bytes(reversed(bytes(_head(engine, lid).compact_range))), "l": lid},
        )
    with read_session(engine) as s:
        report = verify_ledger(session=s, ledger_id=lid)
    assert (report.first.seq, report.first.check) == (23, "checkpoint"), report.problems
    assert "stored compact range is not the tree" in report.first.message
    _customers(engine, clock, lid, range(14, 15), defer_head=False)
    clock.advance(timedelta(seconds=2))
    with pytest.raises(InconsistentCheckpointError, match="does not extend it"):
        _checkpoint(engine, clock, lid, signer)
