"""Field types shared by every record: text, decimals, dates, instants, identifiers.

DESIGN.md fixes the rules they enforce: text is NFC-normalised and carries no
control characters but tab and newline; numbers are decimal strings (never
floats, so that canonical bytes are unambiguous); calendar dates are local
``YYYY-MM-DD``; instants are RFC 3339 and stored in UTC.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import regex
from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer, StringConstraints
from pydantic_core import PydanticCustomError

from schemas.identifiers import (
    IdentifierError,
    check_credit_code,
    check_gtin,
    check_region_code,
    check_sc_licence,
)

_CONTROL = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\u202a-\u202e\u2066-\u2069]"
)
"""Control characters, line/paragraph separators, surrogates, and the bidirectional
overrides and isolates (they make text display other than it reads: "Trojan source")."""


def problem(code: str, message: str, **ctx: Any) -> PydanticCustomError:
    """A validation error with a stable type code (for translation) and a plain message."""
    return PydanticCustomError(code, "{detail}", {"detail": message, **ctx})


def clean_text(value: Any) -> Any:
    """NFC-normalise text and refuse control characters other than tab and newline."""
    if not isinstance(value, str):
        return value
    if not value.isascii():  # ASCII text is its own NFC
        value = unicodedata.normalize("NFC", value)
    value = value.strip()
    match = _CONTROL.search(value)
    if match:
        raise problem(
            "control_character",
            f"text contains the control character U+{ord(match.group()):04X} at position "
            f"{match.start()}; only tab and newline are allowed",
        )
    return value


# The length and pattern constraints sit inside the ``BeforeValidator`` (after it in
# ``Annotated``): pydantic-core then checks them in its compiled ``str`` validator, after
# clean_text. Placed outside, pydantic wraps the field in Python validators, called per
# field of every record (errors: string_too_short / string_too_long, with the limit).
def _short_text(max_length: int) -> Any:
    return Annotated[
        str, StringConstraints(min_length=1, max_length=max_length), BeforeValidator(clean_text)
    ]


Name = _short_text(200)
"""A name, a code or a short label: 1-200 characters."""


# ------------------------------------------------------------------ codes
#
# A code (a lot, a material lot, a product, a supplier, a customer, a document number) is
# read by people off a label and compared by machines byte for byte: two codes that look
# the same must be the same code. So a code is refused, not silently repaired, when it
# would display like another (issue 22): it must already be NFC (a code is stored as
# typed), carry no invisible character (Unicode Default_Ignorable_Code_Point, format Cf,
# private use Co, surrogate Cs, unassigned Cn, which includes the noncharacters), no
# fullwidth or other compatibility form (NFKC-stable; the hint names the ASCII form),
# not consist of dots only ("." and ".." are path segments: their links cannot be
# reached), and not mix scripts the way UTS #39 ("Moderately Restrictive", section 5.2)
# refuses: Latin with Cyrillic or Greek (РJ-D12), or any two of those, or a letter of a
# script outside UTS #31's Recommended scripts. Latin with Han, kana or Hangul stays
# allowed: "PJ-RC-批次1". Stored entries are never re-validated, so codes written before
# the rule still replay and verify; completeness lists them (rule ``code_form``).
#
# General categories, NFC and NFKC come from the stdlib's unicodedata (one Unicode
# version for the normaliser and the category check); Default_Ignorable_Code_Point and
# Script_Extensions, which the stdlib lacks, from the ``regex`` module.

_IGNORABLE = regex.compile(r"[\p{Default_Ignorable_Code_Point}\p{Noncharacter_Code_Point}]")
_REFUSED_CATEGORIES = {
    "Cf": "a format character",
    "Co": "a private-use character",
    "Cs": "a surrogate",
    "Cn": "an unassigned code point or a noncharacter",
}
# UTS #31 Table 5 (Recommended scripts); Common and Inherited go with any script.
_RECOMMENDED = (
    "Latin", "Han", "Hiragana", "Katakana", "Hangul", "Bopomofo", "Cyrillic", "Greek",
    "Arabic", "Armenian", "Bengali", "Devanagari", "Ethiopic", "Georgian", "Gujarati",
    "Gurmukhi", "Hebrew", "Kannada", "Khmer", "Lao", "Malayalam", "Myanmar", "Oriya",
    "Sinhala", "Tamil", "Telugu", "Thaana", "Thai", "Tibetan",
)  # fmt: skip
_SCX = {name: regex.compile(rf"\p{{scx={name}}}") for name in _RECOMMENDED}
_NEUTRAL = regex.compile(r"[\p{scx=Common}\p{scx=Inherited}]")
# UTS #39 5.1: Han, kana and Hangul resolve to the writing systems that combine them.
_AUGMENT = {
    "Han": {"Han", "Hanb", "Jpan", "Kore"},
    "Hiragana": {"Hiragana", "Jpan"},
    "Katakana": {"Katakana", "Jpan"},
    "Hangul": {"Hangul", "Kore"},
    "Bopomofo": {"Bopomofo", "Hanb"},
}
_LOOKALIKE = {"Latin", "Cyrillic", "Greek"}


def _char(c: str) -> str:
    return f"U+{ord(c):04X} {unicodedata.name(c, '(no name)')}"


def _scripts(c: str) -> set[str]:
    """The recommended scripts of ``c`` (its Script_Extensions), augmented as UTS #39 5.1."""
    out: set[str] = set()
    for name, pattern in _SCX.items():
        if pattern.match(c):
            out |= _AUGMENT.get(name, {name})
    return out


