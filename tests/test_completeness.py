"""Completeness on the demo district: every planted defect appears, in the regulator's view."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import select

from foodtrace.accounts.models import Enterprise
from foodtrace.completeness import RULES, district_completeness
from foodtrace.db import read_session
from foodtrace.demo import DEMO_PASSWORD
from foodtrace.records.projection import DbStore

import factories as f

TODAY = date(2026, 11, 1)


def _login(client, username: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.mark.demo
def test_the_demo_defects_appear_and_the_weakest_come_first(client) -> None:
    r = client.get(
        "/api/v1/completeness",
        params={"since": "2026-10-01", "until": "2026-10-31"},
        headers=_login(client, "regulator"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["enterprises"]) == 5
    shares = [e["complete_share"] for e in body["enterprises"]]
    assert shares == sorted(shares)
    findings = {(f["rule"], f["lot"]) for e in body["enterprises"] for f in e["findings"]}
    for planted in (
        ("ccp_readings", "MK-D17"),  # a gap in the pasteurisation readings
        ("ccp_readings", "BF-D22"),  # a parameter never recorded
        ("release_test", "PJ-D19"),  # sold before its release test
        ("deviations_closed", "MK-D24"),  # an open deviation
        ("timely", "BF-D15"),
    ):  # a back-filled reading
        assert planted in findings, planted
    # the deviation closed later, and the one closed with its reading, are not findings
    assert ("deviations_closed", "PJ-D12") not in findings
    assert ("deviations_closed", "BF-D09") not in findings
    dairy = next(e for e in body["enterprises"] if "乳业" in e["name"])
    mk17 = next(x for x in dairy["lots"] if x["lot"] == "MK-D17")
    assert list(mk17["failed"]) == ["ccp_readings"]


@pytest.mark.demo
def test_an_enterprise_sees_only_itself_and_bad_periods_are_refused(client) -> None:
    h = _login(client, "juice-op")
    body = client.get(
        "/api/v1/completeness", params={"since": "2026-10-01", "until": "2026-10-31"}, headers=h
    ).json()
    assert [e["credit_code"] for e in body["enterprises"]] == ["91370404MA3F42206T"]
    r = client.get(
        "/api/v1/completeness", params={"since": "2026-10-31", "until": "2026-10-01"}, headers=h
    )
    assert r.status_code == 422
    # a report covers at most a year: a longer period is refused, naming the problem,
    # rather than walking every day of it (the API fuzzer asked for 1,900 years)
    year = {"since": "2025-10-31", "until": "2026-10-31"}
    assert client.get("/api/v1/completeness", params=year, headers=h).status_code == 200
    r = client.get(
        "/api/v1/completeness", params={"since": "0149-11-21", "until": "2026-10-31"}, headers=h
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["type"] == "period_too_long"
    assert "366 days" in r.json()["detail"][0]["msg"]
    assert client.get("/api/v1/completeness").status_code == 401
    admin = _login(client, "admin")
    assert client.get("/api/v1/completeness", headers=admin).status_code == 403


# ---------------------------------------------------------------------------
# A small district built record by record: a registered sugar maker and a
# beverage maker that buys its sugar. Every lot of the baseline is complete;
# each rule then gets a lot that breaks that rule only.

# Once-per-lot CCP parameters keep a complete lot down to two readings.
JUICE_PRODUCT = f.product(
    ccp_plan=[
        {
            "code": "CCP1",
            "name": "巴氏杀菌",
            "parameters": [{"code": "temperature", "name": "杀菌温度", "unit": "°C", "min": "85"}],
        },
        {
            "code": "CCP2",
            "name": "灌装封口",
            "parameters": [{"code": "seal", "name": "封口完整性", "kind": "pass_fail"}],
        },
    ]
)
SUGAR_NAME = "枣庄鲁南糖业有限公司"
JUICE_NAME = "枣庄峄城石榴饮品有限公司"
DAY = "2026-03-02"  # the baseline (a Monday, ISO week 10)
NEXT = "2026-03-03"  # the rule breakers


def _at(clock, when: str) -> None:
    clock.set(datetime.fromisoformat(when))


def _add(engine, clock, lid: int, kind: str, data: dict, when: str) -> None:
    """Record at ``when`` (local time): within the hour of the event, so on time."""
    _at(clock, when)
    f.add(engine, clock, lid, kind, data)


def sugar_lot(engine, clock, sid: int, code: str, day: str, *, sell: bool = True) -> None:
    """A complete sugar lot made from cane, released, and sold to the beverage maker."""
    t = f"{day}T07:00:00+08:00"
    lot = f.sugar_lot(
        code, day, "CANE-01", cane="4000", started_at=f"{day}T06:00:00+08:00", ended_at=t
    )
    _add(engine, clock, sid, "production_lot", lot, f"{day}T07:10:00+08:00")
    test = f.release_test(
        lot_code=code,
        tested_at=f"{day}T07:30:00+08:00",
        items=[
            {"item": "蔗糖分", "result": "99.8", "unit": "g/100g", "limit": "≥99.6", "passed": True}
        ],
        report_no=f"JC-{code}",
    )
    _add(engine, clock, sid, "release_test", test, f"{day}T07:40:00+08:00")
    if sell:
        sale = f.sale(lot_code=code, quantity="2000", unit="kg", sale_date=day, customer_code="BEV")
        _add(engine, clock, sid, "sale", sale, f"{day}T08:00:00+08:00")


def sugar_receipt(engine, clock, bid: int, code: str, batch: str, day: str) -> None:
    """The beverage maker's incoming check of a sugar batch from the registered sugar maker."""
    check = f.material_check(
        material_lot=code, batch_no=batch, receipt_date=day, production_date="2026-02-20"
    )
    _add(engine, clock, bid, "material_check", check, f"{day}T09:00:00+08:00")


