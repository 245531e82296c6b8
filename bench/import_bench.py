"""How fast a spreadsheet import runs: rows per second for a dry run and a real import.

Generates a beverage maker's ledger (product, supplier, customers, a material
lot, ``--lots`` production lots with passing release tests), then an XLSX (or
CSV) file of ``--rows`` sales or CCP readings spread over those lots, and
times :func:`foodtrace.imports.parse`, a dry run and the real import (one
write transaction, committed) of that file.

Run from the project root::

    .venv/bin/python -m bench.import_bench                      # temp SQLite file
    .venv/bin/python -m bench.import_bench --kind ccp_record
    createdb -h 127.0.0.1 -U postgres import_bench    # once
    TRACE_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/import_bench \\
        .venv/bin/python -m bench.import_bench --kind sale
    .venv/bin/python -m bench.import_bench --profile            # + cProfile hot spots

With ``TRACE_DATABASE_URL`` the database must exist; it is migrated and a new
enterprise (a fresh credit code) is registered in it on every run, so the
bench never touches other ledgers. Without it a temporary SQLite file is used
and removed. ``--lots 1`` puts every sale on one lot, the worst case for the
mass-balance check (a running total of the lot's other sales since session 6;
it summed every earlier sale for each sale before).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from sqlalchemy import Engine, event

from bench.common import product
from foodtrace import imports
from foodtrace.accounts.service import init_platform
from foodtrace.clock import SimulatedClock
from foodtrace.db import make_engine, migrate, write_session
from foodtrace.records.service import record, register_enterprise
from schemas.identifiers import credit_code_check_char
from schemas.records import RecordKind

START = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
CST_NAIVE = timedelta(hours=8)


def say(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def random_credit_code() -> str:
    body = "91370404" + "".join(random.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(9))
    return body + credit_code_check_char(body)


def setup_ledger(engine: Engine, clock: SimulatedClock, lots: int) -> int:
    """A beverage maker with master data and ``lots`` released lots; returns its ledger id."""
    with write_session(engine) as s:
        init_platform(session=s, name="trace.example.cn", now=clock.now())
        ent = register_enterprise(
            session=s,
            data={
                "credit_code": random_credit_code(),
                "name": "枣庄峄城石榴饮品有限公司（基准测试）",
                "kind": "manufacturer",
                "licence_no": "SC10637040400012",
                "region_code": "370404",
                "address": "山东省枣庄市峄城区榴园路 8 号",
                "contact": "0632-7711234",
            },
            actor="bench",
            clock=clock,
        )
    from foodtrace.ledger.service import get_ledger

    with write_session(engine) as s:
        lid = get_ledger(session=s, credit_code=ent.body["credit_code"]).id
        assert lid is not None

        def add(kind: str, data: dict[str, Any]) -> None:
            record(session=s, ledger_id=lid, kind=kind, data=data, actor="bench", clock=clock)

        add("product", product())
        add(
            "supplier",
            {"code": "SUGAR01", "name": "枣庄鲁南糖业有限公司", "address": "枣庄", "contact": "1"},
        )
        for c in range(20):
            add(
                "customer",
                {"code": f"C{c:02d}", "name": f"经销商{c:02d}", "address": "枣庄", "contact": "1"},
            )
        add(
            "material_check",
            {
                "material_lot": "ML-1",
                "material_name": "白砂糖",
                "material_type": "raw_material",
                "specification": "50 kg/袋",
                "quantity": "1000000",
                "unit": "kg",
                "batch_no": "BT1",
                "shelf_life": "24个月",
                "receipt_date": "2026-02-28",
                "supplier_code": "SUGAR01",
                "supplier_licence_checked": False,
                "certificate_no": "HG-1",
                "accepted": True,
                "inspector": "王敏",
            },
        )
        for n in range(lots):
            add(
                "production_lot",
                {
                    "product_code": "PJ500",
                    "lot_code": f"L{n:04d}",
                    "production_date": "2026-03-01",
                    "started_at": "2026-03-01T08:00:00+08:00",
                    "ended_at": "2026-03-01T11:00:00+08:00",
                    "quantity": "100000",
                    "unit": "箱",
                    "materials": [{"material_lot": "ML-1", "quantity": "1", "unit": "kg"}],
                },
            )
            add(
                "release_test",
                {
                    "lot_code": f"L{n:04d}",
                    "tested_at": "2026-03-01T12:00:00+08:00",
                    "items": [
                        {"item": "菌落总数", "result": "10", "limit": "≤100", "passed": True}
                    ],
                    "conclusion": "pass",
                    "inspector": "赵丽",
                    "report_no": f"JC-{n}",
                },
            )
    return lid


def make_rows(kind: RecordKind, rows: int, lots: int) -> list[list[Any]]:
    """Spreadsheet rows (typed cells, as Excel would hold them) for ``kind``."""
    out: list[list[Any]] = []
    for i in range(rows):
        lot = f"L{i % lots:04d}"
        if kind == RecordKind.SALE:
            out.append([lot, 1 + i % 7, "箱", date(2026, 3, 1), f"C{i % 20:02d}", f"CK-{i}"])
        else:
            at = (START + CST_NAIVE + timedelta(seconds=i)).replace(tzinfo=None)
            out.append([lot, "CCP1", "temperature", 85.5 + (i % 30) / 10, "°C", at, "李强"])
    return out


HEADERS = {
    RecordKind.SALE: ["生产批号", "数量", "单位", "销售日期", "客户编码", "单据号"],
    RecordKind.CCP_RECORD: [
        "生产批号",
        "关键控制点",
        "监控参数",
        "测量值",
        "单位",
        "监控时间",
        "监控人",
    ],
}


def make_file(kind: RecordKind, rows: list[list[Any]], fmt: str) -> bytes:
    if fmt == "csv":
        import csv

        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(HEADERS[kind])
        for r in rows:
            w.writerow([str(v) if isinstance(v, date) else v for v in r])  # datetime: "… 08:00:00"
        return buf.getvalue().encode("utf-8-sig")
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(imports.title(kind))
    ws.append(HEADERS[kind])
    for r in rows:
        ws.append(r)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def count_statements(engine: Engine) -> Counter[str]:
    counts: Counter[str] = Counter()

    @event.listens_for(engine, "before_cursor_execute")
    def _count(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        counts[statement.split(None, 1)[0].upper()] += 1

    return counts


def _tenths(start: float, marks: list[tuple[int, float]]) -> str:
    """Time per row in each tenth of the file: a rising figure means a per-row cost that grows."""
    if not marks:
        return "-"
    total = marks[-1][0]
    out, last_n, last_t = [], 0, start
    for n, t in marks:
        if n - last_n >= total / 10 or n == total:
            out.append(f"{(t - last_t) / (n - last_n) * 1e3:.2f}")
            last_n, last_t = n, t
    return " ".join(out)


def run(args: argparse.Namespace) -> None:
    url = os.environ.get("TRACE_DATABASE_URL")
    tmp = None
    if not url:
        tmp = tempfile.TemporaryDirectory(prefix="import-bench-")
        url = f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    engine = make_engine(url)
    try:
        migrate(engine)
        clock = SimulatedClock(datetime(2026, 3, 2, 0, 30, tzinfo=UTC))
        kind = RecordKind(args.kind)
        say(f"database   {engine.url.render_as_string(hide_password=True)}")
        t = time.perf_counter()
        lid = setup_ledger(engine, clock, args.lots)
        say(f"setup      ledger {lid}, {args.lots} released lots ({time.perf_counter() - t:.1f} s)")
        content = make_file(kind, make_rows(kind, args.rows, args.lots), args.format)
        name = f"bench.{args.format}"
        say(f"file       {args.rows} {kind} rows, {args.format}, {len(content) / 1e6:.2f} MB")

        t = time.perf_counter()
        parsed = imports.parse(kind, name, content)
        dt = time.perf_counter() - t
        assert not parsed.errors, parsed.errors[:5]
        say(f"parse      {dt:6.2f} s  {args.rows / dt:8.0f} rows/s")

        statements = count_statements(engine)
        for dry_run in (True, False):
            statements.clear()
            profile = cProfile.Profile() if args.profile and not dry_run else None
            marks: list[tuple[int, float]] = []
            t = time.perf_counter()
            with write_session(engine) as session:
                if profile:
                    profile.enable()
                result = imports.run_import(
                    session=session,
                    ledger_id=lid,
                    kind=kind,
                    parsed=parsed,
                    actor="bench",
                    clock=clock,
                    dry_run=dry_run,
                    progress=lambda done, _total, marks=marks: marks.append(
                        (done, time.perf_counter())
                    ),
                )
                if profile:
                    profile.disable()
            dt = time.perf_counter() - t
            assert not result.errors, result.errors[:5]
            per_row = {k: round(v / args.rows, 2) for k, v in statements.most_common()}
            label = "dry run" if dry_run else "import"
            say(
                f"{label:10s} {dt:6.2f} s  {args.rows / dt:8.0f} rows/s  "
                f"({dt / args.rows * 1e3:.2f} ms/row; written {result.written}; "
                f"SQL per row {per_row})"
            )
            say(f"           ms/row by tenth of the file: {_tenths(t, marks)}")
            if profile:
                say("\ncProfile of the real import, by cumulative time (foodtrace, rfc8785, DB):")
                out = io.StringIO()
                stats = pstats.Stats(profile, stream=out)
                stats.sort_stats(os.environ.get("PROFILE_SORT", "cumulative")).print_stats(
                    r"foodtrace|rfc8785|orm/session.py.*\(execute\)|cursor|pydantic/main", 25
                )
                say(out.getvalue())
    finally:
        engine.dispose()
        if tmp is not None:
            tmp.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--kind", choices=["sale", "ccp_record"], default="sale")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--lots", type=int, default=100, help="lots the rows are spread over")
    parser.add_argument("--format", choices=["xlsx", "csv"], default="xlsx")
    parser.add_argument("--profile", action="store_true", help="cProfile the real import")
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
