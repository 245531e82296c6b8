"""Languages of the pages: Simplified Chinese first, English available (Babel catalogues).

Message ids in templates and code are English; ``locale/zh_Hans/LC_MESSAGES/messages.po``
holds the Chinese. The catalogue is compiled in memory at start-up, so no binary
``.mo`` file is kept in the repository. ``scripts/i18n`` re-extracts the ids.
"""

from __future__ import annotations

import gettext
import io
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations


def N_(message: str) -> str:  # noqa: N802 - the gettext convention
    """Mark a string for the catalogue; it is translated where it is shown."""
    return message


LOCALES = {"zh_Hans": "中文", "en": "English"}
DEFAULT_LOCALE = "zh_Hans"
LOCALE_DIR = Path(__file__).parent / "locale"


@cache
def translations(locale: str) -> gettext.NullTranslations:
    """The compiled catalogue of ``locale`` (English: the ids themselves)."""
    po = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if locale == "en" or not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=locale)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(fp=buf)


def pick_locale(value: str | None) -> str:
    return value if value in LOCALES else DEFAULT_LOCALE


def describe_problem(problem: dict[str, Any], locale: str) -> str:
    """A field problem in the user's language.

    Chinese messages come from the catalogue by the problem's type code
    (``error.not_found``…), filled with its context; the core's English message
    is used in English and wherever no translation exists.
    """
    if locale == "en":
        return str(problem.get("msg", ""))
    key = f"error.{problem.get('type', '')}"
    text = translations(locale).gettext(key)
    if text == key:
        return (
            translations(locale).gettext("The value is not valid.") + f" ({problem.get('msg', '')})"
        )
    try:
        return text.format(**(problem.get("ctx") or {}))
    except (KeyError, IndexError, ValueError):
        return text


# Message ids of problem types (see describe_problem); the Chinese may use the
# problem's context: {value}, {allowed}, {date}, {items}, {seq}, {min_length} …
ERROR_IDS = [
    N_("error.missing"),
    N_("error.string_too_short"),
    N_("error.string_too_long"),
    N_("error.string_pattern_mismatch"),
    N_("error.string_type"),
    N_("error.int_parsing"),
    N_("error.int_type"),
    N_("error.greater_than_equal"),
    N_("error.less_than_equal"),
    N_("error.date_parsing"),
    N_("error.date_out_of_range"),
    N_("error.date_from_datetime_parsing"),
    N_("error.datetime_parsing"),
    N_("error.datetime_from_date_parsing"),
    N_("error.literal_error"),
    N_("error.enum"),
    N_("error.bool_parsing"),
    N_("error.extra_forbidden"),
    N_("error.too_short"),
    N_("error.too_long"),
    N_("error.value_error"),
    N_("error.decimal_format"),
    N_("error.float_not_allowed"),
    N_("error.not_positive"),
    N_("error.control_character"),
    N_("error.code_dots"),
    N_("error.code_not_nfc"),
    N_("error.code_invisible"),
    N_("error.code_compatibility"),
    N_("error.code_mixed_script"),
    N_("error.code_script"),
    N_("error.timezone_missing"),
    N_("error.future"),
    N_("error.credit_code_length"),
    N_("error.credit_code_charset"),
    N_("error.credit_code_check"),
    N_("error.sc_licence"),
    N_("error.gtin_format"),
    N_("error.gtin_check"),
    N_("error.region_format"),
    N_("error.region_province"),
    N_("error.not_found"),
    N_("error.duplicate"),
    N_("error.unit_mismatch"),
    N_("error.rejected_material"),
    N_("error.received_after_production"),
    N_("error.not_in_plan"),
    N_("error.before_lot"),
    N_("error.date_order"),
    N_("error.no_deviation"),
    N_("error.immutable"),
    N_("error.correction_of_correction"),
    N_("error.conflict"),
    N_("error.media_type"),
    N_("error.too_large"),
    N_("error.empty"),
    N_("error.invalid"),
    N_("error.missing_items"),
    N_("error.open_deviation"),
    N_("error.unreleased_sale"),
    N_("error.oversold"),
    N_("error.over_consumption"),
    N_("error.not_gs1_lot"),
    N_("error.wrong_ledger"),
    N_("error.bad_transition"),
    N_("error.recall_incomplete"),
    N_("error.case_state"),
    N_("error.not_in_scope"),
    N_("error.over_recovered"),
    N_("error.over_disposed"),
    N_("error.recall_open"),
    N_("error.duplicate_key"),
    N_("error.too_deep"),
]
