"""Errors the core raises; the web layer maps each to one HTTP status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class FieldProblem:
    """One problem with one field of a record: where, what, and a machine-readable type."""

    loc: tuple[str | int, ...]
    msg: str
    type: str = "invalid"


class FoodtraceError(Exception):
    """Base of the errors the core raises on purpose."""


@dataclass
class RecordError(FoodtraceError):
    """A record is refused: nothing was written. Maps to 422."""

    problems: Sequence[FieldProblem] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(f"{'.'.join(map(str, p.loc)) or 'record'}: {p.msg}" for p in self.problems)

    @classmethod
    def at(cls, *loc: str | int, msg: str, type: str = "invalid") -> RecordError:  # noqa: A002
        return cls([FieldProblem(tuple(loc), msg, type)])


class NotFound(FoodtraceError):
    """The thing asked for does not exist (or is not visible to the asker). Maps to 404."""


class Conflict(FoodtraceError):
    """The request contradicts stored state (e.g. an idempotency key reused). Maps to 409."""


class AccessDenied(FoodtraceError):
    """The user may not do this. Maps to 403."""