def juice_lot(
    engine,
    clock,
    bid: int,
    code: str,
    day: str,
    *,
    material: str = "ML-0302",
    temperature: str = "86.5",
    seal: bool = True,
    test: bool = True,
    test_recorded: str | None = None,
    sold: str = "100",
) -> None:
    """A juice lot, complete unless told otherwise."""
    lot = f.production_lot(
        lot_code=code,
        production_date=day,
        started_at=f"{day}T10:00:00+08:00",
        ended_at=f"{day}T12:00:00+08:00",
        materials=[{"material_lot": material, "quantity": "10", "unit": "kg"}],
    )
    _add(engine, clock, bid, "production_lot", lot, f"{day}T12:10:00+08:00")
    reading = f.ccp_record(lot_code=code, value=temperature, measured_at=f"{day}T10:30:00+08:00")
    _add(engine, clock, bid, "ccp_record", reading, f"{day}T12:15:00+08:00")
    if seal:
        sealed = f.ccp_record(
            lot_code=code,
            ccp="CCP2",
            parameter="seal",
            value=None,
            unit=None,
            result="pass",
            measured_at=f"{day}T10:35:00+08:00",
        )
        _add(engine, clock, bid, "ccp_record", sealed, f"{day}T12:15:00+08:00")
    if not test:
        return
    passed = f.release_test(lot_code=code, tested_at=f"{day}T14:00:00+08:00")
    _add(engine, clock, bid, "release_test", passed, test_recorded or f"{day}T14:10:00+08:00")
    sale = f.sale(lot_code=code, quantity=sold, sale_date=day)
    _add(engine, clock, bid, "sale", sale, f"{day}T15:00:00+08:00")


