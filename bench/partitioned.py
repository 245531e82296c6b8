"""``python -m bench.partitioned``: the schema hash-partitioned by ledger, against the plain one.

docs/scaling.md plans the country on Citus, every enterprise-owned table
distributed by its ledger. On one machine the same co-location is PostgreSQL's
declarative HASH partitioning by the same key: this builds that copy of the
schema beside the real one (schema ``part`` of the same database), copies the
rows in with ``INSERT … SELECT``, and runs the benchmark's queries — the
project's own ``lot_trail`` and ``district_completeness``, and one
enterprise's completeness — against both, printing the figures side by side.

    createdb -h 127.0.0.1 -U postgres bench_part
    TRACE_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench_part \\
        .venv/bin/python -m bench.partitioned --scale medium --partitions 16

The data comes from the district benchmark's generator (bench/district.py), run
once into the database (``--reuse`` measures what an earlier run left there).

Which tables are partitioned is read from the SQLModel metadata, not listed:
a table with a non-null ``enterprise_id`` or ``ledger_id`` column belongs to
one ledger (an enterprise's or an authority's) and is partitioned by it, as is
``ledgers`` by its ``id``; every other table (the enterprise registry,
authorities, users, tokens, the platform row) stays whole, as a Citus
reference table would. PostgreSQL, like Citus, wants every primary key and
unique index to hold the partition key: primary keys get it in front, and a
unique index without it becomes a plain index here (``ledgers.origin`` and
``ledgers.credit_code``; in Citus those two stay unique through the
``enterprises`` reference table). Foreign keys are left out of the copy: they
change nothing a read does.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, Table, event, text

OWNER_COLUMNS = ("enterprise_id", "ledger_id")
SCHEMA = "part"


def partition_key(table: Table) -> str | None:
    """The column a table is distributed (here: hash-partitioned) by; None for a reference table."""
    if table.name == "ledgers":
        return "id"  # the head row, locked by every append: with the ledger's entries
    for name in OWNER_COLUMNS:
        if name in table.c and not table.c[name].nullable:
            return name
    return None


def tables() -> list[Table]:
    from sqlmodel import SQLModel

    import foodtrace.models  # noqa: F401  (every table registered)

    return list(SQLModel.metadata.sorted_tables)


def build(engine: Engine, *, partitions: int, schema: str = SCHEMA) -> dict[str, str | None]:
    """(Re)create ``schema`` holding every table, partitioned by :func:`partition_key`, and copy
    the rows of the public schema into it; {table: key}."""
    keys: dict[str, str | None] = {}
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        for table in tables():
            name, key = table.name, partition_key(table)
            keys[name] = key
            q = f'"{schema}"."{name}"'
            if key is None:
                conn.execute(text(f"CREATE TABLE {q} (LIKE public.{name} INCLUDING ALL)"))
            else:
                conn.execute(
                    text(
                        f"CREATE TABLE {q} (LIKE public.{name} INCLUDING DEFAULTS) "
                        f"PARTITION BY HASH ({key})"
                    )
                )
                for r in range(partitions):
                    conn.execute(
                        text(
                            f'CREATE TABLE "{schema}"."{name}_p{r:02d}" PARTITION OF {q} '
                            f"FOR VALUES WITH (MODULUS {partitions}, REMAINDER {r})"
                        )
                    )
                pk = [c.name for c in table.primary_key.columns]
                cols = [key, *(c for c in pk if c != key)]
                conn.execute(text(f"ALTER TABLE {q} ADD PRIMARY KEY ({', '.join(cols)})"))
                for idx_name, unique, idx_cols in _indexes(conn, name):
                    if unique and key not in idx_cols:
                        unique = False  # see the module's docstring
                    conn.execute(
                        text(
                            f'CREATE {"UNIQUE " if unique else ""}INDEX "{idx_name}" ON {q} '
                            f"({', '.join(idx_cols)})"
                        )
                    )
            conn.execute(text(f"INSERT INTO {q} SELECT * FROM public.{name}"))
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        for name in keys:  # both schemas, so that neither is planned on stale statistics
            conn.execute(text(f'ANALYZE "{schema}"."{name}"'))
            conn.execute(text(f'ANALYZE public."{name}"'))
    return keys


def _indexes(conn: Any, table: str) -> list[tuple[str, bool, list[str]]]:
    """The public table's indexes other than its primary key: (name, unique, columns)."""
    rows = conn.execute(
        text(
            "SELECT i.relname, x.indisunique, "
            "array(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY k(n, o) "
            "      JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n "
            "      ORDER BY k.o) "
            "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace s ON s.oid = t.relnamespace "
            "WHERE s.nspname = 'public' AND t.relname = :t AND NOT x.indisprimary "
            "ORDER BY i.relname"
        ),
        {"t": table},
    )
    return [(f"{SCHEMA}_{n}", bool(u), list(c)) for n, u, c in rows]


