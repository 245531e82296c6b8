"""A district-year of records on PostgreSQL, and the figures of issue 6 against their baselines.

Run from the project root (the database must exist; the bench adds enterprises
with fresh credit codes on every run and touches no other ledger)::

    createdb -h 127.0.0.1 -U postgres bench        # once
    TRACE_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench \\
        .venv/bin/python -m bench --quick           # < 1 min, for development
    TRACE_DATABASE_URL=... .venv/bin/python -m bench --scale district   # tens of minutes

Data: enterprises in supply chains of 7 (position p buys from p-1 and sells to
p+1, matched across ledgers by credit code and batch/lot code), each recording
every day a receipt (incoming check), a production lot consuming it, CCP
readings, a release test, a sale to the next enterprise and sales to
unregistered retailers. The second enterprise of the first chain also receives
one supplier batch (``FAN``) that feeds ``--fan-lots`` lots with
``--fan-sales`` sales each: the failed-sample recall scope.

Every figure is the median of ``--repeat`` runs (p95 over every sample where it
is a latency); a baseline runs in the same process, interleaved. The table is
printed and written to ``bench/results/<scale>-<utc time>.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, select

from bench.common import product, register_ledgers
from foodtrace import imports
from foodtrace.accounts.service import init_platform
from foodtrace.canonical import leaf_hash
from foodtrace.cases.scope import recall_scope
from foodtrace.clock import SimulatedClock
from foodtrace.completeness import district_completeness
from foodtrace.db import make_engine, migrate, read_session, write_session
from foodtrace.ledger.models import Ledger
from foodtrace.ledger.service import iter_entries
from foodtrace.records.service import Batch, record
from foodtrace.trail import lot_trail
from foodtrace.verify import verify_ledger, verify_parallel
from schemas.identifiers import credit_code_check_char

CHAIN = 7
CODE_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
YEAR = date(2025, 1, 1)
CST = timedelta(hours=8)
RESULTS = Path(__file__).parent / "results"


@dataclass
class Scale:
    enterprises: int
    days: int
    ccp_per_day: int
    retail_sales_per_day: int
    fan_lots: int
    fan_sales: int
    repeat: int
    appends: int  # per run, one transaction each
    batch: int  # rows per bulk-import batch
    latency_samples: int


SCALES = {
    # ~4.1 M entries: 200 × 365 × (1 receipt + 1 lot + 48 CCP + 1 test + 1 declaration
    # + 1 + 4 sales) = 57 entries/enterprise-day.
    "district": Scale(200, 365, 48, 4, 120, 10, 5, 2000, 10_000, 200),
    # The district's daily shape on 28 enterprises × 30 days (~48,000 entries, a few minutes).
    "medium": Scale(28, 30, 48, 4, 120, 10, 3, 500, 5000, 100),
    "quick": Scale(14, 10, 4, 2, 100, 10, 3, 200, 2000, 30),
}


def say(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def credit_code(run: str, i: int) -> str:
    digits = ""
    n = i
    for _ in range(4):
        n, r = divmod(n, len(CODE_CHARS))
        digits = CODE_CHARS[r] + digits
    body = "91370404" + run + digits
    return body + credit_code_check_char(body)


def gtin13(i: int) -> str:
    body = f"692{i:09d}"
    total = sum(int(c) * (3 if k % 2 else 1) for k, c in enumerate(body))
    return body + str((10 - total % 10) % 10)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


# ---------------------------------------------------------------- data


class District:
    def __init__(self, engine: Engine, scale: Scale, run: str) -> None:
        self.engine = engine
        self.scale = scale
        self.run = run
        self.codes = [credit_code(run, i) for i in range(scale.enterprises)]
        self.ids: list[int] = []
        self.clock = SimulatedClock(datetime(2024, 12, 31, 16, 0, tzinfo=UTC))
        self.batches: dict[int, Batch] = {}

    def add(self, s: Any, lid: int, kind: str, data: dict[str, Any]) -> None:
        """Append through the ledger's open batch (``batches``), or on its own."""
        batch = self.batches.get(lid)
        if batch is not None:
            batch.record(kind=kind, data=data, actor="bench")
        else:
            record(session=s, ledger_id=lid, kind=kind, data=data, actor="bench", clock=self.clock)

    @contextmanager
    def batched(self, s: Any, *lids: int) -> Iterator[None]:
        """Records of ``lids`` go through one :class:`Batch` each (the bulk path: entries built
        in memory, one INSERT per table when the block ends)."""
        with ExitStack() as stack:
            for lid in lids:
                self.batches[lid] = stack.enter_context(
                    Batch(session=s, ledger_id=lid, clock=self.clock)
                )
            try:
                yield
            finally:
                for lid in lids:
                    del self.batches[lid]

    def register(self) -> None:
        with write_session(self.engine) as s:
            init_platform(session=s, name="trace.example.cn", now=self.clock.now())
            self.ids = register_ledgers(
                s, self.codes, "基准测试食品有限公司{i:03d}", "SC1063704040{i:04d}", self.clock
            )

    def master(self, s: Any, i: int) -> None:
        lid, pos = self.ids[i], i % CHAIN
        data = product(code="P1", name=f"产品{i:03d}", gtin=gtin13(i), unit="箱", packaging=[])
        self.add(s, lid, "product", data)
        sup: dict[str, Any] = {
            "code": "S1",
            "name": "上游供应商",
            "address": "枣庄",
            "contact": "1",
        }
        if pos > 0 and i - 1 >= 0:
            sup["credit_code"] = self.codes[i - 1]
        self.add(s, lid, "supplier", sup)
        cust: dict[str, Any] = {"code": "C1", "name": "下游客户", "address": "枣庄", "contact": "1"}
        if pos < CHAIN - 1 and i + 1 < len(self.codes):
            cust["credit_code"] = self.codes[i + 1]
        self.add(s, lid, "customer", cust)
        for r in range(max(1, self.scale.retail_sales_per_day)):
            self.add(
                s,
                lid,
                "customer",
                {"code": f"R{r}", "name": f"零售商{r}", "address": "枣庄", "contact": "1"},
            )

    def day(self, s: Any, i: int, d: int) -> None:
        sc, lid = self.scale, self.ids[i]
        day = YEAR + timedelta(days=d)
        self.clock.set(datetime(day.year, day.month, day.day, 15, 0, tzinfo=UTC))  # 23:00 CST
        self.receipt(s, lid, f"M{d:03d}", f"L{d:03d}", day, "1000")
        lot = f"L{d:03d}"
        self.lot(s, lid, lot, f"M{d:03d}", day, "100", "1000")
        for k in range(sc.ccp_per_day):
            at = datetime(day.year, day.month, day.day, 0, 0, tzinfo=UTC) + timedelta(
                minutes=10 * k
            )
            self.add(
                s,
                lid,
                "ccp_record",
                {
                    "lot_code": lot,
                    "ccp": "CCP1",
                    "parameter": "temperature",
                    "value": f"{85.5 + (k % 30) / 10:.1f}",
                    "unit": "°C",
                    "measured_at": at.isoformat().replace("+00:00", "Z"),
                    "operator": "李强",
                },
            )
        self.test(s, lid, lot, day)
        self.sale(s, lid, lot, "C1", "100", day)
        for r in range(sc.retail_sales_per_day):
            self.sale(s, lid, lot, f"R{r}", "50", day)

    def receipt(self, s: Any, lid: int, ml: str, batch: str, day: date, qty: str) -> None:
        self.add(
            s,
            lid,
            "material_check",
            {
                "material_lot": ml,
                "material_name": "原料",
                "material_type": "raw_material",
                "specification": "箱",
                "quantity": qty,
                "unit": "箱",
                "batch_no": batch,
                "shelf_life": "12个月",
                "receipt_date": day.isoformat(),
                "supplier_code": "S1",
                "supplier_licence_checked": False,
                "certificate_no": f"HG-{ml}",
                "accepted": True,
                "inspector": "王敏",
            },
        )

    def lot(self, s: Any, lid: int, lot: str, ml: str, day: date, use: str, qty: str) -> None:
        self.add(
            s,
            lid,
            "production_lot",
            {
                "product_code": "P1",
                "lot_code": lot,
                "production_date": day.isoformat(),
                "started_at": f"{day.isoformat()}T08:00:00+08:00",
                "ended_at": f"{day.isoformat()}T11:00:00+08:00",
                "quantity": qty,
                "unit": "箱",
                "materials": [{"material_lot": ml, "quantity": use, "unit": "箱"}],
            },
        )

    def test(self, s: Any, lid: int, lot: str, day: date) -> None:
        self.add(
            s,
            lid,
            "release_test",
            {
                "lot_code": lot,
                "tested_at": f"{day.isoformat()}T15:00:00+08:00",
                "items": [{"item": "菌落总数", "result": "10", "limit": "≤100", "passed": True}],
                "conclusion": "pass",
                "inspector": "赵丽",
                "report_no": f"JC-{lot}",
            },
        )

    def sale(self, s: Any, lid: int, lot: str, cust: str, qty: str, day: date) -> None:
        self.add(
            s,
            lid,
            "sale",
            {"lot_code": lot, "quantity": qty, "unit": "箱", "sale_date": day.isoformat(),
             "customer_code": cust},
        )  # fmt: skip

    def fan(self) -> None:
        """Chain 0: enterprise 0 sells batch FAN to enterprise 1, which makes many lots of it."""
        sc, day = self.scale, YEAR + timedelta(days=self.scale.days - 1)
        e0, e1 = self.ids[0], self.ids[1]
        with write_session(self.engine) as s, self.batched(s, e0, e1):
            self.clock.set(datetime(day.year, day.month, day.day, 15, 0, tzinfo=UTC))
            self.receipt(s, e0, "M-FAN", "RAW-FAN", day, "100000")
            self.lot(s, e0, "FAN", "M-FAN", day, "1000", "100000")
            self.test(s, e0, "FAN", day)
            self.sale(s, e0, "FAN", "C1", "100000", day)
            self.receipt(s, e1, "ML-FAN", "FAN", day, "100000")
            for n in range(sc.fan_lots):
                lot = f"F{n:04d}"
                self.lot(s, e1, lot, "ML-FAN", day, "10", "1000")
                self.test(s, e1, lot, day)
                for k in range(sc.fan_sales):
                    self.sale(s, e1, lot, f"R{k % max(1, sc.retail_sales_per_day)}", "10", day)

    def enterprise_year(self, i: int) -> None:
        """Enterprise ``i``'s master data and every day, in one transaction and one batch."""
        with write_session(self.engine) as s, self.batched(s, self.ids[i]):
            self.master(s, i)
            for d in range(self.scale.days):
                self.day(s, i, d)

    def attach(self) -> int:
        """The ledgers of this run, generated before (``--reuse``): their entry count."""
        with read_session(self.engine) as s:
            found = dict(
                s.execute(
                    select(Ledger.credit_code, Ledger.id).where(Ledger.credit_code.in_(self.codes))  # type: ignore[attr-defined]
                ).all()
            )
            missing = [c for c in self.codes if c not in found]
            if missing:
                sys.exit(f"run {self.run}: {len(missing)} of its ledgers are not in this database")
            self.ids = [found[c] for c in self.codes]
            return sum(
                s.execute(select(Ledger.size).where(Ledger.id.in_(self.ids))).scalars()  # type: ignore[attr-defined]
            )

    def generate(self, jobs: int = 1) -> int:
        self.register()
        if jobs <= 1:
            for i in range(len(self.ids)):
                self.enterprise_year(i)
                if i % 10 == 9:
                    say(f"  … {i + 1}/{len(self.ids)} enterprises")
        else:
            # Ledgers are independent (links are matched by code, not by order), so
            # enterprises are generated in parallel, each worker with its own engine.
            url = self.engine.url.render_as_string(hide_password=False)
            with ProcessPoolExecutor(jobs) as pool:
                work = [
                    pool.submit(_generate_one, url, self.scale, self.run, self.ids, i)
                    for i in range(len(self.ids))
                ]
                for n, f in enumerate(as_completed(work), 1):
                    f.result()
                    if n % 10 == 0:
                        say(f"  … {n}/{len(self.ids)} enterprises")
        self.fan()
        with read_session(self.engine) as s:
            return sum(
                s.execute(select(Ledger.size).where(Ledger.id.in_(self.ids))).scalars()  # type: ignore[attr-defined]
            )