def build_district(engine, clock, *, sugar_region: str = "370404") -> dict[str, int]:
    """The baseline: sugar lot BT0302 sold to the beverage maker, received as ML-0302 and
    used in juice lot PJ0302, sold to an unregistered distributor. All complete."""
    _at(clock, f"{DAY}T05:00:00+08:00")
    sid = f.register(
        engine,
        clock,
        f.SUGAR,
        name=SUGAR_NAME,
        licence_no="SC10137040400011",
        region_code=sugar_region,
    )
    bid = f.register(engine, clock, f.BEVERAGE, name=JUICE_NAME)
    for kind, data in (
        ("supplier", f.supplier(code="CANE", name="峄城甘蔗合作社", credit_code=None)),
        ("customer", f.customer(code="BEV", name=JUICE_NAME, credit_code=f.BEVERAGE)),
        ("product", f.SUGAR_PRODUCT),
    ):
        f.add(engine, clock, sid, kind, data)
    for kind, data in (
        ("supplier", f.supplier()),  # SUGAR01: the registered sugar maker
        ("supplier", f.supplier(code="CITRIC", name="潍坊英轩实业", credit_code=None)),
        ("customer", f.customer()),  # DIST01: an unregistered distributor
        ("product", JUICE_PRODUCT),
    ):
        f.add(engine, clock, bid, kind, data)
    cane = f.cane_receipt(
        "CANE-01", "GZ0301", "50000", "2026-03-01",
        supplier_licence_checked=False, supplier_licence_no=None,
    )  # fmt: skip
    _add(engine, clock, sid, "material_check", cane, "2026-03-01T09:00:00+08:00")
    sugar_lot(engine, clock, sid, "BT0302", DAY)
    sugar_receipt(engine, clock, bid, "ML-0302", "BT0302", DAY)
    juice_lot(engine, clock, bid, "PJ0302", DAY)
    return {"sugar": sid, "beverage": bid}


def break_receipt_without_sale(engine, clock, ids) -> str:
    sugar_receipt(engine, clock, ids["beverage"], "ML-NEVER", "BT-NEVER-SOLD", NEXT)
    juice_lot(engine, clock, ids["beverage"], "R1", NEXT, material="ML-NEVER")
    return "R1"


def break_sale_without_receipt(engine, clock, ids) -> str:
    sugar_lot(engine, clock, ids["sugar"], "BT0303", NEXT)  # sold, never received
    return "BT0303"


def break_materials_checked(engine, clock, ids) -> str:
    """The check of a used material lot is corrected to 'rejected' afterwards."""
    check = f.material_check(
        material_lot="CA-01",
        material_name="柠檬酸",
        material_type="food_additive",
        supplier_code="CITRIC",
        batch_no="CA0301",
        receipt_date=NEXT,
    )
    _add(engine, clock, ids["beverage"], "material_check", check, f"{NEXT}T09:00:00+08:00")
    juice_lot(engine, clock, ids["beverage"], "R2", NEXT, material="CA-01")
    with read_session(engine) as s:
        seq = DbStore(s, ids["beverage"]).find("material_lots", code="CA-01")[0]["record_seq"]
    correction = {
        "corrects": seq,
        "reason": "复核：该批柠檬酸合格证不符，应判定不合格",
        "record": {**check, "accepted": False},
    }
    _add(engine, clock, ids["beverage"], "correction", correction, f"{NEXT}T16:00:00+08:00")
    return "R2"


def break_ccp_readings(engine, clock, ids) -> str:
    juice_lot(engine, clock, ids["beverage"], "R3", NEXT, seal=False)
    return "R3"


def break_deviations_closed(engine, clock, ids) -> str:
    juice_lot(engine, clock, ids["beverage"], "R4", NEXT, temperature="83.5")
    return "R4"


def break_release_test(engine, clock, ids) -> str:
    juice_lot(engine, clock, ids["beverage"], "R5", NEXT, test=False)
    return "R5"


def break_mass_balance(engine, clock, ids) -> str:
    juice_lot(engine, clock, ids["beverage"], "R6", NEXT, sold="500")  # of 400 箱
    return "R6"


def break_timely(engine, clock, ids) -> str:
    late = "2026-03-05T09:00:00+08:00"  # the release test entered two days after it
    juice_lot(engine, clock, ids["beverage"], "R7", NEXT, test_recorded=late)
    return "R7"


def break_code_form(engine, clock, ids) -> str:
    """A lot code written before the code rule (with a zero-width space): kept, listed."""
    from unittest.mock import patch

    import schemas.types

    with patch.object(schemas.types, "check_code", lambda value: value):
        juice_lot(engine, clock, ids["beverage"], "R8\u200b", NEXT)
    return "R8\u200b"


BREAKERS = {
    "materials_checked": break_materials_checked,
    "ccp_readings": break_ccp_readings,
    "deviations_closed": break_deviations_closed,
    "release_test": break_release_test,
    "receipt_without_sale": break_receipt_without_sale,
    "sale_without_receipt": break_sale_without_receipt,
    "code_form": break_code_form,
    "mass_balance": break_mass_balance,
    "timely": break_timely,
}
# ``buyer_fields`` cannot be broken through the records: a customer without a name
# is refused, and a sale takes the buyer's fields from its customer record.


