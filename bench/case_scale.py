"""A case's cost as the district grows around it (issue 22, item 10): the same ~50 lots in
scope, GET /api/v1/cases/{id} as the regulator, before and after ~10x more records that have
nothing to do with the case, on SQLite and PostgreSQL, through the app in process::

    createdb -h 127.0.0.1 -U postgres case_scale      # once; the bench empties it
    .venv/bin/python -m bench.case_scale [--days 100] [--grow 8] [--own-days 100] \
        [--repeat 7] [--profile]

The district is bench/district.py's: supply chains of 7 enterprises recording every day a
receipt, a lot, CCP readings, a release test and sales. Chain 0's first enterprise sells
batch FAN to the second, which makes ``--fan-lots`` lots of it: the failed sample is FAN,
and its scope is FAN, the lots made of it and their sales. Growth adds ``--grow`` more
chains (other enterprises) and ``--own-days`` more days of chain 0's own other lots, none of
them linked to FAN. Each figure is the median of ``--repeat`` GETs; ``--profile`` also counts the
SQL statements of one GET and writes its cProfile to bench/results/case_scale-*.txt.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, select

from bench.common import databases, register_ledgers
from bench.district import CHAIN, YEAR, District, Scale
from foodtrace.accounts.service import Role, add_user, create_authority
from foodtrace.config import Settings
from foodtrace.db import make_engine, migrate, read_session, write_session
from foodtrace.ledger.models import Entry
from schemas.identifiers import credit_code_check_char

PASSWORD = "bench pass 2026"
AUTHORITY = "11370404MB2854321" + credit_code_check_char("11370404MB2854321")
RESULTS = Path(__file__).parent / "results"


def _scale(days: int, fan_lots: int, enterprises: int) -> Scale:
    return Scale(enterprises, days, 8, 3, fan_lots, 5, 1, 0, 0, 0)


def build(url: str, days: int, fan_lots: int) -> District:
    """Chain 0 (7 enterprises, ``days`` days each), batch FAN and its lots; a regulator."""
    engine = make_engine(url)
    migrate(engine)
    dist = District(engine, _scale(days, fan_lots, CHAIN), "CAWEA")
    dist.generate(jobs=1)
    with write_session(engine) as s:
        create_authority(
            session=s, credit_code=AUTHORITY, name="峄城区市场监督管理局",
            region_codes=["370404"], now=dist.clock.now(),
        )  # fmt: skip
        add_user(
            session=s, username="reg", password=PASSWORD, role=Role.REGULATOR,
            now=dist.clock.now(), authority_credit_code=AUTHORITY,
        )  # fmt: skip
    return dist


def grow(dist: District, chains: int, own_days: int) -> None:
    """``chains`` more chains of 7 enterprises (``days`` days each) and, in chain 0,
    ``own_days`` more days of its own lots after FAN's day: records that have nothing to do
    with FAN."""
    sc = dist.scale
    more = District(dist.engine, _scale(sc.days, 0, CHAIN * chains), "CAWEB")
    more.clock = dist.clock
    with write_session(dist.engine) as s:
        more.ids = register_ledgers(
            s, more.codes, "无关食品有限公司{i:03d}", "SC1073704040{i:04d}", dist.clock
        )
    for i in range(len(more.ids)):
        more.enterprise_year(i)
    # Chain 0's own other lots, on the days after FAN's (its ledgers' clock moves forward).
    for d in range(sc.days, sc.days + own_days):
        with write_session(dist.engine) as s, dist.batched(s, *dist.ids):
            for i in range(len(dist.ids)):
                dist.day(s, i, d)


def records(engine: Engine) -> int:
    with read_session(engine) as s:
        return s.execute(select(func.count()).select_from(Entry)).scalar_one()


class Api:
    """The app in process, a regulator's bearer token, the case opened on FAN."""

    def __init__(self, dist: District, url: str) -> None:
        key = Path(tempfile.mkdtemp()) / "signing.key"
        settings = Settings(database_url=url, signing_key_file=str(key), checkpoint_interval_s=0)
        from webapp.main import create_app

        dist.clock.set(dist.clock.now() + timedelta(days=1))
        self.app = create_app(settings, clock=dist.clock, engine=dist.engine)
        self.client = TestClient(self.app)
        self.client.__enter__()
        token = self.client.post(
            "/api/v1/auth/token", data={"username": "reg", "password": PASSWORD}
        ).json()["access_token"]
        self.headers = {"Authorization": f"Bearer {token}"}
        self.case: str | None = None

    def open_case(self, credit_code: str) -> dict[str, Any]:
        sample = {
            "credit_code": credit_code, "lot_code": "FAN", "test_item": "菌落总数",
            "result": "3200", "limit": "≤100", "sampling_date": YEAR.isoformat(),
            "report_no": "SJ-1",
        }  # fmt: skip
        r = self.client.post("/api/v1/failed-samples", json=sample, headers=self.headers)
        assert r.status_code == 201, r.text
        self.case = r.json()["id"]
        return r.json()

    def get(self) -> Any:
        r = self.client.get(f"/api/v1/cases/{self.case}", headers=self.headers)
        assert r.status_code == 200, r.text
        return r

    def median_ms(self, repeat: int) -> float:
        self.get()  # warm: statement caches, the app's first request
        times = []
        for _ in range(repeat):
            began = time.perf_counter()
            self.get()
            times.append((time.perf_counter() - began) * 1000)
        return statistics.median(times)

    def close(self) -> None:
        self.client.__exit__(None, None, None)


