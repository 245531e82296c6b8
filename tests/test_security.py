"""Security headers, no inline script anywhere, and session cookies that scripts cannot read."""

from __future__ import annotations

import re

from conftest import ACCESS_PASSWORD as PASSWORD

import factories as f

PAGES_BY_USER = {
    "ent_a_admin": [
        "/today", "/records", "/records/sale/new", "/records/ccp_record/new", "/ledger",
        "/ledger/1", "/lots", "/lots/PJ20260301A", "/lots/PJ20260301A/labels",
        "/master/products", "/import", "/admin/users", "/cases", "/reads",
    ],
    "reg_in": [
        "/regulator", "/regulator/trail?credit_code=" + f.BEVERAGE + "&lot=PJ20260301A",
        "/regulator/completeness", "/regulator/verify?run=1", "/regulator/cases",
        "/regulator/lots/" + f.BEVERAGE + "/PJ20260301A",
    ],
    "admin": ["/platform"],
    "anon": ["/", "/login", f"/lot/{f.BEVERAGE}/PJ20260301A", "/01/06921234560013/10/PJ20260301A"],
}  # fmt: skip
INLINE_SCRIPT = re.compile(
    r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/(?:ld\+)?json\")[^>]*>"
)
HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)


def test_every_page_carries_the_security_headers_and_no_inline_script(app, world) -> None:
    from fastapi.testclient import TestClient

    for user, pages in PAGES_BY_USER.items():
        with TestClient(app) as c:
            if user != "anon":
                r = f.page_login(c, user, PASSWORD, follow_redirects=False)
                cookie = r.headers.get("set-cookie", "")
                assert "HttpOnly" in cookie, cookie
                assert "SameSite=lax" in cookie, cookie
            for page in pages:
                r = c.get(page)
                assert r.status_code == 200, (user, page, r.status_code)
                csp = r.headers["content-security-policy"]
                assert "script-src 'self'" in csp
                assert "frame-ancestors 'none'" in csp
                assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
                assert r.headers["x-content-type-options"] == "nosniff"
                assert not INLINE_SCRIPT.search(r.text), (page, INLINE_SCRIPT.search(r.text))
                assert not HANDLER.search(r.text), (page, HANDLER.search(r.text))
            api = c.get("/healthz")
            assert api.headers["x-content-type-options"] == "nosniff"


def test_a_session_cookie_over_https_is_secure(app, world) -> None:
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="https://trace.example.cn") as c:
        r = f.page_login(c, "ent_a", PASSWORD, follow_redirects=False)
        assert "Secure" in r.headers["set-cookie"]
        assert r.headers["strict-transport-security"].startswith("max-age=")


def test_no_password_or_token_reaches_a_log(db_url, engine, clock, world, caplog) -> None:
    """The server runs with every logger at DEBUG (uvicorn's access log included); signing in,
    using tokens, making an API token and failing a sign-in leave no secret in the logs."""
    import logging
    import socket
    import threading
    import time

    import httpx
    import uvicorn

    from foodtrace.config import Settings
    from webapp.main import create_app

    caplog.set_level(logging.DEBUG)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = create_app(Settings(database_url=db_url), clock=clock, engine=engine)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="debug", log_config=None)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    secrets: list[str] = [PASSWORD, "a wrong guess 77"]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
            c.post("/api/v1/auth/token", data={"username": "ent_a", "password": secrets[1]})
            r = c.post("/api/v1/auth/token", data={"username": "ent_a_admin", "password": PASSWORD})
            bearer = r.json()["access_token"]
            secrets.append(bearer)
            auth = {"Authorization": f"Bearer {bearer}"}
            assert c.get("/api/v1/ledger", headers=auth).status_code == 200
            made = c.post("/api/v1/enterprise/tokens", headers=auth, json={"name": "ERP"})
            assert made.status_code == 201, made.text
            secrets.append(made.json()["token"])
            page = f.page_login(c, "reg_in", PASSWORD)
            secrets.append(page.cookies.get("ft_session") or c.cookies.get("ft_session") or "")
            assert c.get("/regulator").status_code == 200
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    # the server's logs: the test's own HTTP client (httpx, httpcore) logs what it received
    logged = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))
    )
    assert "POST /api/v1/auth/token" in logged  # the access log was captured
    for secret in filter(None, secrets):
        assert secret not in logged


def test_the_enterprise_sees_on_a_page_who_at_the_regulator_read_its_records(client, world):
    r = client.post("/api/v1/auth/token", data={"username": "reg_in", "password": PASSWORD})
    reg = {"Authorization": f"Bearer {r.json()['access_token']}"}
    trail = client.get(f"/api/v1/lots/{f.BEVERAGE}/PJ20260301A/trail", headers=reg)
    assert trail.status_code == 200
    f.page_login(client, "ent_a", PASSWORD)
    page = client.get("/reads").text
    assert "峄城区市场监督管理局" in page
    assert "reg_in" in page
    assert "批次 PJ20260301A 的追溯" in page  # the read, in the reader's language
    client.post("/logout")
    f.page_login(client, "ent_b", PASSWORD)
    assert "reg_in" not in client.get("/reads").text  # B's records were not read
