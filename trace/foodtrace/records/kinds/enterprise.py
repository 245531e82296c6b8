"""An enterprise's registration: the first entry of its ledger."""

from __future__ import annotations

from foodtrace.accounts.models import Enterprise
from foodtrace.errors import RecordError
from foodtrace.records.derive import Ctx, Row
from foodtrace.records.kinds.base import N_, KindSpec, Owner
from schemas.records import EnterpriseCreate, RecordKind


def _enterprise(ctx: Ctx, b: Row) -> None:
    if ctx.replace:
        old = ctx.store.find("enterprises")
        if old and old[0]["credit_code"] != b["credit_code"]:
            raise RecordError.at(
                "credit_code",
                msg="the credit code names the ledger and cannot be corrected",
                type="immutable",
            )
    row = {
        "id": ctx.store.enterprise_id,
        "record_seq": ctx.record_seq,
        "current_seq": ctx.current_seq,
        "credit_code": b["credit_code"],
        "name": b["name"],
        "kind": b["kind"],
        "region_code": b["region_code"],
        "licence_no": b.get("licence_no"),
        "address": b["address"],
        "contact": b["contact"],
    }
    ctx.store.put("enterprises", row, replace=ctx.replace)


SPEC = KindSpec(
    kind=RecordKind.ENTERPRISE,
    schema=EnterpriseCreate,
    owner=Owner.ENTERPRISE,
    tables=(Enterprise.__table__,),
    project=_enterprise,
    label=N_("Registration"),
    declares=True,
    form=False,  # the platform admin registers an enterprise
)
