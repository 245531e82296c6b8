"""A ledger that lost its signed tail (an older backup restored) is flagged, and recovered from
an export of its entries: the same bytes re-appended, derived rows replayed, signer satisfied."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from foodtrace.canonical import canonical_bytes
from foodtrace.db import read_session, write_session
from foodtrace.ledger.checkpoints import checkpoint, head_root
from foodtrace.ledger.models import Entry, Ledger
from foodtrace.records.restore import RestoreError, append_exported
from foodtrace.tlog.checkpoint import Checkpoint
from foodtrace.tlog.signer import CheckpointSigner, InconsistentCheckpointError, load_signed_state
from foodtrace.verify import verify_consistently

from factories import BEVERAGE, add, customer, move_head, register

PLATFORM = "trace.example.cn"
ORIGIN = f"{PLATFORM}/ledger/{BEVERAGE}"


@pytest.fixture
def signer(tmp_path: Path) -> CheckpointSigner:
    return CheckpointSigner.open(tmp_path / "signing.key", name=PLATFORM)


def _sign(engine: Engine, clock, lid: int, signer: CheckpointSigner) -> int:  # type: ignore[no-untyped-def]
    clock.advance(timedelta(seconds=2))
    with write_session(engine) as s:
        return checkpoint(session=s, ledger_id=lid, signer=signer, clock=clock, force=True).size


def _bodies(engine: Engine, lid: int, first: int, last: int) -> list[bytes]:
    with read_session(engine) as s:
        rows = s.execute(
            select(Entry.body)
            .where(Entry.ledger_id == lid, Entry.seq >= first, Entry.seq <= last)
            .order_by(Entry.seq)
        ).scalars()
        return [bytes(b) for b in rows]


def _size(engine: Engine, lid: int) -> int:
    with read_session(engine) as s:
        return s.get(Ledger, lid).size


def _roll_back_to(engine: Engine, lid: int, size: int) -> None:
    """What restoring a backup taken at ``size`` leaves (the later entries were customers)."""
    with engine.begin() as conn:
        for sql in (
            "DELETE FROM customers WHERE enterprise_id = :l AND record_seq > :n",
            "DELETE FROM idempotency_keys WHERE ledger_id = :l AND seq > :n",
            "DELETE FROM entries WHERE ledger_id = :l AND seq > :n",
            "DELETE FROM checkpoints WHERE ledger_id = :l AND size > :n",
        ):
            conn.execute(text(sql), {"l": lid, "n": size})
        move_head(conn, lid)


def _report(engine: Engine, signer: CheckpointSigner, lid: int):  # type: ignore[no-untyped-def]
    return verify_consistently(
        engine=engine,
        ledger_id=lid,
        verifiers=[signer.verifier],
        signed_state=load_signed_state(signer.key_file),
    )[0]


@pytest.fixture
def lost_tail(engine, clock, signer) -> tuple[int, list[bytes]]:
    """A ledger signed at 14 that went back to 10 (its entries 11..14 exported beforehand)."""
    lid = register(engine, clock)  # the registration is entry 1
    for i in range(2, 11):
        add(engine, clock, lid, "customer", customer(code=f"C{i}"))
    assert _sign(engine, clock, lid, signer) == 10
    for i in range(11, 15):
        add(engine, clock, lid, "customer", customer(code=f"C{i}"), idempotency_key=f"k{i}")
    assert _sign(engine, clock, lid, signer) == 14
    export = _bodies(engine, lid, 1, 14)
    _roll_back_to(engine, lid, 10)
    return lid, export


def test_a_lost_signed_tail_is_flagged_and_recovered_from_the_export(
    engine, clock, signer, lost_tail
) -> None:
    lid, export = lost_tail
    # The rolled-back ledger is consistent in itself: only the signer's record shows the loss.
    alone = verify_consistently(engine=engine, ledger_id=lid, verifiers=[signer.verifier])[0]
    assert alone.ok, alone.problems
    report = _report(engine, signer, lid)
    assert [(p.seq, p.check) for p in report.problems] == [(11, "signer")]
    assert "signed entries 11..14 are missing" in report.problems[0].message
    # Its stored checkpoint at 10 is still the latest it knows, but asked to sign its tree
    # anew, the signer refuses to go back.
    with read_session(engine) as s:
        head = s.get(Ledger, lid)
        tree = Checkpoint(head.origin, head.size, head_root(head))
    with pytest.raises(InconsistentCheckpointError, match="behind the last signed size"):
        signer.sign(tree, prove=lambda a, b: [])

    with write_session(engine) as s:
        done = append_exported(
            session=s,
            ledger_id=lid,
            entries=export[7:],  # 8..14: the first three are already there
            signed=load_signed_state(signer.key_file)[ORIGIN],
        )
    assert (done.appended, done.already_present, done.size) == (4, 3, 14)
    assert _bodies(engine, lid, 1, 14) == export
    report = _report(engine, signer, lid)  # derived rows replayed and compared, checkpoints too
    assert report.ok, report.problems
    with read_session(engine) as s:
        codes = s.execute(text("SELECT code FROM customers WHERE enterprise_id = :l"), {"l": lid})
        assert {"C11", "C12", "C13", "C14"} <= set(codes.scalars())
    assert _sign(engine, clock, lid, signer) == 14  # the signer accepts the ledger again
    add(engine, clock, lid, "customer", customer(code="C15"))
    assert _sign(engine, clock, lid, signer) == 15  # and its growth
    assert _report(engine, signer, lid).ok
    # Running the recovery again changes nothing.
    with write_session(engine) as s:
        again = append_exported(session=s, ledger_id=lid, entries=export)
    assert (again.appended, again.already_present, again.size) == (0, 14, 15)


def _respaced(data: bytes) -> bytes:
    return json.dumps(json.loads(data), indent=1).encode()


def _renamed(data: bytes) -> bytes:
    env = json.loads(data)
    env["body"]["name"] = "另一家经销商"
    return canonical_bytes(env)


def _other_log(data: bytes) -> bytes:
    env = json.loads(data)
    env["log"] = f"{PLATFORM}/ledger/91370404MA3793PC3E"
    return canonical_bytes(env)


REFUSED = [
    ("gap", lambda ex: ex[11:], "does not follow the ledger's last entry 10"),  # 12.. not 11
    ("not canonical", lambda ex: [_respaced(ex[10]), *ex[11:]], "not in its RFC 8785 canonical"),
    ("altered", lambda ex: [_renamed(ex[10]), *ex[11:]], "entry 12: prev_hash"),  # 11 altered
    ("altered last", lambda ex: ex[10:13] + [_renamed(ex[13])], "not the entries that were signed"),
    ("other ledger", lambda ex: [_other_log(ex[10])], "not of 'trace.example.cn/ledger/9137"),
    ("out of order", lambda ex: [ex[1], ex[0]], "entry 1: the export is not in seq order"),
]


def test_an_export_that_does_not_fit_is_refused_and_nothing_written(
    engine, signer, lost_tail
) -> None:
    lid, export = lost_tail
    for case, make, match in REFUSED:
        with pytest.raises(RestoreError, match=match), write_session(engine) as s:
            append_exported(
                session=s,
                ledger_id=lid,
                entries=make(export),
                signed=load_signed_state(signer.key_file)[ORIGIN],
            )
        assert _size(engine, lid) == 10, case
        assert _bodies(engine, lid, 1, 14) == export[:10], case


def test_a_ledger_that_went_on_after_the_restore_is_not_papered_over(
    engine, clock, signer, lost_tail
) -> None:
    lid, export = lost_tail
    add(engine, clock, lid, "customer", customer(code="NEW11"))  # a fork at 11
    with pytest.raises(RestoreError, match="entry 11: the ledger holds another entry"):
        with write_session(engine) as s:
            append_exported(session=s, ledger_id=lid, entries=export[10:])
    assert _size(engine, lid) == 11
    report = _report(engine, signer, lid)
    assert [(p.seq, p.check) for p in report.problems] == [(12, "signer")]
