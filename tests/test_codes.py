"""Codes that look like another, or that break links, are refused (issue 22, item 8): one rule
for every code field (``schemas.types.check_code``), for new input only; codes written before
it stay, still verify, and completeness lists them."""

from __future__ import annotations

import unicodedata
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import func, select

import schemas.types
from conftest import ACCESS_PASSWORD as PASSWORD
from foodtrace.completeness import enterprise_completeness
from foodtrace.db import read_session
from foodtrace.errors import RecordError
from foodtrace.ledger.models import Entry
from foodtrace.records.service import validate
from foodtrace.verify import verify_ledger
from schemas.records import RecordKind
from schemas.types import Code, DocumentNo

import factories as f

CODE = TypeAdapter(Code)
DOCUMENT_NO = TypeAdapter(DocumentNo)

# The issue's examples, each with the problem its answer must name.
HOSTILE = {
    "PJ-D12\u200b": "code_invisible",  # zero width space
    "PJ\u200dD12": "code_invisible",  # zero width joiner
    "\ufeffPJ-D12": "code_invisible",  # byte order mark
    "PJ-D12\u200e": "code_invisible",  # left-to-right mark
    "PJ-D12\u200f": "code_invisible",  # right-to-left mark
    "PJ\u2060D12": "code_invisible",  # word joiner
    "PJ-D12\U000e0041": "code_invisible",  # tag letter A
    "PJ-D12\ue000": "code_invisible",  # private use
    "PJ-D12\U000f0000": "code_invisible",  # supplementary private use
    "PJ-D12\ufdd0": "code_invisible",  # noncharacter
    "PJ-D12\uffff": "code_invisible",  # noncharacter
    "PJ-D12\u0378": "code_invisible",  # unassigned
    "\u0420J-D12": "code_mixed_script",  # Cyrillic ER with Latin
    "PJ-\u0392C": "code_mixed_script",  # Greek BETA with Latin
    "\uff30\uff2a-\uff24\uff11\uff12": "code_compatibility",  # fullwidth ＰＪ-Ｄ１２
    "PJ-D12\uff11": "code_compatibility",
    "PE\u0301-1": "code_not_nfc",  # E + combining acute: NFC is É
    ".": "code_dots",
    "..": "code_dots",
}
# Codes from DOMAIN.md and the demo, and CJK with Latin: accepted as typed.
ORDINARY = [
    "PJ20260301A", "BT20260301", "ML-0301-01", "PJ500", "SUGAR01", "DIST01", "CCP1",
    "temperature", "holding_time", "PJ-RC-批次1", "石榴汁-2026-03", "批次A", "HG-20260301-07",
    "JC-20260301-01", "SC10637040400012", "6921234560013", "v1.2", "a.b", "ロット-1",
    "로트-1", "Москва-1",
]  # fmt: skip

# (kind, the field, a factory giving a valid record) for every code field of new input
FIELDS: list[tuple[str, tuple[Any, ...], Any]] = [
    ("product", ("code",), f.product),
    ("supplier", ("code",), f.supplier),
    ("supplier", ("licence_no",), f.supplier),
    ("customer", ("code",), f.customer),
    ("material_check", ("material_lot",), f.material_check),
    ("material_check", ("batch_no",), f.material_check),
    ("material_check", ("certificate_no",), f.material_check),
    ("material_check", ("supplier_code",), f.material_check),
    ("production_lot", ("lot_code",), f.production_lot),
    ("production_lot", ("product_code",), f.production_lot),
    ("production_lot", ("materials", 0, "material_lot"), f.production_lot),
    ("ccp_record", ("lot_code",), f.ccp_record),
    ("release_test", ("lot_code",), f.release_test),
    ("release_test", ("report_no",), f.release_test),
    ("sale", ("lot_code",), f.sale),
    ("sale", ("customer_code",), f.sale),
    ("sale", ("document_no",), f.sale),
]


def _set(data: dict[str, Any], path: tuple[Any, ...], value: str) -> dict[str, Any]:
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


def _refusal(adapter: TypeAdapter[Any], value: str) -> str | None:
    try:
        adapter.validate_python(value)
    except ValidationError as exc:
        return exc.errors()[0]["type"]
    return None


# -------------------------------------------------------------------- the rule


def _scripts(text: str) -> set[str]:
    """The lookalike scripts of the letters of ``text``, by their Unicode names (a check
    independent of the Script_Extensions data the rule uses)."""
    out = set()
    for c in text:
        if unicodedata.category(c).startswith("L"):
            first = unicodedata.name(c, "").split(" ")[0]
            if first in ("LATIN", "CYRILLIC", "GREEK"):
                out.add(first)
    return out


