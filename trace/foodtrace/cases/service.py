"""A failed sample's case, from opening to closure (DESIGN.md, "A failed sample and its case").

Every step is an entry in the supervising authority's own ledger (same format
as an enterprise's, origin ``<platform>/ledger/<authority credit code>``):

- ``failed_sample`` opens the case and carries the recall scope computed then;
- ``referral`` (协查), one per other authority whose jurisdiction the scope reaches;
- ``case_step`` for each state: notified (with a ``public_recall`` entry naming
  the recalled lots for the consumer page), recall under way and recall
  recorded (moved by the enterprises' recall actions), verified, closed.

An enterprise's recall actions go into its own ledger as ``recall_action``
entries naming the case; the first one moves the case to "recall under way",
and once every enterprise in scope has declared its recall complete the case
moves to "recall recorded". A case is named ``<authority credit code>-<seq>``.

Lock order: an enterprise's head, then the authority's. The regulator's steps
lock the authority's head only, so two transactions never wait on each other
in a circle.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from foodtrace.accounts.models import Authority, Enterprise
from foodtrace.accounts.service import covers, region_covers
from foodtrace.cases.models import Case, CaseLot, CaseStep, RecallAction, RecalledLot, Referral
from foodtrace.cases.scope import Scope, quantity, recall_scope, recorded_scope
from foodtrace.clock import Clock
from foodtrace.errors import AccessDenied, NotFound, RecordError
from foodtrace.ledger import service as ledger
from foodtrace.ledger.models import Ledger
from foodtrace.records.derive import dec
from foodtrace.records.service import SYSTEM_ACTOR, Recorded, platform_name, record, validate
from schemas.records import (
    CASE_ID_PATTERN,
    CaseState,
    FailedSampleCreate,
    RecallActionCreate,
    RecordKind,
)
from schemas.types import format_instant

ENTERPRISE_ACTIVE = (CaseState.NOTIFIED, CaseState.RECALL_UNDERWAY)
"""States in which an enterprise records recall actions."""

REGULATOR_STEPS = {
    CaseState.NOTIFIED,
    CaseState.VERIFIED,
    CaseState.CLOSED,
    CaseState.RECALL_UNDERWAY,  # sending an incomplete recall back
}


def case_id(authority_code: str, seq: int) -> str:
    return f"{authority_code}-{seq}"


def parse_case_id(value: str) -> tuple[str, int]:
    import re

    if not re.match(CASE_ID_PATTERN, value):
        raise NotFound(f"no case {value!r}")
    code, seq = value.rsplit("-", 1)
    return code, int(seq)


def authority_ledger(session: Session, authority: Authority, clock: Clock) -> Ledger:
    """The authority's own ledger, created on first use."""
    found = session.execute(
        select(Ledger).where(Ledger.credit_code == authority.credit_code)
    ).scalar_one_or_none()
    if found is not None:
        if found.owner_kind != "authority":
            raise RuntimeError(f"ledger {authority.credit_code} is not an authority's")
        return found
    return ledger.new_ledger(
        session=session,
        owner_kind="authority",
        credit_code=authority.credit_code,
        platform_name=platform_name(session),
        now=clock.now(),
    )


def _authority_of(session: Session, region_code: str) -> Authority | None:
    """The authority whose jurisdiction covers a region: the most specific one."""
    best: tuple[int, Authority] | None = None
    for a in session.execute(select(Authority)).scalars():
        for code in a.region_codes.split():
            if region_covers(code, region_code):
                rank = len(code.rstrip("0"))
                if best is None or rank > best[0]:
                    best = (rank, a)
    return best[1] if best else None


# ------------------------------------------------------------------ opening


@dataclass
class Opened:
    case_id: str
    recorded: Recorded
    scope: Scope
    referrals: list[Recorded] = field(default_factory=list)


