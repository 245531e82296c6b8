"""Derived tables of cases. Like every derived table they are rebuilt from ledger entries.

``cases``, ``case_lots``, ``case_steps``, ``recalled_lots`` and ``referrals`` come
from an authority's ledger (owner column ``ledger_id``); ``recall_actions`` from
an enterprise's (owner column ``enterprise_id``).
"""

from __future__ import annotations

from sqlalchemy import Text
from sqlmodel import Field, SQLModel


class _AuthorityDerived(SQLModel):
    ledger_id: int = Field(primary_key=True)
    record_seq: int = Field(primary_key=True)
    current_seq: int


class Case(_AuthorityDerived, table=True):
    """A case, numbered by its failed-sample entry; ``state`` follows its steps."""

    __tablename__ = "cases"

    credit_code: str = Field(max_length=18, index=True)
    enterprise: str = Field(max_length=200)
    lot_code: str = Field(max_length=64)
    product: str = Field(max_length=200)
    test_item: str = Field(max_length=200)
    result: str = Field(max_length=200)
    limit: str = Field(max_length=200)
    report_no: str = Field(max_length=200)
    sampling_date: str = Field(max_length=10)
    state: str = Field(max_length=20)
    opened_at: str = Field(max_length=32)


class CaseLot(SQLModel, table=True):
    """A lot in a case's recall scope as computed when the case was opened."""

    __tablename__ = "case_lots"

    ledger_id: int = Field(primary_key=True)
    record_seq: int = Field(primary_key=True, description="the case")
    line: int = Field(primary_key=True)
    current_seq: int
    credit_code: str = Field(max_length=18, index=True)
    lot_code: str = Field(max_length=64)
    reason: str = Field(max_length=32)


class CaseStep(_AuthorityDerived, table=True):
    __tablename__ = "case_steps"

    case_seq: int = Field(index=True)
    state: str = Field(max_length=20)
    note: str | None = Field(default=None, sa_type=Text)
    by_role: str = Field(max_length=16)
    by_code: str | None = Field(default=None, max_length=18)


class RecalledLot(SQLModel, table=True):
    """A lot named by a public recall notice: the consumer page shows the recall."""

    __tablename__ = "recalled_lots"

    ledger_id: int = Field(primary_key=True)
    record_seq: int = Field(primary_key=True, description="the public recall entry")
    line: int = Field(primary_key=True)
    current_seq: int
    case_seq: int
    credit_code: str = Field(max_length=18, index=True)
    lot_code: str = Field(max_length=64)
    gtin: str | None = Field(default=None, max_length=14, index=True)


class Referral(_AuthorityDerived, table=True):
    """协查: a case's scope reaches into another authority's jurisdiction."""

    __tablename__ = "referrals"

    case_seq: int = Field(index=True)
    to_authority: str | None = Field(default=None, max_length=18, index=True)
    region_codes: str = Field(max_length=1000)
    data: str = Field(sa_type=Text, description="the referred enterprises, canonical JSON")


class RecallAction(SQLModel, table=True):
    """What an enterprise did for a case (in its own ledger)."""

    __tablename__ = "recall_actions"

    enterprise_id: int = Field(primary_key=True)
    record_seq: int = Field(primary_key=True)
    current_seq: int
    case_ref: str = Field(max_length=40, index=True)
    action: str = Field(max_length=16)
    lot_seq: int | None = None
    customer_seq: int | None = None
    quantity: str | None = Field(default=None, max_length=32)
    unit: str | None = Field(default=None, max_length=20)
    quantity_base: str | None = Field(default=None, sa_type=Text)
    at: str = Field(max_length=32)
