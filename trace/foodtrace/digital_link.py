"""The address printed on a package: a lot's GS1 Digital Link URI, or the platform path.

DESIGN.md, "QR codes and the consumer page". A lot of a product with a GTIN is at

    /01/<GTIN-14>/10/<lot>          GS1 Digital Link: AI 01 (GTIN), AI 10 (batch/lot)

and a lot without one (common in small workshops) at the platform path

    /lot/<credit code>/<lot>

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
    """The lot's path on the platform: ``/01/<GTIN-14>/10/<lot>`` with a GTIN, else
    ``/lot/<credit code>/<lot>``."""
    if gtin:
        return f"/01/{gtin14(gtin)}/10/{encode_segment(lot_code)}"
    if not credit_code:
        raise ValueError("a lot without a GTIN is addressed by its producer's credit code")
    return f"/lot/{encode_segment(credit_code)}/{encode_segment(lot_code)}"


def lot_uri(
    base_url: str, *, lot_code: str, gtin: str | None = None, credit_code: str | None = None
) -> str:
    """The URI a lot's QR code carries: the public base URL followed by :func:`lot_path`."""
    return base_url.rstrip("/") + lot_path(lot_code=lot_code, gtin=gtin, credit_code=credit_code)
