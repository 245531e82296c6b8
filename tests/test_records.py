"""Each record kind: statutory fields required, references checked, bad input refused
naming the field, and nothing written when refused."""

from __future__ import annotations

from datetime import timedelta

import pytest

from foodtrace.db import read_session, write_session
from foodtrace.errors import RecordError
from foodtrace.records.queries import lot_view
from foodtrace.records.service import register_enterprise

from factories import (
    add,
    beverage_ledger,
    ccp_record,
    customer,
    enterprise,
    material_check,
    product,
    production_lot,
    register,
    release_test,
    sale,
    self_inspection,
    supplier,
)
from snapshots import snapshot


def _drop(d: dict, key: str) -> dict:
    d = dict(d)
    del d[key]
    return d


# (kind, record, field named in the error, words in the message)
BAD = [
    ("supplier", supplier(credit_code="91370404MA3793PC3F"), ("credit_code",), "check character"),
    ("supplier", _drop(supplier(), "address"), ("address",), "Field required"),
    ("customer", customer(credit_code="91370404MA3386YX1"), ("credit_code",), "18 characters"),
    ("product", product(gtin="6921234560014"), ("gtin",), "check digit"),
    ("product", product(code="PJ500"), ("code",), "already exists"),
    ("product", product(code="X", gtin="06921234560013"), ("gtin",), "already exists"),
    ("product", product(release_items=[]), ("release_items",), "at least 1"),
    ("material_check", _drop(material_check(), "certificate_no"), ("certificate_no",), "required"),
    ("material_check", material_check(quantity="0"), ("quantity",), "greater than zero"),
    ("material_check", material_check(quantity="-5"), ("quantity",), "greater than zero"),
    ("material_check", material_check(quantity=12.5), ("quantity",), "not as JSON floats"),
    ("material_check", material_check(quantity="1e3"), ("quantity",), "not a decimal"),
    ("material_check", material_check(supplier_code="NOPE"), ("supplier_code",), "does not exist"),
    ("material_check", material_check(material_lot="ML-0301-01"), ("material_lot",), "already"),
    ("material_check", material_check(receipt_date="2026-03-09"), ("receipt_date",), "future"),
    ("material_check", material_check(inspector="王\x07敏"), ("inspector",), "control character"),
    (
        "material_check",
        material_check(material_lot="M2", attachments=["ab" * 32]),
        ("attachments", 0),
        "no attachment",
    ),
    ("production_lot", production_lot(lot_code="PJ20260301A"), ("lot_code",), "already exists"),
    ("production_lot", production_lot(lot_code="B", unit="kg"), ("unit",), "declared units"),
    (
        "production_lot",
        production_lot(
            lot_code="B", materials=[{"material_lot": "ML-9", "quantity": "1", "unit": "kg"}]
        ),
        ("materials", 0, "material_lot"),
        "does not exist",
    ),
    (
        "production_lot",
        production_lot(
            lot_code="B", materials=[{"material_lot": "ML-0301-01", "quantity": "1", "unit": "g"}]
        ),
        ("materials", 0, "unit"),
        "counted in 'kg'",
    ),
    (
        "production_lot",
        production_lot(lot_code="B", product_code="NOPE"),
        ("product_code",),
        "does not exist",
    ),
    (
        "production_lot",
        production_lot(lot_code="B", ended_at="2026-03-01T07:00:00+08:00"),
        ("ended_at",),
        "cannot end before",
    ),
    ("production_lot", production_lot(lot_code="a b"), ("lot_code",), "pattern"),
    ("ccp_record", ccp_record(ccp="CCP9"), ("ccp",), "not in the product's CCP plan"),
    ("ccp_record", ccp_record(parameter="pressure"), ("parameter",), "not a parameter of CCP1"),
    ("ccp_record", ccp_record(unit="°F"), ("unit",), "measured in '°C'"),
    ("ccp_record", ccp_record(lot_code="NOPE"), ("lot_code",), "does not exist"),
    ("ccp_record", ccp_record(measured_at="2026-03-01T08:30:00"), ("measured_at",), "time zone"),
    ("ccp_record", ccp_record(measured_at="2026-03-05T08:30:00+08:00"), ("measured_at",), "future"),
    (
        "ccp_record",
        ccp_record(measured_at="2026-02-20T08:30:00+08:00"),
        ("measured_at",),
        "cannot belong",
    ),
    (
        "ccp_record",
        ccp_record(ccp="CCP2", parameter="seal", value=None, unit=None),
        ("value",),
        "measured value or a pass/fail result",
    ),
    (
        "corrective_action",
        {
            "reading_seq": 7,
            "action": "复测",
            "taken_at": "2026-03-01T09:00:00+08:00",
            "operator": "李强",
        },
        ("reading_seq",),
        "within its limits",
    ),
    ("release_test", release_test(lot_code="NOPE"), ("lot_code",), "does not exist"),
    (
        "release_test",
        release_test(
            conclusion="pass",
            items=[{"item": "菌落总数", "result": "230", "limit": "≤100", "passed": False}],
        ),
        ("conclusion",),
        "cannot be pass",
    ),
    (
        "release_test",
        release_test(tested_at="2026-02-28T15:00:00+08:00"),
        ("tested_at",),
        "earlier",
    ),
    ("sale", sale(unit="kg"), ("unit",), "declared units"),
    ("sale", sale(customer_code="NOPE"), ("customer_code",), "does not exist"),
    ("sale", sale(quantity="0"), ("quantity",), "greater than zero"),
    ("sale", sale(sale_date="2026-02-27"), ("sale_date",), "cannot be sold before"),
    ("sale", {**sale(), "price": "12"}, ("price",), "Extra inputs"),
    (
        "self_inspection",
        self_inspection(items=[{"item": "车间卫生", "result": "problem"}]),
        ("problems",),
        "describe the problems",
    ),
]


