"""The write path's fast versions equal what they replaced, on generated inputs.

Each test keeps the previous implementation as a reference: the canonical
fast-path check (``_fits``), ``format_instant``, ``clean_text``, the future-time
walk, and the text types whose constraints pydantic-core now checks itself.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from enum import StrEnum
from typing import Annotated, Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, BeforeValidator, Field, ValidationError

from foodtrace import canonical
from foodtrace.errors import RecordError
from foodtrace.records.service import _not_in_future
from schemas import types
from schemas.records import CcpRecordCreate, ProductionLotCreate

# ------------------------------------------------------------------ references


def _fits_before(value: Any, key_ok: Callable[[str], bool]) -> bool:
    t = type(value)
    if t is str or t is bool or value is None:
        return True
    if t is dict:
        for k, v in value.items():
            if type(k) is not str or not key_ok(k):
                return False
            if type(v) is not str and not _fits_before(v, key_ok):
                return False
        return True
    if t is list or t is tuple:
        for v in value:
            if type(v) is not str and not _fits_before(v, key_ok):
                return False
        return True
    if t is int:
        return -canonical.MAX_SAFE_INTEGER <= value <= canonical.MAX_SAFE_INTEGER
    return isinstance(value, str)


def _format_instant_before(value: datetime) -> str:
    value = value.astimezone(UTC)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _clean_text_before(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    value = unicodedata.normalize("NFC", value).strip()
    match = types._CONTROL.search(value)
    if match:
        raise ValueError(f"U+{ord(match.group()):04X} at {match.start()}")
    return value


class _Kind(StrEnum):
    A = "a"


_KEYS = st.one_of(
    st.text(max_size=4),
    st.text(alphabet=st.characters(min_codepoint=0xE000), max_size=3),
    st.sampled_from([_Kind.A, 1, None, ""]),
)
_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**60), 2**60),
    st.text(max_size=5),
    st.sampled_from([_Kind.A, 1.5]),
)
_TREES = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(_KEYS, inner, max_size=4),
        st.tuples(inner, inner),
    ),
    max_leaves=20,
)


@given(_TREES)
@settings(max_examples=500, deadline=None)
def test_fits_decides_as_before(tree: Any) -> None:
    for key_ok in (canonical._entry_key, canonical._bmp_key):
        assert canonical._fits(tree, key_ok) == _fits_before(tree, key_ok)


def test_fits_refuses_a_str_subclass_key_and_a_key_beyond_the_bmp() -> None:
    assert not canonical._fits({_Kind.A: "x"}, canonical._bmp_key)
    assert not canonical._fits({"a": 1, "é": 2}, canonical._entry_key)
    assert canonical._fits({"a": 1, "é": 2}, canonical._bmp_key)
    assert not canonical._fits({"\U0001f600": 1}, canonical._bmp_key)
    assert canonical._fits({}, canonical._entry_key)
    assert canonical._fits({"": {"": []}}, canonical._entry_key)


_ZONES = st.builds(
    lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-14 * 60, 14 * 60)
)


@given(
    st.datetimes(
        min_value=datetime(2, 1, 1),
        max_value=datetime(9998, 12, 30),
        timezones=_ZONES | st.just(UTC),  # UTC itself: validated instants, formatted as they are
    )
)
@settings(max_examples=500, deadline=None)
def test_format_instant_writes_what_strftime_wrote(moment: datetime) -> None:
    assert types.format_instant(moment) == _format_instant_before(moment)


@given(st.text(max_size=12) | st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=12))
@settings(max_examples=500, deadline=None)
def test_clean_text_cleans_as_before(text: str) -> None:
    try:
        expected: Any = _clean_text_before(text)
    except ValueError:
        expected = "refused"
    try:
        got: Any = types.clean_text(text)
    except Exception:  # noqa: BLE001 - the PydanticCustomError of a control character
        got = "refused"
    assert got == expected


# ------------------------------------------------------------- text types

_OLD_TYPES = {
    "Name": Annotated[str, BeforeValidator(types.clean_text), Field(min_length=1, max_length=200)],
    "Code": Annotated[
        str,
        BeforeValidator(types.clean_text),
        Field(min_length=1, max_length=64, pattern=r"^[^\s/?#%\\]+$"),
    ],
    "Note": Annotated[str, BeforeValidator(types.clean_text), Field(max_length=4000)],
    "Unit": Annotated[str, BeforeValidator(types.clean_text), Field(min_length=1, max_length=20)],
}
_TEXTS = st.one_of(
    st.text(max_size=8),
    st.text(alphabet=" a/%#é\t\n\u3000", max_size=6),
    st.integers(0, 70).map(lambda n: "x" * n),
    st.integers(195, 205).map(lambda n: "名" * n),
    st.sampled_from([None, 5, b"x", "  x  ", "ａ", "e\u0301"]),
)


def _outcome(model: type[BaseModel], value: Any) -> Any:
    try:
        return ("ok", model(x=value).x)  # type: ignore[call-arg]
    except ValidationError as exc:
        return ("refused", len(exc.errors()))


@pytest.mark.parametrize("name", sorted(_OLD_TYPES))
def test_text_types_accept_and_refuse_as_before(name: str) -> None:
    old = type("Old", (BaseModel,), {"__annotations__": {"x": _OLD_TYPES[name]}})
    # Code now refuses lookalike codes (tests/test_codes.py); StoredCode keeps its old rule
    as_before = "StoredCode" if name == "Code" else name
    new = type("New", (BaseModel,), {"__annotations__": {"x": getattr(types, as_before)}})

    @given(_TEXTS)
    @settings(max_examples=300, deadline=None)
    def check(value: Any) -> None:
        assert _outcome(new, value) == _outcome(old, value)

    check()


@pytest.mark.parametrize(
    ("field", "value", "error", "limit"),
    [
        ("lot_code", "", "string_too_short", {"min_length": 1}),
        ("lot_code", "  ", "string_too_short", {"min_length": 1}),
        ("lot_code", "x" * 65, "string_too_long", {"max_length": 64}),
        ("operator", "x" * 201, "string_too_long", {"max_length": 200}),
        ("unit", "", "string_too_short", {"min_length": 1}),
        ("lot_code", "a b", "string_pattern_mismatch", None),
    ],
)
def test_text_errors_name_the_limit(field: str, value: str, error: str, limit: Any) -> None:
    data = {
        "lot_code": "L1",
        "ccp": "CCP1",
        "parameter": "t",
        "value": "85",
        "unit": "°C",
        "measured_at": "2026-03-01T09:00:00+08:00",
        "operator": "李强",
        field: value,
    }
    with pytest.raises(ValidationError) as info:
        CcpRecordCreate.model_validate(data)
    (err,) = info.value.errors()
    assert err["loc"] == (field,)
    assert err["type"] == error
    if limit is not None:
        assert err["ctx"] == limit


# ------------------------------------------------------------- future walk

NOW = datetime(2026, 3, 1, 4, 0, tzinfo=UTC)


def _lot(**over: Any) -> ProductionLotCreate:
    data = {
        "product_code": "P1",
        "lot_code": "L1",
        "production_date": "2026-03-01",
        "started_at": "2026-03-01T08:00:00+08:00",
        "ended_at": "2026-03-01T11:00:00+08:00",
        "quantity": "10",
        "unit": "箱",
        "materials": [{"material_lot": "M1", "quantity": "1", "unit": "kg"}],
    }
    return ProductionLotCreate.model_validate({**data, **over})


@pytest.mark.parametrize(
    ("over", "loc"),
    [
        ({}, None),
        ({"ended_at": "2026-03-01T12:30:00+08:00"}, ("ended_at",)),
        ({"production_date": "2026-03-02"}, ("production_date",)),
        ({"event_time": "2026-03-02T00:00:00Z"}, ("event_time",)),
    ],
)
def test_the_future_walk_names_the_same_field(over: dict[str, Any], loc: Any) -> None:
    model = _lot(**over)
    if loc is None:
        _not_in_future(model, NOW, ())
        return
    with pytest.raises(RecordError) as info:
        _not_in_future(model, NOW, ())
    assert info.value.problems[0].loc == loc


def test_the_future_walk_reaches_into_lists_of_models() -> None:
    class Inner(BaseModel):
        n: int
        when: date

    class Outer(BaseModel):
        name: str
        items: list[Inner]

    model = Outer(
        name="x", items=[Inner(n=1, when=date(2026, 3, 1)), Inner(n=2, when=date(2027, 1, 1))]
    )
    with pytest.raises(RecordError) as info:
        _not_in_future(model, NOW, ())
    assert info.value.problems[0].loc == ("items", 1, "when")


# ------------------------------------------------------------- held rows


@pytest.mark.parametrize(
    "row",
    [
        {"enterprise_id": 1, "record_seq": 5, "current_seq": 5, "lot_seq": 2, "ccp": "CCP1"},
        {"record_seq": 5, "enterprise_id": 1, "current_seq": 5, "not_a_column": "dropped"},
        {"enterprise_id": 1, "record_seq": 6, "current_seq": 6},
    ],
)
def test_a_held_row_has_every_column_in_column_order(row: dict[str, Any]) -> None:
    from foodtrace.records.projection import _COLUMNS, BatchStore

    class _NoDb:
        enterprise_id = 1

    store = BatchStore(_NoDb(), fresh_from=1)  # type: ignore[arg-type]
    store.put("ccp_readings", row, replace=False)
    (held,) = store.rows["ccp_readings"]
    expected = {c: row.get(c) for c in _COLUMNS["ccp_readings"]}
    assert held == expected
    assert list(held) == list(expected)


# ------------------------------------------- the entry's event time from the body


def test_natural_time_fields_serialize_through_format_instant() -> None:
    """``Batch._event_time`` takes a record's natural time from its dumped body rather
    than formatting it again: the same text only while each is an ``Instant``."""
    from pydantic.functional_serializers import PlainSerializer

    from foodtrace.records.kinds import REGISTRY

    natural = [(k.kind, k.schema, k.natural_time) for k in REGISTRY if k.natural_time]
    assert len(natural) >= 5
    for kind, schema, name in natural:
        meta = schema.model_fields[name].metadata
        serializers = [m.func for m in meta if isinstance(m, PlainSerializer)]
        assert serializers == [types.format_instant], (kind, name)
    reading = CcpRecordCreate.model_validate(
        {"lot_code": "PJ20260301A", "ccp": "CCP1", "parameter": "temperature",
         "value": "86.5", "unit": "°C", "measured_at": "2026-03-01T09:00:00.250+08:00",
         "operator": "李强"}
    )  # fmt: skip
    body = reading.model_dump(mode="json", exclude_none=True)
    assert body["measured_at"] == types.format_instant(reading.measured_at)
    assert body["measured_at"] == "2026-03-01T01:00:00.250000Z"


# ------------------------------------------- record_many's dump of a CCP reading


def test_the_ccp_reading_schema_has_no_serializer_but_the_instants() -> None:
    """``_text_dump`` writes a field's text as it is: true while no field of the schema
    has a serializer of its own (other than an Instant's format_instant)."""
    from typing import get_args

    from foodtrace.records.service import _instant_fields

    schema = CcpRecordCreate
    assert _instant_fields(schema) == ("event_time", "measured_at")
    assert not schema.model_computed_fields
    assert schema.model_config.get("extra") == "forbid"
    assert "model_serializer" not in str(schema.__pydantic_core_schema__)
    for name, info in schema.model_fields.items():
        metadata = [*info.metadata]
        for arg in get_args(info.annotation):
            metadata += getattr(arg, "__metadata__", ())
        serializers = [m for m in metadata if "Serializer" in type(m).__name__]
        expected = [types.format_instant] if name in {"measured_at", "event_time"} else []
        assert [m.func for m in serializers] == expected, name
        assert info.serialization_alias is None and info.alias is None, name  # noqa: PT018


_READING_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=8
)


