"""The fast canonical check of verification against ``rfc8785``, the source of truth.

``canonical.canonical_entry`` may say "not shown" (None) for canonical bytes, which
only sends them down the exact path; it must never vouch for bytes that
``canonical_bytes`` would not produce. No database: pure functions.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foodtrace.canonical import MAX_SAFE_INTEGER, CanonicalError, canonical_bytes, canonical_entry
from test_canonical import ENTRY, ENTRY_BYTES

# Every string the schemas admit, and then some: controls, quotes, backslashes,
# U+2028, astral characters, lone surrogates.
TEXT = st.text(
    alphabet=st.characters(codec=None, exclude_categories=()), max_size=12
) | st.sampled_from(['"', "\\", "\b\f\n\r\t", "\x00\x1f\x7f", "\u2028", "😀", "\ud800", "/"])
ASCII_KEYS = st.text(alphabet=st.characters(max_codepoint=127), max_size=6)
ANY_KEYS = st.text(max_size=4)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.integers(-MAX_SAFE_INTEGER - 2, MAX_SAFE_INTEGER + 2)
    | TEXT
    | st.floats(allow_nan=True, allow_infinity=True)
)


def values(keys: st.SearchStrategy[str]) -> st.SearchStrategy[object]:
    return st.recursive(
        SCALARS,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
        max_leaves=20,
    )


def exact(data: bytes) -> bool:
    """The verdict of the exact path: the bytes parse to an object that serialises to them."""
    try:
        env = json.loads(data)
        return isinstance(env, dict) and canonical_bytes(env) == data
    except (ValueError, CanonicalError):
        return False


def test_known_answer_entry_is_vouched_for() -> None:
    assert canonical_entry(ENTRY_BYTES) == ENTRY


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(ASCII_KEYS, values(ASCII_KEYS), max_size=6))
def test_agrees_with_rfc8785_on_entry_shaped_values(obj: dict) -> None:
    try:
        data = canonical_bytes(obj)
    except CanonicalError:  # floats, big integers, lone surrogates: never canonical
        return
    assert canonical_entry(data) == obj


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(ANY_KEYS, values(ANY_KEYS), max_size=6), st.sampled_from(range(6)))
def test_never_vouches_for_bytes_rfc8785_refuses(obj: dict, how: int) -> None:
    # Serialisations that are canonical only by accident or not at all: Python's own
    # dumps (floats, big integers, non-ASCII keys sorted by code point), spaced,
    # escaped, unsorted.
    dumps = [
        lambda o: json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
        lambda o: json.dumps(o, sort_keys=True, separators=(",", ":")),
        lambda o: json.dumps(o, separators=(",", ":"), ensure_ascii=False),
        lambda o: json.dumps(o, sort_keys=True, ensure_ascii=False),
        lambda o: (
            json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            .replace("1", "1.0")
            .replace("0", "-0")
        ),
        lambda o: json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=False).replace(
            "\\u00", "\\u00".upper()
        ),
    ]
    try:
        data = dumps[how](obj).encode("utf-8", "surrogatepass")
    except ValueError:  # NaN with allow_nan is fine; nothing else raises
        return
    if canonical_entry(data) is not None:
        assert exact(data), data


@pytest.mark.parametrize(
    "data",
    [
        b'{"a":1.0}',
        b'{"a":1e2}',
        b'{"a":NaN}',
        b'{"a":-Infinity}',
        b'{"a":9007199254740992}',
        b'{"a":-0}',
        '{"é":1}'.encode(),
        '{"\U0001f600":1,"\uff61":2}'.encode(),
        b'{"a":1,"a":1}',
        b'{"b":1,"a":2}',
        b'{"a": 1}',
        b'{"a":"\\u0041"}',
        b'{"a":"\\/"}',
        b'{"a":"\\u001F"}',
        b'{"a":"\xed\xa0\x80"}',
        b'\xef\xbb\xbf{"a":1}',
        b"[1]",
        b'"a"',
        "{}".encode("utf-16"),
    ],
)
def test_refuses_what_is_not_canonical(data: bytes) -> None:
    assert canonical_entry(data) is None
    assert not exact(data)


def test_accepts_the_edges_rfc8785_accepts() -> None:
    obj = {"a": MAX_SAFE_INTEGER, "b": -MAX_SAFE_INTEGER, "c": '\x1f\u2028😀/"\\', "d": []}
    assert canonical_entry(canonical_bytes(obj)) == obj
