"""The clock the core is given (DESIGN.md: ``recorded_at`` comes from an injected clock).

Production uses :class:`SystemClock`; the demo and the tests use
:class:`SimulatedClock`, so that a month of records can be written in seconds
with times that look like a real month.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

CST = ZoneInfo("Asia/Shanghai")
"""China Standard Time: the zone instants are shown in, and local dates belong to."""


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class SimulatedClock:
    """A clock that stands still until moved; thread-safe."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, instant: datetime) -> None:
        with self._lock:
            self._now = instant.astimezone(UTC)

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now


def local_date(instant: datetime) -> date:
    """The China Standard Time calendar date of an instant."""
    return instant.astimezone(CST).date()
