"""Derived tables: the current view of each record, projected from ledger entries.

Every row is written in the same transaction as the entry it comes from and
can be recomputed from the ledger's canonical bytes alone; verification does
exactly that and compares. ``record_seq`` is the seq of the entry that created
the record, ``current_seq`` the seq of the entry its values come from now (the
record itself, or its latest correction). All rows carry ``enterprise_id``
(= the ledger id) so that the schema can be sharded by enterprise.
Decimals are kept as the decimal strings of the entry; dates as ISO strings.
"""

from __future__ import annotations

from sqlalchemy import Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel


class _Derived(SQLModel):
    enterprise_id: int = Field(primary_key=True)
    record_seq: int = Field(primary_key=True)
    current_seq: int


class Product(_Derived, table=True):
    __tablename__ = "products"
    __table_args__ = (UniqueConstraint("enterprise_id", "code"),)

    code: str = Field(max_length=64)
    name: str = Field(max_length=200)
    gtin: str | None = Field(default=None, max_length=14, index=True)
    unit: str = Field(max_length=20)
    shelf_life_days: int | None = None
    data: str = Field(sa_type=Text, description="the product record as canonical JSON")


class Supplier(_Derived, table=True):
    __tablename__ = "suppliers"
    __table_args__ = (UniqueConstraint("enterprise_id", "code"),)

    code: str = Field(max_length=64)
    name: str = Field(max_length=200)
    credit_code: str | None = Field(default=None, max_length=18, index=True)
    licence_no: str | None = Field(default=None, max_length=200)
    address: str = Field(max_length=200)
    contact: str = Field(max_length=200)
    inactive: bool | None = Field(default=None, description="true: not offered in forms")


class Customer(_Derived, table=True):
    __tablename__ = "customers"
    __table_args__ = (UniqueConstraint("enterprise_id", "code"),)

    code: str = Field(max_length=64)
    name: str = Field(max_length=200)
    credit_code: str | None = Field(default=None, max_length=18, index=True)
    address: str = Field(max_length=200)
    contact: str = Field(max_length=200)
    inactive: bool | None = Field(default=None, description="true: not offered in forms")


class MaterialLot(_Derived, table=True):
    """A received lot of material, created by an incoming-material check."""

    __tablename__ = "material_lots"
    __table_args__ = (
        UniqueConstraint("enterprise_id", "code"),
        Index("ix_material_lots_supplier_batch", "supplier_credit_code", "batch_no"),
    )

    code: str = Field(max_length=64)
    material_name: str = Field(max_length=200)
    material_type: str = Field(max_length=32)
    quantity: str = Field(max_length=32)
    unit: str = Field(max_length=20)
    batch_no: str | None = Field(default=None, max_length=64)
    production_date: str | None = Field(default=None, max_length=10)
    receipt_date: str = Field(max_length=10)
    supplier_seq: int
    supplier_credit_code: str | None = Field(default=None, max_length=18)
    accepted: bool


class Lot(_Derived, table=True):
    """A production lot."""

    __tablename__ = "lots"
    __table_args__ = (
        UniqueConstraint("enterprise_id", "code"),
        Index("ix_lots_gtin_code", "gtin", "code"),
    )

    code: str = Field(max_length=64)
    product_seq: int
    gtin: str | None = Field(default=None, max_length=14)
    production_date: str = Field(max_length=10)
    started_at: str = Field(max_length=32)
    ended_at: str = Field(max_length=32)
    quantity: str = Field(max_length=32)
    unit: str = Field(max_length=20)
    quantity_base: str = Field(sa_type=Text, description="quantity in the product's base unit")
    best_before: str | None = Field(default=None, max_length=10)