@given(
    st.fixed_dictionaries(
        {
            "lot_code": st.sampled_from(["PJ20260301A", "L009"]),
            "ccp": st.sampled_from(["CCP1", "CCP2"]),
            "parameter": st.sampled_from(["temperature", "seal"]),
            "measured_at": st.datetimes(
                min_value=datetime(1990, 1, 1), max_value=datetime(2030, 1, 1), timezones=_ZONES
            ).map(lambda d: d.isoformat()),
            "operator": _READING_TEXT,
        },
        optional={
            "corrective_action": _READING_TEXT | st.just(""),
            "event_time": st.just("2026-03-01T09:00:00.5+08:00"),
        },
    ),
    st.one_of(
        st.fixed_dictionaries(
            {
                "value": st.sampled_from(["86.5", "85", "-0.25", 12]),
                "unit": st.sampled_from(["°C", "s", " kg "]),
            }
        ),
        st.fixed_dictionaries({"result": st.sampled_from(["pass", "fail"])}),
    ),
)
@settings(max_examples=300, deadline=None)
def test_the_text_dump_is_model_dump(data: dict[str, Any], measure: dict[str, Any]) -> None:
    from foodtrace.records.service import _instant_fields, _text_dump

    try:
        model = CcpRecordCreate.model_validate({**data, **measure})
    except ValidationError:
        assume(False)  # counted as invalid: most examples are valid readings
    want = model.model_dump(mode="json", exclude_none=True, exclude={"event_time"})
    got = _text_dump(model, _instant_fields(CcpRecordCreate))
    assert got == want
    assert list(got) == list(want)  # in the same order too