def schema_engine(url: str, schema: str = SCHEMA) -> Engine:
    """An engine whose sessions see ``schema`` (the partitioned copy) instead of public."""
    from foodtrace.db import make_engine

    engine = make_engine(url, pool_size=2)

    @event.listens_for(engine, "connect")
    def _search_path(dbapi_connection: Any, _record: Any) -> None:
        cur = dbapi_connection.cursor()
        cur.execute(f'SET search_path TO "{schema}"')
        cur.close()
        dbapi_connection.commit()

    return engine


def scanned_partitions(conn: Any, sql: str, params: Any = None) -> list[str]:
    """The relations an EXPLAIN of ``sql`` (plain SQL, %s parameters) says it scans."""
    import json

    plan = conn.execute("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()[0]
    plan = plan if isinstance(plan, list) else json.loads(plan)
    found: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        if "Relation Name" in node:
            found.append(node["Relation Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return found


# ---------------------------------------------------------------- measurement


def statements_of(engine: Engine, fn: Callable[[], Any]) -> list[tuple[str, Any]]:
    """The SELECTs ``fn`` sends through ``engine`` (each distinct statement and parameters once)."""
    seen: dict[tuple[str, str], tuple[str, Any]] = {}

    def capture(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, many: bool) -> None:
        if not many and statement.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.setdefault((statement, repr(params)), (statement, params))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        fn()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    return list(seen.values())


def timings(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e3)
    return out


def p95(values: list[float]) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))]