class LotInput(SQLModel, table=True):
    """A consumption edge: a production lot used a quantity of a material lot."""

    __tablename__ = "lot_inputs"
    __table_args__ = (Index("ix_lot_inputs_material", "enterprise_id", "material_lot_seq"),)

    enterprise_id: int = Field(primary_key=True)
    record_seq: int = Field(primary_key=True, description="the production lot's record_seq")
    line: int = Field(primary_key=True)
    current_seq: int
    material_lot_seq: int
    quantity: str = Field(max_length=32)
    unit: str = Field(max_length=20)


DEVIATION_PREDICATE = {"postgresql": "deviation IS true", "sqlite": "deviation IS 1"}
"""The partial index's predicate, as ``CcpReading.deviation.is_(True)`` renders on each
database: a planner uses a partial index only for a query that states its predicate."""


class CcpReading(_Derived, table=True):
    __tablename__ = "ccp_readings"
    __table_args__ = (
        Index("ix_ccp_readings_lot", "enterprise_id", "lot_seq"),
        # An enterprise's deviations in a time window (a case's CCP scope) without a scan
        # of every reading it took: only deviations are kept, so writes of the usual
        # in-limit reading cost nothing more (migration 0012; the predicate is the query's).
        Index(
            "ix_ccp_readings_deviation",
            "enterprise_id",
            "measured_at",
            postgresql_where=text(DEVIATION_PREDICATE["postgresql"]),
            sqlite_where=text(DEVIATION_PREDICATE["sqlite"]),
        ),
    )

    lot_seq: int
    ccp: str = Field(max_length=64)
    parameter: str = Field(max_length=64)
    value: str | None = Field(default=None, max_length=32)
    unit: str | None = Field(default=None, max_length=20)
    result: str | None = Field(default=None, max_length=8)
    measured_at: str = Field(max_length=32)
    deviation: bool
    corrective_action: str | None = Field(default=None, sa_type=Text)


class CorrectiveAction(_Derived, table=True):
    __tablename__ = "corrective_actions"
    __table_args__ = (Index("ix_corrective_actions_reading", "enterprise_id", "reading_seq"),)

    reading_seq: int
    taken_at: str = Field(max_length=32)


class ReleaseTest(_Derived, table=True):
    __tablename__ = "release_tests"
    __table_args__ = (Index("ix_release_tests_lot", "enterprise_id", "lot_seq"),)

    lot_seq: int
    tested_at: str = Field(max_length=32)
    conclusion: str = Field(max_length=8)
    report_no: str = Field(max_length=200)
    items: str = Field(sa_type=Text, description="JSON list of [item, passed]")


class Sale(_Derived, table=True):
    __tablename__ = "sales"
    __table_args__ = (Index("ix_sales_lot", "enterprise_id", "lot_seq"),)

    lot_seq: int
    quantity: str = Field(max_length=32)
    unit: str = Field(max_length=20)
    quantity_base: str = Field(sa_type=Text)
    sale_date: str = Field(max_length=10)
    customer_seq: int
    buyer_name: str = Field(max_length=200)
    buyer_credit_code: str | None = Field(default=None, max_length=18, index=True)
    released: bool = Field(description="a passing release test existed when it was recorded")


class SelfInspection(_Derived, table=True):
    __tablename__ = "self_inspections"

    period: str = Field(max_length=8)
    period_date: str = Field(max_length=10)
    problems_found: int


class Correction(_Derived, table=True):
    __tablename__ = "corrections"
    __table_args__ = (Index("ix_corrections_target", "enterprise_id", "corrects_seq"),)

    corrects_seq: int
    reason: str = Field(sa_type=Text)


class PublicDeclarationRow(_Derived, table=True):
    """A lot's public declaration entry (the consumer page proves the latest one)."""

    __tablename__ = "public_declarations"
    __table_args__ = (Index("ix_public_declarations_lot", "enterprise_id", "lot_seq"),)

    lot_seq: int
    conclusion: str | None = Field(
        default=None, max_length=8, description="of the declared release test; null: none"
    )
    facts_sha256: str = Field(
        max_length=64, description="hex SHA-256 of the declared facts' canonical bytes"
    )
