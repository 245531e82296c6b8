"""The demo district's ledgers, derived tables, OpenAPI document and import templates are
byte-identical to the recorded golden pictures (tests/golden.py says how to rewrite them)."""

from __future__ import annotations

import os

import golden
from schemas.types import format_instant

WRITE = os.environ.get("FOODTRACE_GOLDEN_WRITE") == "1"


def _compare(section: str, now: dict[str, str]) -> None:
    if WRITE:
        golden.write(section, now)
        return
    before = golden.recorded().get(section)
    assert before is not None, f"no golden picture {section!r}: see tests/golden.py"
    changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    assert not changed, f"{section}: changed since the golden picture: {changed}"


def test_the_demo_district_writes_the_same_bytes(engine, dialect, monkeypatch) -> None:
    from conftest import DEMO_TODAY
    from foodtrace.demo import load_demo

    golden.deterministic_salts(monkeypatch)
    load_demo(engine=engine, today=DEMO_TODAY)
    _compare(f"tables.{dialect}", golden.picture(engine))


def test_the_openapi_document_and_import_templates_are_unchanged() -> None:
    _compare("published", golden.published())


def test_a_world_with_a_case_writes_the_same_bytes(
    client, engine, clock, dialect, monkeypatch
) -> None:
    """A random world (tests/worlds.py) whose maker's lot fails a sample: the case is
    notified (publishing its recall), every concerned enterprise notifies its customers
    and declares its recall complete, and the regulator verifies and closes it; the
    authority tables the demo leaves empty are then filled."""
    import worlds
    from test_case_views import _bearer, _users

    golden.deterministic_salts(monkeypatch)
    world = worlds.build(engine, clock, 3)
    _users(engine, clock, world)
    maker = world.makers()[0]
    reg = _bearer(client, "reg")
    sample = {
        "credit_code": maker.credit_code, "lot_code": maker.lots[0], "test_item": "菌落总数",
        "result": "15000", "limit": "≤100", "sampling_date": "2026-03-01", "report_no": "SJ-G",
    }  # fmt: skip
    r = client.post("/api/v1/failed-samples", headers=reg, json=sample)
    assert r.status_code == 201, r.text
    case = r.json()["id"]
    r = client.post(f"/api/v1/cases/{case}/steps", headers=reg, json={"state": "notified"})
    assert r.status_code == 200, r.text
    for ent in world.ents.values():
        who = _bearer(client, ent.key.lower())
        mine = client.get(f"/api/v1/enterprise/cases/{case}", headers=who)
        if mine.status_code == 404:
            continue
        for lot in sorted({x["lot_code"] for x in mine.json()["lots"]}):
            r = client.post(
                f"/api/v1/enterprise/cases/{case}/notify-all", headers=who,
                json={"lot_code": lot, "at": format_instant(clock.now()), "note": "电话通知"},
            )  # fmt: skip
            assert r.status_code in (200, 201), r.text
    assert golden.picture(engine)["recall_actions"].split(":")[0] != "0"
    _compare(f"world3.{dialect}", golden.picture(engine))
