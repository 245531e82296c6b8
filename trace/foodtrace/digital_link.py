"""The address printed on a package: a lot's GS1 Digital Link URI, or the platform path.

DESIGN.md, "QR codes and the consumer page". A lot of a product with a GTIN is at

    /01/<GTIN-14>/10/<lot>          GS1 Digital Link: AI 01 (GTIN), AI 10 (batch/lot)

and a lot without one (common in small workshops) at the platform path

    /lot/<credit code>/<lot>

A GS1 Digital Link carries the lot as GS1 Application Identifier 10 (batch/lot), whose
value is 1 to 20 characters of the GS1 AI encodable character set 82 (GS1 General
Specifications, figure 7.11-1: ``!"%&'()*+,-./``, digits, ``:;<=>?``, ``A-Z``, ``_``,
``a-z``). Factories use longer codes and Chinese characters, and the platform keeps
accepting them; such a lot gets the platform path even when its product has a GTIN,
because GS1's own readers (e.g. GS1's digital-link.js toolkit) refuse a Digital Link
whose AI 10 value breaks the rule.

The server answers the same path with the consumer page, so the QR code encodes
exactly ``public base URL + path``. GS1 Digital Link 1.2 writes the GTIN with 14
digits (a GTIN-13 gets a leading 0) and percent-encodes every character of an AI
value outside ``A-Z a-z 0-9 - . _`` (its grammar's XCHAR: ``%2B`` for ``+``, ``%2F``
for ``/``…); non-ASCII characters, which the platform path allows, are
percent-encoded as UTF-8 octets (RFC 3986 section 2.1).
"""

from __future__ import annotations

from urllib.parse import quote

# RFC 3986 unreserved characters; ``~`` is not in GS1's character set, so a GS1 lot
# never contains it, and a platform lot code may keep it unencoded.
_UNRESERVED = "-._~"


AI10_MAX_LENGTH = 20
"""GS1 AI 10 (batch/lot): at most 20 characters (GS1 General Specifications 3.4.4)."""

GS1_CHARSET_82 = frozenset(
    "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
)
"""GS1 AI encodable character set 82 (GS1 General Specifications, figure 7.11-1)."""


def ai10_problem(lot_code: str) -> str | None:
    """Why ``lot_code`` is not a GS1 AI 10 (batch/lot) value, or None when it is one."""
    if not lot_code:
        return "a GS1 batch/lot number cannot be empty"
    if len(lot_code) > AI10_MAX_LENGTH:
        return (
            f"a GS1 batch/lot number has at most {AI10_MAX_LENGTH} characters; "
            f"this has {len(lot_code)}"
        )
    bad = sorted({c for c in lot_code if c not in GS1_CHARSET_82})
    if bad:
        shown = " ".join(repr(c) for c in bad[:5])
        return (
            "a GS1 batch/lot number uses only GS1's 82 characters (letters, digits and "
            f"!\"%&'()*+,-./:;<=>?_); this has {shown}"
        )
    return None


def is_gs1_lot(lot_code: str) -> bool:
    """Whether ``lot_code`` can stand as GS1 AI 10 in a Digital Link (:func:`ai10_problem`)."""
    return ai10_problem(lot_code) is None


def gtin14(gtin: str) -> str:
    """A GTIN-8, -12, -13 or -14 written with 14 digits (leading zeros), as in the URI.

    Requires a GTIN already checked (``schemas.identifiers.check_gtin``): only the
    length is looked at here.
    """
    if not gtin.isascii() or not gtin.isdigit() or len(gtin) not in (8, 12, 13, 14):
        raise ValueError(f"a GTIN has 8, 12, 13 or 14 digits; got {gtin!r}")
    return gtin.zfill(14)


def encode_segment(value: str) -> str:
    """One path segment, percent-encoded: every byte outside the unreserved set as %XX."""
    if not value:
        raise ValueError("a path segment cannot be empty")
    return quote(value, safe=_UNRESERVED)


def lot_path(*, lot_code: str, gtin: str | None = None, credit_code: str | None = None) -> str:
    """The lot's path on the platform: ``/01/<GTIN-14>/10/<lot>`` with a GTIN and a lot code
    that is a GS1 AI 10 value, else ``/lot/<credit code>/<lot>``."""
    if gtin and is_gs1_lot(lot_code):
        return f"/01/{gtin14(gtin)}/10/{encode_segment(lot_code)}"
    if not credit_code:
        raise ValueError(
            "a lot without a GTIN, or whose code is not a GS1 batch/lot number, is addressed "
            "by its producer's credit code"
        )
    return f"/lot/{encode_segment(credit_code)}/{encode_segment(lot_code)}"


def lot_uri(
    base_url: str, *, lot_code: str, gtin: str | None = None, credit_code: str | None = None
) -> str:
    """The URI a lot's QR code carries: the public base URL followed by :func:`lot_path`."""
    return base_url.rstrip("/") + lot_path(lot_code=lot_code, gtin=gtin, credit_code=credit_code)
