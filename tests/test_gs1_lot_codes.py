"""Every printed GS1 Digital Link is one GS1's readers accept (issue 15, part 2).

GS1 AI 10 (batch/lot) holds 1 to 20 characters of GS1's AI encodable character set 82
(GS1 General Specifications, figure 7.11-1). Lot codes outside it (longer, Chinese,
``#``) stay accepted, but their QR code and label carry the platform path
``/lot/<credit code>/<lot>``, and the GS1 path answers 404 saying why.

The validator below is written here from the specification (the character set typed
out from the figure, the GTIN check digit from section 7.9), independent of
``foodtrace.digital_link``; every QR code is read back with zxing-cpp.
"""

from __future__ import annotations

import io
import random
import re
import string
from urllib.parse import unquote

import pytest
import zxingcpp
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import data_fixture
from foodtrace.config import Settings
from foodtrace.digital_link import ai10_problem, lot_path
from webapp.main import create_app

import factories as f

BASE = "https://trace.example.cn"
GTIN13 = "6921234560013"
PASSWORD = "gs1 lots pass 2026"

# GS1 General Specifications, figure 7.11-1 (character set 82), row by row.
SET_82 = (
    '!"%&'
    + "'()*+,-./"
    + string.digits
    + ":;<=>?"
    + string.ascii_uppercase
    + "_"
    + string.ascii_lowercase
)
assert len(SET_82) == len(set(SET_82)) == 82


def gs1_ai10_ok(value: str) -> bool:
    """AI 10 as GS1 defines it: X..20 over character set 82."""
    return 1 <= len(value) <= 20 and all(c in SET_82 for c in value)


def gtin_ok(gtin14: str) -> bool:
    """GS1 check digit (General Specifications 7.9.1): weights 3,1,3… from the right of the
    13 data digits; the check digit brings the sum to a multiple of 10."""
    if len(gtin14) != 14 or not gtin14.isdigit():
        return False
    data = [int(c) for c in gtin14[:13]]
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(data)))
    return (10 - total % 10) % 10 == int(gtin14[13])


_DL = re.compile(r"^/01/(?P<gtin>[0-9]{14})/10/(?P<lot>[^/?#]+)$")


def digital_link_ok(path: str) -> bool:
    """A GS1 Digital Link path /01/{gtin}/10/{lot}: a GTIN with a right check digit and an
    AI 10 value (percent-decoded) of set 82 within 20 characters."""
    m = _DL.match(path)
    return bool(m) and gtin_ok(m["gtin"]) and gs1_ai10_ok(unquote(m["lot"]))


GOOD = st.text(alphabet=SET_82, min_size=1, max_size=20)
BAD = st.one_of(
    st.text(alphabet=SET_82, min_size=21, max_size=64),
    st.builds(
        lambda a, b: a + b, st.text(alphabet=SET_82, max_size=10), st.sampled_from("批次号#~ é")
    ),
    st.text(min_size=1, max_size=30).filter(lambda s: not gs1_ai10_ok(s)),
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(GOOD, BAD, st.text(min_size=1, max_size=40)))
def test_the_ai10_rule_is_gs1s(code: str) -> None:
    assert (ai10_problem(code) is None) == gs1_ai10_ok(code)


@settings(max_examples=300, deadline=None)
@given(GOOD)
def test_a_gs1_lot_code_gets_a_digital_link_gs1_reads(code: str) -> None:
    path = lot_path(lot_code=code, gtin=GTIN13, credit_code=f.BEVERAGE)
    assert digital_link_ok(path), path
    assert unquote(path.rsplit("/", 1)[1]) == code


@settings(max_examples=300, deadline=None)
@given(BAD)
def test_any_other_lot_code_gets_the_platform_path(code: str) -> None:
    path = lot_path(lot_code=code, gtin=GTIN13, credit_code=f.BEVERAGE)
    assert path.startswith(f"/lot/{f.BEVERAGE}/"), path
    assert not digital_link_ok(path)
    assert unquote(path.rsplit("/", 1)[1]) == code
    with pytest.raises(ValueError, match="credit code"):
        lot_path(lot_code=code, gtin=GTIN13)


def _codes() -> tuple[list[str], list[str]]:
    """Lot codes for the database test: GS1 ones that together use every character of
    set 82 a lot code may hold (a lot code has no "/", "%" or "?": they would break its
    paths), lengths 1 to 20, and codes factories use that are not GS1 lot numbers."""
    rng = random.Random(82)
    chars = [c for c in SET_82 if c not in "/%?"]
    rng.shuffle(chars)
    good, i = [], 0
    while i < len(chars):
        n = rng.randint(1, 20)
        good.append("".join(chars[i : i + n]))
        i += n
    good.append("A" * 20)
    bad = ["PJ-RC-2026-12-06-LINE2", "PJ-RC-批次1", "PJ~7", "A" * 21]
    return good, bad


GOOD_LOTS, BAD_LOTS = _codes()


