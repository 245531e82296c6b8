"""A case referred to the authorities of enterprises outside the jurisdiction."""

from __future__ import annotations

from foodtrace.cases.models import Referral
from foodtrace.records.derive import Ctx, Row, authority_row, canonical_json, case_row
from foodtrace.records.kinds.base import N_, KindSpec, Owner
from schemas.records import RecordKind, ReferralCreate


def _referral(ctx: Ctx, b: Row) -> None:
    case_row(ctx, b["case_seq"])
    ctx.store.put(
        "referrals",
        authority_row(
            ctx,
            case_seq=b["case_seq"],
            to_authority=b.get("to_authority"),
            region_codes=" ".join(sorted({e["region_code"] for e in b["enterprises"]})),
            data=canonical_json(b["enterprises"]),
        ),
        replace=ctx.replace,
    )


SPEC = KindSpec(
    kind=RecordKind.REFERRAL,
    schema=ReferralCreate,
    owner=Owner.AUTHORITY,
    tables=(Referral.__table__,),
    project=_referral,
    label=N_("Referral"),
    form=False,
)
