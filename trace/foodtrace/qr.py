"""QR codes of a lot's URI (ISO/IEC 18004, drawn with the ``qrcode`` package), as PNG or SVG.

The ``qrcode`` package encodes the data and lays out the function patterns; the
mask is chosen here by the same penalty rules (ISO/IEC 18004 section 7.8.3) as
``qrcode``'s own ``best_mask_pattern``, with the same result, but scored on rows
and columns held as integers (a bit per module) instead of re-laying the whole
symbol eight times in Python: that was 85 % of a cold code's time. The modules
are then placed from the same integers. The PNG is written here too, a scanline
built from a row's string, since the package's pure-Python PNG writer packed
pixels one at a time; deflated at zlib's default level (level 9 took 7× as long
on these repetitive scanlines and gave no smaller file).

Error correction level Q (about 25 % of the symbol may be lost): the code is
printed on labels that get scuffed, wet and creased, and the URI is short, so the
stronger level costs only a version or two (a 33×33 or 37×37 matrix). The quiet
zone is the four modules the standard requires.
"""

from __future__ import annotations

import struct
import zlib
from functools import lru_cache
from operator import itemgetter

import qrcode
from qrcode import LUT as qrlut
from qrcode import base as qrbase
from qrcode import util as qrutil
from qrcode.constants import ERROR_CORRECT_Q
from qrcode.exceptions import DataOverflowError

QUIET_ZONE = 4
"""Modules of white border around the symbol (ISO/IEC 18004 section 6.3.8)."""


@lru_cache(maxsize=256)
def qr_matrix(text: str) -> tuple[tuple[bool, ...], ...]:
    """The symbol's modules, quiet zone included, row by row (True is dark)."""
    return tuple(tuple(module == "1" for module in row) for row in _symbol(text))


@lru_cache(maxsize=256)
def _symbol(text: str) -> tuple[str, ...]:
    """The symbol's rows, quiet zone included, as strings of ``1`` (dark) and ``0``.

    The same modules as ``qrcode``'s ``make(fit=True)`` and ``get_matrix()``: its
    version fit and codewords, placed and masked here, the mask by :func:`best_mask`.
    """
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_Q, border=QUIET_ZONE)
    code.add_data(text)
    code.best_fit()
    data = _codewords(code.version, code.error_correction, code.data_list)
    layout = _layout(code.version, code.error_correction)
    rows, _ = layout.place(data)
    pattern = best_mask(code.version, code.error_correction, data)
    n = layout.n
    cells = format(layout.final[pattern] | (rows ^ layout.masks[pattern][0]), f"0{n * n}b")
    cells = cells[::-1]  # bit r·n + c is module (r, c): the string's first is bit 0
    blank = "0" * (n + 2 * QUIET_ZONE)
    side = "0" * QUIET_ZONE
    return (
        (blank,) * QUIET_ZONE
        + tuple(side + cells[r * n : (r + 1) * n] + side for r in range(n))
        + (blank,) * QUIET_ZONE
    )


class _BitStream:
    """``qrcode``'s ``BitBuffer`` as one integer: the bits put, the first most significant."""

    def __init__(self) -> None:
        self.value = 0
        self.length = 0

    def put(self, num: int, length: int) -> None:
        self.value = (self.value << length) | (num & ((1 << length) - 1))
        self.length += length

    def __len__(self) -> int:
        return self.length


