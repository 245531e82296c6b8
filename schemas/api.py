"""Shapes of API responses (``*Public``) and of the few API-only requests."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from schemas.types import Code, Instant, Name, Note


class ProblemPublic(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class RecordedPublic(BaseModel):
    """A record as appended: its ledger entry, and warnings the user should see."""

    seq: int
    kind: str
    hash: str = Field(description="hex SHA-256(0x00 || canonical bytes)")
    prev_hash: str
    recorded_at: str
    event_time: str
    body: dict[str, Any]
    warnings: list[ProblemPublic] = []
    replayed: bool = Field(
        False, description="true when an idempotent retry returned the first result"
    )
    followed_by: list[int] = Field(
        default_factory=list,
        description="seqs of the entries the platform appended right after this one, in the "
        "same transaction: the lot's public declaration when a release test releases it",
    )


class EntryPublic(BaseModel):
    seq: int
    kind: str
    event_time: str
    recorded_at: str
    actor: str
    hash: str
    prev_hash: str
    corrects: int | None = None
    corrected_by: list[int] = []
    body: dict[str, Any] | None = None


class EntriesPublic(BaseModel):
    data: list[EntryPublic]
    count: int
    next: int | None = Field(
        default=None,
        description="The cursor of the next page: pass it as `before`; null on the last page",
    )


class VerifyProblemPublic(BaseModel):
    seq: int | None
    check: str
    message: str


class VerifyPublic(BaseModel):
    credit_code: str
    ok: bool
    size: int
    entries_checked: int
    first_bad_seq: int | None
    problems: list[VerifyProblemPublic]


class TokenPublic(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class EnterprisePublic(BaseModel):
    credit_code: str
    name: str
    kind: str
    region_code: str
    licence_no: str | None
    address: str
    contact: str
    ledger_size: int


class EnterprisesPublic(BaseModel):
    data: list[EnterprisePublic]
    count: int


class AuthorityCreate(BaseModel):
    credit_code: Name
    name: Name
    region_codes: list[Name] = Field(min_length=1, max_length=50)


class AuthorityPublic(BaseModel):
    credit_code: str
    name: str
    region_codes: list[str]


class UserCreate(BaseModel):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    password: str = Field(min_length=8, max_length=256)
    role: Name
    display_name: Name | None = None
    enterprise_credit_code: Name | None = None
    authority_credit_code: Name | None = None


class UserPublic(BaseModel):
    username: str
    display_name: str
    role: str
    active: bool = True
    enterprise_credit_code: str | None = None
    authority_credit_code: str | None = None


class UserUpdate(BaseModel):
    """Switch a user off or on, or change their role (PATCH): at least one of the two."""

    model_config = ConfigDict(extra="forbid")

    active: StrictBool | None = Field(
        default=None, description="false: the user's sessions and tokens stop at once"
    )
    role: Name | None = Field(
        default=None, description="enterprise_user or enterprise_admin (for an enterprise's user)"
    )


class PasswordReset(BaseModel):
    password: str = Field(min_length=8, max_length=256)


class AttachmentPublic(BaseModel):
    sha256: str
    size: int
    media_type: str
    filename: str


class RowsPublic(BaseModel):
    """A list of current records of one kind (products, suppliers, lots …)."""

    data: list[dict[str, Any]]
    count: int


class LotPublic(BaseModel):
    """A lot with its current records, in time order, and its mass balance."""

    lot: dict[str, Any]
    product: dict[str, Any]
    materials: list[dict[str, Any]]
    ccp_readings: list[dict[str, Any]]
    release_tests: list[dict[str, Any]]
    sales: list[dict[str, Any]]
    corrections: list[dict[str, Any]]
    balance: dict[str, str]
    open_deviations: int
    sales_count: int | None = Field(default=None, description="the lot's sales in all")
    sales_next: int | None = Field(
        default=None, description="the cursor of the next page of sales (`sales_after`)"
    )


class ApiTokenCreate(BaseModel):
    name: Name = Field(description="What the token is for, e.g. ERP")


class ApiTokenPublic(BaseModel):
    id: int
    name: str
    created_at: str
    username: str
    revoked: bool


class ApiTokenCreated(ApiTokenPublic):
    token: str = Field(description="Shown once; only its hash is stored")


class ObligationPublic(BaseModel):
    severity: int
    code: str
    link: str
    params: dict[str, Any]


class TodayPublic(BaseModel):
    day: str
    recorded: list[dict[str, Any]]
    owed: list[ObligationPublic]
    recorded_count: int | None = Field(
        default=None, description="How many entries were recorded today in all"
    )
    next: int | None = Field(
        default=None,
        description="The cursor of the next page of `recorded`: pass it as `before`; null on "
        "the last page",
    )


class TrailNodePublic(BaseModel):
    id: str
    type: str = Field(description="lot | material_lot | supplier | customer | enterprise")
    credit_code: str | None
    enterprise: str | None
    code: str | None
    label: str
    seq: int | None = Field(description="ledger seq of the entry the node's current view is from")
    hash: str | None
    registered: bool
    outside: bool = Field(description="outside the reader's jurisdiction: named, not shown")


class TrailEdgePublic(BaseModel):
    source: str
    target: str
    type: str = Field(description="supplied | consumed | sold | shipped")
    quantity: str | None
    unit: str | None
    date: str | None
    seq: int | None
    finding: str | None


class TrailPublic(BaseModel):
    start: str
    nodes: list[TrailNodePublic]
    edges: list[TrailEdgePublic]


class LotCompletenessPublic(BaseModel):
    lot: str
    product: str
    production_date: str
    complete: bool
    failed: dict[str, str] = Field(description="rule -> why")


class ReasonPublic(BaseModel):
    """Why a rule failed, for a client that shows it in its own language."""

    message: str = Field(description="message id: English, with str.format fields")
    params: dict[str, str]


class FindingPublic(BaseModel):
    rule: str
    lot: str | None = Field(description="null for a finding of the enterprise, not of a lot")
    material_lot: str | None = None
    why: str = Field(description="English")
    reasons: list[ReasonPublic] = []
    day: str = Field(description="the date it counts under in the weekly trend")


class OutsideLinkPublic(BaseModel):
    """A link to a registered enterprise outside the reader's jurisdiction: not checked."""

    kind: str = Field(description="sale | receipt")
    record: str = Field(description="our lot code (sale) or material lot code (receipt)")
    credit_code: str
    name: str


