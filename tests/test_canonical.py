"""Canonical bytes (RFC 8785) and leaf hashes (RFC 9162) against fixed known answers."""

from __future__ import annotations

import hashlib
import unicodedata
from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from conftest import LONG
from foodtrace.canonical import CanonicalError, canonical_bytes, dumps, leaf_hash
from schemas.records import RECORD_SCHEMAS, RecordKind

import factories

ENTRY = {
    "v": 1,
    "log": "trace.example.cn/ledger/91370404MA3F42206T",
    "seq": 1,
    "kind": "ccp_record",
    "event_time": "2026-03-01T00:30:00Z",
    "recorded_at": "2026-03-01T00:31:05Z",
    "actor": "李强",
    "salt": "AAECAwQFBgcICQoLDA0ODw==",
    "body": {
        "lot_code": "PJ20260301A",
        "value": "83.5",
        "unit": "°C",
        "corrective_action": "隔离该时段产品，重新杀菌",
    },
    "prev_hash": "0" * 64,
}
# Keys sorted by UTF-16 code units, no whitespace, non-ASCII text as UTF-8 (RFC 8785 §3.2).
ENTRY_BYTES = (
    '{"actor":"李强","body":{"corrective_action":"隔离该时段产品，重新杀菌",'
    '"lot_code":"PJ20260301A","unit":"°C","value":"83.5"},"event_time":"2026-03-01T00:30:00Z",'
    '"kind":"ccp_record","log":"trace.example.cn/ledger/91370404MA3F42206T",'
    '"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000",'
    '"recorded_at":"2026-03-01T00:31:05Z","salt":"AAECAwQFBgcICQoLDA0ODw==","seq":1,"v":1}'
).encode()
ENTRY_HASH = "41ea0f8271a7beae1814e2bc3421319c27f9a63a8912753ccd826fb22194d504"


def test_entry_canonical_bytes_known_answer() -> None:
    assert canonical_bytes(ENTRY) == ENTRY_BYTES


def test_entry_hash_known_answer() -> None:
    assert leaf_hash(ENTRY_BYTES).hex() == ENTRY_HASH
    assert ENTRY_HASH == hashlib.sha256(b"\x00" + ENTRY_BYTES).hexdigest()


def test_leaf_hash_of_empty_leaf_is_the_rfc6962_value() -> None:
    # The hash of the empty leaf in the RFC 6962 / transparency-dev test vectors.
    assert leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )


def test_key_order_and_escapes_follow_rfc8785() -> None:
    assert canonical_bytes({"b": "\u20ac", "a": '\n"\\', "c": [True, None, 0]}) == (
        b'{"a":"\\n\\"\\\\","b":"\xe2\x82\xac","c":[true,null,0]}'
    )


def test_key_order_is_independent_of_insertion_order() -> None:
    assert canonical_bytes(dict(reversed(list(ENTRY.items())))) == ENTRY_BYTES


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"value": 83.5}, "floats are not allowed"),
        ({"n": 2**53}, "exceeds 2"),
        ({"温度": "1"}, "ASCII"),
        ({"x": b"bytes"}, "not a JSON value"),
    ],
)
def test_values_that_would_make_bytes_ambiguous_are_refused(value: dict, reason: str) -> None:
    with pytest.raises(CanonicalError, match=reason):
        canonical_bytes(value)


# ------------------------------------------------ the fast path is RFC 8785, byte for byte
#
# canonical.dumps and canonical_bytes write through the C ``json`` encoder where it
# is provably identical to rfc8785 (see the module docstring) and fall back to
# rfc8785 otherwise. These properties compare both with ``rfc8785.dumps`` itself.

_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
"""Any Unicode scalar value: control characters, U+007F, U+2028, the BMP's private use
area (sorted after surrogate pairs in UTF-16) and characters beyond U+FFFF."""
_SAFE_INT = st.integers(-(2**53 - 1), 2**53 - 1)
_SCALARS = st.none() | st.booleans() | _SAFE_INT | _TEXT
_TREES = st.recursive(
    _SCALARS,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(_TEXT, kids, max_size=5),
    max_leaves=30,
)


def _examples(n: int) -> int:
    """Examples of a property: a third of ``n`` in CI, five times ``n`` with FOODTRACE_LONG=1."""
    return n * 5 if LONG else n // 3


@given(_TREES)
@settings(max_examples=_examples(400))
def test_dumps_of_any_json_tree_is_rfc8785(tree: Any) -> None:
    assert dumps(tree) == rfc8785.dumps(tree)


@given(
    st.recursive(
        _SCALARS | st.floats(allow_nan=False, allow_infinity=False) | st.integers(),
        lambda kids: st.lists(kids, max_size=4) | st.dictionaries(_TEXT, kids, max_size=5),
        max_leaves=20,
    )
)
@settings(max_examples=_examples(300))
def test_dumps_falls_back_to_rfc8785_for_floats_and_big_integers(tree: Any) -> None:
    try:
        expected = rfc8785.dumps(tree)
    except rfc8785.CanonicalizationError:
        with pytest.raises(rfc8785.CanonicalizationError):
            dumps(tree)
    else:
        assert dumps(tree) == expected


def test_keys_beyond_the_bmp_sort_by_utf16_code_units() -> None:
    # U+1F600 is D83D DE00 in UTF-16, before U+E000; Python's code point order says otherwise.
    value = {"\ue000": 1, "\U0001f600": 2, "a": 3}
    assert dumps(value) == rfc8785.dumps(value) == '{"a":3,"\U0001f600":2,"\ue000":1}'.encode()