@pytest.mark.parametrize(
    ("kind", "data", "loc", "words"),
    BAD,
    ids=[f"{k}-{'.'.join(map(str, loc)) or 'record'}-{i}" for i, (k, _, loc, _) in enumerate(BAD)],
)
def test_bad_record_is_refused_naming_the_field_and_nothing_is_written(
    engine, clock, kind, data, loc, words
) -> None:
    lid = beverage_ledger(engine, clock)
    before = snapshot(engine)
    with pytest.raises(RecordError) as exc:
        add(engine, clock, lid, kind, {k: v for k, v in data.items() if v is not None})
    problems = exc.value.problems
    assert any(p.loc == loc and words in p.msg for p in problems), problems
    assert snapshot(engine) == before


def test_manufacturer_needs_its_licence_and_a_valid_credit_code(engine, clock) -> None:
    with write_session(engine) as s, pytest.raises(RecordError, match="SC production licence"):
        register_enterprise(session=s, data=enterprise(licence_no=None), actor="a", clock=clock)
    with write_session(engine) as s, pytest.raises(RecordError) as exc:
        register_enterprise(
            session=s, data=enterprise("91370404MA3F42206X"), actor="a", clock=clock
        )
    assert exc.value.problems[0].loc == ("credit_code",)
    with write_session(engine) as s, pytest.raises(RecordError) as exc:
        register_enterprise(session=s, data=enterprise(region_code="3704"), actor="a", clock=clock)
    assert exc.value.problems[0].loc == ("region_code",)


def test_early_credit_code_with_a_bad_check_character_needs_confirmation(engine, clock) -> None:
    lid = register(engine, clock)
    with pytest.raises(RecordError, match="credit_code_confirmed"):
        add(engine, clock, lid, "supplier", supplier(credit_code="91370404MA3793PC3F"))
    r = add(
        engine,
        clock,
        lid,
        "supplier",
        supplier(credit_code="91370404MA3793PC3F", credit_code_confirmed=True),
    )
    assert r.body["credit_code"] == "91370404MA3793PC3F"


def test_text_is_nfc_normalised_not_refused(engine, clock) -> None:
    lid = register(engine, clock)
    decomposed = "Cafe\u0301 超市"
    r = add(engine, clock, lid, "customer", customer(name=decomposed))
    assert r.body["name"] == "Caf\u00e9 超市"


def test_material_check_copies_the_suppliers_statutory_facts(engine, clock) -> None:
    lid = beverage_ledger(engine, clock)
    r = add(engine, clock, lid, "material_check", material_check(material_lot="ML-2"))
    assert r.body["supplier"] == {
        "name": "枣庄鲁南糖业有限公司",
        "credit_code": "91370404MA3793PC3E",
        "address": "山东省枣庄市峄城区坛山街道",
        "contact": "0632-7720001",
        "licence_no": "SC10137040400011",
    }


def test_rejected_material_cannot_be_used(engine, clock) -> None:
    lid = beverage_ledger(engine, clock)
    add(engine, clock, lid, "material_check", material_check(material_lot="ML-BAD", accepted=False))
    with pytest.raises(RecordError, match="rejected") as exc:
        add(
            engine,
            clock,
            lid,
            "production_lot",
            production_lot(
                lot_code="B", materials=[{"material_lot": "ML-BAD", "quantity": "1", "unit": "kg"}]
            ),
        )
    assert exc.value.problems[0].loc == ("materials", 0, "material_lot")