def open_case(
    *,
    session: Session,
    authority: Authority,
    data: dict[str, Any] | FailedSampleCreate,
    actor: str,
    clock: Clock,
    idempotency_key: str | None = None,
) -> Opened:
    """Record a failed sample in the authority's ledger and open its case; the scope comes back."""
    model = validate(RecordKind.FAILED_SAMPLE, data)
    assert isinstance(model, FailedSampleCreate)
    enterprise = session.execute(
        select(Enterprise).where(Enterprise.credit_code == model.credit_code)
    ).scalar_one_or_none()
    if enterprise is None or not covers(authority, enterprise.region_code):
        raise RecordError.at(
            "credit_code",
            msg=f"no enterprise {model.credit_code} in your jurisdiction",
            type="not_found",
        )
    readable = _jurisdiction(authority)
    try:
        scope = recall_scope(
            session=session,
            enterprise_id=enterprise.id,
            lot_code=model.lot_code,
            readable=readable,
            suspect_materials=model.suspect_materials,
        )
    except NotFound:
        raise RecordError.at(
            "lot_code",
            msg=f"{enterprise.name} has no lot {model.lot_code!r}",
            type="not_found",
        ) from None
    head = authority_ledger(session, authority, clock)
    assert head.id is not None
    sampled = scope.lot(enterprise.credit_code, model.lot_code)
    assert sampled is not None
    facts = {
        "product": model.product or sampled.product,
        "enterprise": {
            "name": enterprise.name,
            "credit_code": enterprise.credit_code,
            "region_code": enterprise.region_code,
        },
        "opened_at": format_instant(clock.now()),
        "scope": {
            "lots": [
                {"credit_code": s.credit_code, "lot_code": s.lot_code, "reason": s.reason}
                for s in scope.lots
            ],
            "suspect_materials": scope.suspect_materials,
        },
    }
    recorded = record(
        session=session,
        ledger_id=head.id,
        kind=RecordKind.FAILED_SAMPLE,
        data=model,
        actor=actor,
        clock=clock,
        idempotency_key=idempotency_key,
        facts=facts,
    )
    opened = Opened(case_id(authority.credit_code, recorded.seq), recorded, scope)
    if recorded.replayed:
        return opened
    for to, enterprises in _referral_targets(session, scope).items():
        target = session.execute(
            select(Authority).where(Authority.credit_code == to)
        ).scalar_one_or_none()
        opened.referrals.append(
            record(
                session=session,
                ledger_id=head.id,
                kind=RecordKind.REFERRAL,
                data={
                    "case_seq": recorded.seq,
                    "to_authority": to,
                    "to_name": target.name if target else None,
                    "enterprises": enterprises,
                    "note": f"{model.test_item} {model.result} (limit {model.limit}), "
                    f"report {model.report_no}: {enterprise.name} lot {model.lot_code}",
                },
                actor=actor,
                clock=clock,
            )
        )
    return opened


def _referral_targets(session: Session, scope: Scope) -> dict[str | None, list[dict[str, Any]]]:
    """The enterprises outside the jurisdiction, grouped by the authority that covers each."""
    out: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for node in scope.outside:
        ent = session.execute(
            select(Enterprise).where(Enterprise.credit_code == node.credit_code)
        ).scalar_one()
        for edge in scope.trail.edges:
            if node.id not in (edge.source, edge.target):
                continue
            near = scope.trail.nodes[edge.target if edge.source == node.id else edge.source]
            if near.type == "customer":  # name the lot that was sold there
                near = next(
                    (
                        scope.trail.nodes[e.source]
                        for e in scope.trail.edges
                        if e.target == near.id and e.type == "sold"
                    ),
                    near,
                )
            to = _authority_of(session, ent.region_code)
            out[to.credit_code if to else None].append(
                {
                    "credit_code": ent.credit_code,
                    "name": ent.name,
                    "region_code": ent.region_code,
                    "relation": "supplier" if edge.source == node.id else "customer",
                    "via": f"{near.enterprise or ''} {near.code or near.label}".strip()[:200],
                }
            )
    return dict(out)


def _jurisdiction(authority: Authority) -> Callable[[Enterprise], bool]:
    return lambda e: covers(authority, e.region_code)


# ------------------------------------------------------------------- steps


def _case_row(session: Session, ledger_id: int, seq: int) -> Case:
    case = session.get(Case, (ledger_id, seq), populate_existing=True)
    if case is None:
        raise NotFound(f"no case {seq}")
    return case


def advance(
    *,
    session: Session,
    authority: Authority,
    case_seq: int,
    state: CaseState | str,
    note: str | None,
    actor: str,
    clock: Clock,
) -> list[Recorded]:
    """A regulator's step: notify (and publish the recall), send back, verify, close."""
    state = CaseState(state)
    if state not in REGULATOR_STEPS:
        raise RecordError.at(
            "state",
            msg=f"{state} is reached by the enterprises' recall actions, not set by a regulator",
            type="bad_transition",
        )
    head = authority_ledger(session, authority, clock)
    assert head.id is not None
    ledger.lock_head(session=session, ledger_id=head.id)
    case = _case_row(session, head.id, case_seq)
    if state is CaseState.RECALL_UNDERWAY and case.state != CaseState.RECALL_RECORDED:
        raise RecordError.at(
            "state",
            msg="a recall is sent back only once it is recorded; it gets under way with the "
            "enterprise's first recall action",
            type="bad_transition",
        )
    if state is CaseState.VERIFIED:
        missing = _incomplete(session, head.id, case)
        if missing:
            raise RecordError.at(
                "state",
                msg="the recall is not complete for: " + ", ".join(missing),
                type="recall_incomplete",
            )
    out = [
        record(
            session=session,
            ledger_id=head.id,
            kind=RecordKind.CASE_STEP,
            data={"case_seq": case_seq, "state": state, "note": note, "by": {"role": "regulator"}},
            actor=actor,
            clock=clock,
        )
    ]
    if state is CaseState.NOTIFIED:
        lots = _recall_lots(session, authority, head.id, case)
        if lots:
            out.append(
                record(
                    session=session,
                    ledger_id=head.id,
                    kind=RecordKind.PUBLIC_RECALL,
                    data={
                        "case_seq": case_seq,
                        "reason": f"{case.product}：{case.test_item}不合格"
                        f"（检出 {case.result}，标准 {case.limit}），报告编号 {case.report_no}",
                        "lots": lots,
                    },
                    # Proven to the public: no official's login in it (the case step
                    # just before names who notified).
                    actor=SYSTEM_ACTOR,
                    clock=clock,
                )
            )
    return out


