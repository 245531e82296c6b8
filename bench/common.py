"""What the benchmarks share: the tests' record factories (``factories``, DOMAIN.md data), the
benchmarks' product, a district's enterprises registered at once, and the databases a run
measures (a new SQLite file, an emptied PostgreSQL database)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import select

from foodtrace.clock import Clock
from foodtrace.ledger.models import Ledger
from foodtrace.records.service import register_enterprise

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import factories  # noqa: E402 - the tests' record shapes

ONE_CCP = [
    {
        "code": "CCP1",
        "name": "巴氏杀菌",
        "parameters": [{"code": "temperature", "name": "杀菌温度", "unit": "°C", "min": "85"}],
    }
]


def product(**over: Any) -> dict[str, Any]:
    """The tests' pomegranate juice with a plan of one CCP of one parameter and one release
    item (the tests' has two of each), as every benchmark's lots are made of it."""
    release_items = [{"item": "菌落总数", "limit": "≤100", "unit": "CFU/mL"}]
    return factories.product(ccp_plan=ONE_CCP, release_items=release_items, **over)


def register_ledgers(s: Any, codes: list[str], name: str, licence: str, clock: Clock) -> list[int]:
    """Register an enterprise of each credit code in 峄城区 (the i-th is named ``name`` and
    licensed ``licence`` with ``{i}`` in them); returns their ledger ids, in order."""
    for i, code in enumerate(codes):
        data = factories.enterprise(
            code,
            name=name.format(i=i),
            licence_no=licence.format(i=i),
            address="山东省枣庄市峄城区",
        )
        register_enterprise(session=s, data=data, actor="bench", clock=clock)
    return [s.execute(select(Ledger.id).where(Ledger.credit_code == c)).scalar_one() for c in codes]


def databases(only: str | None, pg_url: str, name: str) -> list[tuple[str, str]]:
    """(kind, URL) of the databases to measure: a new SQLite file ``name``.db, and the
    PostgreSQL database of ``pg_url`` emptied (its public schema dropped and made again);
    ``only`` one of them."""
    out = []
    if only != "postgresql":
        out.append(("sqlite", f"sqlite:///{tempfile.mkdtemp()}/{name}.db"))
    if only != "sqlite":
        conninfo = pg_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")
        out.append(("postgresql", pg_url))
    return out