@data_fixture
def gs1_lots(engine, clock) -> int:
    lid = f.register(engine, clock, f.BEVERAGE)
    f.add(engine, clock, lid, "supplier", f.supplier())
    f.add(engine, clock, lid, "product", f.product(gtin=GTIN13))
    f.add(engine, clock, lid, "material_check", f.material_check())
    for code in GOOD_LOTS + BAD_LOTS:
        lot = f.production_lot(
            lot_code=code,
            materials=[{"material_lot": "ML-0301-01", "quantity": "1", "unit": "kg"}],
        )
        f.add(engine, clock, lid, "production_lot", lot)
    f.user(engine, clock, "bev-op", PASSWORD, enterprise=f.BEVERAGE)
    return lid


@pytest.fixture
def web(db_url, engine, clock):
    app = create_app(
        Settings(database_url=db_url, public_base_url=BASE), clock=clock, engine=engine
    )
    with TestClient(app) as c:
        yield c


def _decode(png: bytes) -> list[str]:
    image = Image.open(io.BytesIO(png)).convert("L")
    return [b.text for b in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]


def test_every_printed_code_is_a_link_gs1_accepts_or_the_platform_path(web, gs1_lots) -> None:
    for code in GOOD_LOTS + BAD_LOTS:
        platform = lot_path(lot_code=code, credit_code=f.BEVERAGE)
        r = web.get(f"/qr{platform}.png")
        assert r.status_code == 200, (code, r.text)
        [uri] = _decode(r.content)
        path = uri.removeprefix(BASE)
        if gs1_ai10_ok(code):
            assert digital_link_ok(path), (code, uri)
        else:
            assert path == platform, (code, uri)
        page = web.get(path, headers={"Accept": "application/json"})
        assert page.status_code == 200, (code, page.text)
        assert page.json()["lot"] == code


def test_the_gs1_path_of_a_code_that_is_no_gs1_lot_answers_404_saying_why(web, gs1_lots) -> None:
    from foodtrace.digital_link import encode_segment

    for code in BAD_LOTS:
        gs1 = f"/01/0{GTIN13}/10/{encode_segment(code)}"
        r = web.get(gs1, headers={"Accept": "application/json"})
        assert r.status_code == 404
        assert "not a GS1 batch/lot number" in r.json()["detail"]
        assert lot_path(lot_code=code, credit_code=f.BEVERAGE) in r.json()["detail"]
        page = web.get(gs1)
        assert page.status_code == 404
        assert "GS1" in page.text
        assert web.get(f"/qr{gs1}.png").status_code == 404


def test_the_label_sheet_and_the_forms_say_so(web, gs1_lots) -> None:
    r = f.page_login(web, "bev-op", PASSWORD, follow_redirects=False)
    assert r.status_code in (302, 303)
    sheet = web.get(f"/lots/{BAD_LOTS[0]}/labels")
    assert sheet.status_code == 200
    assert f"{BASE}/lot/{f.BEVERAGE}/{BAD_LOTS[0]}" in sheet.text
    form = web.get("/records/production_lot/new")
    assert "GS1" in form.text


def test_recording_or_importing_such_a_lot_warns_and_keeps_it(client, engine, clock) -> None:
    lid = f.register(engine, clock, f.BEVERAGE)
    f.add(engine, clock, lid, "supplier", f.supplier())
    f.add(engine, clock, lid, "product", f.product(gtin=GTIN13))
    f.add(engine, clock, lid, "material_check", f.material_check())
    for code, warned in (("PJ-RC-2026-12-06-LINE2", True), ("PJ-D12", False)):
        lot = f.production_lot(
            lot_code=code,
            materials=[{"material_lot": "ML-0301-01", "quantity": "1", "unit": "kg"}],
        )
        done = f.add(engine, clock, lid, "production_lot", lot)
        assert ("not_gs1_lot" in {w.type for w in done.warnings}) == warned
    # a product without a GTIN has no GS1 code to break
    f.add(engine, clock, lid, "product", f.product(code="WS1", gtin=None))
    lot = f.production_lot(
        product_code="WS1", lot_code="作坊批次-1",
        materials=[{"material_lot": "ML-0301-01", "quantity": "1", "unit": "kg"}],
    )  # fmt: skip
    assert not f.add(engine, clock, lid, "production_lot", lot).warnings


def test_an_import_warns_of_such_a_lot_and_writes_it(engine, clock) -> None:
    from schemas.records import RecordKind
    from test_imports import do_import, records_file

    lid = f.register(engine, clock, f.BEVERAGE)
    f.add(engine, clock, lid, "supplier", f.supplier())
    f.add(engine, clock, lid, "product", f.product(gtin=GTIN13))
    f.add(engine, clock, lid, "material_check", f.material_check())
    lots = [
        f.production_lot(lot_code=code, materials=[
            {"material_lot": "ML-0301-01", "quantity": "1", "unit": "kg"}])
        for code in ("PJ-D12", "PJ-RC-批次1")
    ]  # fmt: skip
    content = records_file(RecordKind.PRODUCTION_LOT, lots, keep_example=False)
    result = do_import(engine, clock, lid, RecordKind.PRODUCTION_LOT, "l.xlsx", content)
    assert result.errors == []
    assert result.written == 2
    assert [(w.row, w.column) for w in result.warnings] == [(3, "生产批号")]
    assert "not a GS1 batch/lot number" in result.warnings[0].message
