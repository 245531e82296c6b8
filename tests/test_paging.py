"""Long lists come a page at a time (issue 22, item 10): the API by cursor with a capped
limit, the pages as a first part and "more"; the ledger page's verification is reused while
the ledger's head is unchanged (and never by the full verifications)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

import web.deps
from conftest import ACCESS_PASSWORD as PASSWORD
from foodtrace.db import write_session
from foodtrace.records.service import Batch
from web.paging import FIRST

import factories as f


def _sales(engine: Any, clock: Any, lid: int, n: int) -> None:
    """``n`` more sales of the world's lot PJ20260301A (400 箱 made; 1 瓶 each)."""
    with write_session(engine) as s, Batch(session=s, ledger_id=lid, clock=clock) as batch:
        for _ in range(n):
            batch.record(kind="sale", data=f.sale(quantity="1", unit="瓶"), actor="qa")


def _walk(client: Any, url: str, headers: dict[str, str], cursor: str, nxt: str, key: str):
    """Every page of ``url`` by its cursor: (items, pages)."""
    items, pages, after = [], 0, None
    while True:
        sep = "&" if "?" in url else "?"
        got = client.get(url + (f"{sep}{cursor}={after}" if after is not None else ""),
                         headers=headers)  # fmt: skip
        assert got.status_code == 200, got.text
        body = got.json()
        items += body[key]
        pages += 1
        after = body[nxt]
        if after is None:
            return items, pages, body


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    more=st.integers(min_value=0, max_value=12),
    limit=st.integers(min_value=1, max_value=25),
    kind=st.sampled_from([None, "sale", "ccp_record"]),
)
def test_the_ledger_api_pages_give_every_entry_once(
    client, engine, clock, world, more: int, limit: int, kind: str | None
) -> None:
    _sales(engine, clock, world["a"], more)  # the ledger grows from example to example
    headers = f.bearer(client, "ent_a", PASSWORD)
    url = f"/api/v1/ledger?limit={limit}" + (f"&kind={kind}" if kind else "")
    whole = client.get(f"/api/v1/ledger?limit=500{'&kind=' + kind if kind else ''}",
                       headers=headers).json()  # fmt: skip
    items, pages, last = _walk(client, url, headers, "before", "next", "data")
    seqs = [e["seq"] for e in items]
    assert seqs == [e["seq"] for e in whole["data"]]  # every entry, once, newest first
    assert len(seqs) == len(set(seqs)) == whole["count"] == last["count"]
    assert pages == max(1, -(-len(seqs) // limit))
    assert all(e["kind"] == kind for e in items if kind)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(more=st.integers(min_value=0, max_value=12), limit=st.integers(min_value=1, max_value=9))
def test_todays_entries_page_by_cursor(client, engine, clock, world, more, limit) -> None:
    _sales(engine, clock, world["a"], more)
    headers = f.bearer(client, "ent_a", PASSWORD)
    items, _pages, last = _walk(
        client, f"/api/v1/today?limit={limit}", headers, "before", "next", "recorded"
    )
    seqs = [e["seq"] for e in items]
    assert len(seqs) == len(set(seqs)) == last["recorded_count"]
    assert seqs == sorted(seqs, reverse=True)


def test_a_cases_sales_page_by_cursor(client, engine, clock, world) -> None:
    _sales(engine, clock, world["a"], 23)
    reg = f.bearer(client, "reg_in", PASSWORD)
    case_id = f.notified_case(client, reg)
    whole = client.get(f"/api/v1/cases/{case_id}", headers=reg).json()
    assert whole["sales_count"] == len(whole["sales"]) == 24
    for limit in (1, 5, 24, 50):
        items, pages, _ = _walk(
            client, f"/api/v1/cases/{case_id}?sales_limit={limit}", reg, "sales_after",
            "sales_next", "sales",
        )  # fmt: skip
        assert items == whole["sales"]
        assert pages == -(-24 // limit)


def test_the_limits_are_capped(client, world) -> None:
    own = f.bearer(client, "ent_a", PASSWORD)
    reg = f.bearer(client, "reg_in", PASSWORD)
    case_id = f.notified_case(client, reg)
    for url, headers in (
        ("/api/v1/ledger?limit=501", own),
        ("/api/v1/today?limit=501", own),
        (f"/api/v1/cases/{case_id}?sales_limit=5001", reg),
    ):
        got = client.get(url, headers=headers)
        assert got.status_code == 422, url
        assert "less_than_equal" in got.text


def _login(app: Any, user: str) -> Any:
    from fastapi.testclient import TestClient

    c = TestClient(app)
    c.__enter__()
    assert f.page_login(c, user, PASSWORD).status_code in (200, 303)
    return c


def _rows(html: str, table: str) -> int:
    body = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return body.count("<tr>") - 1  # the header row


def test_long_lists_on_pages_show_a_first_part_and_more(app, engine, clock, world) -> None:
    _sales(engine, clock, world["a"], FIRST + 30)
    ent, reg = _login(app, "ent_a"), _login(app, "reg_in")
    try:
        today = ent.get("/today").text
        assert _rows(today, "recorded") == FIRST
        more = re.search(r'href="(/today\?recorded=\d+#recorded)"', today.replace("&amp;", "&"))
        assert more, "no link to more"
        assert _rows(ent.get(more.group(1)).text, "recorded") > FIRST
        url = f"/regulator/trail?credit_code={f.BEVERAGE}&lot=PJ20260301A"
        trail = reg.get(url).text
        assert _rows(trail, "trail-rows") == FIRST
        more = re.search(r'href="([^"]*rows=\d+#rows)"', trail.replace("&amp;", "&"))
        assert more, "no link to more"
        assert _rows(reg.get(more.group(1)).text, "trail-rows") > FIRST
        case_id = f.notified_case(reg, f.bearer(reg, "reg_in", PASSWORD))
        case = reg.get(f"/regulator/cases/{case_id}").text
        assert _rows(case, "scope-sales") == FIRST
        more = re.search(r'href="([^"]*sales=\d+#sales)"', case.replace("&amp;", "&"))
        assert more, "no link to more"
        assert _rows(reg.get(more.group(1)).text, "scope-sales") == FIRST + 31
    finally:
        ent.__exit__(None, None, None)
        reg.__exit__(None, None, None)


# ------------------------------------------------------- the ledger page's verification


@pytest.fixture
def verifications(monkeypatch) -> list[int]:
    """The ledgers verified in full, in order (every call of verify_consistently)."""
    done: list[int] = []
    real = web.deps.verify_consistently

    def counting(**kw: Any) -> Any:
        done.append(kw.get("ledger_id"))
        return real(**kw)

    monkeypatch.setattr(web.deps, "verify_consistently", counting)
    return done


def _status(page: str) -> str:
    (status,) = re.findall(r'<div class="notice (ok|bad)" id="chain-status">', page)
    return status


def _tamper(engine: Any, lid: int, seq: int) -> None:
    with engine.begin() as conn:
        body = bytes(
            conn.execute(
                text("SELECT body FROM entries WHERE ledger_id=:l AND seq=:s"), {"l": lid, "s": seq}
            ).scalar_one()
        )
        changed = body.replace(b'"actor":"qa"', b'"actor":"qb"')
        assert changed != body
        conn.execute(
            text("UPDATE entries SET body=:b WHERE ledger_id=:l AND seq=:s"),
            {"b": changed, "l": lid, "s": seq},
        )


def test_the_ledger_page_verifies_once_per_head(app, engine, clock, world, verifications):
    lid = world["a"]
    ent = _login(app, "ent_a")
    try:
        assert _status(ent.get("/ledger").text) == "ok"
        assert _status(ent.get("/ledger?page=0").text) == "ok"
        ent.get("/ledger?lot=PJ20260301A")
        assert verifications == [lid]  # the unchanged ledger: verified once
        f.add(engine, clock, lid, "sale", f.sale())  # a new entry: a new head
        assert _status(ent.get("/ledger").text) == "ok"
        assert verifications == [lid, lid]
        # Tampering with a stored entry's bytes leaves the head as it was: the page's cached
        # result stands until the head changes (or TRACE_VERIFY_CACHE_S passes) ...
        _tamper(engine, lid, 5)  # who recorded the incoming check
        assert _status(ent.get("/ledger").text) == "ok"
        # ... the full verifications never use the cache and see it at once ...
        reg = f.bearer(ent, "reg_in", PASSWORD)
        got = ent.get(f"/api/v1/regulator/enterprises/{f.BEVERAGE}/verify", headers=reg)
        assert got.json()["ok"] is False
        own = f.bearer(ent, "ent_a", PASSWORD)
        assert ent.get("/api/v1/ledger/verify", headers=own).json()["ok"] is False
        # ... and the next append makes the page verify again, and fail.
        f.add(engine, clock, lid, "sale", f.sale())
        assert _status(ent.get("/ledger").text) == "bad"
    finally:
        ent.__exit__(None, None, None)


def test_without_the_cache_every_view_verifies(db_url, engine, clock, world, verifications):
    from foodtrace.config import Settings
    from webapp.main import create_app

    app = create_app(Settings(database_url=db_url, verify_cache_s=0), clock=clock, engine=engine)
    ent = _login(app, "ent_a")
    try:
        ent.get("/ledger")
        ent.get("/ledger")
        assert verifications == [world["a"], world["a"]]
    finally:
        ent.__exit__(None, None, None)


def _lot_seqs_as_before(engine: Any, eid: int, lot_code: str) -> set[int]:
    """The entries ``/ledger?lot=`` listed before it read only their seqs (its old code)."""
    from foodtrace.db import read_session
    from foodtrace.records import queries
    from foodtrace.records.projection import DbStore

    with read_session(engine) as session:
        store = DbStore(session, eid)
        lot_seq = store.find("lots", code=lot_code)[0]["record_seq"]
        seqs = {lot_seq}
        for table in ("ccp_readings", "release_tests", "sales"):
            seqs |= {r["record_seq"] for r in store.find(table, lot_seq=lot_seq)}
        readings = {r["record_seq"] for r in store.find("ccp_readings", lot_seq=lot_seq)}
        seqs |= {
            a["record_seq"]
            for a in store.find("corrective_actions")
            if a["reading_seq"] in readings
        }
        fixes = queries.corrections_of(session=session, enterprise_id=eid, seqs=sorted(seqs))
        return seqs | {s for cs in fixes.values() for s in cs}


def test_the_ledger_page_of_a_lot_lists_its_entries_a_page_at_a_time(app, engine, clock, world):
    lid = world["a"]
    _sales(engine, clock, lid, 60)
    reading = f.add(engine, clock, lid, "ccp_record", f.ccp_record(value="80.1")).seq
    f.add(engine, clock, lid, "corrective_action", {
        "reading_seq": reading, "action": "重新杀菌", "taken_at": "2026-03-01T09:00:00+08:00",
        "operator": "李强",
    })  # fmt: skip
    f.add(engine, clock, lid, "correction", {
        "corrects": 10, "reason": "数量录错", "record": f.sale(quantity="90"),
    })  # fmt: skip
    expected = _lot_seqs_as_before(engine, lid, "PJ20260301A")
    ent = _login(app, "ent_a")
    try:
        listed: list[int] = []
        for page in range(3):
            html = ent.get(f"/ledger?lot=PJ20260301A&page={page}").text
            listed += [int(s) for s in re.findall(r'<td><a href="/ledger/(\d+)">', html)]
        sales = ent.get("/ledger?lot=PJ20260301A&kind=sale").text
    finally:
        ent.__exit__(None, None, None)
    assert listed == sorted(expected, reverse=True)
    assert len(re.findall(r'<td><a href="/ledger/(\d+)">', sales)) == 50  # 61 sales: a page


@pytest.mark.parametrize("limit", [1, 2, 5])
def test_a_lots_sales_come_a_page_at_a_time(client, engine, clock, limit) -> None:
    """The lot API pages its sales like a case: every sale once across the pages, the
    count, and the mass balance over all of them."""
    lid = f.beverage_ledger(engine, clock)
    for i in range(6):
        f.add(engine, clock, lid, "sale", f.sale(quantity=str(i + 1), customer_code="DIST01"))
    f.user(engine, clock, "bev-pg", "bev pass 2026", enterprise=f.BEVERAGE)
    h = f.bearer(client, "bev-pg", "bev pass 2026")
    whole = client.get("/api/v1/lots/PJ20260301A", headers=h, params={"sales_limit": 5000}).json()
    assert whole["sales_count"] == 7
    assert whole["sales_next"] is None
    seen, after = [], None
    while True:
        params = {"sales_limit": limit, **({"sales_after": after} if after is not None else {})}
        page = client.get("/api/v1/lots/PJ20260301A", headers=h, params=params).json()
        assert len(page["sales"]) <= limit
        assert page["balance"] == whole["balance"]
        seen += page["sales"]
        after = page["sales_next"]
        if after is None:
            break
    assert seen == whole["sales"]
    r = client.get("/api/v1/lots/PJ20260301A", headers=h, params={"sales_limit": 5001})
    assert r.status_code == 422