def profile(engine: Engine, api: Api, out: Path) -> str:
    """The GET's work (the case's view and its public JSON) under cProfile in this thread,
    with its SQL statements counted and timed (execute and fetch); the costliest first."""
    from foodtrace.accounts.models import Authority
    from regulator_view.cases_api import own_case
    from web.public import case_public, page_sales

    statements: dict[str, list[float]] = {}
    began: list[float] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        began.append(time.perf_counter())

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.setdefault(" ".join(statement.split())[:150], []).append(
            time.perf_counter() - began.pop()
        )

    def work() -> None:
        with read_session(engine) as s:
            authority = s.execute(
                select(Authority).where(Authority.credit_code == AUTHORITY)
            ).scalar_one()
            view = own_case(s, authority, api.case)
            page_sales(case_public(s, view, next_states=[]), 1000, None)

    work()  # warm
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    prof = cProfile.Profile()
    began_all = time.perf_counter()
    try:
        prof.runcall(work)
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    took = (time.perf_counter() - began_all) * 1000
    buf = io.StringIO()
    total = sum(len(v) for v in statements.values())
    head = (
        f"{total} SQL statements, {sum(map(sum, statements.values())) * 1000:.1f} ms executing"
        f" of {took:.0f} ms profiled"
    )
    buf.write(head + "\n")
    for text, times in sorted(statements.items(), key=lambda kv: -sum(kv[1]))[:25]:
        buf.write(f"  {len(times):4d} × {sum(times) * 1000:7.1f} ms  {text}\n")
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(25)
    out.write_text(buf.getvalue())
    return head


def run(kind: str, url: str, args: argparse.Namespace) -> list[str]:
    began = time.perf_counter()
    dist = build(url, args.days, args.fan_lots)
    api = Api(dist, url)
    case = api.open_case(dist.codes[0])
    lots, sales = len(case["lots"]), case.get("sales_count", len(case["sales"]))
    out = []
    for phase in ("before", "after"):
        if phase == "after":
            api.close()
            grow(dist, args.grow, args.own_days)
            api = Api(dist, url)
            api.case = case["id"]
        if kind == "postgresql":
            with dist.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.exec_driver_sql("ANALYZE")
        n = records(dist.engine)
        r = api.get().json()
        assert (len(r["lots"]), r["sales_count"]) == (lots, sales), "the scope changed"
        ms = api.median_ms(args.repeat)
        line = f"  {phase:6s} {n:8,d} records: GET /api/v1/cases/{{id}} {ms:7.1f} ms"
        if args.profile:
            RESULTS.mkdir(exist_ok=True)
            path = RESULTS / f"case_scale-{kind}-{phase}.txt"
            line += f"  ({profile(dist.engine, api, path)}; {path.name})"
        out.append(line)
        print(line, flush=True)  # noqa: T201
    api.close()
    dist.engine.dispose()
    out.insert(0, f"{kind}: {lots} lots, {sales} sales in scope, median of {args.repeat} "
                  f"(built and measured in {time.perf_counter() - began:.0f} s)")  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=int, default=100, help="days of records of each enterprise")
    p.add_argument("--fan-lots", type=int, default=50, help="lots made of batch FAN")
    p.add_argument("--grow", type=int, default=8, help="more chains of 7 enterprises added")
    p.add_argument("--own-days", type=int, default=100, help="more days of chain 0 added")
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/case_scale")
    p.add_argument("--only", choices=["sqlite", "postgresql"])
    args = p.parse_args(argv)
    targets = databases(args.only, args.pg, "case_scale")
    report = []
    for kind, url in targets:
        print(f"{kind} …", flush=True)  # noqa: T201
        report += run(kind, url, args)
    print("\n" + "\n".join(report))  # noqa: T201


if __name__ == "__main__":
    main()
