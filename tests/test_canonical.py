"""Canonical bytes (RFC 8785) and leaf hashes (RFC 9162) against fixed known answers."""

from __future__ import annotations

import hashlib

import pytest

from foodtrace.canonical import CanonicalError, canonical_bytes, leaf_hash

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