def recall_preview(session: Session, authority: Authority, case_seq: int) -> list[dict[str, Any]]:
    """The lots a notification now would name in the public recall notice (their consumer
    pages show the recall from then on): for the regulator's confirmation."""
    head = session.execute(
        select(Ledger).where(Ledger.credit_code == authority.credit_code)
    ).scalar_one_or_none()
    if head is None or head.id is None:
        raise NotFound(f"no case {case_seq}")
    return _recall_lots(session, authority, head.id, _case_row(session, head.id, case_seq))


def _recall_lots(
    session: Session, authority: Authority, ledger_id: int, case: Case
) -> list[dict[str, Any]]:
    """The scope's lots in the jurisdiction, as the public notice names them."""
    from foodtrace.records.models import Lot, Product

    out = []
    for cl in _case_lots(session, ledger_id, case.record_seq):
        ent = session.execute(
            select(Enterprise).where(Enterprise.credit_code == cl.credit_code)
        ).scalar_one_or_none()
        if ent is None or not covers(authority, ent.region_code):
            continue
        row = session.execute(
            select(Lot, Product.name)
            .join(
                Product,
                (Product.enterprise_id == Lot.enterprise_id)
                & (Product.record_seq == Lot.product_seq),
            )
            .where(Lot.enterprise_id == ent.id, Lot.code == cl.lot_code)
        ).first()
        if row is None:
            continue
        lot, product = row
        item = {
            "credit_code": ent.credit_code,
            "enterprise": ent.name,
            "lot_code": lot.code,
            "product": product,
            "why": cl.reason,
        }
        if lot.gtin:
            item["gtin"] = lot.gtin
        if cl.reason != "sampled":  # said to the public: what links it to the failed lot
            item["via"] = _public_via(session, case, cl)[:200]
        out.append(item)
    return out


def _public_via(session: Session, case: Case, cl: CaseLot) -> str:
    """What links a lot of the scope to the failed lot, in words a shopper reads: the failed
    lot and, for a shared material, the material lot's name and batch (never a customer or
    a quantity)."""
    failed = f"{case.enterprise} {case.product} {case.lot_code}"
    if cl.reason == "shared_material" or cl.reason == "source":
        from foodtrace.ledger.models import Entry

        body = json.loads(
            session.execute(
                select(Entry.body).where(
                    Entry.ledger_id == case.ledger_id, Entry.seq == case.record_seq
                )
            ).scalar_one()
        )["body"]
        materials = ", ".join(body["scope"].get("suspect_materials") or [])
        return f"{failed}（{materials}）" if materials else failed
    return failed


def _case_lots(session: Session, ledger_id: int, seq: int) -> list[CaseLot]:
    return list(
        session.execute(
            select(CaseLot)
            .where(CaseLot.ledger_id == ledger_id, CaseLot.record_seq == seq)
            .order_by(CaseLot.line)
        ).scalars()
    )


def concerned(session: Session, ledger_id: int, case: Case) -> list[Enterprise]:
    """The registered enterprises with lots in the case's scope (those that must recall)."""
    codes = {cl.credit_code for cl in _case_lots(session, ledger_id, case.record_seq)}
    if not codes:
        return []
    return list(
        session.execute(
            select(Enterprise).where(Enterprise.credit_code.in_(codes)).order_by(Enterprise.name)
        ).scalars()
    )


def _completed_codes(session: Session, ref: str, *, enterprise_id: int | None = None) -> set[str]:
    q = (
        select(Enterprise.credit_code)
        .join(RecallAction, RecallAction.enterprise_id == Enterprise.id)
        .where(RecallAction.case_ref == ref, RecallAction.action == "completed")
    )
    if enterprise_id is not None:
        q = q.where(RecallAction.enterprise_id == enterprise_id)
    return set(session.execute(q).scalars())


