"""Canonical bytes and leaf hashes of ledger entries (DESIGN.md, "The ledger").

    canonical bytes = RFC 8785 (JCS) serialisation of the entry without its hash
    hash            = SHA-256(0x00 || canonical bytes)        # RFC 9162 §2.1.1 leaf hash

No floats are allowed anywhere in an entry: decimals are strings, integers stay
below 2^53, object keys are ASCII. The bytes are stored exactly as hashed.
"""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785

LEAF_PREFIX = b"\x00"
"""RFC 9162 domain separation: leaves are hashed with 0x00, interior nodes with 0x01."""
ZERO_HASH = "0" * 64
"""``prev_hash`` of the first entry of a ledger."""
MAX_SAFE_INTEGER = 2**53 - 1


class CanonicalError(ValueError):
    """A value cannot be put in an entry (a float, a huge integer, a non-ASCII key)."""


def _check(value: Any, path: str) -> None:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise CanonicalError(f"{path}: integer {value} exceeds 2^53-1; use a decimal string")
        return
    if isinstance(value, float):
        raise CanonicalError(f"{path}: floats are not allowed in entries; use a decimal string")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str) or not k.isascii():
                raise CanonicalError(f"{path}: object keys must be ASCII strings, got {k!r}")
            _check(v, f"{path}.{k}")
        return
    if isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check(v, f"{path}[{i}]")
        return
    raise CanonicalError(f"{path}: {type(value).__name__} is not a JSON value")


def canonical_bytes(entry: dict[str, Any]) -> bytes:
    """RFC 8785 bytes of ``entry``, after refusing floats, big integers and non-ASCII keys."""
    _check(entry, "entry")
    try:
        return rfc8785.dumps(entry)
    except rfc8785.CanonicalizationError as exc:  # e.g. a lone surrogate in a string
        raise CanonicalError(f"entry: {exc}") from None


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data): the entry's hash, the chain link and the Merkle leaf."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()
