"""What a record kind is: one frozen :class:`KindSpec` per kind, read by every layer.

A kind's module (``records/kinds/<kind>.py``) holds its projector, its import
columns and its preparation, and ends with its ``SPEC``; ``records/kinds/__init__.py``
lists the specs in one explicit registry. The projection, verification, imports,
the enterprise API's routes, the pages' labels and forms, the timeline and the
obligations read the registry; ``tests/test_kinds.py`` fails when a kind is
incomplete anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from sqlalchemy import Table

if TYPE_CHECKING:
    from foodtrace.records.derive import Ctx
    from foodtrace.records.kinds.columns import ImportSpec


def N_(message: str) -> str:
    """Mark a message id for the translation catalogue (scripts/i18n.py); the pages translate
    it when they show it."""
    return message


class Owner(StrEnum):
    """Whose ledger holds a kind's entries."""

    ENTERPRISE = "enterprise"
    AUTHORITY = "authority"


Projector = Callable[["Ctx", dict[str, Any]], None]
"""Writes the derived rows of one entry's body (or refuses it with a RecordError)."""


@dataclass(frozen=True)
class Snapshot:
    """Master data copied into the entry's body when it is prepared, so that the entry is
    evidence on its own (Art. 50 and 51: the supplier's and the buyer's name, address and
    contact on the check and on the sale)."""

    into: str
    """The body field that receives the copy, e.g. ``supplier``."""
    table: str
    """The master-data table, e.g. ``suppliers``."""
    code_field: str
    """The record's field naming the master row by its code, e.g. ``supplier_code``."""
    what: str
    """How an error names it: ``supplier 'X' does not exist``."""
    keys: tuple[str, ...]
    """The columns copied (those that are not empty)."""


@dataclass(frozen=True)
class KindSpec:
    """Everything the layers below the pages know of one record kind."""

    kind: str
    """The entry's ``kind`` field, e.g. ``material_check``."""
    schema: type[BaseModel]
    """The record's schema (what a user posts; also the API's request body)."""
    owner: Owner
    tables: tuple[Table, ...]
    """The derived tables its entries write rows into, its own first (verification compares
    them, the tamper tests edit them)."""
    project: Projector | None
    """None for a correction, which applies its target kind's projector."""
    label: str
    """The message id of its name, e.g. ``Incoming material check``."""
    summary: str = ""
    """The message id of the one line the record index page shows under the name."""
    natural_time: str | None = None
    """The body field that is the entry's event time, when the record has one."""
    snapshot: Snapshot | None = None
    imports: ImportSpec | None = None
    """Its spreadsheet (None: not importable)."""
    api_path: str | None = None
    """The enterprise API's POST path below /api/v1, e.g. ``/sales`` (None: not posted there);
    also names its import (``/api/v1/imports/sales``)."""
    api_summary: str = ""
    system: bool = False
    """Written by the platform itself (a public declaration): refused from users."""
    public: bool = False
    """Proven to the public (the consumer page)."""
    declares: bool = False
    """An entry of this kind may change a lot's public declaration."""
    lot_view: str | None = None
    """The field of a lot's view (``schemas.api.LotPublic``) that holds this kind's rows of
    the lot; the lot page's timeline shows each of them."""
    form: bool = True
    """Users enter it on a page of the enterprise portal (the portal must have its form)."""

    def __post_init__(self) -> None:
        if self.owner is Owner.AUTHORITY and (self.api_path or self.imports):
            raise ValueError(f"{self.kind}: an authority's kind has no enterprise API or import")
        if self.system and (self.api_path or self.imports or self.form):
            raise ValueError(f"{self.kind}: the platform writes it; users do not")
