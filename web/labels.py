"""Labels both portals show for a case (the portals do not import each other)."""

from __future__ import annotations

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
