"""Canonical bytes and leaf hashes of ledger entries (DESIGN.md, "The ledger").

    canonical bytes = RFC 8785 (JCS) serialisation of the entry without its hash
    hash            = SHA-256(0x00 || canonical bytes)        # RFC 9162 §2.1.1 leaf hash

No floats are allowed anywhere in an entry: decimals are strings, integers stay
below 2^53, object keys are ASCII. The bytes are stored exactly as hashed.

Fast path. For the values an entry may hold, ``orjson.dumps(v,
option=OPT_SORT_KEYS)`` writes exactly the RFC 8785 bytes, as does the standard
library's C encoder, ``json.dumps(v, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)``, at a third of its cost. Verification's read side
(:func:`canonical_entry`) writes the decoded entry back with orjson too:

- strings: both escape only ``"``, ``\\``, and U+0000–U+001F (``\\b \\t \\n \\f \\r``
  by name, the others as ``\\u00xx`` in lower-case hex) and write everything
  else as UTF-8 (RFC 8785 §3.2.2.2);
- integers within ±(2^53 − 1): both write the plain decimal digits, which is
  what ECMAScript's Number-to-String gives an integral double below 10^21
  (§3.2.2.3); ``true``, ``false``, ``null`` are literal;
- object keys: RFC 8785 sorts them by UTF-16 code units (§3.2.3), Python by
  code points. The two orders differ only between a character above U+FFFF
  (a surrogate pair, 0xD800–0xDFFF in UTF-16) and one in U+E000–U+FFFF, so
  they agree whenever every key of an object lies in the Basic Multilingual
  Plane — always true of entries, whose keys are ASCII.

Anything else (a float, a key outside the BMP, an integer out of range, a
type ``json`` or orjson would coerce) goes through ``rfc8785.dumps``; a lone
surrogate makes orjson's UTF-8 encoding fail and is refused the same way.
``tests/test_canonical.py`` proves the byte identity with Hypothesis over
arbitrary JSON trees and over every record shape the schemas admit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import orjson
import rfc8785

LEAF_PREFIX = b"\x00"
"""RFC 9162 domain separation: leaves are hashed with 0x00, interior nodes with 0x01."""
ZERO_HASH = "0" * 64
"""``prev_hash`` of the first entry of a ledger."""
ENTRY_VERSION = 1
"""``v`` of every entry: the version of the entry format."""
MAX_SAFE_INTEGER = 2**53 - 1
_BMP_MAX = "\uffff"

_orjson = orjson.dumps
_SORT_KEYS = orjson.OPT_SORT_KEYS


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


def _entry_key(key: str) -> bool:
    return key.isascii()


def _bmp_key(key: str) -> bool:
    return key.isascii() or max(key) <= _BMP_MAX


_STR_ONLY = frozenset({str})


def _fits(value: Any, key_ok: Callable[[str], bool]) -> bool:
    """True when the C encoder writes ``value``'s RFC 8785 bytes (see the module docstring)
    and every object key passes ``key_ok``; False sends the caller to the exact path."""
    t = type(value)
    if t is str or t is bool or value is None:
        return True
    if t is dict:
        # The keys at once: all exactly str (no subclass), and the rule holds of their
        # concatenation exactly when it holds of each (both rules are "every character ...").
        if value and not (_STR_ONLY.issuperset(map(type, value)) and key_ok("".join(value))):
            return False
        if _STR_ONLY.issuperset(map(type, value.values())):  # flat text: a record's body
            return True
        for v in value.values():
            tv = type(v)
            if tv is str or (tv is int and -MAX_SAFE_INTEGER <= v <= MAX_SAFE_INTEGER):
                continue
            if not _fits(v, key_ok):
                return False
        return True
    if t is list or t is tuple:
        for v in value:
            tv = type(v)
            if tv is str or (tv is int and -MAX_SAFE_INTEGER <= v <= MAX_SAFE_INTEGER):
                continue
            if not _fits(v, key_ok):
                return False
        return True
    if t is int:
        n: int = value
        return -MAX_SAFE_INTEGER <= n <= MAX_SAFE_INTEGER
    # a StrEnum (a record's kind): json writes its value; int/dict/list subclasses,
    # floats and other types: the exact path decides
    return isinstance(value, str)


def dumps(value: Any) -> bytes:
    """RFC 8785 bytes of ``value``: ``rfc8785.dumps``, through orjson where identical."""
    if _fits(value, _bmp_key):
        try:
            return _orjson(value, option=_SORT_KEYS)
        except orjson.JSONEncodeError:  # a lone surrogate: rfc8785 refuses it below
            pass
    return rfc8785.dumps(value)


def canonical_bytes(entry: dict[str, Any]) -> bytes:
    """RFC 8785 bytes of ``entry``, after refusing floats, big integers and non-ASCII keys."""
    if _fits(entry, _entry_key):
        # Only ASCII keys, strings, safe integers, bools and null: orjson's bytes are the
        # RFC 8785 bytes.
        try:
            return _orjson(entry, option=_SORT_KEYS)
        except orjson.JSONEncodeError:  # a lone surrogate: rfc8785 refuses it below
            pass
    else:
        _check(entry, "entry")  # raises, naming the value; or admits a subclass (IntEnum …)
    try:
        return rfc8785.dumps(entry)
    except rfc8785.CanonicalizationError as exc:
        raise CanonicalError(f"entry: {exc}") from None


class _NotFast(Exception):
    """The fast canonical check cannot vouch for these bytes: take the exact (slow) path."""


def _refuse(_value: str) -> Any:
    raise _NotFast


def _safe_int(text: str) -> int:
    value = int(text)
    if abs(value) > MAX_SAFE_INTEGER:
        raise _NotFast
    return value


def _ascii_keys(obj: dict[str, Any]) -> dict[str, Any]:
    if "".join(obj).isascii():
        return obj
    raise _NotFast


_SCAN: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder(
    parse_float=_refuse, parse_constant=_refuse, parse_int=_safe_int, object_hook=_ascii_keys
).scan_once  # type: ignore[attr-defined]  # set by JSONDecoder.__init__; typeshed omits it
"""The C scanner itself: ``JSONDecoder.decode`` adds two regex matches for surrounding
whitespace, which canonical bytes never have (a leading one makes the scan fail, a
trailing one leaves ``end`` short of the text)."""


def canonical_entry(data: bytes) -> dict[str, Any] | None:
    """The entry ``data`` holds when ``data`` is certainly its RFC 8785 form, else None.

    The read side of the fast path (module docstring): verification parses the
    stored bytes with the C decoder, whose hooks refuse everything outside the
    domain where orjson writes RFC 8785 (floats, NaN, integers beyond
    ±(2^53 − 1), non-ASCII keys), and writes them back: equal bytes prove the
    form (a lone surrogate makes orjson refuse, as it does in
    :func:`canonical_bytes`). None means
    only "not shown here"; the caller decides with :func:`canonical_bytes`
    (``rfc8785``). tests/test_verify_fast.py checks it against ``rfc8785`` on
    generated values.
    """
    try:
        text = data.decode("utf-8")
        env, end = _SCAN(text, 0)
        if end == len(text) and type(env) is dict and _orjson(env, option=_SORT_KEYS) == data:
            return env
    # StopIteration: nothing to scan; ValueError: bad UTF-8, bad JSON; JSONEncodeError: a
    # lone surrogate, or nesting deeper than orjson writes
    except (_NotFast, StopIteration, ValueError, RecursionError, orjson.JSONEncodeError):
        pass
    return None


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data): the entry's hash, the chain link and the Merkle leaf."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()