def _generate_one(url: str, scale: Scale, run: str, ids: list[int], i: int) -> None:
    engine = make_engine(url, pool_size=1)
    try:
        dist = District(engine, scale, run)
        dist.ids = ids
        dist.enterprise_year(i)
    finally:
        engine.dispose()


# ---------------------------------------------------------------- helpers


def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def scratch(conn: psycopg.Connection, lids: list[int]) -> None:
    """Copies of the ledger, entry and CCP-reading tables (indexes included) for the bare-SQL
    baselines: their rows never reach a real ledger, whose head and Merkle range the
    checkpointer and verification read."""
    with conn.transaction():
        for t in ("ledgers", "entries", "ccp_readings"):
            conn.execute(f"CREATE TABLE IF NOT EXISTS bench_{t} (LIKE {t} INCLUDING ALL)")
        conn.execute(
            "INSERT INTO bench_ledgers SELECT * FROM ledgers WHERE id = ANY(%s)"
            " ON CONFLICT DO NOTHING",
            (lids,),
        )


def pg_url(engine: Engine) -> str:
    u = engine.url.set(drivername="postgresql")
    return u.render_as_string(hide_password=False)


@dataclass
class Row:
    name: str
    unit: str
    value: float | None
    p50: float | None = None
    p95: float | None = None
    baseline_name: str = "—"
    baseline: float | None = None
    baseline_p95: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline


