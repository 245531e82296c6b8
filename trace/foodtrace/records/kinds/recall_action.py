"""An enterprise's recall action in a case."""

from __future__ import annotations

from decimal import Decimal

from foodtrace.cases.models import RecallAction
from foodtrace.errors import RecordError
from foodtrace.records.derive import Ctx, Row, dec, dec_str, product_data, product_of, unit_factor
from foodtrace.records.kinds.base import N_, KindSpec, Owner
from schemas.records import RecallActionCreate, RecordKind


def _recall_action(ctx: Ctx, b: Row) -> None:
    lot = customer = None
    if b.get("lot_code"):
        lot = ctx.one("lots", ("lot_code",), "lot", code=b["lot_code"])
    if b.get("customer_code"):
        customer = ctx.one("customers", ("customer_code",), "customer", code=b["customer_code"])
    base = None
    if b.get("quantity") is not None:
        if lot is None:
            raise RecordError.at("lot_code", msg="a quantity needs its lot", type="missing")
        base = dec_str(dec(b["quantity"]) * unit_factor(product_of(ctx, lot), b["unit"], ("unit",)))
    if lot is not None and customer is not None and b["action"] == "recovery":
        sold = sum(
            (
                dec(s["quantity_base"])
                for s in ctx.store.find("sales", lot_seq=lot["record_seq"])
                if s["customer_seq"] == customer["record_seq"]
            ),
            Decimal(0),
        )
        if base is not None and dec(base) > sold:
            ctx.out.warn(
                "quantity",
                msg=f"{customer['name']} was sold {dec_str(sold)} of lot {lot['code']!r}; "
                f"{base} recovered is more than that",
                type="over_recovered",
                sold=dec_str(sold),
                recovered="0",
                most=dec_str(sold),
                unit=product_data(product_of(ctx, lot))["unit"],
            )
    ctx.put(
        "recall_actions",
        {
            "case_ref": b["case"],
            "action": b["action"],
            "lot_seq": lot["record_seq"] if lot else None,
            "customer_seq": customer["record_seq"] if customer else None,
            "quantity": b.get("quantity"),
            "unit": b.get("unit"),
            "quantity_base": base,
            "at": b["at"],
        },
    )


SPEC = KindSpec(
    kind=RecordKind.RECALL_ACTION,
    schema=RecallActionCreate,
    owner=Owner.ENTERPRISE,
    tables=(RecallAction.__table__,),
    project=_recall_action,
    label=N_("Recall action"),
    natural_time="at",
    form=False,  # entered on the case's recall page (cases API)
)
