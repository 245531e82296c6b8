"""Out-of-range integers, dates and instants in URLs: a 404 or a 422 naming the parameter,
never a server error. Every integer, date and date-time parameter of every operation in the
app's OpenAPI document, and of every page (from ``app.routes``), is tried at its extremes
as a user its access rule admits, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import types
import typing
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from conftest import ACCESS_PASSWORD
from test_access import PARAMS, QUERY, RULES

import factories as f

INTS = [0, -1, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 10**30, "9" * 5000]
DATES = ["0001-01-01", "0001-01-02", "9999-12-30", "9999-12-31"]
INSTANTS = [
    f"{day}T{time}{offset}"
    for day, time in (("0001-01-01", "00:00:00"), ("9999-12-31", "23:59:59"))
    for offset in ("+14:00", "-12:00", "Z")
]
EXTREMES = {"integer": INTS, "date": DATES, "date-time": INSTANTS}
OUT_OF_RANGE = {str(v) for v in INTS[3:]} | set(DATES) | set(INSTANTS)
"""The extremes no parameter admits: past PostgreSQL's integer, or dates whose neighbours
(a day, a year, ±14 h) a calendar cannot hold."""
CALLERS = ("ent_a", "ent_a_admin", "reg_in", "admin")


def _kind(schema: dict[str, Any]) -> str | None:
    """integer, date or date-time for a parameter's schema (an Optional's too), else None."""
    for s in [schema, *schema.get("anyOf", [])]:
        if s.get("type") == "integer":
            return "integer"
        if s.get("type") == "string" and s.get("format") in ("date", "date-time"):
            return s["format"]
    return None


def _annotation_kind(annotation: Any) -> str | None:
    """The same for a page parameter's Python annotation."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        kinds = {_annotation_kind(a) for a in typing.get_args(annotation)} - {None}
        return kinds.pop() if len(kinds) == 1 else None
    if annotation is int:
        return "integer"
    if annotation is datetime:
        return "date-time"
    if annotation is date:
        return "date"
    return None


def _params(dependant: Any) -> tuple[list[Any], list[Any]]:
    """A route's path and query parameters, its dependencies' included."""
    path, query = list(dependant.path_params), list(dependant.query_params)
    for sub in dependant.dependencies:
        p, q = _params(sub)
        path += p
        query += q
    return path, query


def _callers(app: Any, users: tuple[str, ...] = CALLERS) -> dict[str, TestClient]:
    """A client per user, signed in to the pages (a session) and to the API (a token)."""
    out = {}
    for user in users:
        c = TestClient(app, follow_redirects=False, raise_server_exceptions=False)
        c.__enter__()
        r = c.post("/api/v1/auth/token", data={"username": user, "password": ACCESS_PASSWORD})
        c.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        f.page_login(c, user, ACCESS_PASSWORD)
        out[user] = c
    return out


def _url(path: str, params: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: params[m.group(1)], path)


PROBES = {"integer": [2**31, "9" * 5000], "date": ["0001-01-01", "9999-12-31"]}
"""For the page and period parameters a page may read without declaring them: a few."""


def _tries(
    names: dict[str, str], where: dict[str, str], declared: set[str] | None = None
) -> list[dict[str, Any]]:
    """Each parameter at each of its extremes; the date pairs (since, until…) together."""
    tries = [
        {n: v}
        for n, k in names.items()
        for v in (EXTREMES if declared is None or n in declared else PROBES)[k]
    ]
    for kind in ("date", "date-time"):
        pair = [n for n, k in names.items() if k == kind and where[n] == "query"]
        if len(pair) >= 2:
            low, high = EXTREMES[kind][0], EXTREMES[kind][-1]
            for a, b in ((low, low), (high, high), (low, high), (EXTREMES[kind][1], low)):
                tries.append({pair[0]: a, pair[1]: b})
    return tries


def _check(
    client: TestClient, method: str, path: str, base: dict[str, str], trial: dict[str, Any],
    where: dict[str, str], wrong: list[str], declared: set[str],
) -> None:  # fmt: skip
    params = {**base, **{n: str(v) for n, v in trial.items() if where[n] == "path"}}
    query = dict(parse_qsl(QUERY.get(path, "").lstrip("?")))
    query |= {n: str(v) for n, v in trial.items() if where[n] == "query"}
    url = _url(path, params)
    kwargs: dict[str, Any] = {"params": query}
    if method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {}
    r = client.request(method, url, **kwargs)
    shown = f"{method} {url} {query}"
    if r.status_code >= 500:
        wrong.append(f"{shown}: {r.status_code}")
    elif not {str(v) for v in trial.values()} & OUT_OF_RANGE or not set(trial) <= declared:
        return  # in range, or a parameter the route does not take: no server error is enough
    elif r.status_code not in (404, 422):
        wrong.append(f"{shown}: {r.status_code}, expected 404 or 422")
    elif r.status_code == 422 and path.startswith("/api/"):
        named = {str(x) for d in r.json().get("detail", []) for x in d.get("loc", [])}
        if not named & set(trial):
            wrong.append(f"{shown}: 422 naming none of {sorted(trial)}: {r.text[:200]}")
    elif r.status_code == 422 and not any(n in r.text for n in trial):
        wrong.append(f"{shown}: 422 naming none of {sorted(trial)}")


