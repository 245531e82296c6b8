"""The records an enterprise keeps, as the API receives them (``*Create``).

Field lists follow the Food Safety Law of the PRC (DESIGN.md, "Records"): a
record without a statutory field is refused, naming the field. What a record
refers to (a product, a material lot, a lot) is given by the enterprise's own
code; the core checks that it exists and copies the statutory facts of the
referenced master data (supplier, buyer) into the entry, so that each entry
stands on its own as evidence.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from schemas.types import (
    Code,
    CreditCode,
    DecimalStr,
    DocumentNo,
    Gtin,
    Instant,
    LocalDate,
    Name,
    Note,
    Quantity,
    RegionCode,
    ScLicence,
    Sha256Hex,
    StoredCode,
    Unit,
    require_credit_check,
)

MAX_SEQ = 2**31 - 1
"""The largest seq a ledger can reach (INTEGER columns); also below 2^53 (RFC 8785)."""


class RecordKind(StrEnum):
    """The kinds of ledger entry. The value is the entry's ``kind`` field."""

    ENTERPRISE = "enterprise"
    PRODUCT = "product"
    SUPPLIER = "supplier"
    CUSTOMER = "customer"
    MATERIAL_CHECK = "material_check"
    PRODUCTION_LOT = "production_lot"
    CCP_RECORD = "ccp_record"
    CORRECTIVE_ACTION = "corrective_action"
    RELEASE_TEST = "release_test"
    SALE = "sale"
    SELF_INSPECTION = "self_inspection"
    CORRECTION = "correction"
    RECALL_ACTION = "recall_action"
    # Written by the platform itself, right after a release test (DESIGN.md, "QR codes
    # and the consumer page"); never posted by a user.
    PUBLIC_DECLARATION = "public_declaration"
    # The kinds below go into a supervising authority's own ledger (DESIGN.md,
    # "A failed sample and its case"), never into an enterprise's.
    FAILED_SAMPLE = "failed_sample"
    CASE_STEP = "case_step"
    PUBLIC_RECALL = "public_recall"
    REFERRAL = "referral"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    event_time: Instant | None = Field(
        default=None,
        description="When the event happened, if not the record's own time field; "
        "defaults to the time of recording.",
    )


def _check_credit(value: str | None, info: ValidationInfo) -> str | None:
    require_credit_check(value, bool(info.data.get("credit_code_confirmed")), "credit_code")
    return value


# ---------------------------------------------------------------- master data


class EnterpriseKind(StrEnum):
    MANUFACTURER = "manufacturer"  # 食品生产企业
    WORKSHOP = "workshop"  # 食品小作坊
    DISTRIBUTOR = "distributor"  # 食品经营者


class EnterpriseCreate(_Record):
    """An enterprise's registration: the first entry of its ledger."""

    credit_code_confirmed: bool = False
    credit_code: CreditCode
    name: Name
    kind: EnterpriseKind
    licence_no: ScLicence | None = Field(
        default=None, description="Food production licence (SC…); required for manufacturers."
    )
    workshop_registration_no: DocumentNo | None = Field(
        default=None, description="小作坊登记证 number, for workshops."
    )
    region_code: RegionCode
    address: Name
    contact: Name
    legal_representative: Name | None = None

    _credit = field_validator("credit_code")(_check_credit)

    @model_validator(mode="after")
    def _licence(self) -> EnterpriseCreate:
        if self.kind is EnterpriseKind.MANUFACTURER and self.licence_no is None:
            raise ValueError("licence_no: a food manufacturer needs its SC production licence")
        return self


class CcpParameter(BaseModel):
    """One monitored parameter of a CCP and its critical limits."""

    model_config = ConfigDict(extra="forbid")

    code: Code = Field(description="e.g. temperature, holding_time, seal")
    name: Name = Field(description="e.g. 杀菌温度")
    kind: Literal["numeric", "pass_fail"] = "numeric"
    unit: Unit | None = None
    min: DecimalStr | None = Field(default=None, description="Lower critical limit (inclusive)")
    max: DecimalStr | None = Field(default=None, description="Upper critical limit (inclusive)")
    frequency_minutes: int | None = Field(
        default=None, ge=1, le=1440, description="Monitoring interval; null = once per lot"
    )

    @model_validator(mode="after")
    def _limits(self) -> CcpParameter:
        if self.kind == "numeric":
            if self.unit is None:
                raise ValueError(f"{self.code}: a numeric parameter needs its unit")
            if self.min is None and self.max is None:
                raise ValueError(f"{self.code}: a numeric parameter needs a critical limit")
        elif self.min is not None or self.max is not None:
            raise ValueError(f"{self.code}: a pass/fail parameter has no numeric limits")
        return self


class CcpPoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Code = Field(description="e.g. CCP1")
    name: Name = Field(description="e.g. 巴氏杀菌")
    parameters: list[CcpParameter] = Field(min_length=1, max_length=20)

    @field_validator("parameters")
    @classmethod
    def _unique(cls, value: list[CcpParameter]) -> list[CcpParameter]:
        _no_duplicates([p.code for p in value], "parameter")
        return value


class ReleaseItem(BaseModel):
    """A release-test item the product requires, with its limit as the standard states it."""

    model_config = ConfigDict(extra="forbid")

    item: Name = Field(description="e.g. 菌落总数")
    limit: Name = Field(description="e.g. ≤100")
    unit: Unit | None = None
    method: Name | None = Field(default=None, description="e.g. GB 4789.2")


class Packaging(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit: Unit = Field(description="e.g. 箱")
    quantity: Quantity = Field(description='base units in one, e.g. "24"')


class ProductCreate(_Record):
    code: Code
    name: Name
    category: Name = Field(description="e.g. 饮料")
    standard: Name | None = Field(default=None, description="e.g. GB 7101")
    gtin: Gtin | None = None
    specification: Name = Field(description="e.g. 500 mL/瓶")
    unit: Unit = Field(description="Base unit of a lot's quantity, e.g. 瓶")
    packaging: list[Packaging] = Field(default_factory=list, max_length=10)
    shelf_life_days: int | None = Field(
        default=None, ge=1, le=3650, description="null when the product has no shelf life"
    )
    storage: Name | None = None
    ccp_plan: list[CcpPoint] = Field(default_factory=list, max_length=20)
    release_items: list[ReleaseItem] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _unique(self) -> ProductCreate:
        _no_duplicates([c.code for c in self.ccp_plan], "ccp_plan code")
        _no_duplicates([i.item for i in self.release_items], "release item")
        _no_duplicates([self.unit] + [p.unit for p in self.packaging], "unit")
        return self


class SupplierCreate(_Record):
    code: Code
    name: Name
    credit_code_confirmed: bool = False
    credit_code: CreditCode | None = Field(
        default=None, description="Required when the supplier is a registered enterprise."
    )
    licence_no: DocumentNo | None = Field(
        default=None, description="Production or business licence"
    )
    address: Name
    contact: Name
    inactive: bool | None = Field(
        default=None,
        description="true: no longer dealt with; forms stop offering it (set by a correction, "
        "a new version of the record); records that name it still show it",
    )

    _credit = field_validator("credit_code")(_check_credit)


class CustomerCreate(_Record):
    code: Code
    name: Name
    credit_code_confirmed: bool = False
    credit_code: CreditCode | None = Field(
        default=None, description="Required when the buyer is a registered enterprise."
    )
    address: Name
    contact: Name
    inactive: bool | None = Field(
        default=None,
        description="true: no longer dealt with; forms stop offering it (set by a correction, "
        "a new version of the record); records that name it still show it",
    )

    _credit = field_validator("credit_code")(_check_credit)


# ---------------------------------------------------------------- daily records


class MaterialType(StrEnum):
    RAW = "raw_material"  # 原料
    ADDITIVE = "food_additive"  # 食品添加剂
    RELATED = "food_related_product"  # 食品相关产品


class MaterialCheckCreate(_Record):
    """进货查验 (Art. 50). Creates a material lot."""

    material_lot: Code = Field(description="The enterprise's own code for the received lot")
    material_name: Name
    material_type: MaterialType
    specification: Name
    quantity: Quantity
    unit: Unit
    batch_no: Code | None = Field(default=None, description="The supplier's batch number")
    production_date: LocalDate | None = None
    shelf_life: Name = Field(description="e.g. 24个月, or the best-before date")
    receipt_date: LocalDate
    supplier_code: Code
    supplier_licence_checked: bool
    supplier_licence_no: DocumentNo | None = None
    certificate_no: DocumentNo = Field(
        description="Certificate of conformity or inspection report no."
    )
    accepted: bool = Field(description="Acceptance result")
    inspector: Name
    attachments: list[Sha256Hex] = Field(default_factory=list, max_length=20)
    notes: Note | None = None

    @model_validator(mode="after")
    def _date_or_batch(self) -> MaterialCheckCreate:
        if self.production_date is None and self.batch_no is None:
            raise ValueError("production_date or batch_no: give at least one (Art. 50)")
        if self.supplier_licence_checked and not self.supplier_licence_no:
            raise ValueError("supplier_licence_no: give the number of the licence you checked")
        return self


class MaterialUse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    material_lot: Code
    quantity: Quantity
    unit: Unit


class ProductionLotCreate(_Record):
    """生产批次 (Art. 46): the lot and the material lots it consumed."""

    product_code: Code
    lot_code: Code
    production_date: LocalDate
    started_at: Instant
    ended_at: Instant
    quantity: Quantity
    unit: Unit
    materials: list[MaterialUse] = Field(min_length=1, max_length=100)
    notes: Note | None = None

    @model_validator(mode="after")
    def _window(self) -> ProductionLotCreate:
        if self.ended_at < self.started_at:
            raise ValueError("ended_at: production cannot end before it started")
        _no_duplicates([m.material_lot for m in self.materials], "material lot")
        return self


class CcpRecordCreate(_Record):
    """关键控制点监控: one reading of one parameter of the product's CCP plan."""

    lot_code: Code
    ccp: Code
    parameter: Code
    value: DecimalStr | None = Field(default=None, description="Measured value, for numeric")
    unit: Unit | None = None
    result: Literal["pass", "fail"] | None = Field(default=None, description="For pass/fail")
    measured_at: Instant
    operator: Name
    corrective_action: Note | None = Field(
        default=None, description="What was done about a reading outside its limits"
    )

    @model_validator(mode="after")
    def _one_of(self) -> CcpRecordCreate:
        if (self.value is None) == (self.result is None):
            raise ValueError("value or result: give a measured value or a pass/fail result")
        if self.value is not None and self.unit is None:
            raise ValueError("unit: a measured value needs its unit")
        return self


class CorrectiveActionCreate(_Record):
    """Closes an open CCP deviation recorded earlier."""

    reading_seq: int = Field(
        ge=1, le=MAX_SEQ, description="Ledger seq of the out-of-limit CCP record"
    )
    action: Note = Field(min_length=1)
    taken_at: Instant
    operator: Name


class SamplingPlan(BaseModel):
    """n/c/m/M sampling plan for a microbiological item, with the n results."""

    model_config = ConfigDict(extra="forbid")

    n: int = Field(ge=1, le=50)
    c: int = Field(ge=0, le=50)
    m: DecimalStr
    M: DecimalStr | None = None
    results: list[DecimalStr]

    @model_validator(mode="after")
    def _n(self) -> SamplingPlan:
        if len(self.results) != self.n:
            raise ValueError(f"results: the plan has n={self.n} but {len(self.results)} results")
        if self.c > self.n:
            raise ValueError("c: cannot exceed n")
        return self


class TestResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item: Name
    result: Name = Field(description='The value as reported, e.g. "40" or "未检出"')
    unit: Unit | None = None
    limit: Name
    passed: bool
    sampling: SamplingPlan | None = None


class ReleaseTestCreate(_Record):
    """出厂检验 (Art. 51)."""

    lot_code: Code
    tested_at: Instant
    items: list[TestResult] = Field(min_length=1, max_length=50)
    conclusion: Literal["pass", "fail"]
    inspector: Name
    report_no: DocumentNo
    attachments: list[Sha256Hex] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _conclusion(self) -> ReleaseTestCreate:
        _no_duplicates([i.item for i in self.items], "test item")
        if self.conclusion == "pass" and not all(i.passed for i in self.items):
            failed = ", ".join(i.item for i in self.items if not i.passed)
            raise ValueError(f"conclusion: cannot be pass while items failed: {failed}")
        return self


class SaleCreate(_Record):
    """销售 (Art. 51). The buyer's statutory fields come from the customer record."""

    lot_code: Code
    quantity: Quantity
    unit: Unit
    sale_date: LocalDate
    customer_code: Code
    document_no: DocumentNo | None = Field(default=None, description="Delivery note or invoice no.")
    notes: Note | None = None


class CheckItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item: Name
    result: Literal["ok", "problem", "not_applicable"]
    note: Note | None = None


class SelfInspectionCreate(_Record):
    """企业自查: 日管控、周排查、月调度 (SAMR Order 60 of 2022)."""

    period: Literal["daily", "weekly", "monthly"]
    period_date: LocalDate = Field(description="The day, the week's Monday, or the month's 1st")
    items: list[CheckItem] = Field(min_length=1, max_length=100)
    problems: Note | None = None
    rectification: Note | None = None
    inspector: Name

    @model_validator(mode="after")
    def _rectified(self) -> SelfInspectionCreate:
        if any(i.result == "problem" for i in self.items) and not self.problems:
            raise ValueError("problems: describe the problems that the checklist found")
        return self


class CorrectionCreate(_Record):
    """更正: points at an earlier entry and gives the corrected record in full."""

    corrects: int = Field(ge=1, le=MAX_SEQ, description="Ledger seq of the entry being corrected")
    reason: Note = Field(min_length=1)
    record: dict[str, Any] = Field(description="The corrected record, as it would be created")

    @field_validator("record")
    @classmethod
    def _shallow(cls, value: dict[str, Any]) -> dict[str, Any]:
        def depth(v: Any, d: int = 0) -> int:
            if d > 8:
                return d
            if isinstance(v, dict):
                return max((depth(x, d + 1) for x in v.values()), default=d + 1)
            if isinstance(v, list):
                return max((depth(x, d + 1) for x in v), default=d + 1)
            return d

        if depth(value) > 8:
            raise ValueError("the record is nested too deeply to be a record")
        return value


# ------------------------------------------------------- cases and recalls


CASE_ID_PATTERN = r"^[0-9A-HJ-NPQRTUWXY]{18}-[1-9][0-9]{0,9}$"
"""A case is named by its authority's credit code and the seq of its failed-sample entry."""


class CaseState(StrEnum):
    """不合格后处理: the states a case moves through, each an entry in the authority's ledger."""

    OPENED = "opened"  # 已立案
    NOTIFIED = "notified"  # 已通知企业
    RECALL_UNDERWAY = "recall_underway"  # 召回进行中
    RECALL_RECORDED = "recall_recorded"  # 召回已记录
    VERIFIED = "verified"  # 已核查
    CLOSED = "closed"  # 已结案


CASE_TRANSITIONS: dict[CaseState, frozenset[CaseState]] = {
    CaseState.OPENED: frozenset({CaseState.NOTIFIED, CaseState.CLOSED}),
    CaseState.NOTIFIED: frozenset({CaseState.RECALL_UNDERWAY}),
    CaseState.RECALL_UNDERWAY: frozenset({CaseState.RECALL_RECORDED}),
    # The regulator may send an incomplete recall back before verifying it.
    CaseState.RECALL_RECORDED: frozenset({CaseState.VERIFIED, CaseState.RECALL_UNDERWAY}),
    CaseState.VERIFIED: frozenset({CaseState.CLOSED}),
    CaseState.CLOSED: frozenset(),
}
"""Which state may follow which. Closing straight from opened is for a sample overturned on
re-test (复检); it needs a note saying so."""


class FailedSampleCreate(_Record):
    """抽检不合格: an official sample of a lot failed; the regulator opens a case."""

    credit_code: CreditCode = Field(description="The enterprise whose lot was sampled")
    lot_code: StoredCode
    product: Name | None = Field(default=None, description="As on the report; default: the lot's")
    test_item: Name = Field(description="e.g. 菌落总数")
    result: Name = Field(description='As reported, e.g. "3.2×10⁴" or "检出"')
    limit: Name = Field(description='e.g. "≤1×10⁴"')
    unit: Unit | None = None
    sampling_date: LocalDate
    report_no: DocumentNo
    suspect_materials: list[StoredCode] | None = Field(
        default=None,
        max_length=100,
        description="The lot's material lots under suspicion; default: every one it consumed. "
        "An empty list suspects the process only.",
    )
    note: Note | None = None

    @field_validator("credit_code", mode="after")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()


class CaseStepCreate(_Record):
    """A case moves to its next state."""

    case_seq: int = Field(ge=1, le=MAX_SEQ)
    state: CaseState
    note: Note | None = None
    by: dict[str, str] = Field(
        default_factory=dict, description="Who moved it: role and, for an enterprise, its code"
    )


class RecalledLot(BaseModel):
    model_config = ConfigDict(extra="forbid")

    credit_code: CreditCode
    enterprise: Name
    lot_code: StoredCode
    product: Name
    gtin: Gtin | None = None
    why: Literal["sampled", "downstream", "ccp_deviation", "source", "shared_material"] | None = (
        Field(default=None, description="Why the lot is recalled (the case's scope reason)")
    )
    via: Name | None = Field(
        default=None,
        description="What brings it in: the sampled lot it was made from, the shared material "
        "lot, the deviation",
    )


class PublicRecallCreate(_Record):
    """The public recall notice: exactly what a consumer may see of a case."""

    case_seq: int = Field(ge=1, le=MAX_SEQ)
    reason: Note = Field(min_length=1)
    lots: list[RecalledLot] = Field(min_length=1, max_length=10_000)


class ReferredEnterprise(BaseModel):
    model_config = ConfigDict(extra="forbid")

    credit_code: CreditCode
    name: Name
    region_code: RegionCode
    relation: Literal["supplier", "customer"]
    via: Name = Field(description="The lot or material lot that leads there")


class ReferralCreate(_Record):
    """协查: part of a case's scope lies in another authority's jurisdiction."""

    case_seq: int = Field(ge=1, le=MAX_SEQ)
    to_authority: CreditCode | None = Field(
        default=None, description="Null when no authority on the platform covers the region"
    )
    to_name: Name | None = None
    enterprises: list[ReferredEnterprise] = Field(min_length=1, max_length=1000)
    note: Note | None = None


OPEN_ITEM_REASONS = (
    "customer_closed",
    "unreachable",
    "reported_to_bureau",
    "retest_cleared",
    "other",
)
"""Why an item of a recall stays open when the recall is declared complete."""


class RecallOpenItem(BaseModel):
    """An item of the enterprise's recall left open at completion, and why: a customer not
    notified (``customer_code``) or a lot whose held quantity has no disposal (``lot_code``)."""

    model_config = ConfigDict(extra="forbid")

    customer_code: Code | None = None
    lot_code: Code | None = None
    reason: Literal[
        "customer_closed", "unreachable", "reported_to_bureau", "retest_cleared", "other"
    ]
    note: Note | None = None

    @model_validator(mode="after")
    def _one(self) -> RecallOpenItem:
        if (self.customer_code is None) == (self.lot_code is None):
            raise ValueError("an open item names a customer_code or a lot_code, one of them")
        if self.reason == "other" and not self.note:
            raise ValueError("note: say why when the reason is other")
        return self


class RecallActionCreate(_Record):
    """召回 (Art. 63): what the enterprise did for a case: notified a customer, recovered a
    quantity, disposed of it, or declared its recall complete."""

    case: str = Field(pattern=CASE_ID_PATTERN, description="The case id, e.g. 11…X-3")
    action: Literal["notification", "recovery", "disposal", "completed"]
    at: Instant
    lot_code: Code | None = None
    customer_code: Code | None = None
    quantity: Quantity | None = None
    unit: Unit | None = None
    method: Name | None = Field(default=None, description="How it was disposed of, e.g. 销毁")
    note: Note | None = None
    open_items: list[RecallOpenItem] | None = Field(
        default=None,
        max_length=1000,
        description="With `completed`: each customer not notified and each lot whose held "
        "quantity has no disposal, with the reason it stays open (a completion is refused "
        "while an item is open without one)",
    )

    @model_validator(mode="after")
    def _fields(self) -> RecallActionCreate:
        needs = {
            "notification": ("customer_code",),
            "recovery": ("lot_code", "customer_code", "quantity", "unit"),
            "disposal": ("lot_code", "quantity", "unit", "method"),
            "completed": (),
        }[self.action]
        for name in needs:
            if getattr(self, name) is None:
                raise ValueError(f"{name}: a {self.action} needs its {name}")
        if (self.quantity is None) != (self.unit is None):
            raise ValueError("unit: a quantity needs its unit")
        if self.open_items is not None and self.action != "completed":
            raise ValueError("open_items: only a completion lists the items left open")
        return self


# ------------------------------------------------------- the public declaration


class DeclaredTestItem(BaseModel):
    """A release-test item as the public sees it (no sampling plan, no inspector)."""

    model_config = ConfigDict(extra="forbid")

    item: Name
    result: Name
    unit: Unit | None = None
    limit: Name
    passed: bool


class DeclaredReleaseTest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conclusion: Literal["pass", "fail"]
    items: list[DeclaredTestItem] = Field(min_length=1, max_length=50)


class DeclaredProducer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    credit_code: CreditCode
    licence_no: Name | None = None
    address: Name


class DeclaredIngredient(BaseModel):
    """A main ingredient (a raw material, 原料) and the name of its supplier."""

    model_config = ConfigDict(extra="forbid")

    material: Name
    supplier: Name


class PublicDeclaration(_Record):
    """公开声明: exactly the consumer-facing facts of a released lot, for anyone to verify.

    The platform appends it to the enterprise's ledger in the transaction of the
    release test that releases the lot (and again whenever a later test or a
    correction changes those facts, naming the declaration it supersedes). It
    holds no customer, quantity, price, user or internal note: it is the only
    entry of an enterprise's ledger ever proven to the public.
    """

    lot_code: StoredCode
    gtin: Gtin | None = None
    product: Name
    specification: Name
    standard: Name | None = None
    producer: DeclaredProducer
    production_date: LocalDate
    best_before: LocalDate | None = None
    release_test: DeclaredReleaseTest | None = Field(
        default=None, description="The lot's latest release test; absent when none is recorded"
    )
    main_ingredients: list[DeclaredIngredient] = Field(default_factory=list, max_length=100)
    supersedes: int | None = Field(
        default=None, ge=1, le=MAX_SEQ, description="The lot's previous declaration, if any"
    )


SYSTEM_KINDS = frozenset({RecordKind.PUBLIC_DECLARATION})
"""Kinds the platform writes itself: refused from users, never corrected."""

PUBLIC_KINDS = frozenset({RecordKind.PUBLIC_DECLARATION, RecordKind.PUBLIC_RECALL})
"""The only kinds of entry ever proven to the public (DESIGN.md)."""


AUTHORITY_KINDS = frozenset(
    {
        RecordKind.FAILED_SAMPLE,
        RecordKind.CASE_STEP,
        RecordKind.PUBLIC_RECALL,
        RecordKind.REFERRAL,
    }
)
"""Kinds that only an authority's ledger holds."""


RECORD_SCHEMAS: dict[RecordKind, type[_Record]] = {
    RecordKind.ENTERPRISE: EnterpriseCreate,
    RecordKind.PRODUCT: ProductCreate,
    RecordKind.SUPPLIER: SupplierCreate,
    RecordKind.CUSTOMER: CustomerCreate,
    RecordKind.MATERIAL_CHECK: MaterialCheckCreate,
    RecordKind.PRODUCTION_LOT: ProductionLotCreate,
    RecordKind.CCP_RECORD: CcpRecordCreate,
    RecordKind.CORRECTIVE_ACTION: CorrectiveActionCreate,
    RecordKind.RELEASE_TEST: ReleaseTestCreate,
    RecordKind.SALE: SaleCreate,
    RecordKind.SELF_INSPECTION: SelfInspectionCreate,
    RecordKind.CORRECTION: CorrectionCreate,
    RecordKind.RECALL_ACTION: RecallActionCreate,
    RecordKind.FAILED_SAMPLE: FailedSampleCreate,
    RecordKind.CASE_STEP: CaseStepCreate,
    RecordKind.PUBLIC_RECALL: PublicRecallCreate,
    RecordKind.REFERRAL: ReferralCreate,
    RecordKind.PUBLIC_DECLARATION: PublicDeclaration,
}

RecordCreate = Annotated[_Record, Field(description="Any record")]


def _no_duplicates(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for v in values:
        if v in seen:
            raise ValueError(f"{what} {v!r} appears twice")
        seen.add(v)
