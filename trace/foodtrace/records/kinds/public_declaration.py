"""A lot's public declaration, written by the platform when it is released."""

from __future__ import annotations

import hashlib
from typing import Any

from foodtrace.canonical import dumps as canonical_dumps
from foodtrace.errors import RecordError
from foodtrace.records.derive import Ctx, Row, Store, instant, product_data
from foodtrace.records.kinds.base import N_, KindSpec, Owner
from foodtrace.records.models import PublicDeclarationRow
from schemas.records import PublicDeclaration, RecordKind

# ------------------------------------------------- the public declaration
#
# DESIGN.md, "QR codes and the consumer page": when a lot is released, the
# enterprise's ledger gets a public declaration entry holding exactly the
# consumer-facing facts. The platform writes it in the transaction of the
# release test (records.service), computing it here from the derived rows; the
# projection recomputes it the same way and refuses a declaration that does not
# state what the ledger says, so a replay proves each declaration true to the
# records before it.
#
# What makes a declaration due, for a lot:
# - none yet, and the lot's latest release test (by tested_at) passes: the first
#   declaration (a failing test of an unreleased lot is never published);
# - one already, and the facts it would state now differ from the latest one (a
#   failing re-test, a correction of the test, the lot, its materials, the
#   product, a supplier or the producer): a new declaration naming the one it
#   supersedes. Nothing is deleted; the consumer page shows the latest.


def _current_body(store: Store, row: Row) -> Row:
    """The record a derived row stands for now: its entry's body, or its latest correction's."""
    body = store.entry_body(row["current_seq"])
    if body is None:
        raise RecordError.at(msg=f"entry {row['current_seq']} is missing", type="not_found")
    return body if row["current_seq"] == row["record_seq"] else body["record"]


def latest_release_test(store: Store, lot_seq: int) -> Row | None:
    """The lot's latest release test by the time it was tested (then by seq)."""
    tests = store.find("release_tests", lot_seq=lot_seq)
    return max(tests, key=lambda t: (instant(t["tested_at"]), t["record_seq"]), default=None)


def latest_declaration(store: Store, lot_seq: int) -> Row | None:
    return max(
        store.find("public_declarations", lot_seq=lot_seq),
        key=lambda r: r["record_seq"],
        default=None,
    )


def declared_facts(store: Store, lot: Row) -> Row:
    """The consumer-facing facts of a lot as the ledger states them now.

    Product, specification, standard, GTIN, producer and licence, lot, production
    date, best-before, the latest release test's conclusion and items, and the
    names of the suppliers of its main ingredients (raw materials, not additives
    or packaging). Never a customer, a quantity, an inspector or a note.
    """
    ent = _first(store, "enterprises", "the enterprise's registration")
    product = _first(store, "products", "product", record_seq=lot["product_seq"])
    pdata = product_data(product)
    producer = {"name": ent["name"], "credit_code": ent["credit_code"], "address": ent["address"]}
    if ent.get("licence_no"):
        producer["licence_no"] = ent["licence_no"]
    facts: Row = {
        "lot_code": lot["code"],
        "product": product["name"],
        "specification": pdata["specification"],
        "producer": producer,
        "production_date": lot["production_date"],
    }
    optional = {
        "gtin": lot.get("gtin"),
        "standard": pdata.get("standard"),
        "best_before": lot.get("best_before"),
    }
    facts.update({k: v for k, v in optional.items() if v})
    test = latest_release_test(store, lot["record_seq"])
    if test is not None:
        body = _current_body(store, test)
        facts["release_test"] = {
            "conclusion": body["conclusion"],
            "items": [
                {k: i[k] for k in ("item", "result", "unit", "limit", "passed") if k in i}
                for i in body["items"]
            ],
        }
    ingredients: list[Row] = []
    for use in sorted(store.find("lot_inputs", record_seq=lot["record_seq"]), key=_line):
        ml = _first(store, "material_lots", "material lot", record_seq=use["material_lot_seq"])
        if ml["material_type"] != "raw_material":
            continue
        suppliers = store.find("suppliers", record_seq=ml["supplier_seq"])
        if not suppliers:
            continue
        item = {"material": ml["material_name"], "supplier": suppliers[0]["name"]}
        if item not in ingredients:
            ingredients.append(item)
    facts["main_ingredients"] = ingredients
    return facts


