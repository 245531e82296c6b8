"""No query of the enterprise portal touches another enterprise's rows.

docs/scaling.md distributes every enterprise-owned table by its ledger (Citus),
so that everything an enterprise does stays on one shard. This test holds the
portal to it, with a canary: beside enterprise A the database holds a *twin*,
an enterprise with exactly A's records (same product, lot, supplier, customer
codes) in a ledger of its own. Every SQL statement issued while A's admin walks
every portal page and enterprise API route (taken from the app's route table
and the access rules of tests/test_access.py) is captured; then each SELECT
that reads an enterprise-owned table is run twice, on the database as it was
and on a copy from which every other enterprise's rows were deleted. A
statement restricted to A gives the same rows on both; one that reads the twin
(or any other enterprise) gives more on the first. Which tables are
enterprise-owned is read from the metadata (a non-null ``enterprise_id`` or
``ledger_id``, and ``ledgers`` itself: bench.partitioned.partition_key, the
same rule the partitioned schema and the Citus plan use), so a new table is
covered without editing this file.

On PostgreSQL the same statements are also EXPLAINed against the schema
hash-partitioned by ledger (bench/partitioned.py): each must scan only A's
partition of every enterprise-owned table, i.e. stay on A's shard.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.engine import make_url

from bench.partitioned import build as build_partitioned
from bench.partitioned import partition_key, scanned_partitions, tables
from conftest import ACCESS_PASSWORD as PASSWORD
from conftest import _pg_admin
from foodtrace.db import read_session
from foodtrace.ledger.models import Ledger
from test_access import PARAMS, QUERY, RULES, routes
from web.web import SESSION_COOKIE, csrf_token

import factories as f

USER = "ent_a_admin"  # the enterprise's admin reaches every portal route an enterprise has
TWIN = f.MEAT


def owned_tables() -> dict[str, str]:
    """{table: the column naming its ledger} for every table that belongs to one ledger."""
    return {t.name: key for t in tables() if (key := partition_key(t)) is not None}


CURRENT: list[str | None] = [None]  # the enterprise's call under way; None: not captured


def exercise(app: Any, client: TestClient) -> None:
    """A's admin calls every route the access rules give an enterprise, as test_access does."""
    reg = {"Authorization": "Bearer " + token(client, "reg_in")}
    case_id = f.notified_case(client, reg)
    params = {**PARAMS, "case_id": case_id}
    with TestClient(app, follow_redirects=False) as c:
        CURRENT[0] = "sign in"
        bearer = {"Authorization": "Bearer " + token(c, USER)}
        f.page_login(c, USER, PASSWORD)
        csrf = csrf_token(c.cookies[SESSION_COOKIE])
        # a real write through the API, so that an append's statements are captured too
        CURRENT[0] = "POST /api/v1/customers"
        made = c.post("/api/v1/customers", headers=bearer, json=f.customer(code="NEW01"))
        assert made.status_code == 201, made.text
        portal = [
            (m, p)
            for m, p in routes(app)
            if USER in RULES[f"{m} {p}"] and "anon" not in RULES[f"{m} {p}"] and p != "/logout"
        ]
        assert len(portal) > 60, portal  # the route table, not a hand-picked few
        for method, path in portal:
            url = re.sub(r"\{(\w+)\}", lambda m: params[m.group(1)], path) + QUERY.get(path, "")
            kwargs: dict[str, Any] = {}
            if path.startswith("/api/"):
                kwargs["headers"] = bearer
                if method == "POST":
                    kwargs["json"] = {}
            elif method == "POST":
                kwargs["data"] = {"csrf_token": csrf}
            CURRENT[0] = f"{method} {url}"
            got = c.request(method, url, **kwargs)
            assert got.status_code < 500, (method, url, got.status_code)
        CURRENT[0] = None


def token(c: TestClient, user: str) -> str:
    r = c.post("/api/v1/auth/token", data={"username": user, "password": PASSWORD})
    return r.json()["access_token"]


def reads_owned(statement: str, owned: dict[str, str]) -> list[str]:
    """The enterprise-owned tables a SELECT names (none for writes and the rest)."""
    if not re.match(r"\s*(SELECT|WITH)\b", statement, re.I):
        return []
    return [t for t in owned if re.search(rf'(?<![\w.])"?{t}"?(?![\w(])', statement)]