def _page_routes(app: Any) -> list[tuple[str, str, APIRoute]]:
    def walk(items: Any, prefix: str = "") -> Any:
        for r in items:
            if hasattr(r, "original_router"):  # an included router (FastAPI ≥ 0.120)
                yield from walk(r.original_router.routes, prefix + (r.include_context.prefix or ""))
            elif isinstance(r, APIRoute) and not r.include_in_schema:
                for m in sorted(r.methods):
                    yield m, prefix + r.path, r

    return list(walk(app.routes))


def test_no_parameter_at_its_extremes_makes_a_server_error(app, client, world) -> None:
    reg = f.bearer(client, "reg_in", ACCESS_PASSWORD)
    base = {**PARAMS, "case_id": f.notified_case(client, reg)}
    callers = _callers(app)
    wrong: list[str] = []
    tried = 0
    try:
        # the API, from its OpenAPI document
        for path, ops in app.openapi()["paths"].items():
            for method, op in ops.items():
                params = op.get("parameters", [])
                names = {p["name"]: _kind(p["schema"]) for p in params}
                names = {n: k for n, k in names.items() if k}
                if not names:
                    continue
                where = {p["name"]: p["in"] for p in params}
                user = next(u for u in CALLERS if u in RULES[f"{method.upper()} {path}"])
                for trial in _tries(names, where):
                    _check(
                        callers[user], method.upper(), path, base, trial, where, wrong, set(names)
                    )
                    tried += 1
        # the pages, from the app's routes: their declared parameters, and the page and
        # period parameters of every page
        for method, path, route in _page_routes(app):
            if method != "GET" or path in ("/logout",):
                continue
            path_params, query_params = _params(route.dependant)
            names = {
                p.alias: _annotation_kind(p.field_info.annotation)
                for p in [*path_params, *query_params]
            }
            where = {p.alias: "path" for p in path_params}
            where |= {p.alias: "query" for p in query_params}
            names = {n: k for n, k in names.items() if k}
            declared = set(names)
            for n, k in (("page", "integer"), ("since", "date"), ("until", "date")):
                if n not in names:
                    names[n], where[n] = k, "query"
            admitted = [u for u in CALLERS if u in RULES.get(f"GET {path}", set())]
            for trial in _tries(names, where, declared):
                _check(callers[admitted[0] if admitted else "ent_a"], "GET", path, base, trial,
                       where, wrong, declared)  # fmt: skip
                tried += 1
    finally:
        for c in callers.values():
            c.__exit__(None, None, None)
    print(f"{tried} requests")
    assert tried > 300
    assert not wrong, f"{len(wrong)} answers wrong:\n" + "\n".join(wrong[:80])


REPORTED = [
    ("ent_a", "/ledger/" + "9" * 30, "seq"),
    ("ent_a", "/ledger/2147483648", "seq"),
    ("ent_a", "/ledger?page=" + "9" * 30, "page"),
    ("ent_a", "/ledger?since=9999-12-31", "since"),
    ("reg_in", "/api/v1/completeness?since=0001-01-01&until=0001-01-02", "since"),
    ("reg_in", "/api/v1/completeness?since=9999-12-30&until=9999-12-31", "until"),
    ("ent_a", "/api/v1/ledger?until=0001-01-01T00:00:00%2B14:00", "until"),
    ("reg_in", "/regulator/completeness?since=0001-01-01&until=0001-01-02", "since"),
    ("reg_in", "/regulator/trail?lot=PJ20260301A&depth=" + "9" * 5000, "depth"),
]
"""The answers of 500 in the issue (22, item 7): (user, URL, the parameter to be named)."""


def test_the_reported_urls_are_refused_naming_the_parameter(app, world) -> None:
    callers = _callers(app, ("ent_a", "reg_in"))
    try:
        answers = [(url, name, callers[user].get(url)) for user, url, name in REPORTED]
    finally:
        for c in callers.values():
            c.__exit__(None, None, None)
    wrong = [
        f"{url[:80]}: {r.status_code} {r.text[:200]}"
        for url, name, r in answers
        if r.status_code not in (404, 422) or name not in r.text
    ]
    assert not wrong, "\n".join(wrong)