@pytest.mark.parametrize("value", ["\ud800", {"k": ["x\udfff"]}, {"\udc00": 1}])
def test_lone_surrogates_are_refused_like_rfc8785(value: Any) -> None:
    # rfc8785 raises CanonicalizationError, or UnicodeEncodeError for a key; dumps the same.
    with pytest.raises((rfc8785.CanonicalizationError, UnicodeEncodeError)) as expected:
        rfc8785.dumps(value)
    with pytest.raises(expected.type):
        dumps(value)
    with pytest.raises(CanonicalError):
        canonical_bytes({"body": value})


_ASCII_KEY = st.text(st.characters(max_codepoint=0x7F), max_size=10)
_ENTRY_TREES = st.recursive(
    _SCALARS,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(_ASCII_KEY, kids, max_size=5),
    max_leaves=30,
)


@given(st.dictionaries(_ASCII_KEY, _ENTRY_TREES, max_size=8))
@settings(max_examples=_examples(400))
def test_canonical_bytes_of_any_admitted_entry_is_rfc8785(entry: dict[str, Any]) -> None:
    assert canonical_bytes(entry) == rfc8785.dumps(entry)


# Record-shaped values: each factory record with every leaf redrawn (strings as the
# schemas admit them — NFC, no control characters but tab and newline — integers,
# booleans), optional keys dropped, lists grown or shrunk. The body is put in an
# entry as the ledger builds it; when the redrawn record still passes its schema,
# the schema's own JSON dump is compared too.

_INPUT_TEXT = st.text(
    st.characters(exclude_categories=("Cs", "Cc")) | st.sampled_from("\t\n"), max_size=16
).map(lambda s: unicodedata.normalize("NFC", s))

_FACTORIES = {
    RecordKind.ENTERPRISE: factories.enterprise,
    RecordKind.PRODUCT: factories.product,
    RecordKind.SUPPLIER: factories.supplier,
    RecordKind.CUSTOMER: factories.customer,
    RecordKind.MATERIAL_CHECK: factories.material_check,
    RecordKind.PRODUCTION_LOT: factories.production_lot,
    RecordKind.CCP_RECORD: factories.ccp_record,
    RecordKind.RELEASE_TEST: factories.release_test,
    RecordKind.SALE: factories.sale,
    RecordKind.SELF_INSPECTION: factories.self_inspection,
}


@st.composite
def _redrawn(draw: st.DrawFn, value: Any) -> Any:
    if isinstance(value, bool):
        return draw(st.booleans())
    if isinstance(value, int):
        return draw(_SAFE_INT)
    if isinstance(value, str):
        return draw(st.just(value) | _INPUT_TEXT)
    if isinstance(value, list):
        items = [draw(_redrawn(v)) for v in value]
        return items[: draw(st.integers(0, len(items)))] + items * draw(st.integers(0, 2))
    out = {}
    for k, v in value.items():
        if draw(st.integers(0, 5)):  # keep most keys; a dropped one may be optional
            out[k] = draw(_redrawn(v))
    return out


@st.composite
def _records(draw: st.DrawFn) -> tuple[RecordKind, dict[str, Any]]:
    kind = draw(st.sampled_from(sorted(_FACTORIES)))
    return kind, draw(_redrawn(_FACTORIES[kind]()))


@given(_records(), _INPUT_TEXT, st.integers(1, 2**53 - 1))
@settings(max_examples=_examples(200), suppress_health_check=[HealthCheck.too_slow])
def test_canonical_bytes_of_record_entries_is_rfc8785(
    rec: tuple[RecordKind, dict[str, Any]], actor: str, seq: int
) -> None:
    kind, body = rec
    bodies = [body]
    try:
        model = RECORD_SCHEMAS[kind].model_validate(body)
    except ValidationError:
        pass
    else:
        bodies.append(model.model_dump(mode="json", exclude_none=True))
    for b in bodies:
        entry = {**ENTRY, "seq": seq, "kind": kind, "actor": actor, "body": b}
        assert canonical_bytes(entry) == rfc8785.dumps(entry)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaves(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _leaves(v, (*path, i))]
    return [path]


def _set(tree: Any, path: tuple[Any, ...], value: Any) -> None:
    for p in path[:-1]:
        tree = tree[p]
    tree[path[-1]] = value


@st.composite
def _admitted(draw: st.DrawFn) -> tuple[RecordKind, dict[str, Any]]:
    """A factory record with each leaf redrawn where the schema still admits the new value."""
    kind = draw(st.sampled_from(sorted(_FACTORIES)))
    body = _FACTORIES[kind]()
    schema = RECORD_SCHEMAS[kind]
    for path in _leaves(body):
        old = body
        for p in path:
            old = old[p]
        new = draw(_redrawn(old))
        _set(body, path, new)
        try:
            schema.model_validate(body)
        except ValidationError:
            _set(body, path, old)
    return kind, schema.model_validate(body).model_dump(mode="json", exclude_none=True)


@given(_admitted(), _INPUT_TEXT)
@settings(max_examples=_examples(200), suppress_health_check=[HealthCheck.too_slow])
def test_canonical_bytes_of_admitted_records_is_rfc8785(
    rec: tuple[RecordKind, dict[str, Any]], actor: str
) -> None:
    kind, body = rec
    entry = {**ENTRY, "kind": kind, "actor": actor, "body": body}
    assert canonical_bytes(entry) == rfc8785.dumps(entry)
