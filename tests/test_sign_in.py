"""Signing in under attack: throttling that locks nobody out, proxies believed only when
configured, login CSRF, no caching of anyone's own answers, Secure cookies behind TLS.

The attacker here is an anonymous client: it guesses passwords from one address (or
claims other addresses in X-Forwarded-For), or has a victim's browser post the login
form of its own account from another site.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from conftest import ACCESS_PASSWORD as PASSWORD
from foodtrace.config import Settings
from web.web import SESSION_COOKIE
from webapp.main import create_app

import factories as f

LOGIN_COOKIE = "ft_login"  # web.web.LOGIN_COOKIE, named here so that older code runs this
ATTACKER = "203.0.113.66"
VICTIM = "198.51.100.7"


def _from(app: Any, address: str, **kwargs: Any) -> TestClient:
    return TestClient(app, client=(address, 40000), **kwargs)


def _token(c: TestClient, password: str, user: str = "reg_in", **headers: str) -> Any:
    return c.post(
        "/api/v1/auth/token", data={"username": user, "password": password}, headers=headers
    )


# ------------------------------------------------------------------ throttling (item 5)


def test_one_address_guessing_never_locks_the_user_out_from_another(app, clock, world) -> None:
    """An address failing again and again for ``reg_in`` is slowed down; the right password
    from another address, by the API and by the login page, keeps working throughout."""
    with _from(app, ATTACKER) as attacker, _from(app, VICTIM) as victim:
        codes = []
        for _ in range(4):  # four rounds: each time the attacker waits out its delay
            while (r := _token(attacker, "a wrong guess")).status_code == 401:
                codes.append(401)
            assert r.status_code == 429, r.text
            codes.append(429)
            assert _token(victim, PASSWORD).status_code == 200  # the user is not locked out
            clock.advance(timedelta(seconds=int(r.headers["retry-after"])))
        assert codes.count(401) == 5 + 3  # five free guesses, then one per wait
        assert _token(attacker, PASSWORD).status_code == 200  # after its wait, if it knows
        page = f.page_login(victim, "reg_in", PASSWORD, follow_redirects=False)
        assert page.status_code == 303
        assert victim.cookies.get(SESSION_COOKIE)


def test_the_guessing_address_waits_longer_after_each_failure(client, clock, world) -> None:
    """Past its free attempts an address gets 429 with Retry-After, even for the right
    password (a throttled guess learns nothing), and each failure after a wait doubles it."""
    assert [_token(client, "wrong").status_code for _ in range(5)] == [401] * 5
    waits = []
    for _ in range(4):
        refused = _token(client, PASSWORD)
        assert refused.status_code == 429
        assert "seconds" in refused.json()["detail"]
        wait = int(refused.headers["retry-after"])
        waits.append(wait)
        clock.advance(timedelta(seconds=wait - 1))
        assert _token(client, PASSWORD).status_code == 429  # not a second early
        clock.advance(timedelta(seconds=1))
        assert _token(client, "wrong again").status_code == 401
    assert waits == [30, 60, 120, 240]
    page = f.page_login(client, "reg_in", PASSWORD, follow_redirects=False)
    assert page.status_code == 429
    assert page.headers["retry-after"] == "480"
    assert "480 秒" in page.text  # told in words when to try again
    clock.advance(timedelta(seconds=480))
    assert _token(client, PASSWORD).status_code == 200
    # a success starts the pair again: five free attempts
    assert [_token(client, "wrong").status_code for _ in range(5)] == [401] * 5
    assert _token(client, PASSWORD).status_code == 429


def _app(db_url: str, engine: Any, clock: Any, **settings: Any) -> Any:
    return create_app(Settings(database_url=db_url, **settings), clock=clock, engine=engine)


def test_many_user_names_from_one_address_are_throttled(db_url, engine, clock, world) -> None:
    """Guessing across user names is counted for the address (TRACE_LOGIN_ADDRESS_FREE_
    ATTEMPTS, here 4 for speed; 20 by default)."""
    with _from(_app(db_url, engine, clock, login_address_free_attempts=4), ATTACKER) as c:
        codes = [_token(c, "x", f"guess{i}").status_code for i in range(5)]
        assert codes == [401] * 4 + [429]
        assert _token(c, PASSWORD, "ent_a").status_code == 429  # the address waits
    with _from(_app(db_url, engine, clock), VICTIM) as other:
        assert _token(other, PASSWORD, "ent_a").status_code == 200


def test_users_of_one_office_signing_in_do_not_throttle_it(db_url, engine, clock, world) -> None:
    """Successes take back what their attempt counted: more sign-ins from one address (an
    office behind one NAT) than its free attempts are never throttled."""
    with _from(_app(db_url, engine, clock, login_address_free_attempts=2), VICTIM) as c:
        codes = [_token(c, PASSWORD, user).status_code for user in ("ent_a", "ent_b") * 3]
        assert codes == [200] * 6
        assert [_token(c, "wrong", "ent_a").status_code for _ in range(3)] == [401, 401, 429]


def test_parallel_guesses_do_not_slip_past_the_count(app, world) -> None:
    """Ten guesses sent at once: only the five free ones reach the password check."""
    with _from(app, ATTACKER) as c, ThreadPoolExecutor(10) as pool:
        codes = sorted(pool.map(lambda _: _token(c, "parallel guess").status_code, range(10)))
    assert codes == [401] * 5 + [429] * 5


def test_the_throttle_is_shared_by_every_server_process(db_url, engine, clock, world) -> None:
    """Two app instances on their own engines (two worker processes) count the same
    failures: the state is in the database, not in a process."""
    from foodtrace.db import make_engine

    other = make_engine(db_url)
    try:
        one = create_app(Settings(database_url=db_url), clock=clock, engine=engine)
        two = create_app(Settings(database_url=db_url), clock=clock, engine=other)
        with _from(one, ATTACKER) as a, _from(two, ATTACKER) as b:
            codes = [_token(c, "wrong").status_code for c in (a, b, a, b, a, b)]
        assert codes == [401] * 5 + [429]
    finally:
        other.dispose()


def test_forwarded_for_is_believed_from_configured_proxies_only(db_url, engine, clock, world):
    """X-Forwarded-For from a peer that is not in TRACE_TRUSTED_PROXIES is ignored (so
    rotating it does not escape the throttle); from a configured proxy it names the client."""
    # two free attempts (TRACE_LOGIN_FREE_ATTEMPTS) rather than five: fewer argon2 checks
    app = _app(
        db_url, engine, clock, trusted_proxies="10.0.0.1, 192.168.7.0/24", login_free_attempts=2
    )
    with _from(app, "10.0.0.9") as untrusted:
        codes = [
            _token(untrusted, "wrong", **{"X-Forwarded-For": f"198.18.0.{i}"}).status_code
            for i in range(3)
        ]
        assert codes == [401] * 2 + [429]
    with _from(app, "10.0.0.1") as proxy, _from(app, "192.168.7.20") as proxy2:
        attacker = {"X-Forwarded-For": f"1.2.3.4, {ATTACKER}"}  # the proxy appended ATTACKER
        assert [_token(proxy, "wrong", **attacker).status_code for _ in range(2)] == [401] * 2
        assert _token(proxy2, PASSWORD, **attacker).status_code == 429
        assert _token(proxy, PASSWORD, **{"X-Forwarded-For": VICTIM}).status_code == 200
        # the proxy's scheme is believed too: a Secure session cookie behind its TLS
        page = f.page_login(
            proxy, "reg_in", PASSWORD, headers={"X-Forwarded-Proto": "https"},
            follow_redirects=False,
        )  # fmt: skip
        assert page.status_code == 303
        assert "Secure" in page.headers["set-cookie"]
    # and with no trusted proxy (the default), 127.0.0.1 is a client like any other
    plain = _app(db_url, engine, clock, login_free_attempts=2)
    with _from(plain, "127.0.0.1") as local:
        codes = [
            _token(local, "wrong", "ent_b", **{"X-Forwarded-For": f"198.18.1.{i}"}).status_code
            for i in range(3)
        ]
        assert codes == [401] * 2 + [429]


@pytest.mark.db("sqlite")
def test_serve_leaves_forwarded_headers_to_the_app(db_url, monkeypatch) -> None:
    """``foodtrace serve`` turns off uvicorn's own proxy headers, which would believe
    X-Forwarded-For from 127.0.0.1: only TRACE_TRUSTED_PROXIES decides."""
    import uvicorn

    from webapp.serve import serve

    seen: dict[str, Any] = {}
    monkeypatch.setenv("TRACE_DATABASE_URL", db_url)
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: seen.update(kw))
    serve(host="127.0.0.1", port=8000, demo=False, workers=1)
    assert seen["proxy_headers"] is False


def test_a_refused_proxy_setting_names_the_problem() -> None:
    with pytest.raises(ValueError, match="IP addresses or networks"):
        Settings(trusted_proxies="*")


@given(st.ip_addresses(v=6), st.integers(0, 2**64 - 1))
def test_an_ipv6_client_is_one_address_for_its_whole_64(ip, low) -> None:
    import ipaddress

    from foodtrace.accounts.service import address_key

    other = ipaddress.IPv6Address((int(ip) >> 64 << 64) | low)
    if ip.ipv4_mapped is None and other.ipv4_mapped is None:
        assert address_key(str(ip)) == address_key(str(other))


@given(
    free=st.integers(1, 50),
    delay=st.integers(1, 600),
    most=st.integers(1, 86400),
    failures=st.integers(0, 10_000),
)
def test_the_delay_grows_and_stops_at_its_ceiling(free, delay, most, failures) -> None:
    from foodtrace.accounts.service import ThrottlePolicy

    policy = ThrottlePolicy(delay_s=delay, max_delay_s=most)
    now, then = policy.delay(failures, free), policy.delay(failures + 1, free)
    assert now <= then <= most
    assert (now == 0) == (failures < free)
    if free <= failures and then < most:
        assert then == 2 * now


# ------------------------------------------------------------------ login CSRF (item 9)


def _form_token(c: TestClient) -> str:
    page = c.get("/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text[:2000]
    assert c.cookies.get(LOGIN_COOKIE) == found.group(1)
    return found.group(1)


def test_a_login_without_the_forms_token_signs_nobody_in(client, world) -> None:
    """A page elsewhere posting the login form (of the attacker's own account) into the
    victim's browser: no token, a wrong one, or another site's Origin are refused."""
    attempts = [
        {},  # no token, no pre-session cookie: what a cross-site form sends
        {"csrf_token": "0" * 43},
    ]
    for extra in attempts:
        r = client.post(
            "/login",
            data={"username": "ent_a", "password": PASSWORD, **extra},
            headers={"Origin": "https://evil.example"},
            follow_redirects=False,
        )
        assert r.status_code == 403, r.text
        assert not client.cookies.get(SESSION_COOKIE)
    token = _form_token(client)
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
    ):
        r = client.post(
            "/login",
            data={"username": "ent_a", "password": PASSWORD, "csrf_token": token},
            headers=headers,
            follow_redirects=False,
        )
        assert r.status_code == 403, (headers, r.status_code)
        assert "另一个网站" in r.text or "other site" in r.text
        assert not client.cookies.get(SESSION_COOKIE)
    # the same form, from this site, with its token: signed in
    r = client.post(
        "/login",
        data={"username": "ent_a", "password": PASSWORD, "csrf_token": _form_token(client)},
        headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert client.cookies.get(SESSION_COOKIE)


def test_a_cookie_authenticated_form_from_another_site_is_refused(client, world) -> None:
    """Even with the right CSRF token, a form post whose Origin is another site is refused."""
    from web.web import csrf_token

    f.page_login(client, "ent_a", PASSWORD)
    token = csrf_token(client.cookies[SESSION_COOKIE])
    r = client.post(
        "/logout",
        data={"csrf_token": token},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert r.status_code == 403
    assert client.get("/today", follow_redirects=False).status_code == 200  # still signed in


# ------------------------------------------------------------------ caching (item 9)


def test_every_authenticated_answer_says_no_store(client, world) -> None:
    """API answers to a bearer token (200 and refusals alike), the pages behind login and
    the sign-in answers carry Cache-Control: no-store; public pages may be cached."""
    bearer = f.bearer(client, "ent_a_admin", PASSWORD)
    reg = f.bearer(client, "reg_in", PASSWORD)
    signed_in = _token(client, PASSWORD, "ent_a")
    assert signed_in.headers["cache-control"] == "no-store"
    answers = [
        client.get("/api/v1/ledger", headers=bearer),
        client.get("/api/v1/today", headers=bearer),
        client.get("/api/v1/enterprise/tokens", headers=bearer),
        client.post("/api/v1/customers", headers=bearer, json=f.customer()),  # the lean path
        client.get(f"/api/v1/lots/{f.BEVERAGE}/PJ20260301A/trail.xlsx", headers=reg),
        client.get("/api/v1/regulator/enterprises", headers=bearer),  # 403
        client.get("/api/v1/ledger", headers={"Authorization": "Bearer ft_nothing"}),  # 401
    ]
    for r in answers:
        assert r.headers.get("cache-control") == "no-store", (r.url, r.status_code, r.headers)
    page = f.page_login(client, "ent_a_admin", PASSWORD, follow_redirects=False)
    assert page.headers["cache-control"] == "no-store"
    for path in ("/today", "/ledger", "/admin/users", "/"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.headers.get("cache-control") == "no-store", path
    client.cookies.clear()
    qr = client.get(f"/qr/lot/{f.BEVERAGE}/PJ20260301A.svg")
    assert qr.status_code == 200
    assert "no-store" not in qr.headers.get("cache-control", "")  # a public QR code


# ------------------------------------------------------------------ Secure cookies (item 9)


def test_secure_cookies_behind_a_tls_proxy(db_url, engine, clock, world) -> None:
    """With TRACE_SECURE_COOKIES the session and login-form cookies are Secure though the
    request reached the server over plain http (from the TLS proxy); without it, not."""
    for setting, secure in ((True, True), (False, False)):
        app = create_app(
            Settings(database_url=db_url, secure_cookies=setting), clock=clock, engine=engine
        )
        with TestClient(app) as c:
            token = _form_token(c) if not secure else ""
            form = c.get("/login")
            assert ("Secure" in form.headers["set-cookie"]) is secure
            if secure:  # a client on http keeps a Secure cookie to itself: hand it over here
                token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
                c.cookies.set(LOGIN_COOKIE, token)
            r = c.post(
                "/login",
                data={"username": "ent_a", "password": PASSWORD, "csrf_token": token},
                follow_redirects=False,
            )
            assert r.status_code == 303
            session = [v for v in r.headers.get_list("set-cookie") if SESSION_COOKIE in v]
            assert session
            assert ("Secure" in session[0]) is secure
            assert "HttpOnly" in session[0]


def test_the_production_compose_file_turns_secure_cookies_on() -> None:
    from pathlib import Path

    import yaml

    compose = yaml.safe_load(
        (Path(__file__).parents[1] / "docker" / "compose.yaml").read_text(encoding="utf-8")
    )
    env = compose["services"]["app"]["environment"]
    assert Settings.model_validate({"secure_cookies": env["TRACE_SECURE_COOKIES"]}).secure_cookies
    assert "TRACE_TRUSTED_PROXIES" in env  # said how the proxy is trusted (empty: none)
