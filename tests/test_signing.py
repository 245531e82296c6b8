"""The platform's signing key in the app: made once, never remade; checkpoints kept current."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from foodtrace.config import Settings
from foodtrace.db import read_session, write_session
from foodtrace.ledger.checkpoints import MissingKeyError, grown_ledgers, open_signer
from foodtrace.ledger.models import SignedCheckpoint
from webapp.checkpointer import sign_grown

import factories as f


def _signed(engine) -> int:
    with read_session(engine) as s:
        return s.execute(select(func.count()).select_from(SignedCheckpoint)).scalar_one()


def test_the_first_start_makes_the_key_and_a_later_one_without_it_refuses(
    engine, clock, tmp_path: Path
) -> None:
    key = tmp_path / "k" / "platform.key"
    key.parent.mkdir()
    f.beverage_ledger(engine, clock)
    with read_session(engine) as s:
        signer = open_signer(session=s, key_file=str(key))
    assert key.stat().st_mode & 0o777 == 0o600
    assert sign_grown(engine, signer, clock) == 1
    with read_session(engine) as s:
        assert grown_ledgers(session=s) == []
    key.unlink()
    with read_session(engine) as s, pytest.raises(MissingKeyError, match="restore the key"):
        open_signer(session=s, key_file=str(key))
    assert not key.exists()  # no new key was made


def test_the_app_keeps_checkpoints_current_while_ledgers_grow(
    db_url, engine, clock, monkeypatch
) -> None:
    from fastapi.testclient import TestClient

    from webapp.main import create_app

    monkeypatch.setenv("TRACE_CHECKPOINT_INTERVAL_S", "0.05")
    lid = f.beverage_ledger(engine, clock)
    app = create_app(Settings(database_url=db_url), clock=clock, engine=engine)
    with TestClient(app):
        deadline = time.monotonic() + 20
        while _signed(engine) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        with read_session(engine) as s:
            sizes = (
                s.execute(select(SignedCheckpoint.size).where(SignedCheckpoint.ledger_id == lid))
                .scalars()
                .all()
            )
        assert sizes == [10]
        f.add(engine, clock, lid, "customer", f.customer(code="C2", name="第二客户"))
        clock.advance(timedelta(seconds=2))  # more than a second after the first checkpoint
        deadline = time.monotonic() + 20
        while _signed(engine) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    with write_session(engine) as s:
        sizes = (
            s.execute(
                select(SignedCheckpoint.size)
                .where(SignedCheckpoint.ledger_id == lid)
                .order_by(SignedCheckpoint.size)
            )
            .scalars()
            .all()
        )
    assert sizes == [10, 11]


def test_an_app_start_without_the_key_of_a_signed_database_fails(
    db_url, engine, clock, tmp_path, monkeypatch
) -> None:
    from fastapi.testclient import TestClient

    from webapp.main import create_app

    f.beverage_ledger(engine, clock)
    key = tmp_path / "signing.key"
    with read_session(engine) as s:
        signer = open_signer(session=s, key_file=str(key))
    sign_grown(engine, signer, clock)
    key.unlink()
    app = create_app(Settings(database_url=db_url), clock=clock, engine=engine)
    with pytest.raises(MissingKeyError), TestClient(app):
        pass


@pytest.mark.db("postgresql")
def test_a_checkpoint_is_signed_while_an_append_holds_the_head(engine, clock, tmp_path) -> None:
    """Signing reads the head and never waits for an append in flight (its lock is its own)."""
    import threading

    from foodtrace.ledger.checkpoints import checkpoint
    from foodtrace.ledger.service import lock_head

    lid = f.beverage_ledger(engine, clock)
    with read_session(engine) as s:
        signer = open_signer(session=s, key_file=str(tmp_path / "signing.key"))
    holding, release = threading.Event(), threading.Event()

    def append_in_flight() -> None:
        with write_session(engine) as s:
            lock_head(session=s, ledger_id=lid)
            holding.set()
            release.wait(30)

    appender = threading.Thread(target=append_in_flight)
    appender.start()
    try:
        assert holding.wait(10)
        with write_session(engine) as s:
            s.connection().exec_driver_sql("SET LOCAL lock_timeout = '2s'")
            signed = checkpoint(session=s, ledger_id=lid, signer=signer, clock=clock, force=True)
            assert signed.size == 10
    finally:
        release.set()
        appender.join(30)


def test_a_damaged_ledger_does_not_stop_the_round(engine, clock, tmp_path, caplog) -> None:
    """One round signs every grown ledger; one whose entries went missing is named, not signed."""
    from sqlalchemy import delete

    from foodtrace.ledger.models import Entry

    a = f.beverage_ledger(engine, clock)
    b = f.register(engine, clock, f.SUGAR, name="枣庄鲁南糖业有限公司")
    with read_session(engine) as s:
        signer = open_signer(session=s, key_file=str(tmp_path / "signing.key"))
    assert sign_grown(engine, signer, clock) == 2
    for code in ("C2", "C3"):
        f.add(engine, clock, a, "customer", f.customer(code=code, name="客户"))
        f.add(engine, clock, b, "customer", f.customer(code=code, name="客户"))
    with write_session(engine) as s:  # behind the application's back
        s.execute(delete(Entry).where(Entry.ledger_id == a, Entry.seq == 11))
    clock.advance(timedelta(seconds=2))
    assert sign_grown(engine, signer, clock) == 1
    assert f"checkpoint of ledger {a}" in caplog.text
    assert "lacks entries" in caplog.text
    with read_session(engine) as s:
        assert grown_ledgers(session=s) == [a]
        last = s.execute(
            select(func.max(SignedCheckpoint.size)).where(SignedCheckpoint.ledger_id == b)
        ).scalar_one()
    assert last == 3