# ---------------------------------------------------------------- measurements


def bench_append(engine: Engine, dist: District, sc: Scale) -> Row:
    """One ccp_record per transaction through ``record``; bare psycopg SQL of the same."""
    lid_core, lid_bare = dist.ids[2], dist.ids[3]
    clock = dist.clock
    n = sc.appends
    core_rates, bare_rates = [], []
    conn = psycopg.connect(pg_url(engine))
    scratch(conn, [lid_bare])
    sample_entry = None
    with read_session(engine) as s:
        for row in iter_entries(session=s, ledger_id=lid_core):
            if row.kind == "ccp_record":
                sample_entry = json.loads(row.body)
                break
    assert sample_entry is not None
    lot_seq = conn.execute(
        "SELECT record_seq FROM lots WHERE enterprise_id = %s ORDER BY record_seq DESC LIMIT 1",
        (lid_bare,),
    ).fetchone()[0]
    last_day = (YEAR + timedelta(days=sc.days - 1)).isoformat()
    for _ in range(sc.repeat):
        t = time.perf_counter()
        for k in range(n):
            with write_session(engine) as s:
                record(
                    session=s,
                    ledger_id=lid_core,
                    kind="ccp_record",
                    data={
                        "lot_code": f"L{sc.days - 1:03d}",
                        "ccp": "CCP1",
                        "parameter": "temperature",
                        "value": f"{86 + k % 9}.0",
                        "unit": "°C",
                        "measured_at": last_day + "T02:00:00Z",
                        "operator": "李强",
                    },
                    actor="bench",
                    clock=clock,
                )
        core_rates.append(n / (time.perf_counter() - t))
        t = time.perf_counter()
        for k in range(n):
            with conn.transaction():
                size, head = conn.execute(
                    "SELECT size, head_hash FROM bench_ledgers WHERE id = %s FOR UPDATE",
                    (lid_bare,),
                ).fetchone()
                seq = size + 1
                entry = dict(sample_entry, seq=seq, prev_hash=bytes(head).hex())
                entry["body"] = dict(entry["body"], value=f"{86 + k % 9}.0")
                data = json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode()
                digest = hashlib.sha256(b"\x00" + data).digest()
                conn.execute(
                    "INSERT INTO bench_entries (ledger_id, seq, kind, event_time, recorded_at,"
                    " prev_hash, hash, body) VALUES (%s,%s,%s,%s,%s,%s,%s,%s)",
                    (lid_bare, seq, "ccp_record", entry["event_time"], entry["recorded_at"],
                     bytes(head), digest, data),
                )  # fmt: skip
                conn.execute(
                    "INSERT INTO bench_ccp_readings (enterprise_id, record_seq, current_seq,"
                    " lot_seq,"
                    " ccp, parameter, value, unit, measured_at, deviation)"
                    " VALUES (%s,%s,%s,%s,'CCP1','temperature',%s,'°C',%s,false)",
                    (lid_bare, seq, seq, lot_seq, f"{86 + k % 9}.0", entry["event_time"]),
                )
                conn.execute(
                    "UPDATE bench_ledgers SET size = %s, head_hash = %s WHERE id = %s",
                    (seq, digest, lid_bare),
                )
        bare_rates.append(n / (time.perf_counter() - t))
    conn.close()
    row = Row(
        "append through the core, 1 entry/transaction, 1 ledger",
        "entries/s",
        statistics.median(core_rates),
        baseline_name="bare psycopg SQL: lock head, insert entry + derived row, update head",
        baseline=statistics.median(bare_rates),
        target="≥ 70 % of baseline",
        note=f"{n} appends × {sc.repeat} runs; the baseline writes copies of the tables",
    )
    row.met = (row.ratio or 0) >= 0.7
    return row


