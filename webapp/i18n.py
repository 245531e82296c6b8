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
