"""The PostgreSQL pool: idle connections are pinged on checkout, busy ones are not;
single reads run in autocommit and leave the pooled connection transactional."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from foodtrace import db


@pytest.fixture
def pg(engine: Engine) -> Engine:
    """The engine of a test marked ``db("postgresql")``: the pool's ping and autocommit reads
    are PostgreSQL's."""
    assert engine.dialect.name == "postgresql"
    return engine


def _pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def _terminate(engine: Engine, pid: int) -> None:
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def _count_pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    pings = [0]
    real = engine.dialect.do_ping

    def counted(dbapi_connection):  # type: ignore[no-untyped-def]
        pings[0] += 1
        return real(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return pings


@pytest.mark.db("postgresql")
def test_a_connection_idle_past_the_window_is_pinged_and_replaced_when_dead(
    pg: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pings = _count_pings(pg, monkeypatch)
    pid = _pid(pg)
    _terminate(pg, pid)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)  # every checkout is "idle"
    assert _pid(pg) != pid  # the dead connection was noticed and replaced, no error
    assert pings[0] >= 1


@pytest.mark.db("postgresql")
def test_a_connection_used_a_moment_ago_is_not_pinged(
    pg: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 3600.0)
    _pid(pg)
    pings = _count_pings(pg, monkeypatch)
    for _ in range(5):
        _pid(pg)
    assert pings[0] == 0
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)
    _pid(pg)
    assert pings[0] == 1


@pytest.mark.db("postgresql")
def test_a_single_read_runs_in_autocommit_and_the_pool_gets_a_transactional_connection(
    pg: Engine,
) -> None:
    single = db.single_read_engine(pg)
    assert db.single_read_engine(pg) is single  # made once per engine
    with Session(single) as session:
        assert session.execute(text("SELECT 1")).scalar_one() == 1
        raw = session.connection().connection.dbapi_connection
        assert raw is not None
        assert raw.autocommit
        status = raw.pgconn.transaction_status
        assert status == psycopg.pq.TransactionStatus.IDLE  # no BEGIN was sent
    with db.write_session(pg) as session:
        raw = session.connection().connection.dbapi_connection
        assert raw is not None
        assert not raw.autocommit
        session.execute(text("SELECT 1"))
        assert raw.pgconn.transaction_status == psycopg.pq.TransactionStatus.INTRANS


@pytest.mark.db("sqlite")
def test_single_read_engine_is_the_engine_itself_on_sqlite(engine: Engine) -> None:
    assert db.single_read_engine(engine) is engine