def _incomplete(session: Session, ledger_id: int, case: Case) -> list[str]:
    authority_code = session.get(Ledger, ledger_id).credit_code  # type: ignore[union-attr]
    auth = session.execute(
        select(Authority).where(Authority.credit_code == authority_code)
    ).scalar_one()
    done = _completed_codes(session, case_id(authority_code, case.record_seq))
    return [
        e.name
        for e in concerned(session, ledger_id, case)
        if covers(auth, e.region_code) and e.credit_code not in done
    ]


# ---------------------------------------------------- the enterprise's part


def find_case(session: Session, ref: str) -> tuple[Authority, Ledger, Case]:
    code, seq = parse_case_id(ref)
    head = session.execute(
        select(Ledger).where(Ledger.credit_code == code, Ledger.owner_kind == "authority")
    ).scalar_one_or_none()
    if head is None or head.id is None:
        raise NotFound(f"no case {ref!r}")
    case = session.get(Case, (head.id, seq), populate_existing=True)
    auth = session.execute(select(Authority).where(Authority.credit_code == code)).scalar_one()
    if case is None:
        raise NotFound(f"no case {ref!r}")
    return auth, head, case


def record_recall_action(
    *,
    session: Session,
    enterprise: Enterprise,
    data: dict[str, Any] | RecallActionCreate,
    actor: str,
    clock: Clock,
    idempotency_key: str | None = None,
) -> list[Recorded]:
    """An enterprise records a recall action; the case moves on when it should."""
    model = validate(RecordKind.RECALL_ACTION, data)
    assert isinstance(model, RecallActionCreate)
    try:
        _authority, head, case = find_case(session, model.case)
    except NotFound:
        raise RecordError.at(
            "case", msg=f"there is no case {model.case}", type="not_found"
        ) from None
    assert head.id is not None
    if enterprise.credit_code not in {e.credit_code for e in concerned(session, head.id, case)}:
        raise AccessDenied(f"case {model.case} does not concern {enterprise.name}")
    # Enterprise head first, then the authority's (the module's lock order).
    ledger.lock_head(session=session, ledger_id=enterprise.id)
    ledger.lock_head(session=session, ledger_id=head.id)
    session.refresh(case)
    if CaseState(case.state) not in ENTERPRISE_ACTIVE:
        raise RecordError.at(
            "case",
            msg=f"case {model.case} is {case.state}: recall actions are recorded once the "
            "enterprise is notified and until the recall is recorded",
            type="case_state",
            state=case.state,
        )
    if model.lot_code and model.lot_code not in {
        cl.lot_code
        for cl in _case_lots(session, head.id, case.record_seq)
        if cl.credit_code == enterprise.credit_code
    }:
        raise RecordError.at(
            "lot_code",
            msg=f"lot {model.lot_code!r} is not in the scope of case {model.case}",
            type="not_in_scope",
        )
    if model.action == "completed" and model.case in _completed_refs(session, enterprise.id):
        raise RecordError.at(
            "action", msg="the recall was already declared complete", type="duplicate"
        )
    if model.action in ("recovery", "disposal"):
        _check_balance(session, enterprise, model)
    elif model.action == "completed":
        _check_completion(session, enterprise, model)
    out = [
        record(
            session=session,
            ledger_id=enterprise.id,
            kind=RecordKind.RECALL_ACTION,
            data=model,
            actor=actor,
            clock=clock,
            idempotency_key=idempotency_key,
        )
    ]
    if out[0].replayed:
        return out
    by = {"role": "enterprise", "credit_code": enterprise.credit_code}
    if case.state == CaseState.NOTIFIED:
        out.append(_step(session, head.id, case, CaseState.RECALL_UNDERWAY, by, actor, clock))
    if model.action == "completed" and not _incomplete(session, head.id, case):
        out.append(
            _step(
                session,
                head.id,
                case,
                CaseState.RECALL_RECORDED,
                by,
                actor,
                clock,
                note="every enterprise in scope has declared its recall complete",
            )
        )
    return out