def _district(engine) -> list:
    with read_session(engine) as s:
        ids = list(s.execute(select(Enterprise.id)).scalars())
        return district_completeness(
            session=s, enterprise_ids=ids, since=date(2026, 3, 1), until=date(2026, 3, 10)
        )


def test_the_baseline_district_is_complete(engine, clock) -> None:
    build_district(engine, clock)
    results = _district(engine)
    assert {r.credit_code: [x.lot for x in r.lots] for r in results} == {
        f.SUGAR: ["BT0302"],
        f.BEVERAGE: ["PJ0302"],
    }
    for r in results:
        assert [x.failed for x in r.lots] == [{}]
        assert r.findings == []
        assert r.outside == []


def test_rule_breakers_cover_every_rule_but_one() -> None:
    assert set(RULES) - set(BREAKERS) == {"buyer_fields"}


@pytest.mark.parametrize("rule", list(BREAKERS))
def test_a_lot_that_breaks_only_one_rule(engine, clock, rule: str) -> None:
    ids = build_district(engine, clock)
    lot = BREAKERS[rule](engine, clock, ids)
    results = _district(engine)
    failed = {x.lot: x.failed for r in results for x in r.lots}
    assert list(failed[lot]) == [rule], failed[lot]
    assert all(not why for code, why in failed.items() if code != lot), failed
    findings = [(x.rule, x.lot) for r in results for x in r.findings]
    assert findings == [(rule, lot)]


def test_the_cross_enterprise_findings_name_the_other_side(engine, clock) -> None:
    ids = build_district(engine, clock)
    break_receipt_without_sale(engine, clock, ids)
    break_sale_without_receipt(engine, clock, ids)
    by_code = {r.credit_code: r for r in _district(engine)}
    (sold,) = by_code[f.SUGAR].findings
    assert (sold.rule, sold.lot) == ("sale_without_receipt", "BT0303")
    assert sold.why == (f"sold 2000 kg to {JUICE_NAME} on {NEXT}: no incoming check of it there")
    (received,) = by_code[f.BEVERAGE].findings
    assert (received.rule, received.lot) == ("receipt_without_sale", "R1")
    assert received.why == (
        f"material lot ML-NEVER: {SUGAR_NAME} recorded no sale of batch BT-NEVER-SOLD "
        "to this enterprise"
    )
    assert received.reasons[0].params == {
        "material_lot": "ML-NEVER",
        "supplier": SUGAR_NAME,
        "batch": "BT-NEVER-SOLD",
    }


def test_a_bad_receipt_no_lot_has_used_is_a_finding_of_the_enterprise(engine, clock) -> None:
    ids = build_district(engine, clock)
    sugar_receipt(engine, clock, ids["beverage"], "ML-IDLE", "BT-NEVER-SOLD", NEXT)
    # the same batch from the right supplier, but sold to someone else, is no sale to us
    sugar_receipt(engine, clock, ids["beverage"], "ML-OTHER", "BT0303", NEXT)
    sugar_lot(engine, clock, ids["sugar"], "BT0303", NEXT, sell=False)
    beverage = next(r for r in _district(engine) if r.credit_code == f.BEVERAGE)
    assert all(x.complete for x in beverage.lots)
    assert [(x.rule, x.lot, x.material_lot, x.day) for x in beverage.findings] == [
        ("receipt_without_sale", None, "ML-IDLE", NEXT),
        ("receipt_without_sale", None, "ML-OTHER", NEXT),
    ]
    assert beverage.complete_share == 1.0  # no lot is affected