def say(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    from sqlalchemy import select

    from bench.district import CODE_CHARS, SCALES, YEAR, District
    from foodtrace.accounts.models import Enterprise
    from foodtrace.completeness import district_completeness
    from foodtrace.db import make_engine, migrate, read_session
    from foodtrace.trail import lot_trail

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="medium")
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--samples", type=int, default=30, help="trail latencies per schema")
    parser.add_argument("--repeat", type=int, default=5, help="completeness runs per schema")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--reuse", action="store_true", help="measure the data an earlier run generated"
    )
    args = parser.parse_args(argv)
    url = os.environ.get("TRACE_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        sys.exit("set TRACE_DATABASE_URL to a PostgreSQL database (postgresql+psycopg://…)")
    sc = SCALES[args.scale]
    plain = make_engine(url)
    migrate(plain)
    t = time.perf_counter()
    if args.reuse:
        with read_session(plain) as s:
            ids = list(s.execute(select(Enterprise.id).order_by(Enterprise.id)).scalars())
        if len(ids) < 4:
            sys.exit("--reuse: no benchmark data in this database")
        say(f"reusing {len(ids)} enterprises")
    else:
        run = "".join(random.choice(CODE_CHARS) for _ in range(5))
        dist = District(plain, sc, run)
        entries = dist.generate(args.jobs)
        ids = dist.ids
        took = time.perf_counter() - t
        say(f"generated {len(ids)} enterprises, {entries} entries in {took:.0f} s")
    t = time.perf_counter()
    keys = build(plain, partitions=args.partitions)
    with plain.connect() as c:
        entries_total = c.execute(text("SELECT count(*) FROM public.entries")).scalar_one()
    say(
        f"partitioned copy ({args.partitions} hash partitions, "
        f"{sum(k is not None for k in keys.values())} of {len(keys)} tables) "
        f"built and filled in {time.perf_counter() - t:.0f} s; {entries_total} entries"
    )
    part = schema_engine(url)

    mid = ids[3]
    days = min(30, sc.days)
    lots = [f"L{d:03d}" for d in range(sc.days)]
    since, until = YEAR, YEAR + timedelta(days=days)
    rows: list[tuple[str, list[float], list[float]]] = []

    def trail_on(engine: Engine) -> Callable[[], Any]:
        counter = iter(range(10**9))

        def go() -> Any:
            with read_session(engine) as s:
                lot = lots[next(counter) % len(lots)]
                return lot_trail(session=s, enterprise_id=mid, lot_code=lot, depth=6)

        return go

    def district_on(engine: Engine, which: list[int]) -> Callable[[], Any]:
        def go() -> Any:
            with read_session(engine) as s:
                return district_completeness(
                    session=s, enterprise_ids=which, since=since, until=until
                )

        return go

    # same answers first: the copy is the same data
    a, b = trail_on(plain)(), trail_on(part)()
    assert len(a.nodes) == len(b.nodes), (len(a.nodes), len(b.nodes))
    for name, make, n in (
        ("lot trail, both ways, 6 levels (cross-enterprise)", trail_on, args.samples),
        (
            f"district completeness, {days} days, {len(ids)} enterprises",
            lambda e: district_on(e, ids),
            args.repeat,
        ),
        (
            f"one enterprise's completeness, {days} days",
            lambda e: district_on(e, [mid]),
            args.repeat,
        ),
    ):
        f_plain, f_part = make(plain), make(part)
        f_plain(), f_part()  # warm both caches
        tp, tq = [], []
        for _ in range(n):  # interleaved, so that load from elsewhere hits both alike
            tp += timings(f_plain, 1)
            tq += timings(f_part, 1)
        rows.append((name, tp, tq))

    # Which of the statements each query issues stay in one partition (one Citus shard)?
    spread = {
        "lot trail": statements_of(part, trail_on(part)),
        "district completeness": statements_of(part, district_on(part, ids)),
        "one enterprise's completeness": statements_of(part, district_on(part, [mid])),
    }
    with part.connect() as c:
        raw = c.connection.driver_connection
        fan_out: dict[str, list[int]] = {}
        for name, stmts in spread.items():
            widths = []
            for statement, params in stmts:
                rels = scanned_partitions(raw, statement, params)
                per_table: dict[str, set[str]] = {}
                for rel in rels:
                    table, _, suffix = rel.rpartition("_p")
                    if keys.get(table):
                        per_table.setdefault(table, set()).add(suffix)
                widths.append(max((len(v) for v in per_table.values()), default=0))
            fan_out[name] = widths
        raw.rollback()
    with plain.connect() as c:
        raw = c.connection.driver_connection
        one = scanned_partitions(
            raw,
            f"SELECT * FROM {SCHEMA}.lots WHERE enterprise_id = %s AND code = %s",
            (mid, "L001"),
        )
        fan = scanned_partitions(raw, f"SELECT * FROM {SCHEMA}.lots WHERE code = %s", ("L001",))
    say("")
    say("| query | plain p50 / p95 (ms) | partitioned p50 / p95 (ms) | ratio p50 |")
    say("|---|---|---|---|")
    for name, tp, tq in rows:
        mp, mq = statistics.median(tp), statistics.median(tq)
        say(f"| {name} | {mp:.1f} / {p95(tp):.1f} | {mq:.1f} / {p95(tq):.1f} | {mq / mp:.2f} |")
    say("")
    say("")
    n = args.partitions
    say(f"statements per query, by the most partitions of one table they scan (of {n}):")
    for name, widths in fan_out.items():
        hist = {w: widths.count(w) for w in sorted(set(widths))}
        shown = ", ".join(f"{n} scan {w}" for w, n in hist.items())
        say(f"  {name}: {len(widths)} statements; {shown}")
    say(f"EXPLAIN, lots of one enterprise by code: scans {sorted(set(one))}")
    say(f"EXPLAIN, lots by code alone (no ledger key): scans {len(set(fan))} partitions")
    plain.dispose()
    part.dispose()


if __name__ == "__main__":
    main()