def _check_balance(session: Session, enterprise: Enterprise, model: RecallActionCreate) -> None:
    """Mass balance, in the product's base unit, over every recall action of the lot so far
    (corrections included, as the derived rows hold them): recovered from a customer at most
    what that customer was sold of the lot; disposed of at most what is held plus what was
    recovered. Refused with the numbers (422); the projection stays lenient so that entries
    written before this rule still verify."""
    from foodtrace.records.derive import dec_str, unit_factor
    from foodtrace.records.projection import DbStore

    store = DbStore(session, enterprise.id)
    lots = store.find("lots", code=model.lot_code)
    if not lots or model.quantity is None or model.unit is None:
        return  # the projection names what is missing
    lot = lots[0]
    product = store.find("products", record_seq=lot["product_seq"])[0]
    base = dec(model.quantity) * unit_factor(product, model.unit, ("unit",))
    unit = json.loads(product["data"])["unit"]
    sales = store.find("sales", lot_seq=lot["record_seq"])
    done = store.find("recall_actions", lot_seq=lot["record_seq"])

    def total(rows: list[dict[str, Any]]) -> Decimal:
        return sum((dec(r["quantity_base"]) for r in rows if r["quantity_base"]), Decimal(0))

    if model.action == "recovery":
        found = store.find("customers", code=model.customer_code)
        if not found:
            return
        cust = found[0]
        sold = total([x for x in sales if x["customer_seq"] == cust["record_seq"]])
        before = total(
            [
                a
                for a in done
                if a["action"] == "recovery" and a["customer_seq"] == cust["record_seq"]
            ]
        )
        if before + base > sold:
            raise RecordError.at(
                "quantity",
                msg=f"{cust['name']} was sold {dec_str(sold)} {unit} of lot {lot['code']!r} and "
                f"{dec_str(before)} {unit} were recovered already; {dec_str(base)} {unit} more "
                f"would recover more than was sold (at most {dec_str(sold - before)} {unit})",
                type="over_recovered",
                sold=dec_str(sold),
                recovered=dec_str(before),
                most=dec_str(sold - before),
                unit=unit,
            )
        return
    held = dec(lot["quantity_base"]) - total(sales)
    recovered = total([a for a in done if a["action"] == "recovery"])
    disposed = total([a for a in done if a["action"] == "disposal"])
    most = max(held, Decimal(0)) + recovered - disposed
    if base > most:
        raise RecordError.at(
            "quantity",
            msg=f"lot {lot['code']!r} holds {dec_str(max(held, Decimal(0)))} {unit}, "
            f"{dec_str(recovered)} {unit} were recovered and {dec_str(disposed)} {unit} "
            f"disposed of already; {dec_str(base)} {unit} is more than the "
            f"{dec_str(most)} {unit} left to dispose of",
            type="over_disposed",
            most=dec_str(most),
            unit=unit,
        )


@dataclass
class OpenItem:
    """What an enterprise's recall still owes: a customer not told, or a quantity held or
    recovered with no disposal."""

    credit_code: str
    kind: str  # "customer" or "lot"
    code: str
    name: str
    quantity: str | None = None
    unit: str | None = None


def open_items(view: CaseView, credit_code: str | None = None) -> list[OpenItem]:
    """The open items of each enterprise's part of the case (of ``credit_code``'s only)."""
    out: list[OpenItem] = []
    customers: dict[tuple[str, str], str] = {}
    notified: set[tuple[str, str]] = set()
    for x in view.scope.sales:
        if credit_code is not None and x.credit_code != credit_code:
            continue
        key = (x.credit_code, x.customer_code)
        customers[key] = x.customer
        for lot_code in (x.lot_code, "*"):
            if view.recovery.get((x.credit_code, lot_code, x.customer_code), Recovery()).notified:
                notified.add(key)
    out += [
        OpenItem(cc, "customer", code, name)
        for (cc, code), name in sorted(customers.items())
        if (cc, code) not in notified
    ]
    for lot in view.scope.lots:
        if credit_code is not None and lot.credit_code != credit_code:
            continue
        got = view.lot_recovery.get((lot.credit_code, lot.lot_code), Recovery())
        left = max(lot.held, Decimal(0)) + got.recovered - got.disposed
        if left > 0:
            out.append(
                OpenItem(
                    lot.credit_code, "lot", lot.lot_code, lot.product, quantity(left), lot.unit
                )
            )
    return out


def _check_completion(session: Session, enterprise: Enterprise, model: RecallActionCreate) -> None:
    """A recall is declared complete only when every customer of the enterprise's part of the
    scope was notified and every quantity held or recovered was disposed of, or when each
    item still open carries its reason (model.open_items)."""
    view = case_view(session, model.case, enterprise_id=enterprise.id)
    items = open_items(view, enterprise.credit_code)
    given = {
        ("customer", i.customer_code) if i.customer_code else ("lot", i.lot_code)
        for i in model.open_items or []
    }
    known = {(x.kind, x.code) for x in items}
    stray = sorted(f"{k} {c}" for k, c in given - known)
    if stray:
        raise RecordError.at(
            "open_items",
            msg=f"not open in this recall: {', '.join(stray)}",
            type="not_in_scope",
        )
    missing = [x for x in items if (x.kind, x.code) not in given]
    if missing:
        words = [
            f"customer {x.name} ({x.code}) not notified"
            if x.kind == "customer"
            else f"lot {x.code}: {x.quantity} {x.unit} with no disposal"
            for x in missing
        ]
        raise RecordError.at(
            "open_items",
            msg=f"the recall is not complete: {'; '.join(words[:20])}"
            + (f" and {len(words) - 20} more" if len(words) > 20 else "")
            + ". Finish them, or give each a reason (customer closed, unreachable, reported "
            "to the bureau)",
            type="recall_open",
            count=len(missing),
        )


