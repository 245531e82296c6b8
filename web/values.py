"""The words a record stores as codes (``pass``, ``daily``), as a person reads them.

Records keep enumerated values in English codes (the schema's ``Literal`` choices); a page
shows each through the catalogue. The lists of records (the ledger, Today, a lot's
timeline) use :func:`say` on their one-line summaries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from web.i18n import N_

VALUE_LABELS: dict[str, str] = {
    "pass": N_("Pass"),
    "fail": N_("Fail"),
    "ok": N_("OK"),
    "problem": N_("Problem"),
    "not_applicable": N_("Not applicable"),
    "daily": N_("Daily check"),
    "weekly": N_("Weekly review"),
    "monthly": N_("Monthly report"),
    "system": N_("System"),
    "raw_material": N_("Raw material"),
    "food_additive": N_("Food additive"),
    "food_related_product": N_("Food-related product"),
}
"""Each stored code, by the message id of its word."""

SEPARATOR = " · "


def say(summary: str, gettext: Callable[[str], str], names: Mapping[str, str] | None = None) -> str:
    """A one-line summary (parts joined by `` · ``) with each stored code in words: an
    enumerated value through the catalogue, a CCP parameter's code by its name."""
    names = names or {}
    parts = summary.split(SEPARATOR)
    return SEPARATOR.join(
        gettext(VALUE_LABELS[p]) if p in VALUE_LABELS else names.get(p, p) for p in parts
    )