def test_the_weekly_trend_per_enterprise_and_for_the_district(client, engine, clock) -> None:
    ids = build_district(engine, clock)  # two complete lots on Monday 2 March (W10)
    break_sale_without_receipt(engine, clock, ids)  # an incomplete sugar lot on 3 March (W10)
    # a receipt no lot uses, on Saturday 28 February (W09): counted in that week
    sugar_receipt(engine, clock, ids["beverage"], "ML-IDLE", "BT-NEVER-SOLD", "2026-02-28")
    # a juice lot on Monday 9 March (W11) without its release test
    juice_lot(engine, clock, ids["beverage"], "PJ0309", "2026-03-09", test=False)
    made = [
        # (enterprise, production date, complete, findings)
        (f.SUGAR, "2026-03-02", True, 0),
        (f.BEVERAGE, "2026-03-02", True, 0),
        (f.SUGAR, "2026-03-03", False, 1),
        (f.BEVERAGE, "2026-03-09", False, 1),
        (f.BEVERAGE, "2026-02-28", None, 1),  # the idle receipt: no lot
    ]
    since, until = date(2026, 2, 27), date(2026, 3, 10)  # Friday of W09 to Tuesday of W11

    def expected(who: set[str]) -> list[dict]:
        out = {}
        for week, start, end in (
            ("2026-W09", "2026-02-27", "2026-03-01"),
            ("2026-W10", "2026-03-02", "2026-03-08"),
            ("2026-W11", "2026-03-09", "2026-03-10"),
        ):
            rows = [m for m in made if m[0] in who and start <= m[1] <= end]
            lots = [m for m in rows if m[2] is not None]
            done = sum(1 for m in lots if m[2])
            out[week] = {
                "week": week,
                "start": start,
                "end": end,
                "lots_total": len(lots),
                "lots_complete": done,
                "complete_share": done / len(lots) if lots else None,
                "findings": sum(m[3] for m in rows),
            }
        return list(out.values())

    f.regulators(engine, clock)
    r = client.get(
        "/api/v1/completeness",
        params={"since": since.isoformat(), "until": until.isoformat()},
        headers=f.bearer(client, "reg_yc"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["trend"] == expected({f.SUGAR, f.BEVERAGE})
    by_code = {e["credit_code"]: e for e in body["enterprises"]}
    assert by_code[f.SUGAR]["trend"] == expected({f.SUGAR})
    assert by_code[f.BEVERAGE]["trend"] == expected({f.BEVERAGE})
    # the same counts, from the lots and findings the API lists
    for e in body["enterprises"]:
        for week in e["trend"]:
            lots = [x for x in e["lots"] if week["start"] <= x["production_date"] <= week["end"]]
            assert week["lots_total"] == len(lots)
            assert week["lots_complete"] == sum(x["complete"] for x in lots)
            assert week["findings"] == sum(
                1 for x in e["findings"] if week["start"] <= x["day"] <= week["end"]
            )
            iso = date.fromisoformat(week["start"]).isocalendar()
            assert week["week"] == f"{iso.year}-W{iso.week:02d}"


# ---------------------------------------------------------------------------
# The API: its parameters, and who sees what.


def _enterprise_login(client, engine, clock, credit_code: str) -> dict[str, str]:
    f.user(engine, clock, f"user-{credit_code}", "enterprise pass 1", enterprise=credit_code)
    return f.bearer(client, f"user-{credit_code}", "enterprise pass 1")


def test_the_api_parameters(client, engine, clock) -> None:
    ids = build_district(engine, clock, sugar_region="370402")
    break_sale_without_receipt(engine, clock, ids)
    f.regulators(engine, clock)
    city = f.bearer(client, "reg_city")
    url = "/api/v1/completeness"
    span = {"since": "2026-03-01", "until": "2026-03-31"}

    def codes(**params) -> list[str]:
        r = client.get(url, params={**span, **params}, headers=city)
        assert r.status_code == 200, r.text
        return [e["credit_code"] for e in r.json()["enterprises"]]

    assert codes() == [f.SUGAR, f.BEVERAGE]  # weakest first: the sugar maker has a finding
    assert codes(enterprise=f.BEVERAGE) == [f.BEVERAGE]
    assert codes(enterprise=f.BEVERAGE.lower()) == [f.BEVERAGE]
    assert codes(region="370402") == [f.SUGAR]
    assert codes(region="3704") == [f.SUGAR, f.BEVERAGE]
    assert codes(region="370481") == []
    # the period: lots produced in it; by default the 30 days up to today
    r = client.get(url, params={"since": "2026-03-03", "until": "2026-03-03"}, headers=city)
    assert [x["lot"] for e in r.json()["enterprises"] for x in e["lots"]] == ["BT0303"]
    assert [w["week"] for w in r.json()["trend"]] == ["2026-W10"]
    _at(clock, "2026-03-20T10:00:00+08:00")
    city = f.bearer(client, "reg_city")  # the first has expired by now
    body = client.get(url, headers=city).json()
    assert (body["since"], body["until"]) == ("2026-02-18", "2026-03-20")
    assert [w["week"] for w in body["trend"]] == [f"2026-W{n:02d}" for n in range(8, 13)]
    for bad in ({"region": "37a4"}, {"region": "3"}, {"since": "2026-13-01"}):
        assert client.get(url, params=bad, headers=city).status_code == 422, bad
    assert (
        client.get(url, params={"since": "2026-03-10", "until": "2026-03-01"}, headers=city)
    ).status_code == 422


def test_a_regulator_sees_only_the_jurisdiction_and_links_out_of_it_by_name(
    client, engine, clock
) -> None:
    # the sugar maker lies in the next district (市中区, 370402)
    ids = build_district(engine, clock, sugar_region="370402")
    break_receipt_without_sale(engine, clock, ids)
    break_sale_without_receipt(engine, clock, ids)
    f.regulators(engine, clock)
    span = {"since": "2026-03-01", "until": "2026-03-31"}
    r = client.get("/api/v1/completeness", params=span, headers=f.bearer(client, "reg_yc"))
    body = r.json()
    assert [e["credit_code"] for e in body["enterprises"]] == [f.BEVERAGE]
    (beverage,) = body["enterprises"]
    # the links into the sugar maker's ledger are not checked, only named
    assert beverage["findings"] == []
    assert sorted((o["kind"], o["record"], o["name"]) for o in beverage["outside_links"]) == [
        ("receipt", "ML-0302", SUGAR_NAME),
        ("receipt", "ML-NEVER", SUGAR_NAME),
    ]
    # nothing of the sugar maker's records shows: not its lots, nor its unmatched sale
    assert "BT0303" not in r.text
    assert "BT0302" not in r.text
    assert "2000" not in r.text
    # an enterprise outside the jurisdiction cannot be asked for
    r = client.get(
        "/api/v1/completeness",
        params={**span, "enterprise": f.SUGAR},
        headers=f.bearer(client, "reg_yc"),
    )
    assert r.json()["enterprises"] == []
    # the city sees both, and both findings
    city = client.get("/api/v1/completeness", params=span, headers=f.bearer(client, "reg_city"))
    findings = {
        (e["credit_code"], x["rule"], x["lot"])
        for e in city.json()["enterprises"]
        for x in e["findings"]
    }
    assert findings == {
        (f.SUGAR, "sale_without_receipt", "BT0303"),
        (f.BEVERAGE, "receipt_without_sale", "R1"),
    }
    assert all(e["outside_links"] == [] for e in city.json()["enterprises"])
    # an enterprise reads its own records only: the links to the other are named, unchecked
    own = client.get(
        "/api/v1/completeness",
        params=span,
        headers=_enterprise_login(client, engine, clock, f.BEVERAGE),
    ).json()
    assert [e["credit_code"] for e in own["enterprises"]] == [f.BEVERAGE]
    assert own["enterprises"][0]["findings"] == []
    assert {o["name"] for o in own["enterprises"][0]["outside_links"]} == {SUGAR_NAME}


# ---------------------------------------------------------------------------
# The dashboard page.


def _page(client, username: str, params: dict, lang: str = "zh_Hans") -> str:
    client.cookies.set("lang", lang)
    r = f.page_login(
        client,
        username,
        "regulator pass 1",
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    r = client.get("/regulator/completeness", params=params)
    assert r.status_code == 200, r.text
    return r.text


def test_every_reason_of_the_core_is_in_the_catalogue() -> None:
    from foodtrace.completeness import MESSAGES
    from regulator_view.pages import REASONS, RULE_LABELS

    assert set(REASONS) == set(MESSAGES)
    assert set(RULE_LABELS) == set(RULES)


def test_the_dashboard_draws_the_trend_and_tells_the_findings_in_chinese(
    client, engine, clock
) -> None:
    import xml.etree.ElementTree as ET

    ids = build_district(engine, clock)
    break_receipt_without_sale(engine, clock, ids)
    sugar_receipt(engine, clock, ids["beverage"], "ML-IDLE", "BT-NEVER-SOLD", NEXT)
    f.regulators(engine, clock)
    html = _page(client, "reg_yc", {"since": "2026-02-27", "until": "2026-03-10"})
    assert (
        "原料批次 ML-NEVER：枣庄鲁南糖业有限公司 无批号 BT-NEVER-SOLD 售予本企业的销售记录" in html
    )
    assert "尚未投入生产" in html  # the idle receipt: a finding with no lot to trace
    assert 'data-material-lot="ML-IDLE"' in html
    svgs = [m.split("</svg>")[0] + "</svg>" for m in html.split("<svg")[1:]]
    charts = [ET.fromstring("<svg" + s) for s in svgs]
    ns = "{http://www.w3.org/2000/svg}"
    district = [c for c in charts if c.get("class") == "week-chart"][:2]
    assert [c.get("data-metric") for c in district] == ["share", "findings"]
    for chart in district:
        weeks = [g.get("data-week") for g in chart.iter(f"{ns}g") if g.get("data-week")]
        assert weeks == ["2026-W09", "2026-W10", "2026-W11"]
        assert chart.find(f"{ns}title").text in ("每周完整批次占比", "每周问题数")
        desc = chart.find(f"{ns}desc").text
        # the week of today (03-03) is under way: what it holds so far, not a result
        assert (
            "第10周（03-02 – 03-08）：进行中，第 2 天（共 7 天）；"
            "目前 3 个批次中 2 个记录完整；2 个问题。" in desc
        )
        assert "第9周（02-27 – 03-01）：无生产批次；0 个问题。" in desc
    findings = [t.text for t in district[1].iter(f"{ns}text") if t.get("class") == "value"]
    assert findings == ["0", "2", "0"]  # R1 and the idle receipt, both in W10
    english = _page(client, "reg_yc", {"since": "2026-02-27", "until": "2026-03-10"}, "en")
    assert (
        "Week 10 (03-02 – 03-08): in progress, day 2 of 7; 2 of 3 lots complete so far; "
        "2 finding(s)." in english
    )
    assert "recorded no sale of batch BT-NEVER-SOLD" in english


def test_the_dashboard_names_links_out_of_the_jurisdiction_and_shows_nothing_of_them(
    client, engine, clock
) -> None:
    ids = build_district(engine, clock, sugar_region="370402")
    break_receipt_without_sale(engine, clock, ids)
    break_sale_without_receipt(engine, clock, ids)
    f.regulators(engine, clock)
    html = _page(client, "reg_yc", {"since": "2026-03-01", "until": "2026-03-31"})
    assert html.count('<tr data-credit-code="') == 1
    assert f'data-credit-code="{f.BEVERAGE}"' in html
    assert "与辖区外企业的往来未作核对" in html
    assert SUGAR_NAME in html  # named
    assert "BT0303" not in html  # its lots are not shown
    assert "data-rule=" not in html  # and no finding rests on its records


def test_a_read_of_one_enterprise_is_logged_at_the_enterprises_its_links_were_checked_in(
    client, engine, clock
) -> None:
    from foodtrace.accounts.models import RegulatorRead

    ids = build_district(engine, clock)
    f.regulators(engine, clock)
    r = client.get(
        "/api/v1/completeness",
        params={"since": "2026-03-01", "until": "2026-03-31", "enterprise": f.SUGAR},
        headers=f.bearer(client, "reg_yc"),
    )
    assert [e["credit_code"] for e in r.json()["enterprises"]] == [f.SUGAR]
    with read_session(engine) as s:
        logged = s.execute(select(RegulatorRead.enterprise_id, RegulatorRead.what)).all()
    # the sugar lot's sale was checked against the beverage maker's incoming checks
    assert sorted(i for i, _ in logged) == sorted([ids["sugar"], ids["beverage"]])
    assert {w for _, w in logged} == {"completeness 2026-03-01..2026-03-31"}


def test_the_dashboard_shows_at_most_a_year_ending_at_the_asked_for_day(client, engine, clock):
    f.regulators(engine, clock)
    html = _page(client, "reg_yc", {"since": "0149-11-21", "until": "2026-03-10"})
    assert "2025-03-10 – 2026-03-10" in html  # 366 days, the period the page says it shows
    assert 'name="since" value="2025-03-10"' in html