def bench_import(engine: Engine, dist: District, sc: Scale) -> Row:
    """A CSV of ccp readings through ``imports.run_import``, one transaction per batch."""
    lid, lid_bare = dist.ids[4], dist.ids[5]
    clock = dist.clock
    lot = f"L{sc.days - 1:03d}"
    buf = io.StringIO()
    buf.write("生产批号,关键控制点,监控参数,测量值,单位,监控时间,监控人\n")
    for k in range(sc.batch):
        at = datetime.combine(YEAR + timedelta(days=sc.days - 1), datetime.min.time())
        at += timedelta(hours=9, seconds=k)  # local time (CST), after the lot started
        buf.write(
            f"{lot},CCP1,temperature,{85.5 + (k % 30) / 10:.1f},°C,{at:%Y-%m-%d %H:%M:%S},李强\n"
        )
    parsed = imports.parse("ccp_record", "bench.csv", buf.getvalue().encode("utf-8-sig"))
    assert not parsed.errors, parsed.errors[:3]
    core, bare = [], []
    conn = psycopg.connect(pg_url(engine))
    scratch(conn, [lid_bare])
    for _ in range(sc.repeat):
        t = time.perf_counter()
        with write_session(engine) as s:
            before = s.execute(select(Ledger.size).where(Ledger.id == lid)).scalar_one()
            result = imports.run_import(
                session=s, ledger_id=lid, kind="ccp_record", parsed=parsed, actor="bench",
                clock=clock, dry_run=False,
            )  # fmt: skip
            assert not result.errors, result.errors[:3]
        core.append(sc.batch / (time.perf_counter() - t))
        rows = conn.execute(
            "SELECT kind, event_time, recorded_at, prev_hash, hash, body FROM entries"
            " WHERE ledger_id = %s AND seq > %s ORDER BY seq",
            (lid, before),
        ).fetchall()
        t = time.perf_counter()
        with conn.transaction():
            (size,) = conn.execute(
                "SELECT size FROM bench_ledgers WHERE id = %s FOR UPDATE", (lid_bare,)
            ).fetchone()
            with conn.cursor().copy(
                "COPY bench_entries (ledger_id, seq, kind, event_time, recorded_at, prev_hash,"
                " hash,"
                " body) FROM STDIN"
            ) as cp:
                for j, r in enumerate(rows):
                    cp.write_row((lid_bare, size + 1 + j, *r))
            conn.execute(
                "UPDATE bench_ledgers SET size = %s WHERE id = %s", (size + len(rows), lid_bare)
            )
        bare.append(len(rows) / (time.perf_counter() - t))
    conn.close()
    row = Row(
        "bulk append / CSV import, 1 transaction per batch",
        "entries/s",
        statistics.median(core),
        baseline_name="COPY of the same entry rows, no hashing, no derived rows",
        baseline=statistics.median(bare),
        target="≥ 20,000 entries/s",
        note=f"batches of {sc.batch} ccp_record rows × {sc.repeat}",
    )
    row.met = row.value is not None and row.value >= 20_000
    return row


