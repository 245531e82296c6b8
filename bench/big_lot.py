"""One lot with 22k sales: the time and size of the views that list its records (issue 22,
item 10), on SQLite and PostgreSQL, through the app in process (no network)::

    createdb -h 127.0.0.1 -U postgres big_lot          # once; the bench empties it
    .venv/bin/python -m bench.big_lot [--sales 22000] [--repeat 3] [--pg URL]

Each figure is the median of ``--repeat`` calls. Run it on two checkouts (before and
after a change) with the same arguments to compare: it calls only HTTP routes.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from bench.common import databases
from bench.common import factories as f
from foodtrace.accounts.service import Role, add_user, create_authority, init_platform
from foodtrace.clock import SimulatedClock
from foodtrace.config import Settings
from foodtrace.db import make_engine, migrate, write_session
from foodtrace.ledger.models import Ledger
from foodtrace.records.service import Batch, record, register_enterprise
from schemas.identifiers import credit_code_check_char

PASSWORD = "bench pass 2026"
LOT = "PJ20260301A"
AUTHORITY = "11370404MB2854321" + credit_code_check_char("11370404MB2854321")


def build(url: str, sales: int) -> tuple[Any, SimulatedClock]:
    """One enterprise, one lot, ``sales`` sales of it to 50 customers; a regulator."""
    clock = SimulatedClock(datetime(2026, 3, 1, 8, 0, tzinfo=UTC))  # 16:00 in Zaozhuang
    engine = make_engine(url)
    migrate(engine)
    with write_session(engine) as s:
        init_platform(session=s, name="trace.example.cn", now=clock.now())
        register_enterprise(session=s, data=f.enterprise(), actor="bench", clock=clock)
        lid = s.execute(select(Ledger.id).where(Ledger.credit_code == f.BEVERAGE)).scalar_one()
        create_authority(
            session=s, credit_code=AUTHORITY, name="峄城区市场监督管理局",
            region_codes=["370404"], now=clock.now(),
        )  # fmt: skip
        for user, role, ent, auth in (
            ("ent", Role.ENTERPRISE_USER, f.BEVERAGE, None),
            ("reg", Role.REGULATOR, None, AUTHORITY),
        ):
            add_user(
                session=s, username=user, password=PASSWORD, role=role, now=clock.now(),
                enterprise_credit_code=ent, authority_credit_code=auth,
            )  # fmt: skip
    head = [
        ("supplier", f.supplier()),
        *(("customer", f.customer(code=f"C{i:02d}", credit_code=None)) for i in range(50)),
        ("product", f.product()),
        ("material_check", f.material_check(quantity="2000000")),
        ("production_lot", f.production_lot(quantity=str(sales + 1000), unit="瓶")),
        ("ccp_record", f.ccp_record()),
    ]
    with write_session(engine) as s:
        for kind, data in head:
            record(session=s, ledger_id=lid, kind=kind, data=data, actor="bench", clock=clock)
    with write_session(engine) as s:
        record(
            session=s, ledger_id=lid, kind="release_test", data=f.release_test(),
            actor="bench", clock=clock,
        )  # fmt: skip
    done = 0
    while done < sales:
        n = min(2000, sales - done)
        with write_session(engine) as s, Batch(session=s, ledger_id=lid, clock=clock) as batch:
            for i in range(done, done + n):
                batch.record(
                    kind="sale",
                    data=f.sale(quantity="1", unit="瓶", customer_code=f"C{i % 50:02d}"),
                    actor="bench",
                )
        done += n
    return engine, clock


def measure(client: TestClient, url: str, repeat: int, **kw: Any) -> tuple[float, int, int]:
    """Median seconds, bytes and status of ``repeat`` GETs."""
    times, size, status = [], 0, 0
    for _ in range(repeat):
        began = time.perf_counter()
        r = client.get(url, **kw)
        times.append(time.perf_counter() - began)
        size, status = len(r.content), r.status_code
    return statistics.median(times), size, status


def run(url: str, sales: int, repeat: int) -> list[tuple[str, float, int, int]]:
    engine, clock = build(url, sales)
    key = Path(tempfile.mkdtemp()) / "signing.key"
    settings = Settings(database_url=url, signing_key_file=str(key), checkpoint_interval_s=0)
    from webapp.main import create_app

    app = create_app(settings, clock=clock, engine=engine)
    out = []
    with TestClient(app) as api, TestClient(app) as ent, TestClient(app) as reg:
        token = api.post("/api/v1/auth/token", data={"username": "reg", "password": PASSWORD})
        bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
        token = api.post("/api/v1/auth/token", data={"username": "ent", "password": PASSWORD})
        own = {"Authorization": f"Bearer {token.json()['access_token']}"}
        ent.post("/login", data={"username": "ent", "password": PASSWORD})
        reg.post("/login", data={"username": "reg", "password": PASSWORD})
        sample = {
            "credit_code": f.BEVERAGE, "lot_code": LOT, "test_item": "菌落总数",
            "result": "3200", "limit": "≤100", "sampling_date": "2026-03-01", "report_no": "SJ-1",
        }  # fmt: skip
        began = time.perf_counter()
        r = api.post("/api/v1/failed-samples", json=sample, headers=bearer)
        out.append(("POST failed sample (opens the case)", time.perf_counter() - began,
                    len(r.content), r.status_code))  # fmt: skip
        case = r.json()["id"]
        cc = f.BEVERAGE
        for name, client, path, kw in (
            ("trail page", reg, f"/regulator/trail?credit_code={cc}&lot={LOT}", {}),
            ("trail.xlsx", api, f"/api/v1/lots/{cc}/{LOT}/trail.xlsx", {"headers": bearer}),
            ("trail.csv", api, f"/api/v1/lots/{cc}/{LOT}/trail.csv", {"headers": bearer}),
            ("case JSON", api, f"/api/v1/cases/{case}", {"headers": bearer}),
            ("scope.xlsx", api, f"/api/v1/cases/{case}/scope.xlsx", {"headers": bearer}),
            ("/ledger?lot= page", ent, f"/ledger?lot={LOT}", {}),
            ("/ledger page", ent, "/ledger", {}),
            ("Today page", ent, "/today", {}),
            ("/api/v1/ledger?limit=500", api, "/api/v1/ledger?limit=500", {"headers": own}),
            ("/api/v1/lots/{lot}", api, f"/api/v1/lots/{LOT}", {"headers": own}),
            ("/api/v1/today", api, "/api/v1/today", {"headers": own}),
        ):
            out.append((name, *measure(client, path, repeat, **kw)))
    engine.dispose()
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sales", type=int, default=22_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/big_lot")
    p.add_argument("--only", choices=["sqlite", "postgresql"])
    args = p.parse_args(argv)
    targets = databases(args.only, args.pg, "big_lot")
    for kind, url in targets:
        began = time.perf_counter()
        rows = run(url, args.sales, args.repeat)
        print(f"\n{kind}: one lot, {args.sales} sales (built and measured in "  # noqa: T201
              f"{time.perf_counter() - began:.0f} s), median of {args.repeat}")  # fmt: skip
        for name, seconds, size, status in rows:
            print(f"  {name:38s} {seconds * 1000:8.0f} ms {size / 1e6:8.2f} MB  {status}")  # noqa: T201


if __name__ == "__main__":
    main()
