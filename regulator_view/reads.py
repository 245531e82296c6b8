"""The log of regulator reads: one dependency that every regulator route reading enterprise
records takes, so that no such read leaves the enterprise's list of regulator reads empty.

The routes take it through their jurisdiction (``regulator_view.deps``): a handler tells it
what its answer read (``jurisdiction.read(ids, what)``); the dependency writes one line per
enterprise after the handler returns and before the answer is sent (``scope="function"``),
in a transaction of its own. A handler that fails after reading still has its reads logged:
the regulator saw, or could have seen, them. A route that also writes takes its jurisdiction
before ``WriteSessionDep``: dependencies close in the reverse order, so the request's own
transaction is over before the log's begins.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

from fastapi import Depends

from foodtrace.accounts.service import log_reads
from foodtrace.db import write_session
from web.deps import ClockDep, EngineDep


class _Reader(Protocol):
    """A regulator as the handlers know one: its authority and its principal."""

    @property
    def authority(self) -> Any: ...
    @property
    def principal(self) -> Any: ...


@dataclass
class RegulatorReads:
    """What one request read of enterprises' records, by whom; logged when the handler ends."""

    lines: list[tuple[int, str, set[int], str]] = field(default_factory=list)

    def read(self, regulator: _Reader, enterprise_ids: Iterable[int], what: str) -> None:
        """Note that ``regulator`` read these enterprises' records (``what``: the view)."""
        ids = set(enterprise_ids)
        if ids:
            self.lines.append((regulator.authority.id, regulator.principal.username, ids, what))

    def write(self, engine: Any, clock: Any) -> None:
        """Write the noted reads (each enterprise may see who looked, when, at what)."""
        if not self.lines:
            return
        with write_session(engine) as ws:
            for authority_id, username, ids, what in self.lines:
                log_reads(
                    session=ws,
                    enterprise_ids=ids,
                    authority_id=authority_id,
                    username=username,
                    what=what,
                    now=clock.now(),
                )
        self.lines.clear()


def regulator_reads(engine: EngineDep, clock: ClockDep) -> Iterator[RegulatorReads]:
    """The request's read log; its lines are written when the handler returns or fails."""
    reads = RegulatorReads()
    try:
        yield reads
    finally:
        reads.write(engine, clock)


RegulatorReadsDep = Annotated[RegulatorReads, Depends(regulator_reads, scope="function")]
"""Every regulator route that reads an enterprise's records takes this, through its
jurisdiction (``tests/test_regulator_reads.py`` walks the routes to keep it so)."""