def naive_trail(conn: psycopg.Connection, eid: int, lot_seq: int, depth: int) -> int:
    """One query per node: backward through lot_inputs / material_lots / the supplier's lot,
    forward through sales / the buyer's material_lots / lot_inputs. Returns nodes seen."""
    seen: set[tuple[str, int, int]] = set()

    def ent(code: str | None) -> int | None:
        if not code:
            return None
        r = conn.execute("SELECT id FROM enterprises WHERE credit_code = %s", (code,)).fetchone()
        return r[0] if r else None

    def back(e: int, ls: int, d: int) -> None:
        if ("lot", e, ls) in seen or d <= 0:
            return
        seen.add(("lot", e, ls))
        for (ms,) in conn.execute(
            "SELECT material_lot_seq FROM lot_inputs WHERE enterprise_id=%s AND record_seq=%s",
            (e, ls),
        ).fetchall():
            seen.add(("ml", e, ms))
            r = conn.execute(
                "SELECT supplier_credit_code, batch_no FROM material_lots"
                " WHERE enterprise_id=%s AND record_seq=%s",
                (e, ms),
            ).fetchone()
            other = ent(r[0])
            if other is None or not r[1]:
                continue
            x = conn.execute(
                "SELECT record_seq FROM lots WHERE enterprise_id=%s AND code=%s", (other, r[1])
            ).fetchone()
            if x:
                back(other, x[0], d - 1)

    def fwd(e: int, ls: int, d: int) -> None:
        if ("flot", e, ls) in seen or d <= 0:
            return
        seen.add(("flot", e, ls))
        code = conn.execute(
            "SELECT code FROM lots WHERE enterprise_id=%s AND record_seq=%s", (e, ls)
        ).fetchone()[0]
        me = conn.execute("SELECT credit_code FROM enterprises WHERE id=%s", (e,)).fetchone()[0]
        for ss, buyer in conn.execute(
            "SELECT record_seq, buyer_credit_code FROM sales WHERE enterprise_id=%s AND lot_seq=%s",
            (e, ls),
        ).fetchall():
            seen.add(("sale", e, ss))
            other = ent(buyer)
            if other is None:
                continue
            for (ms,) in conn.execute(
                "SELECT record_seq FROM material_lots WHERE enterprise_id=%s"
                " AND supplier_credit_code=%s AND batch_no=%s",
                (other, me, code),
            ).fetchall():
                for (nl,) in conn.execute(
                    "SELECT record_seq FROM lot_inputs WHERE enterprise_id=%s"
                    " AND material_lot_seq=%s",
                    (other, ms),
                ).fetchall():
                    fwd(other, nl, d - 1)

    back(eid, lot_seq, depth + 1)
    fwd(eid, lot_seq, depth + 1)
    return len(seen)


def lot_seq_of(conn: psycopg.Connection, eid: int, code: str) -> int:
    return conn.execute(
        "SELECT record_seq FROM lots WHERE enterprise_id=%s AND code=%s", (eid, code)
    ).fetchone()[0]


def bench_trail(engine: Engine, dist: District, sc: Scale) -> Row:
    """Both ways from the middle of chain 0: 3 ledgers back, 3 forward (6 levels)."""
    mid = dist.ids[3]
    lots = [f"L{d:03d}" for d in range(sc.days)]
    core, naive = [], []
    conn = psycopg.connect(pg_url(engine), autocommit=True)
    nodes = 0
    for k in range(sc.latency_samples):
        lot = lots[k % len(lots)]
        with read_session(engine) as s:
            t = time.perf_counter()
            tr = lot_trail(session=s, enterprise_id=mid, lot_code=lot, direction="both", depth=6)
            core.append((time.perf_counter() - t) * 1e3)
        nodes = len(tr.nodes)
        t = time.perf_counter()
        naive_trail(conn, mid, lot_seq_of(conn, mid, lot), 6)
        naive.append((time.perf_counter() - t) * 1e3)
    conn.close()
    row = Row(
        "lot trail, backward + forward, 6 levels, cross-enterprise",
        "ms",
        statistics.median(core),
        p50=statistics.median(core),
        p95=pct(core, 0.95),
        baseline_name="naive traversal, one query per node (psycopg)",
        baseline=statistics.median(naive),
        baseline_p95=pct(naive, 0.95),
        target="p95 ≤ 20 ms",
        note=f"{sc.latency_samples} lots; {nodes} nodes in the trail",
    )
    row.met = row.p95 is not None and row.p95 <= 20
    return row


def bench_scope(engine: Engine, dist: District, sc: Scale) -> Row:
    """The recall scope of supplier batch FAN (enterprise 0): its sale into enterprise 1,
    the material lot there, ``fan_lots`` lots and their sales."""
    core, naive = [], []
    conn = psycopg.connect(pg_url(engine), autocommit=True)
    lots = sales = 0
    for _ in range(sc.repeat):
        with read_session(engine) as s:
            t = time.perf_counter()
            scope = recall_scope(session=s, enterprise_id=dist.ids[0], lot_code="FAN")
            core.append((time.perf_counter() - t) * 1e3)
        lots, sales = _scope_size(scope)
        t = time.perf_counter()
        naive_trail(conn, dist.ids[0], lot_seq_of(conn, dist.ids[0], "FAN"), 6)
        naive.append((time.perf_counter() - t) * 1e3)
    conn.close()
    row = Row(
        "failed-sample recall scope of a supplier batch",
        "ms",
        statistics.median(core),
        p50=statistics.median(core),
        p95=pct(core, 0.95),
        baseline_name="naive traversal, one query per node (forward + backward)",
        baseline=statistics.median(naive),
        target="≤ 250 ms",
        note=f"scope: {lots} lots, {sales} sales",
    )
    row.met = row.value is not None and row.value <= 250
    return row