def without_others(db_url: str, own: list[int], others: list[int], owned: dict[str, str]) -> str:
    """A copy of the database from which the rows of the ``others`` ledgers are deleted."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        copy = Path(url.database).with_name("without-others.db")
        with sqlite3.connect(url.database) as src, sqlite3.connect(copy) as dst:
            src.backup(dst)
        conn = sqlite3.connect(copy, isolation_level=None)
        conn.execute("PRAGMA foreign_keys = OFF")
        run = conn.execute
    else:
        name = f"{url.database}_own"
        with _pg_admin() as admin:
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{url.database}"')
        copy_url = url.set(database=name)
        import psycopg

        conn = psycopg.connect(
            host=url.host, port=url.port, user=url.username, dbname=name, autocommit=True
        )
        conn.execute("SET session_replication_role = replica")  # no FK triggers: a canary copy
        run = conn.execute
    marks = ", ".join(str(i) for i in others)
    for table, key in owned.items():
        run(f'DELETE FROM "{table}" WHERE "{key}" IN ({marks})')
    conn.close()
    if url.get_backend_name() == "sqlite":
        return f"sqlite:///{copy}"
    return copy_url.render_as_string(hide_password=False)


def rows(engine: Engine, statement: str, parameters: Any) -> list[str]:
    with engine.connect() as conn:
        result = conn.exec_driver_sql(statement, parameters)
        return sorted(repr(tuple(r)) for r in result) if result.returns_rows else []


def test_no_portal_query_reads_another_enterprises_rows(app, engine, db_url, world, clock) -> None:
    twin = f.beverage_ledger(engine, clock, TWIN)  # A's records again, in another ledger
    owned = owned_tables()
    assert {"entries", "lots", "sales", "products", "ledgers", "attachments"} <= set(owned)
    captured: list[tuple[str, Any]] = []
    routes_of: dict[tuple[str, str], str] = {}

    def capture(_conn, _cursor, statement, parameters, _context, executemany):  # type: ignore[no-untyped-def]
        if CURRENT[0] is not None and not executemany:
            captured.append((statement, parameters))
            routes_of.setdefault((statement, repr(parameters)), CURRENT[0])

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with TestClient(app) as client:
            exercise(app, client)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    with read_session(engine) as s:  # after the exercise: the authority's ledger is new
        ledgers = dict(s.execute(select(Ledger.credit_code, Ledger.id)).all())
        kinds = dict(s.execute(select(Ledger.id, Ledger.owner_kind)).all())
    a = ledgers[f.BEVERAGE]
    others = [i for i, k in kinds.items() if k == "enterprise" and i != a]
    assert twin in others
    reading = [(s, p) for s, p in captured if reads_owned(s, owned)]
    assert len(reading) > 100, len(reading)

    engine.dispose()
    copy_url = without_others(db_url, [a], others, owned)
    own_only = create_engine(copy_url)
    full = create_engine(db_url)
    try:
        # the canary bites: a statement that forgets the ledger is caught by this comparison
        forgot = ("SELECT enterprise_id, code FROM lots WHERE code = 'PJ20260301A'", ())
        assert rows(full, *forgot) != rows(own_only, *forgot)
        seen: set[tuple[str, str]] = set()
        wrong: list[str] = []
        for statement, parameters in reading:
            key = (statement, repr(parameters))
            if key in seen:
                continue
            seen.add(key)
            if rows(full, statement, parameters) != rows(own_only, statement, parameters):
                wrong.append(f"{' '.join(statement.split())[:400]}\n    {parameters!r}")
        assert not wrong, "statements that read another enterprise's rows:\n" + "\n".join(wrong)
        if full.dialect.name == "postgresql":
            authorities = [i for i, k in kinds.items() if k == "authority"]
            check_one_partition(full, reading, [a, *authorities], owned, routes_of)
    finally:
        full.dispose()
        own_only.dispose()
        if copy_url.startswith("postgresql"):
            with _pg_admin() as admin:
                admin.execute(
                    f'DROP DATABASE IF EXISTS "{make_url(copy_url).database}" WITH (FORCE)'
                )


# Statements that leave the enterprise's shard today, each with why and what Citus does with
# it (docs/scaling.md, "Queries that leave an enterprise's shard"). They return only rows of
# the enterprise or of an authority's ledger (the canary above proves it), but they look them
# up by a column that is not the distribution key, so they are sent to every shard. The test
# fails on any other such statement, and on an entry here that no longer occurs.
KNOWN_FAN_OUT = {
    "ledger head found by credit code": re.compile(r"FROM ledgers WHERE ledgers\.credit_code = "),
    "cases concerning the enterprise, in every authority's ledger": re.compile(
        r"FROM cases JOIN ledgers ON .* WHERE .*case_lots\.credit_code = "
    ),
}


def check_one_partition(
    engine: Engine,
    reading: list[tuple[str, Any]],
    allowed: list[int],
    owned: dict[str, str],
    routes_of: dict[tuple[str, str], str],
) -> None:
    """EXPLAIN each statement on the hash-partitioned copy: it scans, of every enterprise-owned
    table, only the partitions of the ``allowed`` ledgers (the enterprise's and authorities')."""
    schema = f"part_{uuid.uuid4().hex[:6]}"
    build_partitioned(engine, partitions=8, schema=schema)
    with engine.connect() as c:
        raw = c.connection.driver_connection
        raw.execute(f"SET search_path TO {schema}")
        ok = {
            r[0].rsplit("_p", 1)[1]
            for r in raw.execute(
                "SELECT tableoid::regclass::text FROM ledgers WHERE id = ANY(%s)", (allowed,)
            )
        }
        fanned: list[str] = []
        seen_known: set[str] = set()
        for statement, parameters in {(s, repr(p)): (s, p) for s, p in reading}.values():
            rels = scanned_partitions(raw, statement, parameters)
            outside = [
                r
                for r in rels
                if r.rpartition("_p")[0] in owned and r.rpartition("_p")[2] not in ok
            ]
            if not outside:
                continue
            flat = " ".join(statement.split())
            known = [name for name, pattern in KNOWN_FAN_OUT.items() if pattern.search(flat)]
            if known:
                seen_known.update(known)
                continue
            route = routes_of.get((statement, repr(parameters)))
            fanned.append(f"{outside[0]} [{route}]: {flat[:300]} {parameters!r}")
        raw.execute(f"DROP SCHEMA {schema} CASCADE")
        raw.commit()
    assert not fanned, "statements that leave the enterprise's partition:\n" + "\n".join(fanned)
    assert seen_known == set(KNOWN_FAN_OUT), f"no longer seen: {set(KNOWN_FAN_OUT) - seen_known}"
