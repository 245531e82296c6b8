"""A case costs what it finds, not what the district holds (issue 22, item 10): its reads
go through indexes that lead to the rows it returns. bench/case_scale.py has the figures."""

from __future__ import annotations

from sqlalchemy import Engine

from foodtrace.cases.scope import deviations_between


def _plan(engine: Engine, statement: object) -> str:
    sql = str(statement.compile(engine, compile_kwargs={"literal_binds": True}))  # type: ignore[attr-defined]
    with engine.connect() as c:
        if engine.dialect.name == "sqlite":
            return " ".join(str(r[-1]) for r in c.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
        c.exec_driver_sql("SET enable_seqscan = off")  # an empty table's plan is any plan
        return " ".join(r[0] for r in c.exec_driver_sql("EXPLAIN " + sql))


def test_a_case_reads_an_enterprises_deviations_by_time_not_every_reading(
    engine: Engine,
) -> None:
    """The deviations during the sampled lot's production come from the partial index of
    deviations by (enterprise, time); before it, the read went through every CCP reading
    the enterprise ever took (ix_ccp_readings_lot, by enterprise only)."""
    plan = _plan(engine, deviations_between(1, "2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z"))
    assert "ix_ccp_readings_deviation" in plan, plan
