"""Many rows into one table in one statement: ``COPY … FROM STDIN`` on PostgreSQL.

A batch (an import, a district's generated day) writes thousands of entries and
derived rows at once. ``executemany`` of an INSERT is one statement per row
even when pipelined, and psycopg spends most of its time per row binding and
sending parameters; ``COPY`` streams the rows as one statement, which the
server also parses and inserts faster. Everything else about the write is the
same: the same transaction, the same constraints, the same triggers (COPY fires
INSERT triggers and checks foreign keys), so a row COPY refuses fails the
transaction exactly as the INSERT would.

Small batches (a single record through the API) and SQLite keep the INSERT:
COPY costs one more round trip than a single INSERT.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.exc import DBAPIError

COPY_FROM_ROWS = 16
"""From this many rows on, PostgreSQL gets a COPY instead of an executemany."""


_BINARY_TYPES = {
    "Integer": "int4",
    "BigInteger": "int8",
    "AutoString": "varchar",
    "String": "varchar",
    "Text": "text",
    "Boolean": "bool",
    "LargeBinary": "bytea",
}
"""PostgreSQL's binary COPY needs each column's type: these SQLAlchemy types' (a table with
any other column is copied as text)."""


def _one(names: list[str]) -> Callable[[Mapping[str, Any]], tuple[Any]]:
    # Typed, not Any: beside ``itemgetter(*names)`` in a conditional, an Any return crashes
    # mypy (2.4: "Invalid type replacement to expand" in its PEP 646 *args expansion).
    (name,) = names
    return lambda r: (r[name],)


def _known(table: Table, names: Any) -> None:
    unknown = names - table.columns.keys()
    if unknown:  # an INSERT would silently drop them
        raise ValueError(f"{table.name} has no column {', '.join(sorted(unknown))}")


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts naming columns of ``table``) into ``table``."""
    if not rows:
        return
    names = rows[0].keys()
    _known(table, names)
    if any(r.keys() != names for r in rows):
        # An executemany takes the first row's columns for all: the others one by one.
        for r in rows:
            _known(table, r.keys())
        for r in rows:
            conn.execute(table.insert(), r)
        return
    if len(rows) == 1:  # one record through the API: a plain INSERT, no executemany set-up
        conn.execute(table.insert(), rows[0])
        return
    if conn.dialect.name != "postgresql" or len(rows) < COPY_FROM_ROWS:
        conn.execute(table.insert(), list(rows))
        return
    columns = [c for c in table.columns if c.name in names]
    types = [_BINARY_TYPES.get(type(c.type).__name__) for c in columns]
    quote = conn.dialect.identifier_preparer.quote
    binary = None not in types  # binary COPY sends bytea as it is, not as hex text
    sql = f"COPY {quote(table.name)} ({', '.join(quote(c.name) for c in columns)}) FROM STDIN" + (
        " (FORMAT BINARY)" if binary else ""
    )
    names_in_order = [c.name for c in columns]
    raw = conn.connection.driver_connection
    assert raw is not None
    dbapi_error = conn.dialect.loaded_dbapi.Error
    try:
        with raw.cursor() as cursor, cursor.copy(sql) as copy:
            if binary:
                copy.set_types(types)
            write = copy.write_row
            values = (
                itemgetter(*names_in_order) if len(names_in_order) > 1 else _one(names_in_order)
            )
            for r in rows:
                write(values(r))
    except dbapi_error as exc:
        # As SQLAlchemy raises it for an INSERT: IntegrityError for a duplicate key, etc.
        raise DBAPIError.instance(sql, None, exc, dbapi_error, dialect=conn.dialect) from exc


_gc_lock = threading.Lock()
_gc_depth = 0
_gc_was_enabled = False


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a bulk write builds its rows.

    An import holds every row it builds until it writes them (hundreds of thousands
    of dicts and tuples for 10,000 records), and each of them triggers the collector's
    generations in turn; the oldest generation's passes walk every object the process
    holds. Measured on a 10,000-reading import: two full passes and fourteen middle
    ones, a quarter of a second in all, about a fifth of the import. Reference counting
    still frees everything that is not a cycle; the collector runs again when the last
    paused block (of any thread) ends, if it was enabled when the first began.
    """
    global _gc_depth, _gc_was_enabled
    with _gc_lock:
        if _gc_depth == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_depth += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_depth -= 1
            if _gc_depth == 0 and _gc_was_enabled:
                gc.enable()


__all__ = ["COPY_FROM_ROWS", "insert_rows", "no_cycle_collection"]
