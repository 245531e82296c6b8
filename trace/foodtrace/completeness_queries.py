"""Record completeness as the API gives it and the regulator's dashboard shows it: the query
the handlers call, answering the ``*Public`` schemas of ``schemas.api``.

The rules themselves are in ``foodtrace.completeness``; this module chooses the enterprises
a reader asked for among those they may read, runs the rules over the period, and says whose
records the answer rests on (a regulator's read of them is logged).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session

from foodtrace.accounts.models import Enterprise
from foodtrace.completeness import (
    MAX_PERIOD_DAYS,
    EnterpriseResult,
    Finding,
    Week,
    district_completeness,
    period,
    weekly_trend,
)
from schemas.api import (
    CompletenessPublic,
    CompletenessWeekPublic,
    EnterpriseCompletenessPublic,
    FindingPublic,
    LotCompletenessPublic,
    OutsideLinkPublic,
    ReasonPublic,
)


@dataclass(frozen=True)
class CompletenessAnswer:
    """A completeness report, and whose records it rests on: the chosen enterprises and
    the others whose ledgers their cross-enterprise links were checked against."""

    report: CompletenessPublic
    read: frozenset[int]


def asked_period(now: datetime, since: date | None, until: date | None) -> tuple[date, date]:
    """The period asked for; the last 30 days up to today where a bound is not given."""
    default_since, default_until = period(now)
    return since or default_since, until or default_until


def fitted_period(now: datetime, since: date | None, until: date | None) -> tuple[date, date]:
    """The period asked for on a page: bounds given the wrong way round are swapped, and the
    longest report is a year, ending at the asked-for last day (the page shows the period)."""
    since, until = asked_period(now, since, until)
    if since > until:
        since, until = until, since
    return max(since, until - timedelta(days=MAX_PERIOD_DAYS - 1)), until


def completeness_report(
    *,
    session: Session,
    readable: Callable[[Enterprise], bool],
    since: date,
    until: date,
    credit_code: str | None = None,
    region: str | None = None,
) -> CompletenessAnswer:
    """Completeness of the enterprises the reader may read (``readable``), narrowed to one
    ``credit_code`` or a ``region`` code prefix, over [since, until]; weakest first.

    A period that ends before it begins, or is longer than ``MAX_PERIOD_DAYS``, is refused
    (``RecordError``)."""
    rows = session.execute(select(Enterprise).order_by(Enterprise.id)).scalars().all()
    chosen = [e for e in rows if readable(e)]
    if credit_code:
        chosen = [e for e in chosen if e.credit_code == credit_code.upper()]
    if region:
        chosen = [e for e in chosen if e.region_code.startswith(region)]
    results = district_completeness(
        session=session,
        enterprise_ids=[e.id for e in chosen if e.id is not None],
        since=since,
        until=until,
        readable=readable,
    )
    read = {e.id for e in chosen if e.id is not None} | {i for r in results for i in r.consulted}
    return CompletenessAnswer(completeness_public(results, since, until), frozenset(read))


def _weeks_public(weeks: list[Week]) -> list[CompletenessWeekPublic]:
    return [
        CompletenessWeekPublic(
            week=f"{w.year}-W{w.week:02d}",
            start=w.start.isoformat(),
            end=w.end.isoformat(),
            lots_total=w.lots_total,
            lots_complete=w.lots_complete,
            complete_share=w.complete_share,
            findings=w.findings,
        )
        for w in weeks
    ]


def _finding_public(f: Finding) -> FindingPublic:
    return FindingPublic(
        rule=f.rule,
        lot=f.lot,
        material_lot=f.material_lot,
        why=f.why,
        reasons=[ReasonPublic(message=r.message, params=r.params) for r in f.reasons],
        day=f.day,
    )


def completeness_public(
    results: list[EnterpriseResult], since: date, until: date
) -> CompletenessPublic:
    """The district's completeness as the API gives it and the dashboard shows it."""
    return CompletenessPublic(
        since=since.isoformat(),
        until=until.isoformat(),
        trend=_weeks_public(weekly_trend(results, since, until)),
        enterprises=[
            EnterpriseCompletenessPublic(
                credit_code=r.credit_code,
                name=r.name,
                lots_total=len(r.lots),
                lots_complete=sum(x.complete for x in r.lots),
                complete_share=r.complete_share,
                production_days=r.production_days,
                days_with_records=r.days_with_records,
                daily_inspections=r.daily_inspections,
                days=r.days,
                findings=[_finding_public(x) for x in r.findings],
                lots=[
                    LotCompletenessPublic(
                        lot=x.lot,
                        product=x.product,
                        production_date=x.production_date,
                        complete=x.complete,
                        failed=x.failed,
                    )
                    for x in r.lots
                ],
                outside_links=[OutsideLinkPublic(**vars(o)) for o in r.outside],
                trend=_weeks_public(r.trend),
            )
            for r in results
        ],
    )