def check_code(value: str) -> str:
    """Refuse a code that is not NFC, holds an invisible or compatibility character, is dots
    only, or mixes lookalike scripts (see above); return it unchanged otherwise."""
    if value.strip(".") == "":
        raise problem(
            "code_dots", f"{value!r} is only dots, which links cannot reach; use a real code"
        )
    if value.isascii():  # every rule below concerns non-ASCII characters
        return value
    if not unicodedata.is_normalized("NFC", value):
        raise problem(
            "code_not_nfc",
            "the code is not in Unicode NFC form (a letter typed as a base and a combining "
            f"mark); type it again, or use {unicodedata.normalize('NFC', value)!r}",
            normalized=unicodedata.normalize("NFC", value),
        )
    for i, c in enumerate(value):
        what = _REFUSED_CATEGORIES.get(unicodedata.category(c))
        if what is None and _IGNORABLE.match(c):
            what = "an invisible (default-ignorable) character"
        if what is not None:
            raise problem(
                "code_invisible",
                f"the code contains {what}, {_char(c)}, at position {i}: codes that look "
                "the same must be the same code; delete it",
                char=f"U+{ord(c):04X}",
                position=i,
            )
    folded = unicodedata.normalize("NFKC", value)
    if folded != value:
        i, c = next((i, c) for i, c in enumerate(value) if unicodedata.normalize("NFKC", c) != c)
        raise problem(
            "code_compatibility",
            f"the code contains {_char(c)} at position {i}, a fullwidth or compatibility "
            f"form; type {folded!r} instead",
            char=f"U+{ord(c):04X}",
            position=i,
            suggestion=folded,
        )
    resolved: set[str] | None = None
    used: dict[str, str] = {}  # a script: the first letter of it
    for c in value:
        if _NEUTRAL.match(c):
            continue
        scripts = _scripts(c)
        if not scripts:
            raise problem(
                "code_script",
                f"the code contains {_char(c)}, a letter of a script not recommended for "
                "identifiers (UTS #31)",
                char=f"U+{ord(c):04X}",
            )
        for name in scripts & _LOOKALIKE:
            used.setdefault(name, c)
        resolved = scripts if resolved is None else resolved & scripts
    if resolved is not None and not resolved:
        lookalikes = sorted(used)
        if len(lookalikes) > 1 or (lookalikes and lookalikes != ["Latin"]):
            # Latin with Cyrillic or Greek, or those two together: letters that look alike
            detail = ", ".join(f"{_char(used[n])} ({n})" for n in lookalikes)
            raise problem(
                "code_mixed_script",
                f"the code mixes the scripts {' and '.join(lookalikes)} ({detail}): such "
                "letters look alike (UTS #39); write it in one script",
                scripts=" + ".join(lookalikes),
            )
    return value


def clean_code(value: Any) -> Any:
    """:func:`check_code`, then :func:`clean_text`: the one rule of every code field."""
    if not isinstance(value, str):
        return value
    value = value.strip()
    return clean_text(check_code(value)) if value else value


Code = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[^\s/?#%\\]+$"),
    BeforeValidator(clean_code),
]
"""An identifier the enterprise chooses (lot code, product code): no spaces or URL
delimiters, because it appears in paths and GS1 Digital Link URIs; :func:`check_code`."""
StoredCode = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[^\s/?#%\\]+$"),
    BeforeValidator(clean_text),
]
"""A code that names something already stored (checked against the store where used),
which may predate :func:`check_code`: what the platform copies from a stored lot into a
public declaration, and a regulator's reference to a sampled or recalled lot (a case must
reach any stored lot, a confusable one first)."""
DocumentNo = Annotated[
    str, StringConstraints(min_length=1, max_length=200), BeforeValidator(clean_code)
]
"""A document's number (certificate, report, delivery note, licence): the code rule of
:func:`check_code`, spaces and slashes allowed ("SJ 2026/031")."""
Note = Annotated[str, StringConstraints(max_length=4000), BeforeValidator(clean_text)]
"""Free text: up to 4000 characters, may be empty."""

