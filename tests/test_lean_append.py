"""The record routes' lean path (web.lean): one thread hand-off per append, and the
same answers as the declared route, good input or bad."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import anyio.to_thread
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from conftest import ACCESS_PASSWORD
from foodtrace.db import read_session
from foodtrace.ledger.models import Entry
from web.body_limit import BodyLimit
from web.errors import control_character_answer
from web.lean import RecordRoute
from web.security import _PLAIN, _PLAIN_BYTES, MAX_JSON_BYTES, Guard

import factories as f
from snapshots import snapshot

CCP = "/api/v1/ccp-records"


def bearer(client: Any, username: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", data={"username": username, "password": ACCESS_PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
def lean(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Switch between the lean path and the declared route (``lean(False)``)."""

    def switch(on: bool) -> None:
        monkeypatch.setattr(RecordRoute, "lean", on)

    return switch


@pytest.fixture
def hand_offs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The functions handed to a worker thread (anyio.to_thread.run_sync, which FastAPI's and
    Starlette's run_in_threadpool call), in order."""
    seen: list[str] = []
    real = anyio.to_thread.run_sync

    async def counting(func: Any, *args: Any, **kwargs: Any) -> Any:
        inner = getattr(func, "func", func)  # run_in_threadpool's functools.partial
        seen.append(getattr(inner, "__qualname__", repr(inner)))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    return seen


def _answer(r: Any) -> tuple[int, Any, dict[str, str]]:
    headers = {k: v for k, v in r.headers.items() if k not in ("date", "content-length")}
    try:
        body = r.json()
    except ValueError:
        body = r.text
    return r.status_code, body, headers


def test_an_append_makes_one_thread_hand_off(client, world, lean, hand_offs) -> None:
    h = bearer(client, "ent_a")
    hand_offs.clear()
    r = client.post(CCP, json=f.ccp_record(), headers=h)
    assert r.status_code == 201, r.text
    assert hand_offs == ["append_for_token"]
    lean(False)
    hand_offs.clear()
    r = client.post(CCP, json=f.ccp_record(value="86.6"), headers=h)
    assert r.status_code == 201, r.text
    assert len(hand_offs) >= 4  # principal, session in, endpoint, answer check, session out


def test_the_lean_answer_is_the_declared_answer(client, world, lean, engine) -> None:
    """Same status, headers and body; only the entry's own facts (seq, hashes, salt) move on."""
    h = bearer(client, "ent_a")
    answers = []
    for on in (True, False):
        lean(on)
        r = client.post(CCP, json=f.ccp_record(), headers=h)
        assert r.status_code == 201, r.text
        answers.append(_answer(r))
    (s1, b1, h1), (s2, b2, h2) = answers
    assert (s1, h1) == (s2, h2)
    assert b2["seq"] == b1["seq"] + 1
    assert b2["prev_hash"] == b1["hash"]
    moving = {"seq", "hash", "prev_hash"}
    assert {k: v for k, v in b1.items() if k not in moving} == {
        k: v for k, v in b2.items() if k not in moving
    }
    # committed before the answer: another connection reads the entry
    with read_session(engine) as s:
        stored = s.execute(
            select(Entry.seq, Entry.hash).where(Entry.ledger_id == world["a"])
            .order_by(Entry.seq.desc()).limit(2)  # type: ignore[attr-defined]
        ).all()  # fmt: skip
    assert [(seq, h.hex()) for seq, h in stored] == [
        (b2["seq"], b2["hash"]),
        (b1["seq"], b1["hash"]),
    ]


def _bad_requests(client: Any) -> list[tuple[str, dict[str, Any]]]:
    a, reg, admin = bearer(client, "ent_a"), bearer(client, "reg_in"), bearer(client, "admin")
    forged = {"Authorization": "Bearer ft_forged"}
    good = json.dumps(f.ccp_record())
    bad = json.dumps(f.ccp_record(value=86.5, ccp=""))
    js = {"content-type": "application/json"}
    return [
        ("no token", {"content": good, "headers": js}),
        ("no token, bad body", {"content": bad, "headers": js}),
        ("forged token", {"content": good, "headers": {**forged, **js}}),
        ("forged token, bad body", {"content": bad, "headers": {**forged, **js}}),
        ("forged token, not JSON", {"content": "{'x'", "headers": {**forged, **js}}),
        ("basic auth", {"content": good, "headers": {"Authorization": "Basic eDp5", **js}}),
        ("lower-case scheme", {"content": good, "headers": {**js, "Authorization": "bearer x"}}),
        ("regulator", {"content": good, "headers": {**reg, **js}}),
        ("regulator, bad body", {"content": bad, "headers": {**reg, **js}}),
        ("platform admin", {"content": good, "headers": {**admin, **js}}),
        ("bad body", {"content": bad, "headers": {**a, **js}}),
        ("not JSON", {"content": "{'x'", "headers": {**a, **js}}),
        ("empty body", {"content": "", "headers": {**a, **js}}),
        ("a JSON list", {"content": "[]", "headers": {**a, **js}}),
        ("text/plain", {"content": good, "headers": {**a, "content-type": "text/plain"}}),
        ("no content type", {"content": good.encode(), "headers": a}),
        ("duplicate key", {"content": good[:-1] + ', "ccp": "CCP2"}', "headers": {**a, **js}}),
        ("key too long", {"content": good, "headers": {**a, **js, "Idempotency-Key": "k" * 129}}),
        ("key with a space", {"content": good, "headers": {**a, **js, "Idempotency-Key": "a b"}}),
        (
            "key too long, forged",
            {"content": good, "headers": {**forged, **js, "Idempotency-Key": "k" * 129}},
        ),  # noqa: E501
        (
            "unknown lot",
            {"content": json.dumps(f.ccp_record(lot_code="NOPE")), "headers": {**a, **js}},
        ),  # noqa: E501
        (
            "in the future",
            {
                "content": json.dumps(f.ccp_record(measured_at="2027-01-01T00:00:00Z")),
                "headers": {**a, **js},
            },
        ),  # noqa: E501
        (
            "extra field",
            {"content": json.dumps(f.ccp_record(colour="red")), "headers": {**a, **js}},
        ),  # noqa: E501
    ]


def test_bad_requests_get_the_declared_answers_and_write_nothing(
    client, world, lean, engine
) -> None:
    cases = _bad_requests(client)
    before = snapshot(engine)
    for name, request in cases:
        answers = []
        for on in (True, False):
            lean(on)
            answers.append(_answer(client.post(CCP, **request)))
        assert answers[0] == answers[1], name
        assert answers[0][0] >= 400, (name, answers[0])
    assert snapshot(engine) == before
    statuses = {name: _answer(client.post(CCP, **request))[0] for name, request in cases}
    assert statuses["forged token, bad body"] == 401  # the token first, as before
    assert statuses["forged token, not JSON"] == 422  # JSON parsed before the token, as before
    assert statuses["regulator, bad body"] == 403
    assert statuses["duplicate key"] == 422
    assert statuses["key too long, forged"] == 401


def test_idempotent_replay_and_conflict_on_the_lean_path(client, world, hand_offs) -> None:
    h = {**bearer(client, "ent_a"), "Idempotency-Key": "mes-42"}
    first = client.post(CCP, json=f.ccp_record(), headers=h)
    again = client.post(CCP, json=f.ccp_record(), headers=h)
    assert (first.status_code, again.status_code) == (201, 200)
    assert (again.json()["seq"], again.json()["hash"]) == (
        first.json()["seq"],
        first.json()["hash"],
    )
    other = client.post(CCP, json=f.ccp_record(value="90.0"), headers=h)
    assert other.status_code == 409
    assert "mes-42" in other.json()["detail"]
    assert hand_offs.count("append_for_token") == 3


def test_revocation_and_expiry_are_seen_by_the_next_append(client, world, clock) -> None:
    """No token validity is kept between requests: a revoked or expired token fails at once."""
    admin = bearer(client, "ent_a_admin")
    r = client.post("/api/v1/enterprise/tokens", json={"name": "MES"}, headers=admin)
    assert r.status_code == 201, r.text
    erp = {"Authorization": f"Bearer {r.json()['token']}"}
    assert client.post(CCP, json=f.ccp_record(), headers=erp).status_code == 201
    r = client.delete(f"/api/v1/enterprise/tokens/{r.json()['id']}", headers=admin)
    assert r.status_code == 204
    r = client.post(CCP, json=f.ccp_record(value="86.7"), headers=erp)
    assert r.status_code == 401
    assert r.json() == {"detail": "the token is unknown, expired or revoked"}
    assert r.headers["www-authenticate"] == "Bearer"

    login = bearer(client, "ent_a")
    assert client.post(CCP, json=f.ccp_record(value="86.8"), headers=login).status_code == 201
    clock.advance(timedelta(hours=13))  # a login token lives 12 hours
    assert client.post(CCP, json=f.ccp_record(value="86.9"), headers=login).status_code == 401


def test_each_enterprise_appends_to_its_own_ledger(client, world, engine) -> None:
    r = client.post(CCP, json=f.ccp_record(), headers=bearer(client, "ent_b"))
    assert r.status_code == 422  # B has no lot PJ20260301A: A's ledger is out of its reach
    assert r.json()["detail"][0]["loc"][:2] == ["body", "lot_code"]
    r = client.post(CCP, json=f.ccp_record(), headers=bearer(client, "ent_a"))
    assert r.status_code == 201
    with read_session(engine) as s:
        last = s.execute(
            select(Entry.ledger_id).where(Entry.seq == r.json()["seq"], Entry.kind == "ccp_record")
        ).scalars().all()  # fmt: skip
    assert world["a"] in last
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" in r.headers


@settings(max_examples=400, deadline=None)
@given(path=st.text(max_size=40), query=st.binary(max_size=40))
def test_the_guard_skips_only_urls_that_cannot_decode_to_a_control_character(
    path: str, query: bytes
) -> None:
    """The Guard decodes a URL only when it holds "%" or a byte outside printable ASCII; any
    URL it lets through unread is one the full check passes too."""
    scope = {
        "type": "http",
        "path": "/" + path,
        "query_string": query,
        "headers": [(b"host", b"testserver")],
    }
    if _PLAIN.fullmatch(scope["path"]) and _PLAIN_BYTES.fullmatch(query):
        assert control_character_answer(scope) is None


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/api/v1/ccp-records?x=%00", 422),
        ("/api/v1/ccp-records%00", 422),
        ("/api/v1/ccp-records?x=%C2%85", 422),
        ("/api/v1/ccp-records%2500", 422),  # the path decoded twice, as before
        ("/api/v1/ccp-records?x=a%20b", 201),
        ("/api/v1/ccp-records?x=%E4%B8%AD", 201),
    ],
)
def test_one_guard_layer_checks_urls_and_bodies(client, world, url, status) -> None:
    # the body limit (web.body_limit) in front: a header scan for most requests
    assert [m.cls for m in client.app.user_middleware] == [BodyLimit, Guard]
    h = bearer(client, "ent_a")
    r = client.post(url, json=f.ccp_record(), headers=h)
    assert r.status_code == status, r.text
    if status == 422:
        assert r.json()["detail"][0]["type"] == "control_character"
    else:
        assert r.headers["x-frame-options"] == "DENY"
    big = {**f.ccp_record(), "operator": "x" * (MAX_JSON_BYTES + 1)}
    r = client.post(CCP, json=big, headers=h)
    assert r.status_code == 413
    assert r.headers["x-frame-options"] == "DENY"