def _scope_size(scope: Any) -> tuple[int, int]:
    return len(scope.lots), len(scope.sales)


def bench_completeness(engine: Engine, dist: District, sc: Scale) -> Row:
    since = YEAR
    until = YEAR + timedelta(days=min(30, sc.days))
    times = []
    for _ in range(sc.repeat):
        with read_session(engine) as s:
            times.append(
                timed(
                    lambda s=s: district_completeness(
                        session=s, enterprise_ids=dist.ids, since=since, until=until
                    )
                )
            )
    row = Row(
        f"district completeness, {(until - since).days} days, {len(dist.ids)} enterprises",
        "s",
        statistics.median(times),
        target="≤ 2 s",
    )
    row.met = row.value is not None and row.value <= 2
    return row


def bench_verify(engine: Engine, dist: District, sc: Scale, jobs: int) -> list[Row]:
    ids = dist.ids[7 : CHAIN * 2] or dist.ids[-3:]
    chain, sha, full, par = [], [], [], []
    total = 0
    for _ in range(sc.repeat):
        with read_session(engine) as s:
            t = time.perf_counter()
            n = 0
            for lid in ids:
                prev = bytes(32)
                for r in iter_entries(session=s, ledger_id=lid):
                    h = leaf_hash(r.body)
                    if bytes(r.prev_hash) != prev or bytes(r.hash) != h:
                        raise AssertionError(f"ledger {lid} entry {r.seq} does not chain")
                    prev = h
                    n += 1
            chain.append(n / (time.perf_counter() - t))
            total = n
            t = time.perf_counter()
            for lid in ids:
                for r in iter_entries(session=s, ledger_id=lid):
                    hashlib.sha256(r.body).digest()
            sha.append(n / (time.perf_counter() - t))
            t = time.perf_counter()
            for lid in ids:
                rep = verify_ledger(session=s, ledger_id=lid)
                assert not rep.problems, rep.problems[:3]
            full.append(n / (time.perf_counter() - t))
        # The same ledgers, one process each up to ``jobs``: the whole call, pool start included.
        t = time.perf_counter()
        reports = verify_parallel(engine=engine, processes=jobs, ledger_ids=ids)
        par.append(n / (time.perf_counter() - t))
        assert sum(r.entries_checked for r in reports) == n
        assert all(r.ok for r in reports), [r.problems[:3] for r in reports if not r.ok]
    a = Row(
        "chain verification: rehash stored bytes, check links",
        "entries/s",
        statistics.median(chain),
        baseline_name="SHA-256 alone over the same bytes, read the same way",
        baseline=statistics.median(sha),
        target="≥ 20 % of baseline",
        note=f"{len(ids)} ledgers, {total} entries, iter_entries batches",
    )
    a.met = (a.ratio or 0) >= 0.2
    b = Row(
        "full verification (verify_ledger), derived rows checked too, 1 process",
        "entries/s",
        statistics.median(full),
        target="≥ 50,000 entries/s",
        note=f"{len(ids)} ledgers, {total} entries, one after another in one process",
    )
    b.met = b.value is not None and b.value >= 50_000
    c = Row(
        f"full verification, the same ledgers in {min(jobs, len(ids))} processes (verify_parallel)",
        "entries/s",
        statistics.median(par),
        target="≥ 50,000 entries/s",
        note=f"{len(ids)} ledgers, {total} entries; {min(jobs, len(ids))} worker processes "
        f"on {os.cpu_count()} cores, pool start and one snapshot included",
    )
    c.met = c.value is not None and c.value >= 50_000
    return [a, b, c]


