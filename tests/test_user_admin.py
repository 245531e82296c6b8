"""Switching users off and on and changing their roles: by an enterprise's admin (its own
users only), by the platform admin, from the command line and on the pages.

A disabled user's every session and token stops at its next request; the last active
admin of an enterprise stays; each change is kept (who, when, from what to what).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlmodel import Session

from conftest import ACCESS_PASSWORD as PASSWORD
from foodtrace.accounts.models import User
from foodtrace.accounts.service import Role
from foodtrace.db import read_session
from foodtrace.errors import Conflict, NotFound, RecordError
from web.web import SESSION_COOKIE, csrf_token

import factories as f


def _bearer(client: TestClient, user: str) -> dict[str, str]:
    return f.bearer(client, user, PASSWORD)


def _patch(client: TestClient, who: dict[str, str], user: str, admin: bool = False, **body):  # type: ignore[no-untyped-def]
    prefix = "/api/v1/admin/users" if admin else "/api/v1/enterprise/users"
    return client.patch(f"{prefix}/{user}", json=body, headers=who)


def _changes(engine: Any) -> list[tuple[str, str, str, str, str]]:
    from foodtrace.accounts.models import UserChange

    with read_session(engine) as s:
        rows = s.execute(select(UserChange).order_by(UserChange.id)).scalars()
        return [(c.username, c.field, c.old, c.new, c.actor) for c in rows]


def test_a_disabled_users_sessions_and_tokens_stop_at_their_next_request(
    app, client, engine, world
) -> None:
    """The enterprise admin disables an operator: the operator's bearer token, page session
    and the ERP token of a disabled admin all answer 401 (or the login page) at once; enabling
    brings back none of them, only a new sign-in works."""
    admin = _bearer(client, "ent_a_admin")
    op = _bearer(client, "ent_a")
    with TestClient(app, follow_redirects=False) as browser:
        f.page_login(browser, "ent_a", PASSWORD)
        assert browser.get("/today").status_code == 200
        assert client.get("/api/v1/ledger", headers=op).status_code == 200

        r = _patch(client, admin, "ent_a", active=False)
        assert r.status_code == 200, r.text
        assert r.json()["active"] is False
        assert client.get("/api/v1/ledger", headers=op).status_code == 401
        assert client.post("/api/v1/customers", headers=op, json=f.customer()).status_code == 401
        page = browser.get("/today")
        assert page.status_code == 303
        assert page.headers["location"].startswith("/login")
        refused = client.post(
            "/api/v1/auth/token", data={"username": "ent_a", "password": PASSWORD}
        )
        assert refused.status_code == 401

        assert _patch(client, admin, "ent_a", active=True).json()["active"] is True
        assert client.get("/api/v1/ledger", headers=op).status_code == 401  # not revived
        assert browser.get("/today").status_code == 303
        assert client.get("/api/v1/ledger", headers=_bearer(client, "ent_a")).status_code == 200

    # a disabled admin's long-lived ERP token stops too
    erp = client.post("/api/v1/enterprise/tokens", headers=admin, json={"name": "ERP"})
    erp_auth = {"Authorization": f"Bearer {erp.json()['token']}"}
    assert client.get("/api/v1/ledger", headers=erp_auth).status_code == 200
    assert _patch(client, admin, "ent_a", role="enterprise_admin").status_code == 200
    root = _bearer(client, "admin")
    assert _patch(client, root, "ent_a_admin", admin=True, active=False).status_code == 200
    assert client.get("/api/v1/ledger", headers=erp_auth).status_code == 401
    assert client.get("/api/v1/ledger", headers=admin).status_code == 401
    assert _changes(engine) == [
        ("ent_a", "active", "true", "false", "ent_a_admin"),
        ("ent_a", "active", "false", "true", "ent_a_admin"),
        ("ent_a", "role", "enterprise_user", "enterprise_admin", "ent_a_admin"),
        ("ent_a_admin", "active", "true", "false", "admin"),
    ]


def test_the_last_admin_of_an_enterprise_cannot_be_disabled_or_demoted(client, engine, world):
    admin = _bearer(client, "ent_a_admin")
    root = _bearer(client, "admin")
    for who, as_root in ((admin, False), (root, True)):
        for body in ({"active": False}, {"role": "enterprise_user"}):
            r = _patch(client, who, "ent_a_admin", admin=as_root, **body)
            assert r.status_code == 409, r.text
            assert "last active admin" in r.json()["detail"]
    assert client.get("/api/v1/ledger", headers=admin).status_code == 200  # untouched
    # with a second admin, the first may go; then the second is the last
    assert _patch(client, admin, "ent_a", role="enterprise_admin").status_code == 200
    assert _patch(client, admin, "ent_a_admin", active=False).status_code == 200
    second = _bearer(client, "ent_a")
    assert _patch(client, second, "ent_a", role="enterprise_user").status_code == 409
    # the platform's last admin stays as well
    r = _patch(client, root, "admin", admin=True, active=False)
    assert r.status_code == 409
    assert "platform" in r.json()["detail"]


def test_an_enterprise_admin_reaches_only_their_own_users(client, engine, world) -> None:
    """Another enterprise's user, a regulator, the platform admin, a user that does not
    exist: 404 alike (no existence leak), and nothing changes. Roles stay in their kind."""
    admin = _bearer(client, "ent_a_admin")
    for user in ("ent_b", "reg_in", "admin", "nobody"):
        for body in ({"active": False}, {"role": "enterprise_admin"}):
            r = _patch(client, admin, user, **body)
            assert r.status_code == 404, (user, r.status_code)
    assert client.get("/api/v1/ledger", headers=_bearer(client, "ent_b")).status_code == 200
    for body, status in (
        ({"role": "platform_admin"}, 422),  # an enterprise admin gives enterprise roles only
        ({"role": "boss"}, 422),
        ({}, 422),
        ({"active": "no"}, 422),  # a boolean, not a word
        ({"active": False, "password": "x"}, 422),  # nothing else is changed here
    ):
        r = _patch(client, admin, "ent_a", **body)
        assert r.status_code == status, (body, r.text)
    root = _bearer(client, "admin")
    r = _patch(client, root, "reg_in", admin=True, role="enterprise_admin")
    assert r.status_code == 422  # a regulator has no enterprise to administer
    assert _changes(engine) == []


ACTORS = st.sampled_from(["ent_a_admin", "ent_a", "admin"])
CHANGES = st.sampled_from(
    [{"active": False}, {"active": True}, {"role": "enterprise_admin"}, {"role": "enterprise_user"}]
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(st.tuples(st.sampled_from(["ent_a", "ent_a_admin"]), CHANGES), max_size=8))
def test_any_sequence_of_changes_keeps_an_active_admin_and_its_history(
    engine, clock, world, steps
) -> None:
    """Whatever sequence of changes is asked for, enterprise A keeps an active admin, each
    effective change leaves exactly one history row, and a refused one changes nothing."""
    from foodtrace.accounts.models import UserChange
    from foodtrace.accounts.service import change_user

    with Session(engine) as s:
        try:
            users = {u.username: u for u in s.execute(select(User)).scalars()}
            state = {n: (users[n].active, users[n].role) for n in ("ent_a", "ent_a_admin")}
            rows = 0
            for target, change in steps:
                before = dict(state)
                after_one = (
                    change.get("active", state[target][0]),
                    change.get("role", state[target][1]),
                )
                admins = [
                    n
                    for n, (a, r) in {**state, target: after_one}.items()
                    if a and r == "enterprise_admin"
                ]
                try:
                    change_user(
                        session=s, username=target, actor="admin", now=clock.now(), **change
                    )
                except Conflict:
                    assert not admins  # refused exactly when no active admin would remain
                    assert state == before
                    continue
                assert admins
                rows += sum(x != y for x, y in zip(state[target], after_one, strict=True))
                state[target] = after_one
                assert (users[target].active, users[target].role) == after_one
            assert len(s.execute(select(UserChange)).scalars().all()) == rows
        finally:
            s.rollback()


def test_the_service_refuses_what_it_cannot_do(engine, clock, world) -> None:
    from foodtrace.accounts.service import change_user

    with Session(engine) as s:
        with pytest.raises(NotFound):
            change_user(
                session=s, username="ent_b", actor="x", now=clock.now(), active=False,
                enterprise_id=world["a"],
            )  # fmt: skip
        with pytest.raises(RecordError, match="cannot become"):
            change_user(
                session=s, username="admin", actor="x", now=clock.now(), role=Role.REGULATOR
            )
        s.rollback()


# ------------------------------------------------------------------ pages


def _csrf(c: TestClient) -> str:
    return csrf_token(c.cookies[SESSION_COOKIE])


def test_the_enterprise_admin_switches_users_off_and_on_on_the_users_page(
    app, client, engine, world
) -> None:
    op = _bearer(client, "ent_a")
    with TestClient(app) as browser:
        f.page_login(browser, "ent_a_admin", PASSWORD)
        token = _csrf(browser)
        page = browser.post("/admin/users/ent_a", data={"csrf_token": token, "action": "disable"})
        assert page.status_code == 200, page.text
        assert "已停用用户 ent_a" in page.text
        assert client.get("/api/v1/ledger", headers=op).status_code == 401
        table = re.search(r'<table id="users">.*?</table>', page.text, re.S).group(0)
        assert "已停用" in table
        assert re.search(r'<table id="user-changes">.*ent_a.*ent_a_admin', page.text, re.S)
        # without the token, or for another enterprise's user: refused, nothing changed
        assert browser.post("/admin/users/ent_a", data={"action": "enable"}).status_code == 403
        other = browser.post("/admin/users/ent_b", data={"csrf_token": token, "action": "disable"})
        assert other.status_code == 404
        last = browser.post(
            "/admin/users/ent_a_admin", data={"csrf_token": token, "action": "disable"}
        )
        assert last.status_code == 409
        assert "最后一位在用的管理员" in last.text
        role = browser.post(
            "/admin/users/ent_a",
            data={"csrf_token": token, "action": "role", "role": "enterprise_admin"},
        )
        assert role.status_code == 200
        assert "已更改 ent_a 的角色" in role.text
    assert _changes(engine)[-1] == (
        "ent_a",
        "role",
        "enterprise_user",
        "enterprise_admin",
        "ent_a_admin",
    )
    assert client.get("/api/v1/ledger", headers=_bearer(client, "ent_b")).status_code == 200


def test_the_platform_admin_switches_any_user_off_on_the_platform_page(app, client, world):
    reg = _bearer(client, "reg_in")
    with TestClient(app) as browser:
        f.page_login(browser, "admin", PASSWORD)
        token = _csrf(browser)
        page = browser.post(
            "/platform/users", data={"csrf_token": token, "username": "reg_in", "action": "disable"}
        )
        assert page.status_code == 200, page.text
        assert "已停用用户 reg_in" in page.text
        assert client.get("/api/v1/regulator/enterprises", headers=reg).status_code == 401
        assert re.search(r'<table id="user-changes">.*reg_in', page.text, re.S)
        missing = browser.post(
            "/platform/users", data={"csrf_token": token, "username": "nobody", "action": "enable"}
        )
        assert missing.status_code == 404
        last = browser.post(
            "/platform/users", data={"csrf_token": token, "username": "admin", "action": "disable"}
        )
        assert last.status_code == 409
        assert browser.get("/platform").status_code == 200  # the admin is still signed in


# ------------------------------------------------------------------ the command line


def test_foodtrace_user_disable_enable_and_role(client, engine, world, invoke) -> None:
    op = _bearer(client, "ent_a")
    out = invoke("user", "disable", "ent_a")
    assert out.exit_code == 0, out.output
    assert "ent_a: disabled" in out.output
    assert client.get("/api/v1/ledger", headers=op).status_code == 401
    assert invoke("user", "enable", "ent_a").exit_code == 0
    out = invoke("user", "role", "ent_a", "enterprise_admin")
    assert out.exit_code == 0, out.output
    assert "enterprise_admin" in out.output
    assert invoke("user", "role", "ent_a", "enterprise_user").exit_code == 0
    last = invoke("user", "disable", "ent_a_admin")
    assert last.exit_code == 2
    assert "last active admin" in last.output
    missing = invoke("user", "disable", "nobody")
    assert missing.exit_code == 2
    assert "no user" in missing.output
    changes = _changes(engine)
    assert len(changes) == 4
    assert all(c[4].startswith("cli:") for c in changes)
