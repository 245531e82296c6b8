"""The registry of record kinds: one explicit list, in the order the derived tables are
declared (verification compares them in this order). See ``records/kinds/base.py``."""

from __future__ import annotations

from foodtrace.records.kinds import (
    case_step,
    ccp_record,
    correction,
    corrective_action,
    customer,
    enterprise,
    failed_sample,
    material_check,
    product,
    production_lot,
    public_declaration,
    public_recall,
    recall_action,
    referral,
    release_test,
    sale,
    self_inspection,
    supplier,
)
from foodtrace.records.kinds.base import KindSpec, Owner

REGISTRY: tuple[KindSpec, ...] = (
    enterprise.SPEC,
    product.SPEC,
    supplier.SPEC,
    customer.SPEC,
    material_check.SPEC,
    production_lot.SPEC,
    ccp_record.SPEC,
    corrective_action.SPEC,
    release_test.SPEC,
    sale.SPEC,
    self_inspection.SPEC,
    correction.SPEC,
    recall_action.SPEC,
    public_declaration.SPEC,
    failed_sample.SPEC,
    case_step.SPEC,
    public_recall.SPEC,
    referral.SPEC,
)

BY_KIND: dict[str, KindSpec] = {k.kind: k for k in REGISTRY}


def spec(kind: str) -> KindSpec:
    """The spec of ``kind``; KeyError if there is none."""
    return BY_KIND[kind]


__all__ = ["BY_KIND", "REGISTRY", "KindSpec", "Owner", "spec"]
