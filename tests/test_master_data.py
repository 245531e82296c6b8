"""Master data can be edited (issue 24, item 12): a product (its CCP plan and release-test
items), a supplier or a customer changes by a new version, a correction entry appended to
the ledger, never by rewriting an entry; its versions are listed with who, when and why;
a supplier or customer set inactive is no longer offered in the forms, and the records that
name it still show it.
"""

from __future__ import annotations

import json
import random
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from sqlalchemy import select

import test_browser
from conftest import ACCESS_PASSWORD as PASSWORD
from foodtrace.db import read_session
from foodtrace.ledger.models import Entry
from foodtrace.records import queries
from foodtrace.verify import verify_ledger
from web.web import SESSION_COOKIE, csrf_token

import factories as f


class _Form(HTMLParser):
    """The values a browser would post from a page's ``form.record`` (inputs, checked boxes,
    selected options, textareas)."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("file", "submit"):
            if a.get("type") == "checkbox":
                if "checked" in a:
                    self.values[name] = a.get("value", "on")
            else:
                self.values[name] = a.get("value", "")
        elif tag == "select" and name:
            self._select = name
            self.values.setdefault(name, "")
        elif tag == "option" and self._select and "selected" in a:
            self.values[self._select] = a.get("value", "")
        elif tag == "textarea" and name:
            self._textarea = name
            self.values[name] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.values[self._textarea] += data


def form_values(html: str) -> dict[str, str]:
    p = _Form()
    p.feed(html)
    return p.values


def signed_in(client: Any, user: str) -> Any:
    got = f.page_login(client, user, PASSWORD, follow_redirects=False)
    assert got.status_code == 303, got.text[:300]
    return client


def _csrf(client: Any) -> str:
    return csrf_token(client.cookies[SESSION_COOKIE])


def _entries(engine: Any, lid: int) -> list[tuple[int, str, bytes]]:
    with read_session(engine) as s:
        rows = s.execute(
            select(Entry.seq, Entry.kind, Entry.body)
            .where(Entry.ledger_id == lid)
            .order_by(Entry.seq)
        )
        return [(seq, kind, bytes(body)) for seq, kind, body in rows]


def _row(engine: Any, lid: int, table: str, code: str) -> dict[str, Any]:
    with read_session(engine) as s:
        rows = queries.list_rows(session=s, enterprise_id=lid, table=table)
    return next(r for r in rows if r["code"] == code)


def _verified(engine: Any, lid: int) -> None:
    with read_session(engine) as s:
        report = verify_ledger(session=s, ledger_id=lid)
    assert report.ok, report


def _edit(client: Any, what: str, code: str, change: dict[str, str]) -> Any:
    page = client.get(f"/master/{what}/{code}/edit")
    assert page.status_code == 200, page.text[:500]
    values = form_values(page.text)
    values.update(change)
    values["save"] = "1"
    return client.post(f"/master/{what}/{code}/edit", data=values, follow_redirects=False)


def test_an_admin_edits_a_products_plan_as_a_new_version(client, engine, world) -> None:
    lid = world["a"]
    before = _entries(engine, lid)
    first = _row(engine, lid, "products", "PJ500")
    signed_in(client, "ent_a_admin")
    page = client.get("/master/products/PJ500/edit")
    values = form_values(page.text)
    assert values["ccp.0.min"] == "85"
    assert values["release_items.1.item"] == "大肠菌群"
    # the form has a spare row after the plan's three parameters and the two test items
    assert "ccp.3.point" in values
    assert "release_items.2.item" in values
    got = _edit(
        client,
        "products",
        "PJ500",
        {
            "ccp.0.min": "86",
            "release_items.2.item": "霉菌",
            "release_items.2.limit": "≤20",
            "release_items.2.unit": "CFU/mL",
            "name": "石榴汁饮料（新配方）",
            "reason": "杀菌温度下限按新的 HACCP 计划提高到 86 °C，增加霉菌检验",
        },
    )
    assert got.status_code == 303, got.text[:2000]
    after = _entries(engine, lid)
    assert after[: len(before)] == before  # nothing written changes
    (seq, kind, body), *more = after[len(before) :]
    assert kind == "correction"
    env = json.loads(body)
    assert env["body"]["corrects"] == first["record_seq"]
    assert env["actor"] == "ent_a_admin"
    new = env["body"]["record"]
    assert new["ccp_plan"][0]["parameters"][0]["min"] == "86"
    assert new["release_items"][2] == {"item": "霉菌", "limit": "≤20", "unit": "CFU/mL"}
    assert new["code"] == "PJ500"
    # the projection follows: the current row comes from the new version
    row = _row(engine, lid, "products", "PJ500")
    assert (row["record_seq"], row["current_seq"]) == (first["record_seq"], seq)
    assert row["name"] == "石榴汁饮料（新配方）"
    _verified(engine, lid)
    # the history: both versions, who, when, why and what changed
    history = client.get(got.headers["location"]).text
    assert f'data-seq="{seq}"' in history
    assert f'data-seq="{first["record_seq"]}"' in history
    assert "杀菌温度下限按新的 HACCP 计划提高到 86 °C" in history
    assert "ent_a_admin" in history
    assert "石榴汁饮料（新配方）" in history
    assert "≥ 86" in history
    # the released lot's public facts name the product: its declaration follows the new name
    assert [k for _, k, _ in more] == ["public_declaration"]
    assert json.loads(more[0][2])["body"]["product"] == "石榴汁饮料（新配方）"


def test_a_reading_follows_the_new_plan(client, engine, clock, world) -> None:
    lid = world["a"]
    signed_in(client, "ent_a_admin")
    got = _edit(client, "products", "PJ500", {"ccp.0.min": "86", "reason": "新计划"})
    assert got.status_code == 303
    done = f.add(engine, clock, lid, "ccp_record", f.ccp_record(value="85.5"))
    assert [w.type for w in done.warnings] == ["open_deviation"]


def test_an_edit_that_changes_nothing_or_gives_no_reason_writes_nothing(
    client, engine, world
) -> None:
    lid = world["a"]
    before = _entries(engine, lid)
    signed_in(client, "ent_a_admin")
    same = _edit(client, "products", "PJ500", {"reason": "看看"})
    assert same.status_code == 422
    assert "没有任何改动" in same.text
    blank = _edit(client, "customers", "DIST01", {"contact": "0632-1234567", "reason": ""})
    assert blank.status_code == 422
    bad = _edit(client, "products", "PJ500", {"ccp.0.min": "", "reason": "去掉下限"})
    assert bad.status_code == 422  # a numeric parameter needs a limit
    code = _edit(client, "suppliers", "SUGAR01", {"code": "OTHER", "reason": "改编码"})
    assert code.status_code == 422  # the code names the record: it stays, nothing changed
    assert _entries(engine, lid) == before


def test_operators_read_the_versions_and_only_the_admin_edits(client, engine, world) -> None:
    lid = world["a"]
    before = _entries(engine, lid)
    signed_in(client, "ent_a")
    assert client.get("/master/products/PJ500").status_code == 200
    assert 'id="edit"' not in client.get("/master/products/PJ500").text
    assert client.get("/master/products/PJ500/edit").status_code == 403
    token = _csrf(client)
    for path in ("/master/products/PJ500/edit", "/master/customers/DIST01/status"):
        got = client.post(path, data={"csrf_token": token, "save": "1", "reason": "x"})
        assert got.status_code == 403
    assert client.get("/master/products/NOPE").status_code == 404
    assert client.get("/master/widgets/PJ500").status_code == 404
    assert _entries(engine, lid) == before


def test_an_inactive_customer_is_not_offered_and_its_sales_still_show_it(
    client, engine, world
) -> None:
    lid = world["a"]
    signed_in(client, "ent_a_admin")
    assert 'value="DIST01"' in client.get("/records/sale/new").text
    got = client.post(
        "/master/customers/DIST01/status",
        data={"csrf_token": _csrf(client), "inactive": "true", "reason": "已停止合作"},
        follow_redirects=False,
    )
    assert got.status_code == 303, got.text[:1000]
    assert _row(engine, lid, "customers", "DIST01")["inactive"] is True
    assert 'value="DIST01"' not in client.get("/records/sale/new").text
    listing = client.get("/master/customers").text
    assert "已停用" in listing
    # the lot's sale still names the buyer
    lot = client.get("/lots/PJ20260301A").text
    assert "枣庄惠民食品经销有限公司" in lot
    # the entry that set it inactive says so; the customer's first entry never mentioned it
    entries = _entries(engine, lid)
    first = next(body for _, kind, body in entries if kind == "customer")
    assert b"inactive" not in first
    last = json.loads(entries[-1][2])
    assert last["body"]["record"]["inactive"] is True
    _verified(engine, lid)
    # and back: active again, offered again, and the record says nothing of it
    got = client.post(
        "/master/customers/DIST01/status",
        data={"csrf_token": _csrf(client), "inactive": "false", "reason": "恢复合作"},
        follow_redirects=False,
    )
    assert got.status_code == 303
    assert _row(engine, lid, "customers", "DIST01")["inactive"] is None
    assert "inactive" not in json.loads(_entries(engine, lid)[-1][2])["body"]["record"]
    assert 'value="DIST01"' in client.get("/records/sale/new").text
    history = client.get("/master/customers/DIST01").text
    assert history.count("<tr data-seq=") == 3
    _verified(engine, lid)


def test_an_inactive_supplier_is_not_offered_on_the_incoming_check(client, engine, world) -> None:
    signed_in(client, "ent_a_admin")
    got = _edit(client, "suppliers", "SUGAR01", {"inactive": "true", "reason": "资质过期"})
    assert got.status_code == 303, got.text[:2000]
    assert 'value="SUGAR01"' not in client.get("/records/material_check/new").text
    # correcting the old check keeps its supplier selectable
    seq = next(seq for seq, kind, _ in _entries(engine, world["a"]) if kind == "material_check")
    form = client.get(f"/ledger/{seq}/correct").text
    assert 'value="SUGAR01" selected' in form


def test_the_status_form_refuses_a_product_and_a_blank_reason(client, engine, world) -> None:
    lid = world["a"]
    before = _entries(engine, lid)
    signed_in(client, "ent_a_admin")
    token = _csrf(client)
    assert (
        client.post(
            "/master/products/PJ500/status",
            data={"csrf_token": token, "inactive": "true", "reason": "x"},
        ).status_code
        == 404
    )
    blank = client.post(
        "/master/customers/DIST01/status",
        data={"csrf_token": token, "inactive": "true", "reason": ""},
    )
    assert blank.status_code == 422
    assert _entries(engine, lid) == before


@pytest.mark.parametrize("seed", [11, 12])
def test_versions_over_a_random_world_replay_and_keep_the_forms_right(
    client, engine, clock, seed
) -> None:
    """A random world (tests/worlds.py): each maker sets a random half of its customers and
    suppliers inactive and edits a product; every ledger still verifies (the rows replay
    from the entries), the sale and check forms offer exactly the active ones, and each
    record's versions are its entry and its corrections."""
    import worlds
    from foodtrace.accounts.service import Role, add_user
    from foodtrace.db import write_session

    world = worlds.build(engine, clock, seed)
    rng = random.Random(seed)
    for ent in world.makers():
        with write_session(engine) as s:
            add_user(
                session=s, username=f"boss-{ent.key}", password=PASSWORD,
                role=Role.ENTERPRISE_ADMIN, now=clock.now(),
                enterprise_credit_code=ent.credit_code,
            )  # fmt: skip
        signed_in(client, f"boss-{ent.key}")
        eid = ent.ledger_id
        with read_session(engine) as s:
            parties = {
                t: [r["code"] for r in queries.list_rows(session=s, enterprise_id=eid, table=t)]
                for t in ("customers", "suppliers")
            }
            products = queries.list_rows(session=s, enterprise_id=ent.ledger_id, table="products")
        off = {t: set(rng.sample(codes, len(codes) // 2)) for t, codes in parties.items()}
        for table, codes in off.items():
            for code in sorted(codes):
                got = client.post(
                    f"/master/{table}/{code}/status",
                    data={"csrf_token": _csrf(client), "inactive": "true", "reason": "停用"},
                    follow_redirects=False,
                )
                assert got.status_code == 303, got.text[:1000]
        product = rng.choice(products)
        got = _edit(
            client, "products", product["code"], {"storage": "阴凉干燥处", "reason": "补充贮存条件"}
        )
        assert got.status_code == 303, got.text[:2000]
        _verified(engine, ent.ledger_id)
        sale = client.get("/records/sale/new").text
        check = client.get("/records/material_check/new").text
        for table, page in (("customers", sale), ("suppliers", check)):
            offered = set(re.findall(r'<option value="([^"]+)"', page)) & set(parties[table])
            assert offered == set(parties[table]) - off[table]
        history = client.get(f"/master/products/{product['code']}").text
        assert history.count("<tr data-seq=") == 2
        assert "补充贮存条件" in history


# --------------------------------------------------------------------------- in a browser

WIDE = {"width": 1366, "height": 900}
browser, maker, site = test_browser.browser, test_browser.maker, test_browser.site
"""The browser tests' fixtures: Chromium, the beverage maker with its users, the app."""


@pytest.fixture
def wide_page(browser, site):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport=WIDE, base_url=site)
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    context.close()


def test_the_admin_edits_a_product_in_a_browser(wide_page, engine, db_url) -> None:
    """The beverage maker's admin (test_browser's ``maker``) raises a CCP limit and adds a
    release-test item, then reads the product's versions: 4 clicks, 5 fields."""
    login, shot = test_browser.login, test_browser.shot
    page = wide_page
    login(page, "boss")
    clicks = fields = 0
    page.click("nav.main a[href='/master/products']")
    page.click("#master-rows a.button:has-text('修改')")
    page.wait_for_load_state()
    clicks += 2
    assert page.locator("#code").get_attribute("readonly") is not None
    page.fill("[name='ccp.0.min']", "86")
    page.fill("[name='release_items.2.item']", "霉菌")
    page.fill("[name='release_items.2.limit']", "≤20")
    page.fill("[name='release_items.2.unit']", "CFU/mL")
    page.fill("#reason", "杀菌温度下限提高到 86 °C，增加霉菌检验")
    fields += 5
    shot(page, "master-edit", db_url)
    page.click("button[name=save][value='1']")
    page.wait_for_load_state()
    clicks += 1
    assert page.locator(".notice.ok").is_visible(), page.locator("main").inner_text()[:2000]
    assert page.locator("#versions tr[data-seq]").count() == 2
    assert "≥ 86" in page.locator("#ccp-plan").inner_text()
    assert "霉菌" in page.locator("#release-items").inner_text()
    assert "杀菌温度下限提高到 86 °C" in page.locator("#versions").inner_text()
    shot(page, "master-versions", db_url)
    assert clicks <= 4
    assert fields <= 5
    # the customer set inactive leaves the sale form's choices
    page.goto("/master/customers/DIST01")
    page.fill("#status-reason", "停止合作")
    page.click("#status-form button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("#inactive-badge").is_visible()
    shot(page, "master-customer-inactive", db_url)
    page.goto("/records/sale/new")
    assert page.locator("#customer_code option[value='DIST01']").count() == 0
