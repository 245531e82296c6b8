"""Labels both portals show for a case (the portals do not import each other)."""

from __future__ import annotations

import re
from collections.abc import Callable

from web.i18n import N_

STATE_LABELS = {
    "opened": N_("Opened"),
    "notified": N_("Enterprise notified"),
    "recall_underway": N_("Recall under way"),
    "recall_recorded": N_("Recall recorded"),
    "verified": N_("Verified"),
    "closed": N_("Closed"),
}
ACTION_LABELS = {
    "notification": N_("Customer notified"),
    "recovery": N_("Recovered"),
    "disposal": N_("Disposed of"),
    "completed": N_("Recall declared complete"),
}

OPEN_REASON_LABELS = {
    "customer_closed": N_("Customer closed down"),
    "unreachable": N_("Customer unreachable"),
    "reported_to_bureau": N_("Reported to the bureau"),
    "retest_cleared": N_("A re-test cleared the lot"),
    "other": N_("Other (say why in the note)"),
}
"""Why an item of a recall stays open at completion (schemas.records.RecallOpenItem)."""


# ------------------------------------------------------------------ regulator reads

_DIRECTIONS = {
    "both": N_("Both ways"),
    "backward": N_("Back to suppliers"),
    "forward": N_("Forward to customers"),
}
_ASKED = {
    "gtin": "GTIN",
    "lot": N_("Lot code"),
    "product": N_("Product name"),
    "date": N_("Production date"),
}
_READS: tuple[tuple[str, str], ...] = (
    # (the line as the regulator's views write it, the words an enterprise reads)
    (
        r"trail(?:\.(?P<ext>[\w.]+))? of lot (?P<lot>.+) "
        r"\((?P<direction>\w+), depth (?P<depth>\d+)\)",
        N_("trail of lot {lot} ({direction}, {depth} steps)"),
    ),
    (r"trail of lot (?P<lot>.+)", N_("trail of lot {lot}")),
    (r"trail\.(?P<ext>[\w.]+) of lot (?P<lot>.+)", N_("trail of lot {lot}, exported as {ext}")),
    (r"records of lot (?P<lot>.+)", N_("records of lot {lot}")),
    (r"find lots (?P<asked>.*)", N_("lots found by {asked}")),
    (r"completeness (?P<since>\S+)\.\.(?P<until>\S+)", N_("record completeness {since} – {until}")),
    (r"verify the ledger", N_("verification of the ledger")),
    (
        r"case (?P<case>\S+): scope\.(?P<ext>[\w.]+)",
        N_("case {case}: recall scope, exported as {ext}"),
    ),
    (r"case (?P<case>\S+): recall scope", N_("case {case}: recall scope")),
    (r"case (?P<case>\S+): (?P<state>\w+)", N_("case {case}: {state}")),
    (r"case (?P<case>\S+)", N_("case {case}")),
)


def read_text(what: str, gettext: Callable[[str], str]) -> str:
    """A line of the regulator-reads log in the reader's words (the log keeps the regulator
    view's English line, as the API gives it); a line of no known form is shown as written."""
    for pattern, message in _READS:
        m = re.fullmatch(pattern, what)
        if m is None:
            continue
        params = {k: v or "" for k, v in m.groupdict().items()}
        if "direction" in params:
            params["direction"] = gettext(_DIRECTIONS.get(params["direction"], params["direction"]))
        if "state" in params:
            if params["state"] not in STATE_LABELS:
                continue
            params["state"] = gettext(STATE_LABELS[params["state"]])
        if "asked" in params:
            parts = re.findall(r"(\w+)([=~])(.*?)(?= \w+[=~]|$)", params["asked"])
            if not parts or any(k not in _ASKED for k, _o, _v in parts):
                continue
            params["asked"] = gettext("; ").join(
                f"{gettext(_ASKED[k])} {'≈ ' if op == '~' else ''}{v}" for k, op, v in parts
            )
        if "ext" in params:
            params["ext"] = params["ext"].upper()
        return gettext(message).format(**params)
    return what