def notify_customers(
    *,
    session: Session,
    enterprise: Enterprise,
    case_ref: str,
    lot_code: str,
    at: str,
    actor: str,
    clock: Clock,
    note: str | None = None,
    idempotency_key: str | None = None,
) -> list[Recorded]:
    """Notify every customer of a lot of the enterprise's part of the case not yet notified
    of it: one notification entry per customer, as if recorded one by one, in one
    transaction. A retry with the same key writes nothing more and answers as the first
    try did (each customer's entry has the key and its customer code, and is replayed)."""
    view = case_view(session, case_ref, enterprise_id=enterprise.id)
    lots = {s.lot_code for s in view.scope.lots if s.credit_code == enterprise.credit_code}
    if lot_code not in lots:
        raise RecordError.at(
            "lot_code",
            msg=f"lot {lot_code!r} is not in the scope of case {case_ref}",
            type="not_in_scope",
        )
    from foodtrace.ledger.models import IdempotencyKey

    def keyed(code: str) -> bool:  # notified by an earlier try under this key: replayed
        key = f"{idempotency_key}:{code}"
        return bool(idempotency_key) and (
            session.get(IdempotencyKey, (enterprise.id, key)) is not None
        )

    todo = []
    for x in view.scope.sales:
        if x.credit_code != enterprise.credit_code or x.lot_code != lot_code:
            continue
        done = view.recovery.get((x.credit_code, lot_code, x.customer_code), Recovery())
        if (not done.notified or keyed(x.customer_code)) and x.customer_code not in todo:
            todo.append(x.customer_code)
    out: list[Recorded] = []
    for code in todo:
        data = {"case": case_ref, "action": "notification", "at": at, "lot_code": lot_code,
                "customer_code": code, "note": note}  # fmt: skip
        out += record_recall_action(
            session=session,
            enterprise=enterprise,
            data={k: v for k, v in data.items() if v is not None},
            actor=actor,
            clock=clock,
            idempotency_key=f"{idempotency_key}:{code}" if idempotency_key else None,
        )
    return out


def open_recalls(session: Session, enterprise: Enterprise) -> list[tuple[str, Case]]:
    """The cases in which the enterprise has recall actions to record (notified or under
    way, and not yet declared complete by it)."""
    done = _completed_refs(session, enterprise.id)  # type: ignore[arg-type]
    return [
        (ref, case)
        for ref, case, _name in list_cases(session, enterprise=enterprise)
        if CaseState(case.state) in ENTERPRISE_ACTIVE and ref not in done
    ]


def _completed_refs(session: Session, enterprise_id: int) -> set[str]:
    return set(
        session.execute(
            select(RecallAction.case_ref).where(
                RecallAction.enterprise_id == enterprise_id, RecallAction.action == "completed"
            )
        ).scalars()
    )


def _step(
    session: Session,
    ledger_id: int,
    case: Case,
    state: CaseState,
    by: dict[str, str],
    actor: str,
    clock: Clock,
    note: str | None = None,
) -> Recorded:
    recorded = record(
        session=session,
        ledger_id=ledger_id,
        kind=RecordKind.CASE_STEP,
        data={"case_seq": case.record_seq, "state": state, "note": note, "by": by},
        actor=actor,
        clock=clock,
    )
    session.refresh(case)
    return recorded


# ------------------------------------------------------------------ reading


@dataclass
class Recovery:
    recovered: Decimal = Decimal(0)
    disposed: Decimal = Decimal(0)
    notified: bool = False


@dataclass
class CaseView:
    id: str
    authority: Authority
    case: Case
    scope: Scope
    steps: list[CaseStep]
    referrals: list[Referral]
    referral_names: dict[int, str | None]
    """Referral seq → the name of the authority referred to, as its entry recorded it."""
    actions: list[dict[str, Any]]
    recovery: dict[tuple[str, str, str], Recovery]
    """(seller credit code, lot code, customer code) → what came back."""
    lot_recovery: dict[tuple[str, str], Recovery]
    completed: set[str]
    concerned: list[Enterprise]
    recalled: list[RecalledLot]


