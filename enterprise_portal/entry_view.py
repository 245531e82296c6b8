"""The entry page's record, field by field (web/record_view.py), labelled as the record's
form and spreadsheet name each field."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from enterprise_portal.forms import FORMS, Field, Options, Rows, spec_for
from foodtrace.records.kinds import BY_KIND
from web.i18n import N_, translations
from web.record_view import column_labels, record_fields


def form_labels(session: Session, eid: int, kind: str, now: datetime) -> dict[str, str]:
    """The message ids of a kind's form fields by name, its parts' as ``part.field``."""
    if kind not in FORMS:
        return {}
    labels: dict[str, str] = {}
    for item in spec_for(kind, Options(session, eid), {}, now).items:
        labels[item.name] = item.label
        if isinstance(item, Rows):
            for f in item.fields:
                labels[f"{item.name}.{f.name}"] = f.label
        elif isinstance(item, Field) and item.widget == "hidden":
            labels.pop(item.name)
    return labels


def entry_fields(
    session: Session,
    eid: int,
    kind: str,
    body: dict[str, Any],
    current: dict[str, Any] | None,
    locale: str,
    now: datetime,
) -> list[dict[str, Any]]:
    gettext = translations(locale).gettext
    labels = column_labels(kind, locale)
    on_form = form_labels(session, eid, kind, now)
    labels.update({k: gettext(v) for k, v in on_form.items()})
    snapshot = BY_KIND[kind].snapshot if kind in BY_KIND else None
    if snapshot is not None:  # the supplier or buyer copied into the record when it was made
        labels[snapshot.into] = gettext(N_("Master data as registered then"))
    return record_fields(body, current, labels, gettext, order=[*on_form, *labels])