def test_out_of_limit_reading_is_recorded_as_an_open_deviation_until_closed(engine, clock) -> None:
    lid = beverage_ledger(engine, clock)
    r = add(
        engine,
        clock,
        lid,
        "ccp_record",
        ccp_record(value="83.5", measured_at="2026-03-01T09:00:00+08:00"),
    )
    assert [w.type for w in r.warnings] == ["open_deviation"]
    with read_session(engine) as s:
        assert lot_view(session=s, enterprise_id=lid, lot_code="PJ20260301A").open_deviations == 1
    add(
        engine,
        clock,
        lid,
        "corrective_action",
        {
            "reading_seq": r.seq,
            "action": "隔离该时段产品，重新杀菌，调整蒸汽阀，复测 86.2 °C",
            "taken_at": "2026-03-01T09:10:00+08:00",
            "operator": "李强",
        },
    )
    with read_session(engine) as s:
        view = lot_view(session=s, enterprise_id=lid, lot_code="PJ20260301A")
        assert view.open_deviations == 0
        assert [x["deviation"] for x in view.ccp_readings] == [False, True]


def test_deviation_with_its_corrective_action_is_closed_at_once(engine, clock) -> None:
    lid = beverage_ledger(engine, clock)
    r = add(
        engine,
        clock,
        lid,
        "ccp_record",
        ccp_record(
            value="84.0", measured_at="2026-03-01T09:00:00+08:00", corrective_action="重新杀菌"
        ),
    )
    assert r.warnings == []
    with read_session(engine) as s:
        assert lot_view(session=s, enterprise_id=lid, lot_code="PJ20260301A").open_deviations == 0


def test_failed_seal_check_is_a_deviation(engine, clock) -> None:
    lid = beverage_ledger(engine, clock)
    r = add(
        engine,
        clock,
        lid,
        "ccp_record",
        {
            "lot_code": "PJ20260301A",
            "ccp": "CCP2",
            "parameter": "seal",
            "result": "fail",
            "measured_at": "2026-03-01T10:00:00+08:00",
            "operator": "李强",
        },
    )
    assert [w.type for w in r.warnings] == ["open_deviation"]


def test_sale_before_a_passing_release_test_is_recorded_as_a_finding(engine, clock) -> None:
    lid = beverage_ledger(engine, clock)
    add(engine, clock, lid, "production_lot", production_lot(lot_code="PJ-B"))
    r = add(engine, clock, lid, "sale", sale(lot_code="PJ-B", quantity="10"))
    assert [w.type for w in r.warnings] == ["unreleased_sale"]
    with read_session(engine) as s:
        assert lot_view(session=s, enterprise_id=lid, lot_code="PJ-B").sales[0]["released"] is False


def test_sale_in_packaging_units_is_converted_for_the_mass_balance(engine, clock) -> None:
    lid = beverage_ledger(engine, clock)  # 400 箱 produced, 100 箱 sold
    add(engine, clock, lid, "sale", sale(quantity="48", unit="瓶"))
    with read_session(engine) as s:
        assert lot_view(session=s, enterprise_id=lid, lot_code="PJ20260301A").balance == {
            "unit": "瓶",
            "produced": "9600",
            "sold": "2448",
            "held": "7152",
        }


def test_overselling_and_overusing_are_recorded_with_warnings(engine, clock) -> None:
    lid = beverage_ledger(engine, clock)
    r = add(engine, clock, lid, "sale", sale(quantity="301"))
    assert [w.type for w in r.warnings] == ["oversold"]
    r = add(
        engine,
        clock,
        lid,
        "production_lot",
        production_lot(
            lot_code="PJ-C",
            materials=[{"material_lot": "ML-0301-01", "quantity": "1800", "unit": "kg"}],
        ),
    )
    assert [w.type for w in r.warnings] == ["over_consumption"]


def test_release_test_missing_a_required_item_warns(engine, clock) -> None:
    lid = beverage_ledger(engine, clock)
    r = add(
        engine,
        clock,
        lid,
        "release_test",
        release_test(items=[{"item": "菌落总数", "result": "40", "limit": "≤100", "passed": True}]),
    )
    assert [w.type for w in r.warnings] == ["missing_items"]
    assert "大肠菌群" in r.warnings[0].msg


def test_event_time_defaults_to_the_records_own_time(engine, clock) -> None:
    lid = beverage_ledger(engine, clock)
    clock.advance(timedelta(days=3))
    r = add(engine, clock, lid, "ccp_record", ccp_record(measured_at="2026-03-01T10:30:00+08:00"))
    assert r.event_time == "2026-03-01T02:30:00Z"
    assert r.recorded_at == "2026-03-05T00:30:00Z"  # back-filled three days later
