"""Who may call what: every route of the app × every kind of user, from the route table itself.

The rules below name, for each route, who may use it. The test walks the
app's routes, so a new route without a rule fails here until someone decides
who may call it. Each (route, user) pair is called once: a user the rule
admits must not get 401/403 (nor be sent to the login page); any other must be
refused — 401 (or the login page) without credentials, 403 for the wrong role,
404 for a regulator asking about an enterprise outside their jurisdiction or an
enterprise asking about a case that does not concern it (no existence leak).
Refused calls must change nothing: the ledgers are compared byte for byte.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.routing import APIRoute
from sqlalchemy import select

from conftest import ACCESS_PASSWORD as PASSWORD
from foodtrace.db import read_session
from foodtrace.ledger.models import Entry
from web.web import SESSION_COOKIE, csrf_token

import factories as f

USERS = ("anon", "ent_a", "ent_a_admin", "ent_b", "reg_in", "reg_out", "admin")
ENTERPRISE = {"ent_a", "ent_a_admin", "ent_b"}
REGULATORS = {"reg_in", "reg_out"}
ALL = set(USERS)
SIGNED_IN = ALL - {"anon"}

# Who may use each route. "ent_a" stands for "an enterprise user", so routes that
# work on the caller's own ledger admit ent_b too (it gets its own ledger).
RULES: dict[str, set[str]] = {
    # open to everyone: documentation, login, the consumer pages, QR codes
    "GET /openapi.json": ALL,
    "GET /docs": ALL,
    "GET /docs/oauth2-redirect": ALL,
    "GET /redoc": ALL,
    "POST /api/v1/auth/token": ALL,
    "GET /lot/{credit_code}/{lot_code}": ALL,
    "GET /01/{gtin}/10/{lot_code}": ALL,
    "GET /qr/01/{gtin}/10/{lot_code}.{fmt}": ALL,
    "GET /qr/lot/{credit_code}/{lot_code}.{fmt}": ALL,
    "GET /": ALL,
    "GET /login": ALL,
    "GET /lookup": ALL,
    "GET /favicon.ico": ALL,
    "POST /login": ALL,
    "POST /logout": ALL,
    "GET /lang/{code}": ALL,
    "GET /healthz": ALL,
    "GET /readyz": ALL,  # load balancers ask without credentials
    # the Merkle log: checkpoints and consistency proofs reveal hashes and sizes only
    "GET /.well-known/foodtrace/checkpoint-key": ALL,
    "GET /api/v1/ledgers": ALL,
    "GET /api/v1/ledgers/{credit_code}/checkpoint": ALL,
    "GET /api/v1/ledgers/{credit_code}/proof/consistency": ALL,
    # a private entry's proof (entry 1, A's registration): A's users and A's regulator
    "GET /api/v1/ledgers/{credit_code}/proof/inclusion": {"ent_a", "ent_a_admin", "reg_in"},
    "GET /api/v1/ledgers/{credit_code}/entries/{seq}/tlog-proof": {
        "ent_a",
        "ent_a_admin",
        "reg_in",
    },
    # the platform admin
    "POST /api/v1/admin/enterprises": {"admin"},
    "GET /api/v1/admin/enterprises": {"admin"},
    "POST /api/v1/admin/authorities": {"admin"},
    "POST /api/v1/admin/users": {"admin"},
    "POST /api/v1/admin/users/{username}/password": {"admin"},
    "PATCH /api/v1/admin/users/{username}": {"admin"},
    "GET /platform": {"admin"},
    "POST /platform/enterprises": {"admin"},
    "POST /platform/password": {"admin"},
    "POST /platform/users": {"admin"},
    # an enterprise's own ledger
    **{
        f"POST /api/v1/{p}": ENTERPRISE
        for p in (
            "products",
            "suppliers",
            "customers",
            "material-checks",
            "production-lots",
            "ccp-records",
            "corrective-actions",
            "release-tests",
            "sales",
            "self-inspections",
            "corrections",
            "attachments",
        )
    },
    **{
        f"GET /api/v1/{p}": ENTERPRISE
        for p in (
            "ledger",
            "ledger/entries/{seq}",
            "ledger/verify",
            "products",
            "suppliers",
            "customers",
            "material-lots",
            "lots",
            "lots/{lot_code}",
            "today",
            "enterprise/reads",
            "templates/{kind}.csv",
            "templates/{kind}.xlsx",
            "enterprise/cases",
        )
    },
    "POST /api/v1/imports/{kind}": ENTERPRISE,
    "GET /api/v1/enterprise/cases/{case_id}": {"ent_a", "ent_a_admin"},
    "POST /api/v1/enterprise/recall-actions": ENTERPRISE,
    "POST /api/v1/enterprise/cases/{case_id}/notify-all": ENTERPRISE,
    "POST /api/v1/enterprise/users": {"ent_a_admin"},
    "PATCH /api/v1/enterprise/users/{username}": {"ent_a_admin"},
    "GET /api/v1/enterprise/tokens": {"ent_a_admin"},
    "POST /api/v1/enterprise/tokens": {"ent_a_admin"},
    "DELETE /api/v1/enterprise/tokens/{token_id}": {"ent_a_admin"},
    **{
        f"{m} {p}": ENTERPRISE
        for m, p in (
            ("GET", "/records"),
            ("GET", "/today"),
            ("GET", "/records/{kind}/new"),
            ("POST", "/records/{kind}/new"),
            ("GET", "/records/ccp_record/batch"),
            ("POST", "/records/ccp_record/batch"),
            ("GET", "/ledger/{seq}"),
            ("GET", "/ledger/{seq}/correct"),
            ("POST", "/ledger/{seq}/correct"),
            ("GET", "/ledger"),
            ("GET", "/lots"),
            ("GET", "/lots/{lot_code}"),
            ("GET", "/master/{what}"),
            ("GET", "/import"),
            ("GET", "/import/templates/{name}"),
            ("POST", "/import"),
            ("GET", "/import/{job_id}"),
            ("POST", "/import/{job_id}/confirm"),
            ("GET", "/import/{job_id}/marked.xlsx"),
            ("GET", "/cases"),
            ("GET", "/reads"),
            ("POST", "/cases/{case_id}/actions"),
        )
    },
    "GET /lots/{lot_code}/labels": {"ent_a", "ent_a_admin"},  # B has no such lot: 404
    # master data: every user reads its versions, the enterprise admin writes new ones
    "GET /master/{what}/{code}": ENTERPRISE,
    "GET /master/{what}/{code}/edit": {"ent_a_admin"},
    "POST /master/{what}/{code}/edit": {"ent_a_admin"},
    "POST /master/{what}/{code}/status": {"ent_a_admin"},
    # an enterprise's own records of a period (each gets its own)
    "GET /exports": ENTERPRISE,
    "GET /exports/records.{ext}": ENTERPRISE,
    "GET /cases/{case_id}": {"ent_a", "ent_a_admin"},
    "GET /admin/users": {"ent_a_admin"},
    "POST /admin/users": {"ent_a_admin"},
    "POST /admin/users/{username}": {"ent_a_admin"},
    "POST /admin/tokens": {"ent_a_admin"},
    "POST /admin/tokens/{token_id}/revoke": {"ent_a_admin"},
    # regulators; reg_out is outside the jurisdiction of enterprise A and of the case
    "GET /api/v1/regulator/enterprises": REGULATORS,
    "GET /api/v1/regulator/lots": REGULATORS,
    "GET /api/v1/regulator/verify": REGULATORS,
    "GET /api/v1/regulator/enterprises/{credit_code}/verify": {"reg_in"},
    "GET /api/v1/lots/{credit_code}/{lot_code}/trail": {"reg_in"},
    "GET /api/v1/lots/{credit_code}/{lot_code}/trail.{fmt}": {"reg_in"},
    "GET /api/v1/completeness": REGULATORS | ENTERPRISE,
    "POST /api/v1/failed-samples": REGULATORS,
    "GET /api/v1/cases": REGULATORS,
    "GET /api/v1/cases/{case_id}": {"reg_in"},
    "POST /api/v1/cases/{case_id}/steps": {"reg_in"},
    "GET /api/v1/cases/{case_id}/scope.{fmt}": {"reg_in"},
    "GET /regulator": REGULATORS,
    "GET /regulator/lots": REGULATORS,
    "GET /regulator/lots/suggest": REGULATORS,
    "GET /regulator/trail": REGULATORS,
    "GET /regulator/trail/export.{ext}": {"reg_in"},
    "GET /regulator/completeness": REGULATORS,
    "GET /regulator/verify": REGULATORS,
    "GET /regulator/lots/{credit_code}/{lot_code}": {"reg_in"},
    "GET /regulator/cases": REGULATORS,
    "POST /regulator/cases": REGULATORS,
    "GET /regulator/cases/{case_id}": {"reg_in"},
    "POST /regulator/cases/{case_id}/step": {"reg_in"},
    "GET /regulator/cases/{case_id}/scope.{ext}": {"reg_in"},
}


def routes(app: Any) -> list[tuple[str, str]]:
    """Every (method, path) of the app, routers included (static files aside)."""

    def walk(items: Any, prefix: str = "") -> Any:
        for r in items:
            if hasattr(r, "original_router"):  # an included router (FastAPI ≥ 0.120)
                ctx = r.include_context
                yield from walk(r.original_router.routes, prefix + (ctx.prefix or ""))
            elif isinstance(r, APIRoute):
                for m in sorted(r.methods):
                    yield m, prefix + r.path
            elif getattr(r, "methods", None):  # the docs routes
                for m in sorted(r.methods - {"HEAD"}):
                    yield m, r.path

    return sorted(set(walk(app.routes)))


def _ledger_bytes(engine) -> list[tuple[int, int, bytes]]:
    with read_session(engine) as s:
        rows = s.execute(
            select(Entry.ledger_id, Entry.seq, Entry.body).order_by(Entry.ledger_id, Entry.seq)
        )
        return [(lid, seq, bytes(body)) for lid, seq, body in rows]


PARAMS = {
    "credit_code": f.BEVERAGE,
    "lot_code": "PJ20260301A",
    "gtin": "06921234560013",
    "seq": "1",
    "kind": "sale",
    "what": "products",
    "token_id": "1",
    "username": "ent_a",
    "fmt": "xlsx",
    "ext": "xlsx",
    "code": "en",
    "name": "sale.xlsx",
    "job_id": "0" * 32,
}


QUERY = {  # routes whose required query parameters would otherwise answer 422 first
    "/api/v1/ledgers/{credit_code}/proof/inclusion": "?seq=1",
    "/api/v1/ledgers/{credit_code}/proof/consistency": "?from=1&to=2",
}


def test_every_route_admits_exactly_the_users_its_rule_names(app, client, engine, world) -> None:
    from fastapi.testclient import TestClient

    # logging out ends the session the later calls use: it goes last
    table = sorted(routes(app), key=lambda r: r == ("POST", "/logout"))
    missing = [f"{m} {p}" for m, p in table if f"{m} {p}" not in RULES]
    assert not missing, f"routes without an access rule: {missing}"
    stale = sorted(set(RULES) - {f"{m} {p}" for m, p in table})
    assert not stale, f"rules for routes that no longer exist: {stale}"

    # a case on A's lot, opened by the district and notified: A is concerned, B is not
    reg = _bearer(client, "reg_in")
    case_id = f.notified_case(client, reg)
    params = {**PARAMS, "case_id": case_id}

    callers: dict[str, TestClient] = {}
    headers: dict[str, dict[str, str]] = {}
    csrf: dict[str, str] = {}
    for user in USERS:
        c = TestClient(app, follow_redirects=False)
        c.__enter__()
        callers[user] = c
        headers[user] = {}
        csrf[user] = ""
        if user != "anon":
            headers[user] = _bearer(c, user)
            f.page_login(c, user, PASSWORD)
            csrf[user] = csrf_token(c.cookies[SESSION_COOKIE])
    before = _ledger_bytes(engine)
    wrong: list[str] = []
    try:
        # Every form post needs the session's CSRF token: each page POST route, as each user
        # its rule admits, with a wrong token, is refused and changes nothing (the login
        # form has no session yet: its throttling and SameSite cookies guard it).
        unguarded, checked = [], 0
        for method, path in table:
            if method != "POST" or path.startswith("/api/") or path == "/login":
                continue
            url = re.sub(r"\{(\w+)\}", lambda m: params[m.group(1)], path)
            for user in sorted(RULES[f"{method} {path}"] - {"anon"}):
                got = callers[user].post(url, data={"csrf_token": "0" * 64})
                checked += 1
                if got.status_code != 403:
                    unguarded.append(f"{path} as {user}: {got.status_code}")
        assert not unguarded, f"form posts taken without the CSRF token: {unguarded}"
        assert checked >= 13  # 13 form routes (all but the login), each with an admitted user
        assert _ledger_bytes(engine) == before
        for method, path in table:
            url = re.sub(r"\{(\w+)\}", lambda m: params[m.group(1)], path) + QUERY.get(path, "")
            api = path.startswith("/api/")
            for user in USERS:
                c = callers[user]
                kwargs: dict[str, Any] = {}
                if api:
                    kwargs["headers"] = headers[user]
                    if method in ("POST", "PUT", "PATCH"):
                        kwargs["json"] = {}
                elif method == "POST":
                    kwargs["data"] = {"csrf_token": csrf[user]}
                got = c.request(method, url, **kwargs)
                status = got.status_code
                to_login = status in (302, 303) and "/login" in got.headers.get("location", "")
                if path == "/logout":
                    to_login = False  # where a logout leads, for everyone
                refused = status in (401, 403) or to_login
                allowed = user in RULES[f"{method} {path}"]
                if status >= 500:
                    wrong.append(f"{method} {path} as {user}: server error {status}")
                if allowed and refused:
                    wrong.append(f"{method} {path} as {user}: refused with {status}")
                if not allowed:
                    ok = (status == 401 or to_login) if user == "anon" else status in (403, 404)
                    if not ok:
                        wrong.append(f"{method} {path} as {user}: {status}, expected refusal")
    finally:
        for c in callers.values():
            c.__exit__(None, None, None)
    assert not wrong, "\n".join(wrong)
    after = _ledger_bytes(engine)
    assert after[: len(before)] == before  # nothing already written changed


def _bearer(c: Any, user: str) -> dict[str, str]:
    r = c.post("/api/v1/auth/token", data={"username": user, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}