def list_cases(
    session: Session, *, authority: Authority | None = None, enterprise: Enterprise | None = None
) -> list[tuple[str, Case, str]]:
    """Cases of an authority, or the cases concerning an enterprise (from notification on).

    Returns (case id, case, authority name), newest first.
    """
    q = select(Case, Ledger.credit_code).join(Ledger, Ledger.id == Case.ledger_id)
    if authority is not None:
        q = q.where(Ledger.credit_code == authority.credit_code)
    if enterprise is not None:
        q = q.where(
            Case.state != CaseState.OPENED,
            select(CaseLot.line)
            .where(
                CaseLot.ledger_id == Case.ledger_id,
                CaseLot.record_seq == Case.record_seq,
                CaseLot.credit_code == enterprise.credit_code,
            )
            .exists(),
        )
    names = {a.credit_code: a.name for a in session.execute(select(Authority)).scalars()}
    rows = session.execute(q.order_by(Case.opened_at.desc(), Case.record_seq.desc())).all()
    return [(case_id(code, c.record_seq), c, names.get(code, code)) for c, code in rows]


def is_referred(session: Session, *, ledger_id: int | None, case_seq: int, to: Authority) -> bool:
    """Whether the case at ``case_seq`` of authority ledger ``ledger_id`` was referred to ``to``."""
    return (
        session.execute(
            select(Referral.record_seq).where(
                Referral.ledger_id == ledger_id,
                Referral.case_seq == case_seq,
                Referral.to_authority == to.credit_code,
            )
        ).first()
        is not None
    )


def referrals_to(session: Session, authority: Authority) -> list[tuple[str, Referral, Case]]:
    """Referrals (协查) other authorities sent to this one."""
    rows = session.execute(
        select(Referral, Case, Ledger.credit_code)
        .join(Ledger, Ledger.id == Referral.ledger_id)
        .join(Case, (Case.ledger_id == Referral.ledger_id) & (Case.record_seq == Referral.case_seq))
        .where(Referral.to_authority == authority.credit_code)
        .order_by(Case.opened_at.desc())
    ).all()
    return [(case_id(code, r.case_seq), r, c) for r, c, code in rows]


def case_view(
    session: Session,
    ref: str,
    *,
    viewer: Authority | None = None,
    enterprise_id: int | None = None,
) -> CaseView:
    """A case with its recall scope, steps, referrals and the recall actions so far.

    The scope's lots are the ones the case recorded when it was opened (an entry of the
    authority's ledger), for the authority's regulators and for every enterprise alike;
    an enterprise's view (``enterprise_id``, no ``viewer``) is that same scope, which the
    caller filters to the enterprise's own lots and customers (``case_public(only=…)``).
    An authority the case was referred to (``viewer`` another authority) sees the scope
    as its own jurisdiction reaches it.

    ``enterprise_id``: the recall actions read are that enterprise's only (another
    enterprise's actions are in its own ledger: an enterprise's queries stay in its own,
    docs/scaling.md).
    """
    authority, head, case = find_case(session, ref)
    assert head.id is not None
    ent = session.execute(
        select(Enterprise).where(Enterprise.credit_code == case.credit_code)
    ).scalar_one()
    body = json.loads(
        ledger.get_entry(session=session, ledger_id=head.id, seq=case.record_seq).body
    )
    referred = viewer is not None and viewer.credit_code != authority.credit_code
    recorded = [
        (cl.credit_code, cl.lot_code, cl.reason)
        for cl in _case_lots(session, head.id, case.record_seq)
    ]
    suspects = body["body"]["scope"]["suspect_materials"]
    if viewer is None and enterprise_id is not None:  # an enterprise: its part, its ledger
        scope = recorded_scope(
            session=session,
            enterprise_id=enterprise_id,
            pinned=recorded,
            suspect_materials=suspects,
            sampled_lot=case.lot_code if enterprise_id == ent.id else None,
        )
    else:
        scope = recall_scope(
            session=session,
            enterprise_id=ent.id,
            lot_code=case.lot_code,
            readable=_jurisdiction(viewer if referred else authority),  # type: ignore[arg-type]
            suspect_materials=suspects,
            pinned=None if referred else recorded,
        )
    steps = list(
        session.execute(
            select(CaseStep)
            .where(CaseStep.ledger_id == head.id, CaseStep.case_seq == case.record_seq)
            .order_by(CaseStep.record_seq)
        ).scalars()
    )
    refs = list(
        session.execute(
            select(Referral).where(
                Referral.ledger_id == head.id, Referral.case_seq == case.record_seq
            )
        ).scalars()
    )
    recalled = list(
        session.execute(
            select(RecalledLot).where(
                RecalledLot.ledger_id == head.id, RecalledLot.case_seq == case.record_seq
            )
        ).scalars()
    )
    actions, recovery, lot_recovery = _actions(session, ref, enterprise_id=enterprise_id)
    return CaseView(
        id=ref,
        authority=authority,
        case=case,
        scope=scope,
        steps=steps,
        referrals=refs,
        referral_names={
            r.record_seq: json.loads(
                ledger.get_entry(session=session, ledger_id=head.id, seq=r.record_seq).body
            )["body"].get("to_name")
            for r in refs
        },
        actions=actions,
        recovery=recovery,
        lot_recovery=lot_recovery,
        completed=_completed_codes(session, ref, enterprise_id=enterprise_id),
        concerned=concerned(session, head.id, case),
        recalled=recalled,
    )