_DECIMAL_RE = re.compile(r"^-?(0|[1-9][0-9]{0,14})(\.[0-9]{1,6})?$")


def _decimal_string(value: Any) -> Any:
    if isinstance(value, bool):
        raise problem("decimal_format", 'expected a decimal number as a string, e.g. "121.5"')
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, float):
        raise problem(
            "float_not_allowed",
            'decimal numbers must be sent as strings (e.g. "121.5"), not as JSON floats, '
            "so that no precision is lost",
        )
    if isinstance(value, str):
        value = value.strip()
        if not _DECIMAL_RE.match(value):
            raise problem(
                "decimal_format",
                f"{value[:40]!r} is not a decimal number "
                '(digits with at most 6 decimal places, e.g. "121.5")',
            )
    return value


def _positive(value: str) -> str:
    try:
        if Decimal(value) <= 0:
            raise problem("not_positive", f"quantity must be greater than zero, got {value}")
    except InvalidOperation as exc:  # pragma: no cover - the pattern rules this out
        raise ValueError(f"{value!r} is not a decimal number") from exc
    return value


DecimalStr = Annotated[str, BeforeValidator(_decimal_string)]
"""A decimal number as a string, e.g. ``"121.5"``; integers are accepted and converted."""
Quantity = Annotated[str, BeforeValidator(_decimal_string), AfterValidator(_positive)]
"""A decimal quantity greater than zero."""
Unit = Annotated[str, StringConstraints(min_length=1, max_length=20), BeforeValidator(clean_text)]
"""A unit of measure as written on the record: kg, g, L, 瓶, 箱, °C, CFU/mL …"""


def _to_utc(value: datetime) -> datetime:
    if not 1900 <= value.year <= 9998:
        raise problem("date_range", "the year must lie between 1900 and 9998")
    if value.tzinfo is None:
        raise problem(
            "timezone_missing", "an instant needs its time zone, e.g. 2026-03-01T08:30:00+08:00"
        )
    return value.astimezone(UTC)


def format_instant(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, microseconds only when present."""
    if value.tzinfo is not UTC:  # a validated Instant is UTC already
        value = value.astimezone(UTC)
    if value.year >= 1000:
        # the same text as the strftime below: isoformat writes .ffffff only when non-zero,
        # and "+00:00" for UTC, which the Z replaces
        return value.isoformat()[:-6] + "Z"
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


Instant = Annotated[
    datetime,
    AfterValidator(_to_utc),
    PlainSerializer(format_instant, return_type=str, when_used="json"),
]
"""An RFC 3339 instant with a time zone; stored in UTC."""


def _date_range(value: date) -> date:
    if not 1900 <= value.year <= 9998:
        raise problem("date_range", "the year must lie between 1900 and 9998")
    return value


LocalDate = Annotated[
    date,
    AfterValidator(_date_range),
    PlainSerializer(lambda d: d.isoformat(), return_type=str, when_used="json"),
]
"""A calendar date ``YYYY-MM-DD`` in local (China Standard) time, never shifted."""


def _identifier(check: Any) -> Any:
    def run(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return check(value)
        except IdentifierError as exc:
            raise problem(exc.code, str(exc)) from exc

    return BeforeValidator(run)


def _credit_format_only(value: Any) -> Any:
    # The check character is verified in the model validator, where the
    # explicit confirmation flag for early codes is known (DESIGN.md).
    if not isinstance(value, str):
        return value
    try:
        return check_credit_code(value, allow_bad_check=True)
    except IdentifierError as exc:
        raise problem(exc.code, str(exc)) from exc


CreditCode = Annotated[str, BeforeValidator(_credit_format_only)]
"""A unified social credit code; format checked here, check character by the model."""
ScLicence = Annotated[str, _identifier(check_sc_licence)]
Gtin = Annotated[str, _identifier(check_gtin)]
"""A GTIN, normalised to 14 digits."""
RegionCode = Annotated[str, _identifier(check_region_code)]
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
"""A SHA-256 digest in lower-case hex (an attachment's address)."""


def require_credit_check(code: str | None, confirmed: bool, field: str) -> None:
    """Raise when ``code`` fails its check character and was not explicitly confirmed."""
    if code is None or confirmed:
        return
    try:
        check_credit_code(code)
    except IdentifierError as exc:
        raise problem(exc.code, f"{exc} (set {field}_confirmed to true)") from exc