def bench_consumer(engine: Engine, dist: District, sc: Scale) -> Row:
    """The consumer page and QR PNG of lots never asked for before, in-process.

    Measured as the app serves them: each request sent to the ASGI app through
    ``httpx.ASGITransport`` on one event loop (the request, the middleware, the
    routing, the endpoint in the thread pool, the response). The same requests
    through ``starlette.testclient.TestClient`` add the test client's own thread
    portal (the client in one thread, the app's event loop in another, ~8
    cross-thread calls a request); that is measured too, interleaved, on other
    lots, and given in the note.
    """
    import asyncio

    import httpx
    from fastapi.testclient import TestClient

    from foodtrace.config import Settings
    from webapp.main import create_app

    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        signing_key_file=os.environ["TRACE_SIGNING_KEY_FILE"],
    )
    app = create_app(settings, clock=dist.clock)
    ledgers = min(len(dist.ids), CHAIN)
    # Distinct lots (ledger, day): the first n through the app, the next n (as many as
    # there are) through the test client; every sample is a lot never asked for before.
    n = sc.latency_samples
    lots = list(dict.fromkeys((k % ledgers, k % sc.days) for k in range(2 * n)))
    direct, through_tc = lots[:n], lots[n:]
    page: dict[str, list[float]] = {"app": [], "tc": []}
    png: dict[str, list[float]] = {"app": [], "tc": []}
    cpu: dict[str, list[float]] = {"page": [], "png": []}  # the process's, every thread
    first = []
    loop = asyncio.new_event_loop()
    with TestClient(app) as client:  # runs the lifespan (signer, prover, checkpointer)
        asgi = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )

        def get(how: str, path: str) -> httpx.Response:
            if how == "tc":
                return client.get(path)
            return loop.run_until_complete(asgi.get(path))

        # Warm up: templates compiled, each sampled ledger's checkpoint signed and its
        # tree read (once per ledger and signed size, like the templates), on a lot that
        # is not sampled: every sample is a lot whose page and code were never asked for.
        for i in range(ledgers):
            day = next((d for d in range(sc.days) if (i, d) not in lots), None)
            if day is None:
                continue
            t = time.perf_counter()
            get("app", f"/01/0{gtin13(i)}/10/L{day:03d}")
            get("app", f"/qr/01/0{gtin13(i)}/10/L{day:03d}.png")
            first.append((time.perf_counter() - t) * 1e3)
        # interleaved, so that the machine's load falls on both alike
        pairs = [("app", lot) for lot in direct]
        for k, lot in enumerate(through_tc):
            pairs.insert(2 * k + 1, ("tc", lot))
        for how, (i, day) in pairs:
            path = f"/01/0{gtin13(i)}/10/L{day:03d}"
            t, c = time.perf_counter(), time.process_time()
            r = get(how, path)
            page[how].append((time.perf_counter() - t) * 1e3)
            if how == "app":
                cpu["page"].append((time.process_time() - c) * 1e3)
            assert r.status_code == 200, (path, r.status_code, r.text[:200])
            t, c = time.perf_counter(), time.process_time()
            r = get(how, f"/qr{path}.png")
            png[how].append((time.perf_counter() - t) * 1e3)
            if how == "app":
                cpu["png"].append((time.process_time() - c) * 1e3)
            assert r.status_code == 200, (path, r.status_code, r.text[:200])
        loop.run_until_complete(asgi.aclose())
    loop.close()
    pg, pn = page["app"], png["app"]
    both = [a + b for a, b in zip(pg, pn, strict=True)]

    def p50_95(xs: list[float]) -> str:
        return f"{statistics.median(xs):.1f}/{pct(xs, 0.95):.1f}" if xs else "—"

    row = Row(
        "consumer page and QR PNG (in-process, the ASGI app on one event loop)",
        "ms",
        pct(pg, 0.95),
        p50=statistics.median(pg),
        p95=pct(pg, 0.95),
        target="p95 ≤ 15 ms each",
        note=f"page p50/p95 {p50_95(pg)} ms; PNG p50/p95 {p50_95(pn)} ms; "
        f"both p95 {pct(both, 0.95):.1f} ms; CPU time of the process a request p50 page "
        f"{statistics.median(cpu['page']):.1f}, PNG {statistics.median(cpu['png']):.1f} ms "
        f"(steadier than wall time on a loaded machine); through TestClient (its thread portal "
        f"added; {len(page['tc'])} other lots, interleaved) page {p50_95(page['tc'])}, "
        f"PNG {p50_95(png['tc'])} ms; every sample a lot not asked for before; "
        f"first page + PNG of each ledger (warm-up) max {max(first, default=0):.1f} ms",
    )
    row.met = max(pct(pg, 0.95), pct(pn, 0.95)) <= 15
    return row


# ---------------------------------------------------------------- report


def fmt(v: float | None) -> str:
    if v is None:
        return "—"
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.2f}"


