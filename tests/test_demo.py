"""The demo district: deterministic, verifies on both databases, and holds its special lots;
and the README's run command serves it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from foodtrace import cli
from foodtrace.db import read_session
from foodtrace.demo import DEMO_LOTS, DEMO_PASSWORD, DEMO_USERS, load_demo
from foodtrace.ledger.models import Entry
from foodtrace.records.models import Lot, MaterialLot
from foodtrace.records.queries import lot_view
from foodtrace.verify import verify_all

ROOT = Path(__file__).resolve().parents[1]


def _codes(engine) -> tuple[list[str], list[str], list[tuple[str, int]]]:
    with read_session(engine) as s:
        lots = sorted(s.execute(select(Lot.code)).scalars())
        materials = sorted(s.execute(select(MaterialLot.code)).scalars())
        counts = sorted(s.execute(select(Entry.kind, func.count()).group_by(Entry.kind)).all())
    return lots, materials, [tuple(c) for c in counts]


def test_demo_loads_verifies_and_shows_what_it_promises(engine, monkeypatch, db_url) -> None:
    from datetime import date

    summary = load_demo(engine=engine, today=date(2026, 11, 1))
    assert summary.entries > 2000
    assert [u for u, *_ in summary.users] == [u for u, *_ in DEMO_USERS]
    with read_session(engine) as s:
        reports = verify_all(session=s)
        assert len(reports) == 5
        assert all(r.ok for r in reports), [r.first for r in reports if not r.ok]
        lots, materials, counts = _codes(engine)
        for code in DEMO_LOTS:
            assert code in lots or code in materials, code
        juice = summary.ledgers[1]
        ids = {c: i + 1 for i, (c, _, _) in enumerate(summary.ledgers)}
        beverage = lot_view(session=s, enterprise_id=ids[juice[0]], lot_code="PJ-D19")
        assert beverage.sales[0]["released"] is False
        dairy = next(c for c, n, _ in summary.ledgers if "乳业" in n)
        assert lot_view(session=s, enterprise_id=ids[dairy], lot_code="MK-D24").open_deviations == 1
        corrected = lot_view(session=s, enterprise_id=ids[dairy], lot_code="MK-D08")
        assert corrected.corrections
    kinds = dict(counts)
    for kind in (
        "material_check",
        "production_lot",
        "ccp_record",
        "corrective_action",
        "release_test",
        "sale",
        "self_inspection",
        "correction",
    ):
        assert kinds.get(kind, 0) >= 1, kind
    # Every demo release test passes and releases its lot: one public declaration each.
    assert kinds["public_declaration"] == kinds["release_test"]
    # Deterministic: the same lots, material lots and entry counts as a recorded load.
    assert len(lots) == 102
    assert lots[:3] == ["BF-D01", "BF-D02", "BF-D03"]
    # The CLI verifies the demo and then names a tampered entry.
    monkeypatch.setenv("TRACE_DATABASE_URL", db_url)
    result = CliRunner().invoke(cli.app, ["verify"])
    assert result.exit_code == 0, result.output
    with engine.begin() as conn:
        conn.execute(Lot.__table__.update().where(Lot.code == "PJ-D12").values(quantity="1"))
    result = CliRunner().invoke(cli.app, ["verify"])
    assert result.exit_code == 1
    assert re.search(
        r"FAIL  91370404MA3F42206T  first bad entry: seq \d+ \(derived\)", result.output
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_demo_on_sqlite_answers_the_api(tmp_path) -> None:
    """`foodtrace serve --demo`, as README's run command does, on a fresh SQLite file."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACE_")}
    foodtrace = Path(sys.executable).with_name("foodtrace")
    proc = subprocess.Popen(
        [str(foodtrace), "serve", "--demo", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"serve exited: {proc.stdout.read()}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail("serve did not answer within 120 s")
        r = httpx.post(
            f"{base}/api/v1/auth/token", data={"username": "juice-op", "password": DEMO_PASSWORD}
        )
        assert r.status_code == 200
        h = {"Authorization": f"Bearer {r.json()['access_token']}"}
        lot = httpx.get(f"{base}/api/v1/lots/PJ-D12", headers=h).json()
        assert lot["product"]["gtin"] == "06921234560013"
        assert httpx.get(f"{base}/api/v1/ledger/verify", headers=h).json()["ok"] is True
        assert (tmp_path / "foodtrace.db").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
