"""Identifier checks (DESIGN.md): credit code GB 32100, SC licence, GTIN mod-10, region code."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.identifiers import (
    CREDIT_CODE_ALPHABET,
    IdentifierError,
    check_credit_code,
    check_gtin,
    check_region_code,
    check_sc_licence,
    credit_code_check_char,
)

VALID_CREDIT_CODES = [
    "91370404MA3793PC3E",
    "91370404MA3F42206T",
    "91370404MA3CHX9R46",
    "91370404MA3Q17GH1G",
    "91370404MA3B8Q5T6A",
    "91370404MA3386YX15",
    # Published on real business licences (widely cited examples of GB 32100 codes):
    "91350100M000100Y43",
]


@pytest.mark.parametrize("code", VALID_CREDIT_CODES)
def test_valid_credit_codes_pass(code: str) -> None:
    assert check_credit_code(code) == code
    assert check_credit_code(code.lower()) == code


@pytest.mark.parametrize("code", VALID_CREDIT_CODES[:6])
def test_every_single_character_change_fails_the_check(code: str) -> None:
    for i in range(18):
        for c in CREDIT_CODE_ALPHABET:
            if c == code[i]:
                continue
            mutated = code[:i] + c + code[i + 1 :]
            if i in range(2, 8):
                # the region part is checked first; a mutation may fail there instead
                with pytest.raises(IdentifierError):
                    check_credit_code(mutated)
            else:
                with pytest.raises(IdentifierError, match="check character"):
                    check_credit_code(mutated)


def test_bad_check_character_names_the_expected_one() -> None:
    with pytest.raises(IdentifierError, match="is 'F' but should be 'E'"):
        check_credit_code("91370404MA3793PC3F")


def test_bad_check_character_passes_only_with_explicit_confirmation() -> None:
    assert check_credit_code("91370404MA3793PC3F", allow_bad_check=True) == "91370404MA3793PC3F"


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("91370404MA3793PC3", "18 characters"),
        ("91370404MA3793PC3EE", "18 characters"),
        ("91370404MA3793PI3E", "'I'"),  # I, O, S, V, Z are not used
        ("91370404MA3793PO3E", "'O'"),
        ("91990404MA3793PC3E", "province"),
        ("", "18 characters"),
    ],
)
def test_malformed_credit_codes_are_refused(code: str, reason: str) -> None:
    with pytest.raises(IdentifierError, match=reason):
        check_credit_code(code)


@given(st.text(alphabet=CREDIT_CODE_ALPHABET, min_size=9, max_size=9))
def test_computed_check_character_always_verifies(tail: str) -> None:
    first17 = "91370404" + tail
    assert check_credit_code(first17 + credit_code_check_char(first17))


@pytest.mark.parametrize(
    "gtin",
    [
        "6921234560013",
        "6921234560020",
        "6927654320015",
        "6927654320022",
        "6925550000017",
        "96385074",
        "036000291452",
    ],
)
def test_valid_gtins_become_gtin14(gtin: str) -> None:
    assert check_gtin(gtin) == gtin.zfill(14)
    assert len(check_gtin(gtin)) == 14


@pytest.mark.parametrize(
    ("gtin", "reason"),
    [
        ("6921234560014", "check digit is 4 but should be 3"),
        ("692123456001", "check digit"),
        ("69212345600", "8, 12, 13 or 14 digits"),
        ("692123456001A", "8, 12, 13 or 14 digits"),
        ("６９２１２３４５６００１３", "8, 12, 13 or 14 digits"),  # full-width digits
    ],
)
def test_bad_gtins_are_refused(gtin: str, reason: str) -> None:
    with pytest.raises(IdentifierError, match=reason):
        check_gtin(gtin)


def test_sc_licence_format() -> None:
    assert check_sc_licence("SC10637040400012") == "SC10637040400012"
    assert check_sc_licence("sc20637040400012") == "SC20637040400012"
    for bad in ("SC30637040400012", "SC1063704040001", "SC106370404000123", "XK10637040400012"):
        with pytest.raises(IdentifierError, match="'SC' followed by 14 digits"):
            check_sc_licence(bad)


def test_region_codes() -> None:
    assert check_region_code("370404") == "370404"
    for bad, reason in (("37040", "6 digits"), ("3704O4", "6 digits"), ("990404", "province")):
        with pytest.raises(IdentifierError, match=reason):
            check_region_code(bad)
