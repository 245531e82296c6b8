"""Checks for the identifiers a record carries (DESIGN.md, "Identifiers are checked").

Each ``check_*`` function returns the normalised identifier or raises
:class:`IdentifierError` with a message that says what is wrong. They are pure
functions: the schemas use them as validators, the core and the CLI call them
directly.
"""

from __future__ import annotations

import re

__all__ = [
    "CREDIT_CODE_ALPHABET",
    "IdentifierError",
    "check_credit_code",
    "check_gtin",
    "check_region_code",
    "check_sc_licence",
    "credit_code_check_char",
    "gtin_check_digit",
    "gtin14",
]


class IdentifierError(ValueError):
    """An identifier is malformed or fails its check character."""

    def __init__(self, message: str, *, code: str = "identifier") -> None:
        super().__init__(message)
        self.code = code


# GB 32100-2015: the 31 characters of the unified social credit code
# (digits and upper-case letters without I, O, S, V, Z).
CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_VALUE = {c: i for i, c in enumerate(CREDIT_CODE_ALPHABET)}
# Weight of position i (1-based) is 3^(i-1) mod 31.
_CREDIT_WEIGHTS = [pow(3, i, 31) for i in range(17)]
_CREDIT_RE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{18}$")


def credit_code_check_char(first17: str) -> str:
    """The GB 32100-2015 check character for the first 17 characters of a code."""
    bad = [c for c in first17 if c not in _CREDIT_VALUE]
    if len(first17) != 17 or bad:
        raise IdentifierError(f"not the first 17 characters of a credit code: {first17!r}")
    total = sum(_CREDIT_VALUE[c] * w for c, w in zip(first17, _CREDIT_WEIGHTS, strict=True))
    return CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]


def check_credit_code(value: str, *, allow_bad_check: bool = False) -> str:
    """Check a unified social credit code (统一社会信用代码).

    ``allow_bad_check`` accepts a well-formed code whose final check character
    does not match: a few early codes were issued that way, so a mismatch needs
    an explicit confirmation rather than a silent pass (DESIGN.md).
    """
    code = value.strip().upper()
    if len(code) != 18:
        raise IdentifierError(
            f"credit code must have 18 characters, got {len(code)}", code="credit_code_length"
        )
    if not _CREDIT_RE.match(code):
        bad = next(c for c in code if c not in _CREDIT_VALUE)
        raise IdentifierError(
            f"credit code contains {bad!r}, which GB 32100 does not use "
            "(allowed: digits and A-H J-N P Q R T U W X Y)",
            code="credit_code_charset",
        )
    check_region_code(code[2:8], what="credit code's region part")
    expected = credit_code_check_char(code[:17])
    if code[17] != expected and not allow_bad_check:
        raise IdentifierError(
            f"credit code check character is {code[17]!r} but should be {expected!r}; "
            "if the code is printed so on the business licence, confirm it explicitly",
            code="credit_code_check",
        )
    return code


_SC_RE = re.compile(r"^SC[12][0-9]{13}$")


def check_sc_licence(value: str) -> str:
    """Check a food production licence number: ``SC`` + 14 digits, the first 1 or 2.

    The licence number has no public check digit, so only the format is checked.
    """
    lic = value.strip().upper()
    if not _SC_RE.match(lic):
        raise IdentifierError(
            "food production licence number must be 'SC' followed by 14 digits, "
            f"the first of them 1 (food) or 2 (food additive); got {value!r}",
            code="sc_licence",
        )
    return lic


def gtin_check_digit(body: str) -> str:
    """The GS1 mod-10 check digit for a GTIN without its check digit."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        total += int(ch) * (3 if i % 2 == 0 else 1)
    return str((10 - total % 10) % 10)


def check_gtin(value: str) -> str:
    """Check a GTIN-8, -12, -13 or -14 and return it as GTIN-14 (leading zeros)."""
    gtin = value.strip()
    if not gtin.isascii() or not gtin.isdigit() or len(gtin) not in (8, 12, 13, 14):
        raise IdentifierError(
            f"GTIN must be 8, 12, 13 or 14 digits; got {value!r}", code="gtin_format"
        )
    expected = gtin_check_digit(gtin[:-1])
    if gtin[-1] != expected:
        raise IdentifierError(
            f"GTIN check digit is {gtin[-1]} but should be {expected}", code="gtin_check"
        )
    return gtin.zfill(14)


def gtin14(value: str) -> str:
    """Alias of :func:`check_gtin`: the GTIN-14 form used in GS1 Digital Link URIs."""
    return check_gtin(value)


# GB/T 2260 province-level prefixes of the 6-digit administrative division code.
_PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 "
    "50 51 52 53 54 61 62 63 64 65 71 81 82".split()
)
_REGION_RE = re.compile(r"^[0-9]{6}$")


def check_region_code(value: str, *, what: str = "region code") -> str:
    """Check a 6-digit administrative division code (行政区划代码, GB/T 2260)."""
    code = value.strip()
    if not _REGION_RE.match(code):
        raise IdentifierError(f"{what} must be 6 digits; got {value!r}", code="region_format")
    if code[:2] not in _PROVINCES:
        raise IdentifierError(
            f"{what} {code} does not start with a province code of GB/T 2260",
            code="region_province",
        )
    return code
