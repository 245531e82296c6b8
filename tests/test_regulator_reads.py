"""Every regulator read of an enterprise's records leaves a line in that enterprise's list of
regulator reads (issue 22, item 11): the test walks the regulator's GET routes, so a new
route is either called here or named as reading no enterprise's records."""

from __future__ import annotations

import re
from typing import Any

from fastapi.routing import APIRoute
from sqlalchemy import func, select

from conftest import ACCESS_PASSWORD as PASSWORD
from foodtrace.accounts.models import RegulatorRead
from foodtrace.db import read_session
from regulator_view.reads import regulator_reads

import factories as f

# Each GET route that reads enterprise A's records, with the calls that read them (the
# lot PJ20260301A of A, GTIN 6921234560013). A route's every way in is called: find by lot,
# by GTIN, by product name.
CALLS: dict[str, list[str]] = {
    "/api/v1/regulator/lots": [
        "?lot=PJ20260301A",
        "?gtin=06921234560013",
        "?product=%E7%9F%B3%E6%A6%B4",  # 石榴
    ],
    "/api/v1/regulator/verify": [""],
    "/api/v1/regulator/enterprises/{credit_code}/verify": [""],
    "/api/v1/lots/{credit_code}/{lot_code}/trail": [""],
    "/api/v1/lots/{credit_code}/{lot_code}/trail.{fmt}": ["csv", "xlsx", "epcis.jsonld"],
    "/api/v1/completeness": ["?since=2026-02-01&until=2026-03-31"],
    "/api/v1/cases/{case_id}": [""],
    "/api/v1/cases/{case_id}/scope.{fmt}": ["xlsx", "epcis.jsonld"],
    # the desk: the district's completeness (open cases, enterprises behind); the look-up
    "/regulator": [""],
    "/regulator/lots": ["?q=pj20260301a"],
    "/regulator/lots/suggest": ["?q=PJ-20260301A"],
    "/regulator/trail": [
        "?credit_code={credit_code}&lot=PJ20260301A",
        "?gtin=06921234560013",
        "?product=%E7%9F%B3%E6%A6%B4",
    ],
    "/regulator/trail/export.{ext}": ["csv", "xlsx", "epcis.jsonld"],
    "/regulator/completeness": ["?since=2026-02-01&until=2026-03-31"],
    "/regulator/verify": ["?run=1"],
    "/regulator/lots/{credit_code}/{lot_code}": [""],
    "/regulator/cases/{case_id}": [""],
    "/regulator/cases/{case_id}/scope.{ext}": ["xlsx", "epcis.jsonld"],
    # the proofs of a private entry (platform_portal/ledgers.py logs a regulator's)
    "/api/v1/ledgers/{credit_code}/proof/inclusion": ["?seq=1"],
    "/api/v1/ledgers/{credit_code}/entries/{seq}/tlog-proof": [""],
}
TRAIL_QUERY = "?credit_code={credit_code}&lot=PJ20260301A"

NOT_READING = {
    # the jurisdiction's enterprises: their registration (name, code, region) and ledger size
    "/api/v1/regulator/enterprises",
    # the authority's own cases: its own ledger (the failed samples it recorded)
    "/api/v1/cases",
    "/regulator/cases",
}


def _get_routes(app: Any) -> list[APIRoute]:
    def walk(items: Any, prefix: str = "") -> Any:
        for r in items:
            if hasattr(r, "original_router"):
                ctx = r.include_context
                yield from walk(r.original_router.routes, prefix + (ctx.prefix or ""))
            elif isinstance(r, APIRoute) and "GET" in r.methods:
                yield prefix + r.path, r

    return list(walk(app.routes))


def _takes_the_log(route: APIRoute) -> bool:
    def calls(dependant: Any) -> Any:
        for d in dependant.dependencies:
            yield d.call
            yield from calls(d)

    return regulator_reads in set(calls(route.dependant))


def _reads(engine: Any, enterprise_id: int) -> int:
    with read_session(engine) as s:
        return s.execute(
            select(func.count())
            .select_from(RegulatorRead)
            .where(RegulatorRead.enterprise_id == enterprise_id)
        ).scalar_one()


def test_every_regulator_read_of_enterprise_records_is_logged(app, client, engine, world) -> None:
    regulator_routes = {
        path: r
        for path, r in _get_routes(app)
        if r.endpoint.__module__.startswith("regulator_view.")
    }
    unknown = sorted(set(regulator_routes) - set(CALLS) - NOT_READING)
    assert not unknown, f"regulator GET routes neither called here nor said not to read: {unknown}"
    # the regulator's routes that read records take the one dependency that logs them
    without = sorted(p for p in set(CALLS) & set(regulator_routes) if not _takes_the_log(
        regulator_routes[p]))  # fmt: skip
    assert not without, f"regulator routes reading records without the read log: {without}"

    headers = f.bearer(client, "reg_in", PASSWORD)
    case_id = f.notified_case(client, headers)
    params = {
        "credit_code": f.BEVERAGE,
        "lot_code": "PJ20260301A",
        "case_id": case_id,
        "seq": "1",
    }
    web = type(client)(app)
    with web:
        r = f.page_login(web, "reg_in", PASSWORD)
        assert r.status_code in (200, 303), r.text
        unlogged = []
        for path, variants in CALLS.items():
            for variant in variants:
                fill = {**params, "fmt": variant, "ext": variant}
                url = re.sub(r"\{(\w+)\}", lambda m, fill=fill: fill[m.group(1)], path)
                if variant.startswith("?"):
                    url += variant.format(**params)
                elif path.startswith("/regulator/trail/"):
                    url += TRAIL_QUERY.format(**params)
                before = _reads(engine, world["a"])
                if path.startswith("/api/"):
                    got = client.get(url, headers=headers)
                else:
                    got = web.get(url)
                assert got.status_code == 200, f"{url}: {got.status_code} {got.text[:300]}"
                if _reads(engine, world["a"]) <= before:
                    unlogged.append(url)
    assert not unlogged, f"regulator reads of A's records that A cannot see: {unlogged}"


def test_a_read_the_enterprise_cannot_see_names_what_was_read(client, world) -> None:
    """The line tells the enterprise which view read its records (here: a find by GTIN)."""
    headers = f.bearer(client, "reg_in", PASSWORD)
    r = client.get("/api/v1/regulator/lots?gtin=06921234560013", headers=headers)
    assert r.status_code == 200
    assert [x["lot_code"] for x in r.json()] == ["PJ20260301A"]
    own = f.bearer(client, "ent_a", PASSWORD)
    lines = client.get("/api/v1/enterprise/reads", headers=own).json()
    assert lines[0]["username"] == "reg_in"
    assert "gtin=06921234560013" in lines[0]["what"]