class CompletenessWeekPublic(BaseModel):
    """One ISO week of the period (the first and last clipped to the period)."""

    week: str = Field(description="ISO week, e.g. 2026-W40")
    start: str
    end: str
    lots_total: int
    lots_complete: int
    complete_share: float | None = Field(description="null in a week without lots")
    findings: int


class EnterpriseCompletenessPublic(BaseModel):
    credit_code: str
    name: str
    lots_total: int
    lots_complete: int
    complete_share: float
    production_days: int
    days_with_records: int
    daily_inspections: int
    days: int
    findings: list[FindingPublic] = Field(description="worst rules first")
    lots: list[LotCompletenessPublic]
    outside_links: list[OutsideLinkPublic] = []
    trend: list[CompletenessWeekPublic] = []


class CompletenessPublic(BaseModel):
    since: str
    until: str
    enterprises: list[EnterpriseCompletenessPublic] = Field(description="weakest records first")
    trend: list[CompletenessWeekPublic] = Field(
        [], description="the district: every lot of the enterprises above, week by week"
    )


# ------------------------------------------------------------------ cases


class CaseStepRequest(BaseModel):
    """A regulator moves a case on: notified, verified, closed (or back to recall_underway)."""

    state: str = Field(description="notified | recall_underway | verified | closed")
    note: str | None = Field(default=None, max_length=4000)


class NotifyAllRequest(BaseModel):
    """Notify every customer of a lot in the case not yet notified of it (one entry each)."""

    model_config = ConfigDict(extra="forbid")

    lot_code: Code
    at: Instant
    note: Note | None = Field(default=None, description="How they were told, e.g. 电话通知")


class CaseLotPublic(BaseModel):
    credit_code: str
    enterprise: str
    lot_code: str
    product: str
    gtin: str | None
    reason: str = Field(
        description="sampled | downstream | ccp_deviation | shared_material | source"
    )
    via: str = Field(description="the material lot or CCP deviation that brings it in")
    production_date: str
    unit: str = Field(description="the product's base unit, for the quantities below")
    produced: str
    sold: str
    held: str = Field(description="produced − sold: still with the enterprise")
    recovered: str
    disposed: str
    recalled: bool = Field(description="named by the public recall notice")
    seq: int
    hash: str


class CaseSalePublic(BaseModel):
    credit_code: str = Field(description="the seller")
    enterprise: str
    lot_code: str
    customer: str
    customer_code: str
    customer_credit_code: str | None
    registered: bool
    quantity: str
    unit: str
    quantity_base: str
    base_unit: str
    sale_date: str
    seq: int
    notified: bool
    recovered: str


class CaseDeviationPublic(BaseModel):
    lot_code: str
    ccp: str
    parameter: str
    measured_at: str
    closed_at: str | None
    seq: int


class CaseStepPublic(BaseModel):
    seq: int
    state: str
    note: str | None
    by_role: str
    by_code: str | None
    at: str


class ReferralPublic(BaseModel):
    seq: int
    to_authority: str | None
    to_name: str | None
    enterprises: list[dict[str, str]]


class RecallActionPublic(BaseModel):
    enterprise: str
    credit_code: str
    seq: int
    action: str
    at: str
    lot_code: str | None
    customer: str | None
    customer_code: str | None
    quantity: str | None
    unit: str | None
    quantity_base: str | None
    method: str | None
    note: str | None
    open_items: list[dict[str, Any]] | None = None


