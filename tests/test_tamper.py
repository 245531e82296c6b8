"""Tampering behind the application's back, with raw SQL: verification names the entry.

Each case edits the database directly (as someone with database access
would), then ``verify_ledger`` must fail and name the first bad entry and the
check that fired. The exhaustive tests change every stored entry and every
derived value one at a time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text
from sqlmodel import Session

from conftest import data_fixture
from foodtrace.canonical import canonical_bytes, leaf_hash
from foodtrace.records.projection import TABLES, owner_column, primary_key
from foodtrace.verify import Report, verify_ledger

from factories import add, beverage_ledger, sale


@contextmanager
def tampered(engine: Engine) -> Iterator[Connection]:
    """A connection whose changes are rolled back after the check."""
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            yield conn
        finally:
            trans.rollback()


def check(conn: Connection, lid: int) -> Report:
    with Session(bind=conn) as session:
        return verify_ledger(session=session, ledger_id=lid)


def body(conn: Connection, lid: int, seq: int) -> bytes:
    return bytes(
        conn.execute(
            text("SELECT body FROM entries WHERE ledger_id=:l AND seq=:s"), {"l": lid, "s": seq}
        ).scalar_one()
    )


def set_entry(conn: Connection, lid: int, seq: int, **cols: Any) -> None:
    sets = ", ".join(f"{c} = :{c}" for c in cols)
    conn.execute(
        text(f"UPDATE entries SET {sets} WHERE ledger_id = :l AND seq = :s"),
        {**cols, "l": lid, "s": seq},
    )


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


@data_fixture
def ledger(engine, clock) -> int:
    lid = beverage_ledger(engine, clock)  # seq 1..10, the release test's declaration at 9
    add(
        engine,
        clock,
        lid,
        "correction",
        {"corrects": 10, "reason": "实际 120 箱", "record": sale(quantity="120")},
    )  # seq 11
    add(engine, clock, lid, "sale", sale(quantity="10"))  # seq 12
    return lid


def _edit_body(conn, lid):
    set_entry(conn, lid, 6, body=body(conn, lid, 6).replace(b'"300"', b'"30"'))


def _edit_derived(conn, lid):
    conn.execute(
        text("UPDATE sales SET quantity = '12' WHERE enterprise_id = :l AND record_seq = 10"),
        {"l": lid},
    )


def _edit_hash(conn, lid):
    set_entry(conn, lid, 4, hash=bytes(32))


def _swap_hashes(conn, lid):
    h3 = conn.execute(
        text("SELECT hash FROM entries WHERE ledger_id=:l AND seq=3"), {"l": lid}
    ).scalar_one()
    h5 = conn.execute(
        text("SELECT hash FROM entries WHERE ledger_id=:l AND seq=5"), {"l": lid}
    ).scalar_one()
    set_entry(conn, lid, 3, hash=bytes(h5))
    set_entry(conn, lid, 5, hash=bytes(h3))


def _edit_prev_hash(conn, lid):
    set_entry(conn, lid, 7, prev_hash=bytes(32))


def _delete_middle(conn, lid):
    conn.execute(text("DELETE FROM entries WHERE ledger_id = :l AND seq = 5"), {"l": lid})


def _insert_forged(conn, lid, env, seq):
    """Insert ``env`` as entry ``seq``, linked to entry seq - 1 and hashed as the ledger would."""
    prev = leaf_hash(body(conn, lid, seq - 1))
    forged = {**env, "seq": seq, "prev_hash": prev.hex()}
    data = canonical_bytes(forged)
    conn.execute(
        text(
            "INSERT INTO entries (ledger_id, seq, kind, event_time, recorded_at, prev_hash, "
            "hash, body) VALUES (:l, :s, :k, :e, :r, :p, :h, :b)"
        ),
        {
            "l": lid,
            "s": seq,
            "k": forged["kind"],
            "e": forged["event_time"],
            "r": forged["recorded_at"],
            "p": prev,
            "h": leaf_hash(data),
            "b": data,
        },
    )


def _insert_forged_at_end(conn, lid):
    # A well-formed entry 13 with a correct prev_hash and recomputed hash, but the head row
    # (size 12) was not moved: an insertion.
    _insert_forged(conn, lid, json.loads(body(conn, lid, 12)), 13)


def _insert_forged_in_middle(conn, lid):
    # Make room at seq 6 by renumbering 6..12 to 7..13, then insert a forged entry 6.
    for seq in range(12, 5, -1):
        conn.execute(
            text("UPDATE entries SET seq = :n WHERE ledger_id = :l AND seq = :s"),
            {"n": seq + 1, "l": lid, "s": seq},
        )
    env = json.loads(body(conn, lid, 3))  # a customer record, given a new code
    env["body"] = {**env["body"], "code": "FORGED"}
    _insert_forged(conn, lid, env, 6)
    conn.execute(text("UPDATE ledgers SET size = 13 WHERE id = :l"), {"l": lid})


def _non_canonical_bytes(conn, lid):
    # Same content, re-serialised with spaces and its hash recomputed: not the stored form.
    env = json.loads(body(conn, lid, 8))
    data = json.dumps(env, ensure_ascii=False, indent=1).encode("utf-8")
    set_entry(conn, lid, 8, body=data, hash=leaf_hash(data))


def _reorder_seq(conn, lid):
    for old, new in ((4, -4), (8, 4), (-4, 8)):
        conn.execute(
            text("UPDATE entries SET seq = :n WHERE ledger_id = :l AND seq = :s"),
            {"n": new, "l": lid, "s": old},
        )


def _truncate(conn, lid):
    conn.execute(text("DELETE FROM entries WHERE ledger_id = :l AND seq > 10"), {"l": lid})
    conn.execute(
        text(
            "UPDATE ledgers SET size = 10, head_hash = (SELECT hash FROM entries "
            "WHERE ledger_id = :l AND seq = 10) WHERE id = :l"
        ),
        {"l": lid},
    )


CASES: list[tuple[str, Callable[[Connection, int], None], int, str]] = [
    ("edited body byte", _edit_body, 6, "hash"),
    ("edited derived column", _edit_derived, 11, "derived"),
    ("edited hash", _edit_hash, 4, "hash"),
    ("swapped hashes", _swap_hashes, 3, "hash"),
    ("edited prev_hash column", _edit_prev_hash, 7, "prev_hash"),
    ("deleted middle row", _delete_middle, 5, "seq"),
    ("inserted row at the end", _insert_forged_at_end, 13, "head"),
    # the forged entry itself chains correctly; it has no derived row behind it
    ("inserted row in the middle", _insert_forged_in_middle, 6, "derived"),
    ("reordered seq", _reorder_seq, 4, "seq"),
    ("non-canonical bytes, rehashed", _non_canonical_bytes, 8, "canonical"),
    # the sale's current view came from the removed correction 11
    ("truncated, head moved back", _truncate, 10, "derived"),
]


@pytest.mark.parametrize(
    ("name", "tamper", "first_seq", "check_name"), CASES, ids=[c[0] for c in CASES]
)
def test_tampering_is_detected_and_named(
    engine, ledger, name, tamper, first_seq, check_name
) -> None:
    with tampered(engine) as conn:
        assert check(conn, ledger).ok
        tamper(conn, ledger)
        report = check(conn, ledger)
    assert not report.ok, name
    assert report.first.seq == first_seq, report.problems
    assert report.first.check == check_name, report.problems
    if tamper is _truncate:
        assert any(p.check == "truncation" and p.seq == 11 for p in report.problems)


def test_every_entry_with_any_flipped_byte_is_named(engine, ledger) -> None:
    with tampered(engine) as conn:
        entries = {s: body(conn, ledger, s) for s in range(1, 13)}
    for seq, data in entries.items():
        for at in (0, len(data) // 2, len(data) - 1):
            with tampered(engine) as conn:
                set_entry(conn, ledger, seq, body=flip(data, at))
                report = check(conn, ledger)
            assert report.first.seq == seq, (seq, at, report.problems[:3])


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1000
    if isinstance(value, str):
        return value[:-1] + ("X" if value[-1:] != "X" else "Y") if value else "X"
    raise TypeError(type(value))


def test_every_derived_value_changed_is_named(engine, ledger) -> None:
    with tampered(engine) as conn:
        rows = {
            name: [
                dict(r._mapping)
                for r in conn.execute(t.select().where(t.c[owner_column(name)] == ledger))
            ]
            for name, t in TABLES.items()
        }
    checked = 0
    for name, table_rows in rows.items():
        pk = primary_key(name)
        for row in table_rows:
            for col, value in row.items():
                if value is None or col in (owner_column(name),):
                    continue
                where = " AND ".join(f"{k} = :pk_{k}" for k in pk)
                with tampered(engine) as conn:
                    conn.execute(
                        text(f"UPDATE {name} SET {col} = :v WHERE {where}"),
                        {"v": _changed(value), **{f"pk_{k}": row[k] for k in pk}},
                    )
                    report = check(conn, ledger)
                assert not report.ok, (name, col)
                assert report.first.seq == row["current_seq"], (name, col, report.problems)
                checked += 1
    assert checked > 80


# What a regulator's witness sees of each case: (its consistency check alone, with --audit).
# The consistency check compares the Merkle log, which the server builds from the stored
# leaf hashes, with the checkpoint it saw before the tampering. The audit also fetches
# every entry's tlog-proof and hashes the bytes served: an edited body no longer proves.
# What is left invisible to both is outside the signed log: a derived column (an index
# of the bytes), the prev_hash column (a copy of what the body says), a row beyond the
# head (never served). `verify` rehashes the bytes and replays the rows, and names those.
WITNESS_SEES = {
    "edited body byte": (False, True),
    "edited derived column": (False, False),
    "edited hash": (True, True),
    "swapped hashes": (True, True),
    "edited prev_hash column": (False, False),
    "deleted middle row": (True, True),
    "inserted row at the end": (False, False),
    "inserted row in the middle": (True, True),
    "reordered seq": (True, True),
    "non-canonical bytes, rehashed": (True, True),
    "truncated, head moved back": (True, True),
}


@pytest.mark.parametrize("audit", [False, True], ids=["consistency", "audit"])
@pytest.mark.parametrize(("name", "tamper"), [c[:2] for c in CASES], ids=[c[0] for c in CASES])
def test_what_the_witness_sees_of_each_tampering(
    client, engine, clock, ledger, name, tamper, audit
) -> None:
    import contextlib
    from datetime import timedelta

    from foodtrace.tlog.note import Verifier
    from foodtrace.tlog.witness import witness

    from factories import BEVERAGE, self_inspection, user

    keys = [Verifier.from_vkey(client.app.state.signer.verifier.vkey)]
    state: dict[str, str] = {}
    if audit:  # the entries are private: the auditor signs in as the enterprise's user
        user(engine, clock, "auditor", "auditor pass 2026", enterprise=BEVERAGE)
        r = client.post(
            "/api/v1/auth/token", data={"username": "auditor", "password": "auditor pass 2026"}
        )
        client.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

    def run() -> Any:
        found = witness(
            client=client, verifiers=keys, state=state, platform="trace.example.cn",
            ledgers=[BEVERAGE], audit=1000 if audit else None,
        )  # fmt: skip
        return found[0]

    first = run()
    assert first.ok, first.message  # first seen, signed at size 12
    if audit:
        assert first.message.endswith("12 entries audited")
    with engine.begin() as conn:  # committed, behind the app's back
        tamper(conn, ledger)
    # The server keeps serving the checkpoint it signed: the witness learns of a rewrite
    # when the ledger grows and the server must prove the new tree extends the old one.
    with contextlib.suppress(Exception):  # a tampered head may refuse the append
        add(engine, clock, ledger, "self_inspection", self_inspection(period_date="2026-03-02"))
    clock.advance(timedelta(seconds=2))
    seen = run()
    assert (not seen.ok) is WITNESS_SEES[name][audit], (name, seen.message)
    if not seen.ok:
        assert BEVERAGE in seen.credit_code
        assert "12" in seen.message  # the size it saw before
    if audit and name == "edited body byte":
        assert "the entry was altered" in seen.message
    elif audit and seen.ok:
        assert seen.message.endswith(f"{seen.size} entries audited"), seen.message
    with Session(engine) as session:
        assert not verify_ledger(session=session, ledger_id=ledger).ok  # verify names it anyway
