"""The completeness query the handlers call (foodtrace.completeness_queries): the periods
they ask for, and the report the API and the dashboard both answer with."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from foodtrace.completeness import MAX_PERIOD_DAYS, period
from foodtrace.completeness_queries import asked_period, fitted_period

NOW = datetime(2026, 3, 31, 9, 0, tzinfo=timezone(timedelta(hours=8)))


def test_a_bound_not_given_is_the_last_thirty_days() -> None:
    since, until = period(NOW)
    assert asked_period(NOW, None, None) == (since, until)
    assert asked_period(NOW, date(2026, 1, 1), None) == (date(2026, 1, 1), until)
    assert asked_period(NOW, None, date(2026, 2, 1)) == (since, date(2026, 2, 1))
    # the API refuses a period the wrong way round (district_completeness): not swapped here
    assert asked_period(NOW, date(2026, 3, 1), date(2026, 2, 1)) == (
        date(2026, 3, 1),
        date(2026, 2, 1),
    )


def test_a_page_swaps_its_bounds_and_keeps_to_a_year_ending_at_the_last_day() -> None:
    assert fitted_period(NOW, date(2026, 3, 1), date(2026, 2, 1)) == (
        date(2026, 2, 1),
        date(2026, 3, 1),
    )
    since, until = fitted_period(NOW, date(2020, 1, 1), date(2026, 3, 1))
    assert until == date(2026, 3, 1)
    assert (until - since).days == MAX_PERIOD_DAYS - 1
    assert fitted_period(NOW, None, None) == period(NOW)
