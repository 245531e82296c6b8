"""Errors the core raises; the web layer maps each to one HTTP status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FieldProblem:
    """One problem with one field of a record: where, what, and a machine-readable type."""

    loc: tuple[str | int, ...]
    msg: str
    type: str = "invalid"
    ctx: dict[str, Any] = field(default_factory=dict)
    """Values a translated message may name (allowed units, the plan's codes …)."""


class FoodtraceError(Exception):
    """Base of the errors the core raises on purpose."""


@dataclass
class RecordError(FoodtraceError):
    """A record is refused: nothing was written. Maps to 422."""

    problems: Sequence[FieldProblem] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(f"{'.'.join(map(str, p.loc)) or 'record'}: {p.msg}" for p in self.problems)

    @classmethod
    def at(
        cls,
        *loc: str | int,
        msg: str,
        type: str = "invalid",  # noqa: A002
        **ctx: Any,
    ) -> RecordError:
        return cls([FieldProblem(tuple(loc), msg, type, ctx)])


class NotFound(FoodtraceError):
    """The thing asked for does not exist (or is not visible to the asker). Maps to 404."""


class Conflict(FoodtraceError):
    """The request contradicts stored state (e.g. an idempotency key reused). Maps to 409."""


class AccessDenied(FoodtraceError):
    """The user may not do this. Maps to 403."""
