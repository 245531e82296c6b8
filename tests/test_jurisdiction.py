"""The regulator's jurisdiction is checked in one place (regulator_view/deps.py), and every
route of the regulator's portal goes through it: from the route table, that each route takes
a jurisdiction dependency and gets the read log only with it, and that a route that writes
commits before its reads are logged; from the source, that nothing else in regulator_view
checks a region or takes the read log itself; and, by calling them, that the page forms
commit through the request's write session and that a refused one changes nothing."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from fastapi.routing import APIRoute
from sqlalchemy import select

from conftest import ACCESS_PASSWORD as PASSWORD
from foodtrace.accounts.models import RegulatorRead
from foodtrace.db import read_session
from foodtrace.ledger.models import Entry
from regulator_view.deps import JURISDICTIONS
from regulator_view.reads import regulator_reads
from schemas.records import CASE_ID_PATTERN
from web.deps import get_write_session
from web.web import SESSION_COOKIE, csrf_token

import factories as f

PACKAGE = Path(__file__).resolve().parents[1] / "regulator_view"


def _routes(app: Any) -> list[tuple[str, APIRoute]]:
    """Every (path, route) of the app, included routers walked (as test_access does)."""

    def walk(items: Any, prefix: str = "") -> Any:
        for r in items:
            if hasattr(r, "original_router"):
                ctx = r.include_context
                yield from walk(r.original_router.routes, prefix + (ctx.prefix or ""))
            elif isinstance(r, APIRoute):
                yield prefix + r.path, r

    return list(walk(app.routes))


def _regulator_routes(app: Any) -> dict[str, APIRoute]:
    return {
        f"{sorted(r.methods)} {path}": r
        for path, r in _routes(app)
        if r.endpoint.__module__.startswith("regulator_view.")
    }


def _calls(dependant: Any) -> Any:
    """(parent, dependency) for every dependency of the tree, parent first."""
    for d in dependant.dependencies:
        yield dependant.call, d.call
        yield from _calls(d)


def _entered(dependant: Any) -> list[Any]:
    """The dependencies in the order FastAPI enters them (each sub-dependency before the one
    that takes it, parameters in order, each once): they are closed in the reverse order."""
    order: list[Any] = []

    def walk(d: Any) -> None:
        for sub in d.dependencies:
            walk(sub)
            if sub.call not in order:
                order.append(sub.call)

    walk(dependant)
    return order


def test_every_regulator_route_takes_the_jurisdiction(app) -> None:
    routes = _regulator_routes(app)
    assert len(routes) >= 20, sorted(routes)  # the route table, not a few picked by hand
    # nothing under the regulator's prefixes escapes the walk by living elsewhere
    elsewhere = sorted(
        path
        for path, r in _routes(app)
        if path.startswith(("/regulator", "/api/v1/regulator"))
        and not r.endpoint.__module__.startswith("regulator_view.")
    )
    assert not elsewhere, f"regulator routes outside regulator_view: {elsewhere}"
    without = sorted(
        name
        for name, r in routes.items()
        if not {call for _parent, call in _calls(r.dependant)} & set(JURISDICTIONS)
    )
    assert not without, f"regulator routes that do not take the jurisdiction: {without}"


def test_the_read_log_comes_only_with_the_jurisdiction(app) -> None:
    """A handler reaches the read log through its jurisdiction only, so that what it reads
    and where the reads are logged are one object."""
    direct = sorted(
        f"{name} (taken by {getattr(parent, '__name__', parent)})"
        for name, r in _regulator_routes(app).items()
        for parent, call in _calls(r.dependant)
        if call is regulator_reads and parent not in JURISDICTIONS
    )
    assert not direct, f"the read log taken apart from a jurisdiction: {direct}"


def test_a_route_that_writes_commits_before_its_reads_are_logged(app) -> None:
    """The read log is written in a transaction of its own when its dependency closes; the
    request's write session must close (commit or roll back) first: on SQLite the log would
    otherwise wait for the request's own write lock, and a case is committed before the
    read of its scope is logged."""
    writing = {
        name: _entered(r.dependant)
        for name, r in _regulator_routes(app).items()
        if get_write_session in _entered(r.dependant)
    }
    assert len(writing) >= 4, sorted(writing)  # two API routes and two forms
    wrong = sorted(
        name
        for name, order in writing.items()
        if order.index(regulator_reads) > order.index(get_write_session)
    )
    assert not wrong, f"the write session is opened before the read log (so closed after): {wrong}"


# Names only regulator_view/deps.py may import: the region check itself, the read log, and
# the web layer's regulator dependencies that hand out an authority without the log.
ONLY_IN_DEPS = {
    "covers",
    "region_covers",
    "regulator_reads",
    "RegulatorReadsDep",
    "CurrentRegulator",
    "current_regulator",
    "RegulatedEnterprise",
    "regulated_enterprise",
}


def test_no_module_of_the_portal_checks_a_region_itself() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name in ("deps.py", "reads.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module != "regulator_view.deps":
                found += [
                    f"{path.name}:{node.lineno} imports {a.name}"
                    for a in node.names
                    if a.name in ONLY_IN_DEPS
                ]
            elif isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                owner = getattr(getattr(node.func, "value", None), "id", None)
                if name in ("covers", "region_covers") and owner != "jurisdiction":
                    found.append(f"{path.name}:{node.lineno} calls {name}")
    assert not found, found


def _ledger_bytes(engine: Any) -> list[tuple[int, int, bytes]]:
    with read_session(engine) as s:
        rows = s.execute(
            select(Entry.ledger_id, Entry.seq, Entry.body).order_by(Entry.ledger_id, Entry.seq)
        )
        return [(lid, seq, bytes(body)) for lid, seq, body in rows]


def _reads(engine: Any, enterprise_id: int) -> list[str]:
    with read_session(engine) as s:
        return list(
            s.execute(
                select(RegulatorRead.what)
                .where(RegulatorRead.enterprise_id == enterprise_id)
                .order_by(RegulatorRead.id)
            ).scalars()
        )


SAMPLE = {
    "credit_code": f.BEVERAGE,
    "lot_code": "PJ20260301A",
    "test_item": "菌落总数",
    "result": "3200",
    "limit": "≤100",
    "sampling_date": "2026-03-02",
    "report_no": "SJ-1",
}


def test_the_case_forms_commit_through_the_request_and_a_refused_one_changes_nothing(
    app, client, engine, world
) -> None:
    web = type(client)(app, follow_redirects=False)
    with web:
        r = f.page_login(web, "reg_in", PASSWORD)
        assert r.status_code in (200, 303), r.text
        token = csrf_token(web.cookies[SESSION_COOKIE])

        # refused: no such lot; then a step the case cannot take from where it is
        before = _ledger_bytes(engine)
        refused = {**SAMPLE, "lot_code": "NO-SUCH", "csrf_token": token}
        got = web.post("/regulator/cases", data=refused)
        assert got.status_code == 422, got.text[:500]
        assert _ledger_bytes(engine) == before

        got = web.post("/regulator/cases", data={**SAMPLE, "csrf_token": token})
        assert got.status_code == 303, got.text[:500]
        case_url = got.headers["location"]
        assert re.fullmatch("/regulator/cases/" + CASE_ID_PATTERN.strip("^$"), case_url)
        opened = _ledger_bytes(engine)
        assert opened[: len(before)] == before
        assert len(opened) > len(before)
        assert web.get(case_url).status_code == 200  # committed before the redirect was sent

        step = {"state": "recall_underway", "csrf_token": token}  # only once recall recorded
        got = web.post(f"{case_url}/step", data=step)
        assert got.status_code == 422, got.text[:500]
        assert _ledger_bytes(engine) == opened

        step = {"state": "notified", "csrf_token": token}
        got = web.post(f"{case_url}/step", data=step)
        assert got.status_code == 200
        assert 'id="confirm"' in got.text  # asked again first
        assert _ledger_bytes(engine) == opened
        got = web.post(f"{case_url}/step", data={**step, "confirm": "1"})
        assert got.status_code == 303, got.text[:500]
        notified = _ledger_bytes(engine)
        assert notified[: len(opened)] == opened
        assert len(notified) > len(opened)


def test_the_api_commits_the_case_before_logging_the_read_of_its_scope(
    client, engine, world
) -> None:
    headers = f.bearer(client, "reg_in", PASSWORD)
    before = _reads(engine, world["a"])
    r = client.post("/api/v1/failed-samples", headers=headers, json=SAMPLE)
    assert r.status_code == 201, r.text
    case_id = r.json()["id"]
    assert _reads(engine, world["a"]) == [*before, f"case {case_id}: recall scope"]
    assert client.get(f"/api/v1/cases/{case_id}", headers=headers).status_code == 200
    r = client.post(f"/api/v1/cases/{case_id}/steps", headers=headers, json={"state": "notified"})
    assert r.status_code == 200, r.text
    assert _reads(engine, world["a"])[-2:] == [f"case {case_id}", f"case {case_id}: notified"]
    # refused: the step is not the regulator's to take; nothing is written, nothing logged
    written, logged = _ledger_bytes(engine), _reads(engine, world["a"])
    r = client.post(
        f"/api/v1/cases/{case_id}/steps", headers=headers, json={"state": "recall_recorded"}
    )
    assert r.status_code == 422, r.text
    assert _ledger_bytes(engine) == written
    assert _reads(engine, world["a"]) == logged


def test_an_enterprise_outside_the_jurisdiction_is_answered_as_one_that_does_not_exist(
    app, client, engine, world
) -> None:
    """404 in the same words for an enterprise of the next district and for none at all."""
    unknown = "91370404MA3000000X"
    headers = f.bearer(client, "reg_out", PASSWORD)
    for code in (f.BEVERAGE, unknown):
        for url in (
            f"/api/v1/regulator/enterprises/{code}/verify",
            f"/api/v1/lots/{code}/PJ20260301A/trail",
            f"/api/v1/lots/{code}/PJ20260301A/trail.csv",
        ):
            r = client.get(url, headers=headers)
            assert r.status_code == 404, (url, r.text)
            assert r.json() == {"detail": f"no enterprise {code} in your jurisdiction"}, url
    web = type(client)(app)
    with web:
        f.page_login(web, "reg_out", PASSWORD)
        for code in (f.BEVERAGE, unknown):
            message = f"no enterprise {code} in your jurisdiction"
            r = web.get(f"/regulator/lots/{code}/PJ20260301A")
            assert r.status_code == 404
            assert message in r.text
            r = web.get(f"/regulator/trail?credit_code={code}&lot=PJ20260301A")
            assert r.status_code == 200  # the trail form again, saying why there is no trail
            assert f"辖区内没有企业 {code}。" in r.text  # in the page's language
            r = web.get(f"/regulator/trail/export.csv?credit_code={code}&lot=PJ20260301A")
            assert r.status_code == 404
            assert message in r.text
    assert _reads(engine, world["a"]) == []  # and nothing of A was read
