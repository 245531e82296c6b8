"""The platform admin's pages (platform_portal/platform_pages.py): a form's writes commit with
the request's write session, and a refused form changes nothing at all."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import SQLModel

from conftest import ACCESS_PASSWORD as PASSWORD
from foodtrace.db import read_session
from web.web import SESSION_COOKIE, csrf_token

import factories as f


def _everything(engine: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order."""
    import foodtrace.models  # noqa: F401 - every table in the metadata

    with read_session(engine) as s:
        return {
            t.name: sorted(tuple(map(repr, r)) for r in s.execute(select(t)).all())
            for t in SQLModel.metadata.sorted_tables
        }


def _sign_in_admin(browser: TestClient) -> str:
    """The platform admin signed in on the pages; the session's CSRF token."""
    f.page_login(browser, "admin", PASSWORD)
    return csrf_token(browser.cookies[SESSION_COOKIE])


def _form(token: str, **over: str) -> dict[str, str]:
    data = f.enterprise(f.DAIRY, name="枣庄峄城乳品有限公司")
    return {
        "csrf_token": token,
        **{k: str(v) for k, v in data.items()},
        "admin_username": "dairy_admin",
        "admin_password": PASSWORD,
        **over,
    }


def test_a_refused_registration_writes_neither_the_enterprise_nor_its_admin(
    app, client, engine, world
) -> None:
    """The enterprise is valid and registered first; its admin's password is too short: the
    page names the problem (422) and no table changed (no enterprise, ledger, entry, user).
    The same form with a good password registers both."""
    with TestClient(app) as browser:
        token = _sign_in_admin(browser)
        before = _everything(engine)
        refused = browser.post("/platform/enterprises", data=_form(token, admin_password="short"))
        assert refused.status_code == 422, refused.text[:2000]
        assert "password: 太短或太少" in refused.text  # the problem, named, in Chinese
        assert 'value="枣庄峄城乳品有限公司"' in refused.text  # the form keeps what was typed
        assert _everything(engine) == before

        again = browser.post("/platform/enterprises", data=_form(token, credit_code=f.BEVERAGE))
        assert again.status_code == 409  # a credit code registered already
        assert _everything(engine) == before

        done = browser.post("/platform/enterprises", data=_form(token))
        assert done.status_code == 200, done.text[:2000]
        assert "企业已登记" in done.text
        assert "枣庄峄城乳品有限公司" in done.text
    assert client.get("/api/v1/ledger", headers=f.bearer(client, "dairy_admin", PASSWORD)).json()


def test_a_refused_password_reset_changes_nothing_and_a_reset_ends_the_old_sessions(
    app, client, engine, world
) -> None:
    old = f.bearer(client, "ent_a", PASSWORD)
    with TestClient(app) as browser:
        token = _sign_in_admin(browser)
        before = _everything(engine)
        short = browser.post(
            "/platform/password", data={"csrf_token": token, "username": "ent_a", "password": "x"}
        )
        assert short.status_code == 422
        nobody = browser.post(
            "/platform/password",
            data={"csrf_token": token, "username": "nobody", "password": "a-new-password-1"},
        )
        assert nobody.status_code == 422
        assert _everything(engine) == before
        assert client.get("/api/v1/ledger", headers=old).status_code == 200

        done = browser.post(
            "/platform/password",
            data={"csrf_token": token, "username": "ent_a", "password": "a-new-password-1"},
        )
        assert done.status_code == 200
        assert "密码已重置" in done.text
    assert client.get("/api/v1/ledger", headers=old).status_code == 401
    assert client.get("/api/v1/ledger", headers=f.bearer(client, "ent_a", "a-new-password-1"))


def test_a_refused_user_change_changes_nothing(app, engine, world) -> None:
    with TestClient(app) as browser:
        token = _sign_in_admin(browser)
        before = _everything(engine)
        for data, status in (
            ({"username": "admin", "action": "disable"}, 409),  # the last platform admin
            ({"username": "ent_a", "action": "role", "role": "emperor"}, 422),
            ({"username": "ent_a", "action": "explode"}, 422),
        ):
            page = browser.post("/platform/users", data={"csrf_token": token, **data})
            assert page.status_code == status, (data, page.status_code)
        assert _everything(engine) == before


def test_logging_out_ends_the_session(app, world) -> None:
    with TestClient(app) as browser:
        token = _sign_in_admin(browser)
        cookie = browser.cookies[SESSION_COOKIE]
        assert browser.post("/logout", data={"csrf_token": token}).status_code == 200
        browser.cookies.set(SESSION_COOKIE, cookie)
        again = browser.get("/platform", follow_redirects=False)
        assert again.status_code == 303
        assert again.headers["location"].startswith("/login")
