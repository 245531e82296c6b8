"""Bounded types for the integers, dates and instants of URLs (path and query parameters).

Every route declares its integer, date and date-time parameters with these, so an
out-of-range value is refused where it enters (422, naming the parameter) and never
reaches a query or a date computation (a 500 before: ``/ledger/2147483648`` overflowed
PostgreSQL's ``integer``, ``?until=0001-01-01T00:00:00+14:00`` fell before year 1 once in
UTC, ``?since=9999-12-31`` overflowed the next day).

- Integers (seqs, offsets, tree sizes, page numbers) lie within PostgreSQL's ``integer``
  (``MAX_INT``, every such column is one), and at least 0 or 1.
- Dates and instants lie between ``EARLIEST`` and ``LATEST``: a year inside the calendar
  Python and both databases can hold, so every neighbour the code computes (the next
  day, a year's report window, a ±14 h offset turned into UTC) stays representable.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from annotated_types import Ge, Le
from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError

from schemas.records import MAX_SEQ

MAX_INT = MAX_SEQ
"""PostgreSQL's ``integer``: 2**31 - 1."""
EARLIEST = date(2, 1, 1)
LATEST = date(9998, 12, 31)


def _in_calendar(value: Any) -> Any:
    if value is None:
        return None
    day = value.date() if isinstance(value, datetime) else value
    if not EARLIEST <= day <= LATEST:
        raise PydanticCustomError(
            "date_out_of_range",
            "must lie between {earliest} and {latest}",
            {"earliest": EARLIEST.isoformat(), "latest": LATEST.isoformat()},
        )
    return value


def _blank_is_none(value: Any) -> Any:
    """An empty form field (``?since=``) means "not given", as the pages' forms send it."""
    return None if value == "" else value


Count = Annotated[int, Ge(0), Le(MAX_INT)]
"""An offset, a tree size, a page number: 0 … 2**31 - 1."""
Seq = Annotated[int, Ge(1), Le(MAX_INT)]
"""A ledger seq or a row id: 1 … 2**31 - 1."""
CalendarDate = Annotated[date, AfterValidator(_in_calendar)]
"""A calendar date between EARLIEST and LATEST."""
Instant = Annotated[datetime, AfterValidator(_in_calendar)]
"""An instant (RFC 3339) whose date lies between EARLIEST and LATEST."""

FormCount = Annotated[Count | None, BeforeValidator(_blank_is_none)]
"""A page's count (``?page=``): empty means not given."""
FormDate = Annotated[CalendarDate | None, BeforeValidator(_blank_is_none)]
"""A page's date (``?since=``): empty means not given."""

__all__ = [
    "EARLIEST",
    "LATEST",
    "MAX_INT",
    "CalendarDate",
    "Count",
    "FormCount",
    "FormDate",
    "Instant",
    "Seq",
]