def table(rows: list[Row]) -> str:
    out = [
        "| measure | unit | value (median) | p50 / p95 | baseline | baseline value | ratio "
        "| target | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lat = f"{fmt(r.p50)} / {fmt(r.p95)}" if r.p95 is not None else "—"
        base = fmt(r.baseline)
        if r.baseline_p95 is not None:
            base += f" (p95 {fmt(r.baseline_p95)})"
        ratio = f"{r.ratio:.0%}" if r.ratio is not None else "—"
        met = {True: "yes", False: "**no**", None: "—"}[r.met]
        out.append(
            f"| {r.name} | {r.unit} | {fmt(r.value)} | {lat} | {r.baseline_name} | {base} "
            f"| {ratio} | {r.target} | {met} |"
        )
    notes = [f"- {r.name}: {r.note}" for r in rows if r.note]
    return "\n".join(out + [""] + notes)


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        with open("/proc/meminfo") as f:
            info["mem_gb"] = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
        info["loadavg"] = os.getloadavg()
    except OSError:
        pass
    try:
        info["cpu"] = next(
            line.split(":", 1)[1].strip()
            for line in open("/proc/cpuinfo")
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return info


def run(args: argparse.Namespace) -> None:
    url = os.environ.get("TRACE_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        sys.exit("set TRACE_DATABASE_URL to a PostgreSQL database (postgresql+psycopg://…)")
    scale_name = "quick" if args.quick else args.scale
    sc = SCALES[scale_name]
    engine = make_engine(url)
    migrate(engine)
    # The checkpoint key of this bench database (servers refuse a database another key signed).
    RESULTS.mkdir(exist_ok=True)
    os.environ["TRACE_SIGNING_KEY_FILE"] = str(RESULTS / f"{engine.url.database}.signing.key")
    info = machine()
    with engine.connect() as c:
        info["postgresql"] = c.exec_driver_sql("SHOW server_version").scalar()
    say(f"bench {scale_name}: {sc}")
    say(f"machine {info}")
    if args.reuse:
        dist = District(engine, sc, args.reuse)
        entries, gen_s = dist.attach(), 0.0
        say(f"reusing run {args.reuse}: {len(dist.ids)} enterprises, {entries} entries")
    else:
        run_id = "".join(random.choice(CODE_CHARS) for _ in range(5))
        dist = District(engine, sc, run_id)
        t = time.perf_counter()
        entries = dist.generate(args.jobs)
        gen_s = time.perf_counter() - t
        say(f"generated run {run_id}: {len(dist.ids)} enterprises, {entries} entries in "
            f"{gen_s:.1f} s ({entries / gen_s:,.0f} entries/s through records.service.Batch, "
            f"{args.jobs} processes)")  # fmt: skip
    # Planner statistics for the data just written (or reused): a server with autovacuum on
    # gathers them within minutes; this machine's has it off, and unanalysed tables get
    # plans made for empty ones (seconds instead of milliseconds for some reads).
    t = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.exec_driver_sql("ANALYZE")
    say(f"ANALYZE in {time.perf_counter() - t:.1f} s")
    dist.clock.set(datetime(2026, 1, 1, 0, 0, tzinfo=UTC))
    rows: list[Row] = []
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("append", lambda: rows.append(bench_append(engine, dist, sc))),
        ("import", lambda: rows.append(bench_import(engine, dist, sc))),
        ("trail", lambda: rows.append(bench_trail(engine, dist, sc))),
        ("scope", lambda: rows.append(bench_scope(engine, dist, sc))),
        ("completeness", lambda: rows.append(bench_completeness(engine, dist, sc))),
        ("verify", lambda: rows.extend(bench_verify(engine, dist, sc, args.jobs))),
        ("consumer", lambda: rows.append(bench_consumer(engine, dist, sc))),
        ("http", lambda: rows.extend(bench_http(engine, dist, sc))),
    ]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for name, step in steps:
        if args.only and name not in args.only:
            continue
        say(f"measuring {name} …")
        try:
            if args.profile:
                profiled(engine, step, RESULTS / f"{scale_name}-{stamp}-profile-{name}.txt")
            else:
                step()
        except Exception as exc:  # a failed row is reported, the others still run
            traceback.print_exc()
            rows.append(Row(name, "", None, note=f"FAILED: {type(exc).__name__}: {exc}"[:300]))
    text = table(rows)
    say("")
    say(text)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{scale_name}{'-profiled' if args.profile else ''}-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "scale": scale_name,
                "parameters": sc.__dict__,
                "machine": info,
                "entries": entries,
                "generate_s": gen_s,
                "rows": [dict(r.__dict__, ratio=r.ratio) for r in rows],
            },
            ensure_ascii=False,
            indent=1,
        )
    )
    say(f"\nwritten {out}")
    engine.dispose()


def profiled(engine: Engine, step: Callable[[], Any], out: Path) -> None:
    """Run ``step`` under cProfile, counting the SQL statements the core's engine sends.

    Writes the statement count and the 30 functions with the most cumulative
    time to ``out``. Profiling slows Python down, so figures measured this way
    are for proportions, not for the table (``--profile`` marks the results file).
    """
    import cProfile
    import pstats

    from sqlalchemy import event

    statements: dict[str, int] = {}

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "?"
        statements[verb] = statements.get(verb, 0) + 1

    event.listen(engine, "before_cursor_execute", count)
    prof = cProfile.Profile()
    try:
        prof.runcall(step)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    buf = io.StringIO()
    buf.write(f"SQL statements through the core's engine: {statements}\n\n")
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(30)
    out.write_text(buf.getvalue())
    say(f"  profile: {out}")


def bench_http(engine: Engine, dist: District, sc: Scale) -> list[Row]:
    from bench.http import run_http

    return run_http(engine, dist, sc)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="district")
    parser.add_argument("--quick", action="store_true", help="the quick scale (< 1 minute)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="processes generating enterprises, and verifying ledgers in the verify row's "
        "parallel figure (default: one per core)",
    )
    parser.add_argument(
        "--only", nargs="*", help="measure only these rows (append import trail scope ...)"
    )
    parser.add_argument(
        "--reuse",
        metavar="RUN",
        help="measure the data of an earlier run (its 5-character id, printed as 'generated "
        "run …') instead of generating; the rows that write add to it",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run each row under cProfile and count its SQL statements; writes "
        "bench/results/<scale>-<time>-profile-<row>.txt (figures are then for proportions)",
    )
    run(parser.parse_args(argv))


_ = subprocess  # the HTTP row starts its server and load in other processes