class OpenItemPublic(BaseModel):
    """What an enterprise's recall still owes, and the reason it gave at completion, if any."""

    credit_code: str
    kind: str = Field(description="customer (not notified) | lot (held or recovered, not disposed)")
    code: str = Field(description="the customer's or the lot's code")
    name: str
    quantity: str | None = Field(default=None, description="left to dispose of (base unit)")
    unit: str | None = None
    reason: str | None = Field(
        default=None,
        description="customer_closed | unreachable | reported_to_bureau | retest_cleared | other",
    )
    note: str | None = None


class RecallProgressPublic(BaseModel):
    """An enterprise's recall so far."""

    credit_code: str
    enterprise: str
    customers: int
    customers_notified: int
    lots: int
    lots_disposed: int = Field(description="lots with nothing held or recovered left over")
    completed: bool


class ConcernedPublic(BaseModel):
    credit_code: str
    name: str
    in_jurisdiction: bool
    completed: bool


class CaseSummaryPublic(BaseModel):
    id: str
    authority: str
    state: str
    credit_code: str
    enterprise: str
    lot_code: str
    product: str
    test_item: str
    report_no: str
    opened_at: str


class CasePublic(CaseSummaryPublic):
    """A case: the failed sample, its recall scope now, its steps, referrals and recall actions."""

    authority_credit_code: str
    result: str
    limit: str
    sampling_date: str
    seq: int = Field(description="seq of the failed-sample entry in the authority's ledger")
    suspect_materials: list[str]
    lots: list[CaseLotPublic]
    sales: list[CaseSalePublic]
    deviations: list[CaseDeviationPublic]
    outside: list[dict[str, str]] = Field(description="enterprises outside the jurisdiction")
    steps: list[CaseStepPublic]
    referrals: list[ReferralPublic]
    actions: list[RecallActionPublic]
    concerned: list[ConcernedPublic]
    progress: list[RecallProgressPublic] = []
    open_items: list[OpenItemPublic] = Field(
        default_factory=list,
        description="every item still open in the recall, with the reason given for it",
    )
    next_states: list[str] = Field(description="the steps the reader may take now")
    trail: TrailPublic | None = None
    sales_count: int | None = Field(default=None, description="sales in scope in all")
    sales_next: int | None = Field(
        default=None,
        description="the cursor of the next page of `sales`: pass it as `sales_after`; null "
        "on the last page",
    )


class CasesPublic(BaseModel):
    data: list[CaseSummaryPublic]
    referred: list[CaseSummaryPublic] = Field(
        default_factory=list, description="cases other authorities referred to this one (协查)"
    )


class LotFoundPublic(BaseModel):
    credit_code: str
    enterprise: str
    lot_code: str
    product: str
    gtin: str | None
    production_date: str
    quantity: str
    unit: str
    seq: int


# ------------------------------------------------------------ the Merkle log


class LedgerListedPublic(BaseModel):
    """A ledger as the public sees it: whose it is and its origin; nothing of its entries."""

    credit_code: str
    origin: str = Field(description="the checkpoint origin, <platform>/ledger/<credit code>")
    owner_kind: str = Field(description="enterprise or authority")


class LedgersPublic(BaseModel):
    data: list[LedgerListedPublic]
    count: int


class InclusionProofPublic(BaseModel):
    """An RFC 9162 inclusion proof (§2.1.3) of entry ``seq`` in the tree of ``size`` entries.

    Hashes are base64 (as in checkpoints and tlog-proof bundles), the proof runs
    from the leaf's sibling up. Check it against a signed checkpoint of ``size``.
    """

    origin: str
    seq: int
    index: int = Field(description="the leaf index, seq - 1")
    size: int
    leaf_hash: str = Field(description="base64 SHA-256(0x00 || the entry's canonical bytes)")
    hashes: list[str] = Field(description="base64 RFC 9162 inclusion path, leaf's sibling first")
    root: str = Field(
        description="base64 root the proof leads to, as the stored hashes give it; "
        "trust it only where a signed checkpoint of this size says the same"
    )
    checkpoint: str | None = Field(
        description="the signed checkpoint note of this size, if one was signed (always when "
        "size was not given: the latest checkpoint, signed on demand)"
    )


class ConsistencyProofPublic(BaseModel):
    """An RFC 9162 consistency proof (§2.1.4) from the tree of ``from`` entries to that of ``to``.

    Hashes are base64. Empty when ``from`` is 0 (every tree extends the empty
    one) or equal to ``to``.
    """

    model_config = {"populate_by_name": True}

    origin: str
    from_: int = Field(alias="from")
    to: int
    hashes: list[str] = Field(description="base64 RFC 9162 consistency proof")


class EntryLinePublic(EntryPublic):
    """An entry as a list of them shows it: with a one-line summary of its record."""

    summary: str


class LedgerLinesPublic(BaseModel):
    """A page of an enterprise's ledger as its ledger page lists it (newest first)."""

    data: list[EntryLinePublic]
    count: int
    """Entries that match the filter, on every page."""