_TRICKY = (
    "AJPDCEOX01-_.批次石榴ロ로"  # ordinary
    "\u0420\u0410\u0421\u0415\u041e\u0445\u03a1\u0391\u03bf"  # Cyrillic, Greek lookalikes
    "\uff30\uff2a\uff11\u3000\u2460\ufb01"  # fullwidth, circled, ligature
    "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u00ad\u034f\u180e\u115f\u3164"  # invisible
    "\U000e0001\U000e0041\ue000\U000f0000\ufdd0\ufffe\U0010ffff\u0378"  # tags, Co, Cn
    "\u0301\u0308\u00e9"  # combining marks, a precomposed letter
)
code_text = st.text(
    alphabet=st.one_of(st.sampled_from(_TRICKY), st.characters(codec="utf-8")),
    min_size=1,
    max_size=12,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(code_text)
def test_every_accepted_code_is_one_that_cannot_pass_for_another(text: str) -> None:
    for adapter in (CODE, DOCUMENT_NO):
        try:
            code = adapter.validate_python(text)
        except ValidationError:
            continue
        assert code == text.strip()  # stored as typed
        assert unicodedata.is_normalized("NFC", code)
        assert unicodedata.is_normalized("NFKC", code)  # no fullwidth, no compatibility form
        bad = [c for c in code if unicodedata.category(c) in ("Cf", "Co", "Cn", "Cs")]
        assert not bad, f"{code!r} accepted with {[f'U+{ord(c):04X}' for c in bad]}"
        assert code.strip(".") != ""
        assert len(_scripts(code)) <= 1, f"{code!r} mixes {_scripts(code)}"


@pytest.mark.parametrize("value", sorted(HOSTILE))
def test_the_issues_examples_are_refused_naming_the_problem(value: str) -> None:
    assert _refusal(CODE, value) == HOSTILE[value]
    assert _refusal(DOCUMENT_NO, value) == HOSTILE[value]


def test_ordinary_codes_pass_as_typed() -> None:
    for value in ORDINARY:
        assert CODE.validate_python(value) == value
    assert DOCUMENT_NO.validate_python("SJ 2026/031 号") == "SJ 2026/031 号"


def test_a_fullwidth_code_is_refused_with_its_ascii_form() -> None:
    with pytest.raises(ValidationError) as exc:
        CODE.validate_python("\uff30\uff2a-\uff24\uff11\uff12")
    err = exc.value.errors()[0]
    assert err["ctx"]["suggestion"] == "PJ-D12"
    assert "'PJ-D12'" in err["msg"]


@pytest.mark.parametrize(("kind", "path", "factory"), FIELDS)
def test_every_code_field_takes_the_rule_and_names_itself(kind, path, factory) -> None:
    assert validate(RecordKind(kind), factory())  # the factory's record is valid
    for value, problem in (("PJ-D12\u200b", "code_invisible"), ("\u0420J-D12", "code_mixed_script"),
                           ("..", "code_dots")):  # fmt: skip
        with pytest.raises(RecordError) as exc:
            validate(RecordKind(kind), _set(factory(), path, value))
        (p,) = exc.value.problems
        assert p.loc == path
        assert p.type == problem


# -------------------------------------------------------------- through the API


def _entries(engine: Any) -> int:
    with read_session(engine) as s:
        return s.execute(select(func.count()).select_from(Entry)).scalar_one()


def test_the_api_refuses_a_lookalike_lot_code_and_writes_nothing(client, engine, world) -> None:
    headers = f.bearer(client, "ent_a", PASSWORD)
    before = _entries(engine)
    for value, problem in HOSTILE.items():
        lot = f.production_lot(lot_code=value, production_date="2026-03-02")
        r = client.post("/api/v1/production-lots", json=lot, headers=headers)
        assert r.status_code == 422, (value, r.text)
        (d,) = r.json()["detail"]
        assert d["loc"][-1] == "lot_code"
        assert d["type"] == problem
    assert _entries(engine) == before
    ok = f.production_lot(lot_code="PJ-RC-批次1", production_date="2026-03-02")
    assert client.post("/api/v1/production-lots", json=ok, headers=headers).status_code == 201


def test_the_message_names_the_character_in_chinese_and_english() -> None:
    from web.i18n import describe_problem

    with pytest.raises(RecordError) as exc:
        validate(RecordKind.PRODUCTION_LOT, f.production_lot(lot_code="PJ-D12\u200b"))
    (p,) = exc.value.problems
    told = {"type": p.type, "msg": p.msg, "ctx": p.ctx}
    assert "U+200B" in describe_problem(told, "en")
    zh = describe_problem(told, "zh_Hans")
    assert "U+200B" in zh
    assert "不可见" in zh


# ---------------------------------------------------- codes written before the rule


def test_a_code_written_before_the_rule_still_verifies_and_is_listed(
    engine, clock, monkeypatch
) -> None:
    lid = f.beverage_ledger(engine, clock)
    old = "PJ-D12\u200b"
    with monkeypatch.context() as m:  # the code of before: no code rule
        m.setattr(schemas.types, "check_code", lambda value: value)
        f.add(engine, clock, lid, "production_lot", f.production_lot(lot_code=old))
    with read_session(engine) as s:
        report = verify_ledger(session=s, ledger_id=lid)
    assert report.ok, report.problems
    with pytest.raises(RecordError):  # new input naming it is refused
        f.add(engine, clock, lid, "production_lot", f.production_lot(lot_code=old + "2"))
    with read_session(engine) as s:
        result = enterprise_completeness(
            session=s, enterprise_id=lid, since=date(2026, 2, 1), until=date(2026, 3, 31)
        )
    found = [x for x in result.findings if x.rule == "code_form"]
    assert [x.lot for x in found] == [old]
    assert "U+200B" in found[0].why
    assert all(x.rule != "code_form" for x in result.findings if x.lot == "PJ20260301A")
