"""Every table, imported in one place so that Alembic sees the whole schema."""

from foodtrace.accounts.models import (
    ApiToken,
    Authority,
    Enterprise,
    Platform,
    User,
)
from foodtrace.attachments.models import Attachment
from foodtrace.cases.models import Case, CaseLot, CaseStep, RecallAction, RecalledLot, Referral
from foodtrace.ledger.models import Entry, IdempotencyKey, ImportKey, Ledger, SignedCheckpoint
from foodtrace.records.models import (
    CcpReading,
    Correction,
    CorrectiveAction,
    Customer,
    Lot,
    LotInput,
    MaterialLot,
    Product,
    PublicDeclarationRow,
    ReleaseTest,
    Sale,
    SelfInspection,
    Supplier,
)

__all__ = [
    "ApiToken",
    "Attachment",
    "Authority",
    "Case",
    "CaseLot",
    "CaseStep",
    "CcpReading",
    "Correction",
    "CorrectiveAction",
    "Customer",
    "Enterprise",
    "Entry",
    "IdempotencyKey",
    "ImportKey",
    "Ledger",
    "Lot",
    "LotInput",
    "MaterialLot",
    "Platform",
    "Product",
    "PublicDeclarationRow",
    "RecallAction",
    "RecalledLot",
    "Referral",
    "ReleaseTest",
    "Sale",
    "SelfInspection",
    "SignedCheckpoint",
    "Supplier",
    "User",
]