def _codewords(version: int, error_correction: int, data_list: list[qrutil.QRData]) -> list[int]:
    """``qrcode.util.create_data``: the data codewords (each segment's mode, length and
    data, the terminator, padding) and each block's Reed-Solomon codewords, interleaved
    (ISO/IEC 18004 sections 7.4 to 7.6). The same codewords, with the bits kept in one
    integer and the remainder computed over GF(256) by table instead of by polynomial
    objects."""
    stream = _BitStream()
    for data in data_list:
        stream.put(data.mode, 4)
        stream.put(len(data), qrutil.length_in_bits(data.mode, version))
        data.write(stream)  # type: ignore[arg-type]  # duck-types BitBuffer's put()
    blocks = qrbase.rs_blocks(version, error_correction)
    limit = sum(block.data_count * 8 for block in blocks)
    if len(stream) > limit:
        raise DataOverflowError(f"Code length overflow. Data size ({len(stream)}) > {limit}")
    stream.put(0, min(limit - len(stream), 4))  # the terminator
    stream.put(0, -len(stream) % 8)  # to a whole codeword
    pad = (limit - len(stream)) // 8
    codes = stream.value.to_bytes(len(stream) // 8, "big") + (bytes((0xEC, 0x11)) * pad)[:pad]
    data_blocks: list[bytes] = []
    ec_blocks: list[list[int]] = []
    offset = 0
    for block in blocks:
        data_blocks.append(codes[offset : offset + block.data_count])
        offset += block.data_count
        ec_blocks.append(_rs_remainder(data_blocks[-1], block.total_count - block.data_count))
    out: list[int] = []
    for i in range(max(len(b) for b in data_blocks)):
        out.extend(b[i] for b in data_blocks if i < len(b))
    for i in range(max(len(b) for b in ec_blocks)):
        out.extend(b[i] for b in ec_blocks if i < len(b))
    return out


def _rs_remainder(data: bytes, count: int) -> list[int]:
    """The ``count`` error correction codewords of a block: the remainder of data·x^count
    divided by the code's generator polynomial over GF(256), by shift register."""
    log, exp = qrbase.LOG_TABLE, qrbase.EXP_TABLE
    generator = qrlut.rsPoly_LUT[count]  # 1, g1, ..., g_count; every g_i is non-zero
    logs = [log[g] for g in generator[1:]]
    rest = [0] * count
    for code in data:
        factor = code ^ rest[0]
        rest = rest[1:]
        rest.append(0)
        if factor:
            lf = log[factor]
            rest = [r ^ exp[(lf + lg) % 255] for r, lg in zip(rest, logs, strict=True)]
    return rest


class _Layout:
    """Where a version's data modules are, and its function patterns as masks are scored
    (format and version information light, as ``qrcode`` scores them).

    The symbol is held as two integers with a bit per module: row-major (bit
    ``r·n + c`` is module (r, c)) and column-major (bit ``c·n + r``), a set bit dark,
    so that each penalty rule is a few shifts and ANDs over the whole symbol.
    """

    def __init__(self, version: int, error_correction: int) -> None:
        probe = qrcode.QRCode(version=version, error_correction=error_correction)
        n = probe.modules_count = version * 4 + 17
        probe.modules = [[None] * n for _ in range(n)]
        probe.setup_position_probe_pattern(0, 0)
        probe.setup_position_probe_pattern(n - 7, 0)
        probe.setup_position_probe_pattern(0, n - 7)
        probe.setup_position_adjust_pattern()
        probe.setup_timing_pattern()
        blank = [row[:] for row in probe.modules]
        probe.setup_type_info(True, 0)  # test=True: every format bit light, as scored
        if version >= 7:
            probe.setup_type_number(True)
        m = probe.modules
        self.n = n
        # The data modules in the order qrcode's map_data fills them: two-column
        # strips from the right, up then down, skipping the vertical timing column.
        self.order: list[tuple[int, int]] = []
        up = True
        for right in range(n - 1, 0, -2):
            if right <= 6:
                right -= 1
            for r in range(n - 1, -1, -1) if up else range(n):
                for c in (right, right - 1):
                    if m[r][c] is None:
                        self.order.append((r, c))
            up = not up
        cells = [(r, c) for r in range(n) for c in range(n)]
        self.fixed = _bits(((r, c) for r, c in cells if m[r][c]), n)
        # The function patterns as drawn, with each mask's format information.
        self.final: list[int] = []
        for pattern in range(8):
            probe.modules = [row[:] for row in blank]
            probe.setup_type_info(False, pattern)
            if version >= 7:
                probe.setup_type_number(False)
            drawn = probe.modules
            self.final.append(_bits(((r, c) for r, c in cells if drawn[r][c]), n))
        self.fixed_t = _bits(((c, r) for r, c in cells if m[r][c]), n)
        # Each mask's dark modules, on the data modules only.
        self.masks: list[tuple[int, int]] = []
        for pattern in range(8):
            flip = qrutil.mask_func(pattern)
            dark = [(r, c) for r, c in self.order if flip(r, c)]
            self.masks.append((_bits(dark, n), _bits(((c, r) for r, c in dark), n)))
        # Per line of n modules: the bits where a window of w modules fits, w = 2 and 11.
        line = sum(1 << (r * n) for r in range(n))
        self.fits2 = line * ((1 << (n - 1)) - 1)
        self.fits11 = line * ((1 << (n - 10)) - 1)
        self.all = (1 << (n * n)) - 1
        self.above = (1 << (n * (n - 1))) - 1  # every row but the last
        self._gathers: dict[
            int, tuple[itemgetter[tuple[int, ...]], itemgetter[tuple[int, ...]]]
        ] = {}

    def place(self, data: list[int]) -> tuple[int, int]:
        """The codewords' bits on the data modules, unmasked (row-major, column-major);
        the remainder bits after the last codeword are light."""
        bits = len(data) * 8
        row_major, col_major = self._gather(bits)
        # the codewords' bits, first first, and a light module at index ``bits``
        stream = format(int.from_bytes(bytes(data), "big"), f"0{bits}b") + "0"
        return int("".join(row_major(stream)), 2), int("".join(col_major(stream)), 2)

    def _gather(self, bits: int) -> tuple[itemgetter[tuple[int, ...]], itemgetter[tuple[int, ...]]]:
        """For each module, most significant bit first: which of ``bits`` codeword bits
        is placed there (index ``bits``, a light module, for every other module)."""
        known = self._gathers.get(bits)
        if known is not None:
            return known
        n = self.n
        row_major = [bits] * (n * n)
        col_major = [bits] * (n * n)
        for k, (r, c) in enumerate(self.order[:bits]):
            row_major[n * n - 1 - (r * n + c)] = k
            col_major[n * n - 1 - (c * n + r)] = k
        known = self._gathers[bits] = itemgetter(*row_major), itemgetter(*col_major)
        return known


def _bits(cells, n: int) -> int:
    return sum(1 << (r * n + c) for r, c in cells)


@lru_cache(maxsize=64)
def _layout(version: int, error_correction: int) -> _Layout:
    return _Layout(version, error_correction)


# The finder-like patterns of penalty rule 3 (1:1:3:1:1 with four light modules on
# one side), as the modules of an 11-module window, first module first.
_FINDER_LIKE = ((1, 0, 1, 1, 1, 0, 1, 0, 0, 0, 0), (0, 0, 0, 0, 1, 0, 1, 1, 1, 0, 1))


def _lines_penalty(lines: int, layout: _Layout) -> int:
    """Penalty rules 1 and 3 on every line (row, or column if transposed) at once."""
    # bit c of a line: module c equals module c + 1 (never set at a line's last module,
    # so no run or window below crosses from one line to the next)
    same = ~(lines ^ (lines >> 1)) & layout.fits2
    five = same & (same >> 1) & (same >> 2) & (same >> 3)  # modules c .. c+4 one colour
    # Rule 1: a run of L >= 5 costs 3 + (L - 5): one per five-module window in it, plus
    # two for its first window (no equal module before it).
    penalty = five.bit_count() + 2 * (five & ~(same << 1)).bit_count()
    # Rule 3: 40 for each 11-module window that is one of the finder-like patterns.
    light = layout.all ^ lines
    for pattern in _FINDER_LIKE:
        hit = layout.fits11
        for k, dark in enumerate(pattern):
            hit &= (lines if dark else light) >> k
            if not hit:
                break
        penalty += 40 * hit.bit_count()
    return penalty


def _penalty(rows: int, cols: int, layout: _Layout) -> int:
    """``qrcode.util.lost_point`` of a symbol: the four penalty rules of section 7.8.3."""
    n = layout.n
    penalty = _lines_penalty(rows, layout) + _lines_penalty(cols, layout)
    # Rule 2: 3 for each 2 x 2 block of one colour (a row and the one below it).
    same = ~(rows ^ (rows >> n)) & layout.above
    block = same & (same >> 1) & ~(rows ^ (rows >> 1)) & layout.fits2
    penalty += 3 * block.bit_count()
    # Rule 4: 10 for each full 5 % the dark share departs from 50 %, computed as qrcode does.
    percent = float(rows.bit_count()) / (n**2)
    return penalty + int(abs(percent * 100 - 50) / 5) * 10


def best_mask(version: int, error_correction: int, data: list[int]) -> int:
    """The mask pattern (0-7) of least penalty, the first of equals: the one
    ``qrcode.QRCode.best_mask_pattern`` picks for the same codewords."""
    layout = _layout(version, error_correction)
    rows, cols = layout.place(data)
    best, least = 0, -1
    for pattern, (mask, mask_t) in enumerate(layout.masks):
        penalty = _penalty(layout.fixed | (rows ^ mask), layout.fixed_t | (cols ^ mask_t), layout)
        if least < 0 or penalty < least:
            best, least = pattern, penalty
    return best


@lru_cache(maxsize=1024)
def qr_png(text: str, *, module_px: int = 8) -> bytes:
    """A black-on-white PNG of the code, ``module_px`` pixels per module.

    The image of a text never changes, so the most recently asked are kept (a
    lot's page and its label ask for the same one).
    """
    return _png_1bit(_symbol(text), module_px)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    """PNG chunk layout: length (4 bytes, big-endian), type, data, CRC-32 of type + data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_1bit(rows: tuple[str, ...], px: int) -> bytes:
    """A 1-bit greyscale PNG (colour type 0, bit depth 1: a set bit is white) of a module
    grid (rows of ``1`` dark, ``0`` light), each module ``px`` × ``px`` pixels; every
    scanline uses filter type 0 (None)."""
    width = len(rows[0]) * px
    pad = -width % 8  # a scanline is whole bytes; the padding bits are ignored
    pixels = str.maketrans({"1": "0" * px, "0": "1" * px})  # dark is a clear bit
    lines = []
    for row in rows:
        bits = row.translate(pixels) + "1" * pad
        line = b"\x00" + int(bits, 2).to_bytes((width + pad) // 8, "big")
        lines.append(line * px)
    ihdr = struct.pack(">IIBBBBB", width, len(rows) * px, 1, 0, 0, 0, 0)
    return (
        _PNG_SIGNATURE
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"".join(lines)))
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
