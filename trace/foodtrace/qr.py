"""QR codes of a lot's URI (ISO/IEC 18004, drawn with the ``qrcode`` package), as PNG or SVG.

The ``qrcode`` package lays out the symbol (and picks its mask by the standard's
penalty rules); the PNG is written here, one byte per module row segment at the
default 8 pixels per module, since the package's pure-Python PNG writer packed
pixels one at a time (half the time of a cold QR image).

Error correction level Q (about 25 % of the symbol may be lost): the code is
printed on labels that get scuffed, wet and creased, and the URI is short, so the
stronger level costs only a version or two (a 33×33 or 37×37 matrix). The quiet
zone is the four modules the standard requires.
"""

from __future__ import annotations

import struct
import zlib
from functools import lru_cache

import qrcode
from qrcode.constants import ERROR_CORRECT_Q

QUIET_ZONE = 4
"""Modules of white border around the symbol (ISO/IEC 18004 section 6.3.8)."""


@lru_cache(maxsize=256)
def qr_matrix(text: str) -> tuple[tuple[bool, ...], ...]:
    """The symbol's modules, quiet zone included, row by row (True is dark)."""
    return tuple(tuple(row) for row in _code(text).get_matrix())


def _code(text: str) -> qrcode.QRCode:  # type: ignore[type-arg]
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_Q, border=QUIET_ZONE)
    code.add_data(text)
    code.make(fit=True)
    return code


@lru_cache(maxsize=1024)
def qr_png(text: str, *, module_px: int = 8) -> bytes:
    """A black-on-white PNG of the code, ``module_px`` pixels per module.

    The image of a text never changes, so the most recently asked are kept (a
    lot's page and its label ask for the same one).
    """
    return _png_1bit([[not dark for dark in row] for row in qr_matrix(text)], module_px)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    """PNG chunk layout: length (4 bytes, big-endian), type, data, CRC-32 of type + data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_1bit(light: list[list[bool]], px: int) -> bytes:
    """A 1-bit greyscale PNG (colour type 0, bit depth 1: a set bit is white) of a module
    grid, each module ``px`` × ``px`` pixels; every scanline uses filter type 0 (None)."""
    n = len(light[0])
    width = n * px
    pad = -width % 8  # a scanline is whole bytes; the padding bits are ignored
    lines = []
    for row in light:
        bits = "".join(("1" if m else "0") * px for m in row) + "1" * pad
        line = b"\x00" + int(bits, 2).to_bytes((width + pad) // 8, "big")
        lines.append(line * px)
    ihdr = struct.pack(">IIBBBBB", width, len(light) * px, 1, 0, 0, 0, 0)
    return (
        _PNG_SIGNATURE
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"".join(lines), 9))
        + _png_chunk(b"IEND", b"")
    )


def qr_svg_path(text: str) -> tuple[int, str]:
    """The code as one SVG path in module units: (size in modules, path data).

    Each run of dark modules in a row is one rectangle ``M x y h n v 1 h -n z``, so a
    code of a lot's URI stays under 3 kB and scales to any print size without blur.
    """
    matrix = qr_matrix(text)
    parts: list[str] = []
    for y, row in enumerate(matrix):
        x = 0
        while x < len(row):
            if not row[x]:
                x += 1
                continue
            start = x
            while x < len(row) and row[x]:
                x += 1
            parts.append(f"M{start} {y}h{x - start}v1h-{x - start}z")
    return len(matrix), "".join(parts)


def qr_svg(text: str, *, size: str | None = None, title: str | None = None) -> str:
    """A standalone SVG element of the code; ``size`` (e.g. ``"40mm"``) sets width and height.

    Without ``size`` it fills its container (the label sheet sizes it with CSS).
    """
    n, path = qr_svg_path(text)
    dims = f' width="{size}" height="{size}"' if size else ""
    label = f"<title>{_xml_escape(title)}</title>" if title else ""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {n} {n}"{dims} '
        f'shape-rendering="crispEdges" role="img">{label}'
        f'<rect width="{n}" height="{n}" fill="#fff"/><path d="{path}" fill="#000"/></svg>'
    )


def _xml_escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )
