"""The projectors' toolkit: what a kind's projector (``records/kinds/<kind>.py``) reads
and writes through, and the helpers they share.

A projector gets a :class:`Ctx` (the :class:`Store`, the seqs the rows carry, the
warnings it may add) and an entry's body; it refuses the record with a RecordError
or puts its rows. The stores themselves live in ``records.projection``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, Protocol

from foodtrace.canonical import dumps as canonical_dumps
from foodtrace.errors import FieldProblem, RecordError

Row = dict[str, Any]


class Store(Protocol):
    """Where derived rows live: the database, or memory during verification."""

    enterprise_id: int

    def find(self, table: str, **where: Any) -> list[Row]:
        """This enterprise's rows of ``table`` whose columns equal ``where``."""
        ...

    def total(self, table: str, column: str, **where: Any) -> Decimal:
        """The sum of ``column`` (decimal text) over the rows ``find(table, **where)`` gives."""
        ...

    def put(self, table: str, row: Row, *, replace: bool) -> None:
        """Insert ``row``; with ``replace``, overwrite the row with the same primary key."""
        ...

    def delete(self, table: str, **where: Any) -> None: ...

    def entry_kind(self, seq: int) -> str | None:
        """The kind of entry ``seq`` of this ledger, or None if there is none."""
        ...

    def entry_body(self, seq: int) -> Row | None:
        """The body of entry ``seq`` (a release test or a correction), or None."""
        ...

    def has_attachment(self, sha256: str) -> bool: ...


def amount(value: Any) -> Decimal:
    return Decimal(0) if value is None else dec(value)


def total_of(rows: Iterable[Row], column: str) -> Decimal:
    return sum((amount(r[column]) for r in rows), Decimal(0))


def dec(value: str) -> Decimal:
    return Decimal(value)


def dec_str(value: Decimal) -> str:
    """A decimal as a plain string without exponent or trailing zeros: 2000, 0.5."""
    text = format(value.normalize(), "f")
    return text


def canonical_json(value: Any) -> str:
    return canonical_dumps(value).decode("utf-8")


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class Applied:
    """What applying one entry found worth telling the user (the entry was still written)."""

    warnings: list[FieldProblem] = field(default_factory=list)

    def warn(self, *loc: str | int, msg: str, type: str, **ctx: Any) -> None:  # noqa: A002
        self.warnings.append(FieldProblem(tuple(loc), msg, type, ctx))


@dataclass
class Ctx:
    store: Store
    record_seq: int
    current_seq: int
    out: Applied

    @property
    def replace(self) -> bool:
        return self.record_seq != self.current_seq

    def base(self) -> Row:
        return {
            "enterprise_id": self.store.enterprise_id,
            "record_seq": self.record_seq,
            "current_seq": self.current_seq,
        }

    def put(self, table: str, row: Row) -> None:
        self.store.put(table, {**self.base(), **row}, replace=self.replace)

    def one(self, table: str, loc: tuple[str | int, ...], what: str, **where: Any) -> Row:
        rows = self.store.find(table, **where)
        if not rows:
            value = next(iter(where.values()))
            raise RecordError.at(
                *loc, msg=f"{what} {value!r} does not exist", type="not_found", value=value
            )
        return rows[0]

    def unique(self, table: str, loc: tuple[str | int, ...], what: str, **where: Any) -> None:
        for row in self.store.find(table, **where):
            if row["record_seq"] != self.record_seq:
                value = next(iter(where.values()))
                raise RecordError.at(
                    *loc,
                    msg=f"{what} {value!r} already exists (entry {row['record_seq']}); "
                    "to change it, record a correction",
                    type="duplicate",
                    value=value,
                    seq=row["record_seq"],
                )

    def attachments(self, body: Row) -> None:
        for i, sha in enumerate(body.get("attachments", [])):
            if not self.store.has_attachment(sha):
                raise RecordError.at(
                    "attachments", i, msg=f"no attachment {sha} was uploaded", type="not_found"
                )


def unit_factor(product: Row, unit: str, loc: tuple[str | int, ...]) -> Decimal:
    """How many base units one ``unit`` is, from the product's declared packaging only."""
    data = product_data(product)
    if unit == data["unit"]:
        return Decimal(1)
    for pack in data.get("packaging", []):
        if pack["unit"] == unit:
            return dec(pack["quantity"])
    allowed = " / ".join([data["unit"], *(p["unit"] for p in data.get("packaging", []))])
    raise RecordError.at(
        *loc,
        msg=f"product {data['code']!r} is counted in {allowed}; {unit!r} is not one of its "
        "declared units (units never change silently)",
        type="unit_mismatch",
        allowed=allowed,
    )


def product_data(product: Row) -> Row:
    """The product's record, parsed from its row's ``data`` (read-only: it is shared)."""
    return _parse_product(product["data"])


@lru_cache(maxsize=1024)
def _parse_product(data: str) -> Row:
    # A CCP reading, a release test and a sale each read their product's plan: parse once.
    return json.loads(data)


def product_of(ctx: Ctx, lot: Row) -> Row:
    return ctx.store.find("products", record_seq=lot["product_seq"])[0]


def party(table: str, what: str) -> Callable[[Ctx, Row], None]:
    def apply(ctx: Ctx, b: Row) -> None:
        ctx.unique(table, ("code",), what, code=b["code"])
        row = {k: b.get(k) for k in ("code", "name", "credit_code", "address", "contact")}
        if table == "suppliers":
            row["licence_no"] = b.get("licence_no")
        row["inactive"] = True if b.get("inactive") else None  # NULL: active (migration 0013)
        ctx.put(table, row)

    return apply


def authority_row(ctx: Ctx, **row: Any) -> Row:
    return {
        "ledger_id": ctx.store.enterprise_id,
        "record_seq": ctx.record_seq,
        "current_seq": ctx.current_seq,
        **row,
    }


def case_row(ctx: Ctx, seq: int) -> Row:
    return ctx.one("cases", ("case_seq",), "case", record_seq=seq)