def _line(row: Row) -> int:
    return int(row["line"])


def _first(store: Store, table: str, what: str, **where: Any) -> Row:
    rows = store.find(table, **where)
    if not rows:
        raise RecordError.at(msg=f"{what} {where or ''} is missing", type="not_found")
    return rows[0]


def facts_digest(facts: Row) -> str:
    return hashlib.sha256(canonical_dumps(facts)).hexdigest()


def declaration_due(store: Store, lot: Row) -> Row | None:
    """The body of the public declaration the lot needs now, or None (see above)."""
    facts = declared_facts(store, lot)
    previous = latest_declaration(store, lot["record_seq"])
    if previous is None:
        if facts.get("release_test", {}).get("conclusion") != "pass":
            return None
        return facts
    if previous["facts_sha256"] == facts_digest(facts):
        return None
    return {**facts, "supersedes": previous["record_seq"]}


def lots_to_declare(store: Store, kind: str, body: Row) -> set[int]:
    """The lots (record seqs) whose public declaration an entry of ``kind`` may change.

    Called before and after the entry applies: a corrected release test may move
    from one lot to another, and both then need a look.
    """
    if kind == RecordKind.RELEASE_TEST:
        return {lot["record_seq"] for lot in store.find("lots", code=body.get("lot_code"))}
    if kind != RecordKind.CORRECTION:
        return set()
    seq = body["corrects"]
    target = store.entry_kind(seq)
    if target == RecordKind.RELEASE_TEST:
        tested = {t["lot_seq"] for t in store.find("release_tests", record_seq=seq)}
        named = (body.get("record") or {}).get("lot_code")
        return tested | {lot["record_seq"] for lot in store.find("lots", code=named)}
    declared = {r["lot_seq"] for r in store.find("public_declarations")}
    if not declared:
        return set()
    lots: set[int] = set()
    if target == RecordKind.PRODUCTION_LOT:
        lots = {seq}
    elif target == RecordKind.MATERIAL_CHECK:
        lots = {u["record_seq"] for u in store.find("lot_inputs", material_lot_seq=seq)}
    elif target == RecordKind.SUPPLIER:
        for ml in store.find("material_lots", supplier_seq=seq):
            lots |= {
                u["record_seq"] for u in store.find("lot_inputs", material_lot_seq=ml["record_seq"])
            }
    elif target == RecordKind.PRODUCT:
        lots = {lot["record_seq"] for lot in store.find("lots", product_seq=seq)}
    elif target == RecordKind.ENTERPRISE:
        lots = declared
    return lots & declared


def _public_declaration(ctx: Ctx, b: Row) -> None:
    lot = ctx.one("lots", ("lot_code",), "lot", code=b["lot_code"])
    facts = declared_facts(ctx.store, lot)
    previous = latest_declaration(ctx.store, lot["record_seq"])
    expected = facts if previous is None else {**facts, "supersedes": previous["record_seq"]}
    if b != expected:
        differ = sorted(k for k in set(b) | set(expected) if b.get(k) != expected.get(k))
        raise RecordError.at(
            msg="the public declaration does not state the lot's recorded facts "
            f"(it differs in {', '.join(differ)})",
            type="declaration_mismatch",
        )
    ctx.put(
        "public_declarations",
        {
            "lot_seq": lot["record_seq"],
            "conclusion": (facts.get("release_test") or {}).get("conclusion"),
            "facts_sha256": facts_digest(facts),
        },
    )


SPEC = KindSpec(
    kind=RecordKind.PUBLIC_DECLARATION,
    schema=PublicDeclaration,
    owner=Owner.ENTERPRISE,
    tables=(PublicDeclarationRow.__table__,),
    project=_public_declaration,
    label=N_("Public declaration"),
    system=True,
    public=True,
    form=False,
)
