"""Engines, sessions and migrations for SQLite (embedded default) and PostgreSQL.

Appends to a ledger are serialised in the append transaction (DESIGN.md):
on PostgreSQL by ``SELECT … FOR NO KEY UPDATE`` on the ledger's head row; on SQLite
by ``BEGIN IMMEDIATE`` in WAL mode with a busy timeout. pysqlite's own
transaction handling is switched off so that we emit ``BEGIN`` ourselves
(SQLAlchemy docs, "Serializable isolation / Savepoints / Transactional DDL").
A session that will append is opened with :func:`write_session`; its
connection begins with ``BEGIN IMMEDIATE`` on SQLite.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import Connection
from sqlmodel import Session

WRITE_OPTION = "foodtrace_write"


class FoodtraceSession(Session):
    """The class of every session foodtrace opens (:func:`write_session`, :func:`read_session`,
    the web layer's session dependencies).

    The ledger's and the projection's session listeners (deferred head moves written
    before a commit, per-transaction caches forgotten at a transaction's end) are
    installed on this class, never on SQLModel's global ``Session``: a session that
    some other code opens on another database is left alone, and one opened here
    carries them whether or not its engine is ours. ``ledger.service.lock_head``
    refuses to append through any other session.
    """


def make_engine(url: str, *, busy_timeout_ms: int = 30_000, pool_size: int = 10) -> Engine:
    """An engine for ``url`` with the pragmas and transaction handling the ledger needs."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000}
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # FULL: an acknowledged record survives a power cut, not only a crash.
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            if conn.get_execution_options().get(WRITE_OPTION):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")

        return engine
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size)
    _ping_idle_connections(engine)
    return engine


PING_AFTER_IDLE_S = 0.5
"""A pooled connection idle for longer than this is pinged when checked out (HikariCP's
``aliveBypassWindowMs`` is the same 500 ms)."""

_LAST_USED = "foodtrace_last_used"


def _ping_idle_connections(engine: Engine) -> None:
    """``pool_pre_ping``, except for a connection checked in less than
    :data:`PING_AFTER_IDLE_S` ago.

    ``pool_pre_ping`` sends a ``SELECT 1`` on every checkout: one more round trip
    for each request's session (an authenticated write checks out two), although
    a connection that served a request a moment ago was alive then. A connection
    that sat idle longer, or that psycopg knows is closed, is pinged (or
    dropped) as before: a failed ping invalidates the pool, and the pool
    replaces the connection and tries again. A connection lost within the
    window fails its statement instead, and SQLAlchemy then invalidates the pool
    (what it does for a connection lost during a request).
    """
    dialect = engine.dialect

    @event.listens_for(engine, "connect")
    def _connected(_dbapi_connection: Any, record: Any) -> None:
        record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if getattr(dbapi_connection, "closed", False):
            raise exc.DisconnectionError("the connection is closed")
        if time.monotonic() - record.info.get(_LAST_USED, 0.0) < PING_AFTER_IDLE_S:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as err:
            # as pool_pre_ping does: the server may have restarted, drop every connection
            raise exc.InvalidatePoolError(f"the ping failed: {err}") from err


def is_write_connection(conn: Connection) -> bool:
    """True when ``conn`` was opened for writing (matters on SQLite only)."""
    return conn.dialect.name != "sqlite" or bool(conn.get_execution_options().get(WRITE_OPTION))


_WRITES: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def write_engine(engine: Engine) -> Engine:
    """``engine`` for write sessions (``BEGIN IMMEDIATE`` on SQLite), made once per engine."""
    found = _WRITES.get(engine)
    if found is None:
        found = _WRITES[engine] = engine.execution_options(**{WRITE_OPTION: True})
    return found


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session for one write transaction: commits on success, rolls back on error."""
    with FoodtraceSession(write_engine(engine)) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


_SINGLE_READS: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def single_read_engine(engine: Engine) -> Engine:
    """``engine`` for a session that sends one SELECT and needs no transaction around it.

    On PostgreSQL its connections are in autocommit: the statement is its own
    transaction, and the round trips of ``BEGIN`` and ``ROLLBACK`` are saved
    (the bearer-token lookup of every API request). A single statement sees one
    snapshot either way. On SQLite, ``engine`` itself.
    """
    if engine.dialect.name != "postgresql":
        return engine
    found = _SINGLE_READS.get(engine)
    if found is None:
        found = _SINGLE_READS[engine] = engine.execution_options(isolation_level="AUTOCOMMIT")
    return found


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A session for reading; rolled back at the end."""
    with FoodtraceSession(engine) as session:
        yield session


def migrations_dir() -> Path:
    return Path(__file__).parent / "migrations"


def migrate(engine: Engine) -> None:
    """Bring the database schema to the newest migration (Alembic ``upgrade head``)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest migration this code ships."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    return ScriptDirectory.from_config(cfg).get_current_head()


def not_ready(engine: Engine) -> str | None:
    """Why the database cannot serve this code (unreachable, not migrated), or None when ready.

    ``/readyz`` answers with it: a load balancer stops sending requests to a
    server whose database is down, or at another schema version than the code
    (a restored older backup, code rolled back past a migration).
    """
    from sqlalchemy.exc import SQLAlchemyError

    try:
        current = current_revision(engine)
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None)  # a DBAPIError's: the driver's own message
        first = str(orig if orig else exc).strip().splitlines()
        return f"database unreachable: {first[0] if first else type(exc).__name__}"
    head = head_revision()
    if current is None:
        return f"database not migrated (code at {head}): run foodtrace migrate"
    if current != head:
        return f"database at migration {current}, code at {head}: run foodtrace migrate"
    return None


def wait_for_database(engine: Engine, *, timeout_s: float, interval_s: float = 1.0) -> None:
    """Return once the database accepts a connection; raise the last error after ``timeout_s``."""
    import time

    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return
        except OperationalError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(interval_s)