def _actions(
    session: Session, ref: str, *, enterprise_id: int | None = None
) -> tuple[
    list[dict[str, Any]], dict[tuple[str, str, str], Recovery], dict[tuple[str, str], Recovery]
]:
    from foodtrace.records.models import Customer, Lot

    q = (
        select(RecallAction, Enterprise)
        .join(Enterprise, Enterprise.id == RecallAction.enterprise_id)
        .where(RecallAction.case_ref == ref)
    )
    if enterprise_id is not None:
        q = q.where(RecallAction.enterprise_id == enterprise_id)
    rows = session.execute(
        q.order_by(RecallAction.at, RecallAction.enterprise_id, RecallAction.record_seq)
    ).all()
    actions: list[dict[str, Any]] = []
    recovery: dict[tuple[str, str, str], Recovery] = defaultdict(Recovery)
    by_lot: dict[tuple[str, str], Recovery] = defaultdict(Recovery)
    for a, e in rows:
        lot = session.get(Lot, (e.id, a.lot_seq)) if a.lot_seq else None
        cust = session.get(Customer, (e.id, a.customer_seq)) if a.customer_seq else None
        entry = json.loads(
            ledger.get_entry(session=session, ledger_id=e.id, seq=a.current_seq).body
        )
        body = entry["body"]
        if body.get("record"):  # a correction: its record is the action now
            body = body["record"]
        actions.append(
            {
                "enterprise": e.name,
                "credit_code": e.credit_code,
                "seq": a.current_seq,
                "action": a.action,
                "at": a.at,
                "lot_code": lot.code if lot else None,
                "customer": cust.name if cust else None,
                "customer_code": cust.code if cust else None,
                "quantity": a.quantity,
                "unit": a.unit,
                "quantity_base": a.quantity_base,
                "method": body.get("method"),
                "note": body.get("note"),
                "open_items": body.get("open_items"),
            }
        )
        if lot is None:
            if cust is not None and a.action == "notification":
                for key in [k for k in recovery if k[0] == e.credit_code and k[2] == cust.code]:
                    recovery[key].notified = True
                recovery[(e.credit_code, "*", cust.code)].notified = True
            continue
        qty = dec(a.quantity_base) if a.quantity_base else Decimal(0)
        if a.action == "recovery" and cust is not None:
            recovery[(e.credit_code, lot.code, cust.code)].recovered += qty
            by_lot[(e.credit_code, lot.code)].recovered += qty
        elif a.action == "disposal":
            by_lot[(e.credit_code, lot.code)].disposed += qty
        elif a.action == "notification" and cust is not None:
            recovery[(e.credit_code, lot.code, cust.code)].notified = True
    return actions, dict(recovery), dict(by_lot)


def recalls_of_lot(session: Session, credit_code: str, lot_code: str) -> list[dict[str, Any]]:
    """The public recall notices naming a lot (for the consumer page): only public facts."""
    rows = session.execute(
        select(RecalledLot, Case, Ledger.credit_code)
        .join(Ledger, Ledger.id == RecalledLot.ledger_id)
        .join(
            Case,
            (Case.ledger_id == RecalledLot.ledger_id) & (Case.record_seq == RecalledLot.case_seq),
        )
        .where(RecalledLot.credit_code == credit_code, RecalledLot.lot_code == lot_code)
    ).all()
    names = {a.credit_code: a.name for a in session.execute(select(Authority)).scalars()}
    out = []
    for rl, case, code in rows:
        entry = ledger.get_entry(session=session, ledger_id=rl.ledger_id, seq=rl.record_seq)
        body = json.loads(entry.body)["body"]
        named: dict[str, Any] = next(
            (
                x
                for x in body["lots"]
                if (x["credit_code"], x["lot_code"]) == (credit_code, lot_code)
            ),
            {},
        )
        why = named.get("why") or (
            "sampled" if (case.credit_code, case.lot_code) == (credit_code, lot_code) else None
        )
        out.append(
            {
                "case": case_id(code, case.record_seq),
                "authority": names.get(code, code),
                "announced_at": entry.recorded_at,
                "why": why,
                "via": named.get("via"),
                "index": body["lots"].index(named) if named else None,
                "sampled_lot": case.lot_code,
                "reason": body["reason"],
                "state": case.state,
                "seq": rl.record_seq,
                "log": code,
            }
        )
    return out
