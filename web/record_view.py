"""A stored record as a person reads it: each field by its label, each stored code in
words, and, for a corrected record, the value now beside the value as recorded.

The labels come from where a person met the field: the record's form (``labels``, its
fields and repeating parts by name) and the kind's spreadsheet columns (their headers in
both languages). The raw record stays on the page for an auditor, folded away.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from foodtrace.records.kinds import BY_KIND
from web.values import VALUE_LABELS
from web.web import _local_time

_INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)")

Row = dict[str, Any]


def column_labels(kind: str, locale: str) -> dict[str, str]:
    """The kind's spreadsheet headers by field (``materials.unit`` for a part's field)."""
    spec = BY_KIND[kind].imports if kind in BY_KIND else None
    if spec is None:
        return {}
    return {c.key: c.header_zh if locale.startswith("zh") else c.header_en for c in spec.columns}


def record_fields(
    body: Mapping[str, Any],
    current: Mapping[str, Any] | None,
    labels: Mapping[str, str],
    gettext: Callable[[str], str],
    order: list[str] | None = None,
) -> list[Row]:
    """One row per field of ``body``: its label (None where no page names it: the page
    shows the field's name as code), the value as recorded, and where the record was
    corrected the value now and whether it changed. A list of parts (a lot's materials)
    is a row holding a table of its parts. Fields in ``order`` (the form's) come first."""
    out = []
    keys = list(body) + [k for k in (current or {}) if k not in body]
    rank = {k: i for i, k in enumerate(order or [])}
    for key in sorted(keys, key=lambda k: rank.get(k, len(rank))):
        was = body.get(key)
        now = current.get(key) if current is not None else None
        row: Row = {"key": key, "label": labels.get(key)}
        if isinstance(was, list) or isinstance(now, list):
            parts = [p for p in (now if current is not None else was) or [] if isinstance(p, dict)]
            names = list(dict.fromkeys(k for p in parts for k in p))
            row["parts"] = {
                "heads": [(n, labels.get(f"{key}.{n}")) for n in names],
                "rows": [[_say(p.get(n), gettext) for n in names] for p in parts],
            }
            row["changed"] = current is not None and was != now
        else:
            row["value"] = _say(was, gettext)
            if current is not None:
                row["now"] = _say(now, gettext)
                row["changed"] = was != now
        out.append(row)
    return out


def _say(value: Any, gettext: Callable[[str], str]) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return gettext("Yes") if value else gettext("No")
    if isinstance(value, str) and value in VALUE_LABELS:
        return gettext(VALUE_LABELS[value])
    if isinstance(value, str) and _INSTANT.fullmatch(value):  # stored in UTC, read in CST
        return _local_time(value)
    if isinstance(value, dict):
        if "name" in value:  # a part of a part (a CCP's parameter): its name and limits
            low, high = value.get("min"), value.get("max")
            limits = f"{low or ''}–{high or ''}" if low or high else ""
            return " ".join(str(x) for x in (value["name"], limits, value.get("unit")) if x)
        # a snapshot of master data as it was then (a supplier's name, address, licence)
        return " · ".join(_say(v, gettext) for v in value.values() if v not in (None, ""))
    if isinstance(value, list):
        return "、".join(_say(v, gettext) for v in value)
    return str(value)
