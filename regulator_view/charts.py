"""Week-by-week completeness drawn as small bar charts: plain SVG rendered on the server.

No script and no CDN, like the trail graph. Each chart is an ``role="img"``
SVG whose ``<title>`` names it and whose ``<desc>`` reads every week's figure
aloud, so a screen reader (or a search for a week) gets the numbers; each bar
also carries a ``<title>`` tooltip, and ``data-week`` for tests. The colours
follow the dashboard's badges: complete (green), at least 90 % (amber), less
(red); findings are drawn in red. Texts come in the reader's language through
``gettext``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from html import escape
from itertools import count

from schemas.api import CompletenessWeekPublic

Gettext = Callable[[str], str]
_ids = count(1)


def _week_name(w: CompletenessWeekPublic, gettext: Gettext) -> str:
    return gettext("Week {week}").format(week=int(w.week.rsplit("W", 1)[1]))


def _span(w: CompletenessWeekPublic) -> str:
    return f"{w.start[5:]} – {w.end[5:]}"


def running(w: CompletenessWeekPublic, today: str | None) -> bool:
    """Whether the week is under way (today is one of its days): its lots may still be
    completed, so its share is not a result yet."""
    return today is not None and w.start <= today <= w.end


def _days(w: CompletenessWeekPublic) -> int:
    return (date.fromisoformat(w.end) - date.fromisoformat(w.start)).days + 1


def week_text(w: CompletenessWeekPublic, gettext: Gettext, today: str | None = None) -> str:
    """One week's figures in words (the charts' accessible text). A week under way says so,
    with what it holds so far; a week the period clips says how many days it covers."""
    name = gettext("{week} ({dates})").format(week=_week_name(w, gettext), dates=_span(w))
    if running(w, today):
        elapsed = date.fromisoformat(today or w.end) - date.fromisoformat(w.start)
        days = min(_days(w), elapsed.days + 1)
        lots = gettext(
            "{week}: in progress, day {day} of {days}; {complete} of {total} lots complete so far"
        ).format(week=name, day=days, days=_days(w), complete=w.lots_complete, total=w.lots_total)
    elif not w.lots_total:
        lots = gettext("{week}: no lots").format(week=name)
    else:
        lots = gettext("{week}: {share} complete, {complete} of {total} lots").format(
            week=name,
            share=percent(w.complete_share),
            complete=w.lots_complete,
            total=w.lots_total,
        )
    findings = gettext("{count} finding(s)").format(count=w.findings)
    return gettext("{lots}; {findings}.").format(lots=lots, findings=findings)


def percent(share: float | None) -> str:
    return "–" if share is None else f"{round(100 * share)}%"


def _band(share: float | None) -> str:
    if share is None:
        return "none"
    return "ok" if share >= 1 else ("warn" if share >= 0.9 else "bad")


def _nice_max(value: int) -> int:
    """The top of the findings axis: 1, 2, 5, 10, 20, 50 … at least ``value``."""
    top = 1
    while True:
        for step in (1, 2, 5):
            if top * step >= value:
                return top * step
        top *= 10


def week_chart(
    weeks: Sequence[CompletenessWeekPublic],
    *,
    metric: str,
    title: str,
    gettext: Gettext,
    width: int = 440,
    height: int = 170,
    most: int | None = None,
    today: str | None = None,
) -> str:
    """A bar chart of ``metric`` (``share`` of complete lots, or ``findings``) per week.

    ``most`` sets the findings axis (at least the highest week's count), so that
    charts drawn side by side share one scale.
    """
    if metric not in ("share", "findings"):
        raise ValueError(f"metric must be share or findings, not {metric!r}")
    uid = f"wc{next(_ids)}"
    left, right, top, bottom = 40, 8, 20, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(1, len(weeks))
    slot = plot_w / n
    bar_w = min(slot * 0.62, 44)
    base = top + plot_h
    highest = max([most or 0, *(w.findings for w in weeks)])
    ceiling = 1 if metric == "share" else _nice_max(highest)
    if metric == "share":
        ticks: list[float] = [0, 0.5, 1]
    else:
        ticks = [0, ceiling // 2, ceiling] if ceiling % 2 == 0 else [0, ceiling]
    desc = " ".join(week_text(w, gettext, today) for w in weeks)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'class="week-chart" data-metric="{metric}" role="img" '
        f'aria-labelledby="{uid}t {uid}d" preserveAspectRatio="xMinYMin meet">',
        f'<title id="{uid}t">{escape(title)}</title>',
        f'<desc id="{uid}d">{escape(desc)}</desc>',
    ]
    for t in ticks:
        y = base - plot_h * (t / ceiling if ceiling else 0)
        label = f"{round(100 * t)}%" if metric == "share" else str(int(t))
        parts.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{left - 5}" y="{y + 4:.1f}" text-anchor="end">{label}</text>'
        )
    # thin the week labels when they would run into each other
    every = 1 if slot >= 44 else (2 if slot >= 24 else 4)
    for i, w in enumerate(weeks):
        cx = left + slot * (i + 0.5)
        x = cx - bar_w / 2
        under_way = running(w, today)
        value: float | None
        if metric == "share" and under_way:
            # not a result yet: an outlined bar, labelled as under way
            value = 1.0  # the outline of what the week may still reach
            shown = escape(gettext("in progress"))
            band = "running"
        elif metric == "share":
            value = w.complete_share
            shown = percent(value)
            band = _band(value)
        else:
            value = w.findings / ceiling
            shown = str(w.findings)
            band = "bad" if w.findings else "none"
        tip = escape(week_text(w, gettext, today))
        state = ' data-state="in-progress"' if under_way else ""
        parts.append(f'<g class="week" data-week="{w.week}"{state}><title>{tip}</title>')
        if value:
            h = plot_h * value
            parts.append(
                f'<rect class="bar {band}" x="{x:.1f}" y="{base - h:.1f}" '
                f'width="{bar_w:.1f}" height="{h:.1f}" rx="2"/>'
            )
            label_y = base - h - 5
        else:
            parts.append(
                f'<rect class="bar {band}" x="{x:.1f}" y="{base - 2}" '
                f'width="{bar_w:.1f}" height="2"/>'
            )
            label_y = base - 7
        parts.append(
            f'<text class="value{" running" if band == "running" else ""}" x="{cx:.1f}" '
            f'y="{label_y:.1f}" text-anchor="middle">{shown}</text>'
        )
        if i % every == 0:
            parts.append(
                f'<text class="axis" x="{cx:.1f}" y="{base + 15}" text-anchor="middle">'
                f"{escape(_week_name(w, gettext))}</text>"
                f'<text class="axis sub" x="{cx:.1f}" y="{base + 29}" text-anchor="middle">'
                f"{w.start[5:]}</text>"
            )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def sparkline(
    weeks: Sequence[CompletenessWeekPublic],
    *,
    title: str,
    gettext: Gettext,
    today: str | None = None,
) -> str:
    """A row of tiny bars: the share of complete lots each week (for the district table)."""
    uid = f"sp{next(_ids)}"
    step, bar, height = 12, 8, 26
    width = max(step, step * len(weeks))
    desc = " ".join(week_text(w, gettext, today) for w in weeks)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" class="sparkline" role="img" '
        f'aria-labelledby="{uid}t {uid}d">',
        f'<title id="{uid}t">{escape(title)}</title>',
        f'<desc id="{uid}d">{escape(desc)}</desc>',
    ]
    for i, w in enumerate(weeks):
        share = w.complete_share
        under_way = running(w, today)
        h = max(2.0, (height - 2) * (share or 0))
        band = "running" if under_way else _band(share)
        parts.append(
            f'<rect class="bar {band}" data-week="{w.week}" x="{i * step + 2}" '
            f'y="{height - h:.1f}" width="{bar}" height="{h:.1f}" rx="1">'
            f"<title>{escape(week_text(w, gettext, today))}</title></rect>"
        )
    parts.append("</svg>")
    return "".join(parts)
