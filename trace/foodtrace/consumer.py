"""What a consumer may see of a lot: the public facts, any recall notice, and their proofs.

Only consumer-facing facts leave this module (DESIGN.md, "QR codes and the
consumer page"): product, specification, producer and licence, lot, dates,
the release test's conclusion and items, the suppliers of the main
ingredients, and the public recall notices. Never customers, quantities sold,
prices, users or internal notes.

A released lot's facts are read from its latest public declaration entry (the
platform appends one when the lot is released, records.projection), so what
the page shows is what the entry states; the page also carries the C2SP
``tlog-proof@v1`` bundles of the lot's public entries (its declarations, and
any public recall entry naming it in an authority's ledger), which anyone can
verify offline with the platform's verifier key. Only those two kinds of
entry are ever proven to the public (:data:`schemas.records.PUBLIC_KINDS`).

The same module gives a lot's label (what is printed under its QR code).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Engine, Select, and_, bindparam, exists, func, or_, select
from sqlmodel import Session

from foodtrace.accounts.models import Enterprise
from foodtrace.cases.models import RecalledLot
from foodtrace.cases.service import recalls_of_lot
from foodtrace.clock import Clock
from foodtrace.db import write_session
from foodtrace.digital_link import lot_uri
from foodtrace.errors import NotFound
from foodtrace.ledger.checkpoints import (
    LedgerDamaged,
    checkpoint_at,
    entry_proof,
    latest_checkpoint,
    leaf_hashes,
    leaf_hashes_after,
)
from foodtrace.ledger.models import Entry, Ledger, SignedCheckpoint
from foodtrace.ledger.service import get_entry
from foodtrace.records.models import Lot, Product, PublicDeclarationRow, ReleaseTest
from foodtrace.tlog.checkpoint import TLogProof
from foodtrace.tlog.merkle import ProofTree
from foodtrace.tlog.signer import CheckpointSigner, SignerError
from schemas.records import PUBLIC_KINDS

log = logging.getLogger("foodtrace.consumer")


def _name(
    *, credit_code: str | None, gtin: str | None, lot_code: str
) -> tuple[str, dict[str, str]] | None:
    """How a URI names a lot ("credit_code" or "gtin") and the statement's parameters;
    None for a name that can name no lot."""
    if credit_code is not None:
        return "credit_code", {"credit_code": credit_code.upper(), "lot_code": lot_code}
    if gtin is not None:
        if not gtin.isascii() or not gtin.isdigit() or len(gtin) not in (8, 12, 13, 14):
            return None
        # Stored GTINs are GTIN-14; a URI may write a GTIN-13 without its leading 0.
        full = gtin.zfill(14)
        return "gtin", {"gtin": full, "gtin_short": full.lstrip("0"), "lot_code": lot_code}
    return None


def _named(q: Select[*tuple[Any, ...]], by: str) -> Select[*tuple[Any, ...]]:
    """``q`` (over enterprises joined to lots) narrowed to the lot named ``by`` (:func:`_name`)."""
    q = q.where(Lot.code == bindparam("lot_code"))
    if by == "credit_code":
        return q.where(Enterprise.credit_code == bindparam("credit_code"))
    return q.where(or_(Lot.gtin == bindparam("gtin"), Lot.gtin == bindparam("gtin_short")))


# The statements are built once (SQLAlchemy then finds their compiled form by identity):
# building and keying a statement of five joins cost more than half its execution's CPU.
@cache
def _lot_statement(by: str) -> Select[Any]:
    return _named(select(Enterprise, Lot).join(Lot, Lot.enterprise_id == Enterprise.id), by)


@cache
def _page_statement(by: str) -> Select[Any]:
    if by == "lot":
        return _page_query().where(
            Lot.enterprise_id == bindparam("enterprise_id"), Lot.record_seq == bindparam("lot_seq")
        )
    return _named(_page_query(), by)


def find_public_lot(
    session: Session, *, credit_code: str | None = None, gtin: str | None = None, lot_code: str
) -> tuple[Enterprise, Lot] | None:
    """A lot by (credit code, lot code), or by (GTIN, lot code) as a GS1 Digital Link names it."""
    named = _name(credit_code=credit_code, gtin=gtin, lot_code=lot_code)
    if named is None:
        return None
    row = session.execute(_lot_statement(named[0]), named[1]).first()
    return (row[0], row[1]) if row else None


@dataclass(frozen=True)
class PublicLotRead:
    """What the consumer page reads of a lot, in one statement (:func:`read_public_lot`).

    ``declarations`` are the lot's public declaration entries, oldest first;
    ``signed_size`` is the size of the ledger's latest signed checkpoint (None:
    none yet), read in the same statement, so a proof made against it is made
    against the latest; ``recalled`` says whether some public recall notice names
    the lot (the notices themselves are read only then).
    """

    enterprise: Enterprise
    lot: Lot
    origin: str
    declarations: tuple[Entry, ...]
    signed_size: int | None
    recalled: bool


def _page_query() -> Select[Any]:
    signed = (
        select(func.max(SignedCheckpoint.size))
        .where(SignedCheckpoint.ledger_id == Enterprise.id)
        .scalar_subquery()
    )
    recalled = exists().where(
        RecalledLot.credit_code == Enterprise.credit_code, RecalledLot.lot_code == Lot.code
    )
    return (
        select(Enterprise, Lot, Ledger.origin, Entry, signed, recalled)
        .join(Lot, Lot.enterprise_id == Enterprise.id)
        .join(Ledger, Ledger.id == Enterprise.id)
        .outerjoin(
            PublicDeclarationRow,
            and_(
                PublicDeclarationRow.enterprise_id == Lot.enterprise_id,
                PublicDeclarationRow.lot_seq == Lot.record_seq,
            ),
        )
        .outerjoin(
            Entry,
            and_(
                Entry.ledger_id == PublicDeclarationRow.enterprise_id,
                Entry.seq == PublicDeclarationRow.record_seq,
            ),
        )
        .order_by(Enterprise.id, Lot.record_seq, PublicDeclarationRow.record_seq)
    )


def _page_read(rows: list[Any]) -> PublicLotRead | None:
    """The first lot of the rows (one row per declaration of it, or one without any)."""
    if not rows:
        return None
    enterprise, lot, origin, _, signed_size, recalled = rows[0]
    return PublicLotRead(
        enterprise=enterprise,
        lot=lot,
        origin=origin,
        declarations=tuple(r[3] for r in rows if r[1] is lot and r[3] is not None),
        signed_size=signed_size,
        recalled=bool(recalled),
    )


def read_public_lot(
    session: Session, *, credit_code: str | None = None, gtin: str | None = None, lot_code: str
) -> PublicLotRead | None:
    """The lot a URI names (as :func:`find_public_lot`), with what its page shows, in one
    statement: the lot, its ledger's origin and latest signed size, its declarations'
    entries, and whether a recall names it."""
    named = _name(credit_code=credit_code, gtin=gtin, lot_code=lot_code)
    if named is None:
        return None
    return _page_read(list(session.execute(_page_statement(named[0]), named[1]).all()))


def _best_before(lot: Lot, product: Product) -> str | None:
    """The lot's best-before date: as recorded, else production date + shelf life."""
    if lot.best_before is not None or not product.shelf_life_days:
        return lot.best_before
    made = date.fromisoformat(lot.production_date)
    return (made + timedelta(days=product.shelf_life_days)).isoformat()


@dataclass(frozen=True)
class PublicEntryRef:
    """A public entry of some ledger: a lot's declaration, or a recall notice naming it."""

    ledger_id: int
    seq: int


class ProofError(RuntimeError):
    """An entry that may not be proven to the public (it is not a public kind)."""


class PublicProver:
    """Makes, and remembers, the tlog-proof@v1 bundles of public entries.

    A bundle is made against the ledger's latest signed checkpoint when that
    covers the entry: a read. Otherwise a checkpoint is signed on demand, in a
    write transaction of its own (the page's read session stays a read). An
    inclusion proof against a signed checkpoint stays valid for good, so each
    bundle is made once per entry and kept (in memory, the ``size`` most
    recently used): a page view then costs no proof computation at all.

    A caller that read the ledger's latest signed size in its own statement
    (:func:`read_public_lot`) passes it, and the checkpoint signed at that size is
    taken from memory: a signed checkpoint never changes, so what is kept is the
    latest one seen per ledger, used only when it is still the latest.
    """

    def __init__(
        self,
        *,
        engine: Engine,
        signer: CheckpointSigner,
        clock: Clock,
        size: int = 4096,
        trees: int = 8,
    ) -> None:
        self.engine = engine
        self.signer = signer
        self.clock = clock
        self.size = size
        self.trees = trees
        self._cache: OrderedDict[tuple[int, int], str] = OrderedDict()
        self._trees: OrderedDict[tuple[int, int], ProofTree] = OrderedDict()
        self._signed: dict[int, tuple[int, str]] = {}  # ledger: (size, note), one per ledger
        self._lock = threading.Lock()

    def signed(self, session: Session, ledger_id: int, size: int | None) -> tuple[int, str] | None:
        """The ledger's latest signed checkpoint as (size, note), None if none is.

        ``size`` is the latest signed size if the caller read it (then the note is
        taken from memory when it is the one kept, else read by its key), None to
        read the latest here.
        """
        if size is not None:
            with self._lock:
                known = self._signed.get(ledger_id)
            if known is not None and known[0] == size:
                return known
            row = checkpoint_at(session=session, ledger_id=ledger_id, size=size)
        else:
            row = latest_checkpoint(session=session, ledger_id=ledger_id)
        if row is None:
            return None
        known = (row.size, row.note)
        with self._lock:
            if ledger_id not in self._signed or self._signed[ledger_id][0] < row.size:
                self._signed[ledger_id] = known
        return known

    def tree(self, session: Session, ledger_id: int, size: int) -> ProofTree:
        """The ledger's tree at a signed size, kept for the ``trees`` most recently used:
        every lot of an enterprise is proven against the same latest checkpoint. When the
        ledger has grown since a tree kept, that tree is grown by the entries after it
        (read from its size on) rather than read again from every leaf."""
        key = (ledger_id, size)
        with self._lock:
            tree = self._trees.get(key)
            if tree is not None:
                self._trees.move_to_end(key)
                return tree
            smaller = [t for (lid, n), t in self._trees.items() if lid == ledger_id and n < size]
        if smaller:
            base = max(smaller, key=lambda t: t.size)
            tree = base.grown(
                leaf_hashes_after(session=session, ledger_id=ledger_id, after=base.size, size=size)
            )
        else:
            tree = ProofTree(leaf_hashes(session=session, ledger_id=ledger_id, size=size))
        with self._lock:
            self._trees[key] = tree
            while len(self._trees) > self.trees:
                self._trees.popitem(last=False)
        return tree

    @property
    def verifier_key(self) -> str:
        """The platform's C2SP verifier key (``name+keyid+base64``) that checks every proof."""
        return self.signer.verifier.vkey

    def proofs(
        self,
        session: Session,
        refs: list[PublicEntryRef],
        *,
        signed_sizes: dict[int, int] | None = None,
    ) -> list[str]:
        """The bundles of ``refs`` as text; an entry that cannot be proven now is left out.

        ``signed_sizes`` holds the latest signed size of ledgers the caller read it of.
        """
        out = []
        for ref in refs:
            key = (ref.ledger_id, ref.seq)
            with self._lock:
                text = self._cache.get(key)
                if text is not None:
                    self._cache.move_to_end(key)
            if text is None:
                try:
                    size = (signed_sizes or {}).get(ref.ledger_id)
                    text = self.prove(session, ref, signed_size=size).text()
                except (SignerError, LedgerDamaged) as exc:
                    # The page still shows the record, without the claim; verification
                    # (foodtrace verify) names what is wrong with the ledger.
                    log.error("no proof of entry %s of ledger %s: %s", ref.seq, ref.ledger_id, exc)
                    continue
                with self._lock:
                    self._cache[key] = text
                    while len(self._cache) > self.size:
                        self._cache.popitem(last=False)
            out.append(text)
        return out

    def prove(
        self, session: Session, ref: PublicEntryRef, *, signed_size: int | None = None
    ) -> TLogProof:
        """The bundle of one public entry; :class:`ProofError` for any other kind.

        ``signed_size``: the ledger's latest signed size, if the caller read it.
        """
        entry = get_entry(session=session, ledger_id=ref.ledger_id, seq=ref.seq)
        kind = json.loads(entry.body).get("kind")
        if kind not in PUBLIC_KINDS or entry.kind not in PUBLIC_KINDS:
            raise ProofError(f"entry {ref.seq} is a {kind}: only public entries are proven")
        signed = self.signed(session, ref.ledger_id, signed_size)
        if signed is not None and signed[0] >= ref.seq:
            size, note = signed
            path = self.tree(session, ref.ledger_id, size).inclusion_proof(ref.seq - 1)
            return TLogProof(
                index=ref.seq - 1, hashes=tuple(path), checkpoint=note, extra=entry.body
            )
        with write_session(self.engine) as writing:
            return entry_proof(
                session=writing,
                ledger_id=ref.ledger_id,
                seq=ref.seq,
                signer=self.signer,
                clock=self.clock,
            )


def _recall_refs(session: Session, enterprise: Enterprise, lot: Lot) -> list[PublicEntryRef]:
    rows = session.execute(
        select(RecalledLot.ledger_id, RecalledLot.record_seq)
        .where(RecalledLot.credit_code == enterprise.credit_code, RecalledLot.lot_code == lot.code)
        .distinct()
        .order_by(RecalledLot.ledger_id, RecalledLot.record_seq)
    ).all()
    return [PublicEntryRef(ledger_id, seq) for ledger_id, seq in rows]


def _from_tables(session: Session, enterprise: Enterprise, lot: Lot) -> dict[str, Any]:
    """The facts of a lot without a declaration (not released yet), from the derived tables."""
    product = session.get(Product, (enterprise.id, lot.product_seq))
    assert product is not None
    data = json.loads(product.data)
    tests = session.execute(
        select(ReleaseTest)
        .where(ReleaseTest.enterprise_id == enterprise.id, ReleaseTest.lot_seq == lot.record_seq)
        .order_by(ReleaseTest.tested_at)
    ).scalars()
    passed = [t for t in tests if t.conclusion == "pass"]
    return {
        "product": product.name,
        "specification": data.get("specification"),
        "standard": data.get("standard"),
        "gtin": lot.gtin,
        "lot": lot.code,
        "production_date": lot.production_date,
        "best_before": _best_before(lot, product),
        "producer": {
            "name": enterprise.name,
            "credit_code": enterprise.credit_code,
            "licence_no": enterprise.licence_no,
            "address": enterprise.address,
        },
        "release_test": (
            {
                "passed": True,
                "conclusion": "pass",
                "items": [{"item": i, "passed": ok} for i, ok in json.loads(passed[-1].items)],
            }
            if passed
            else None
        ),
        "main_ingredients": [],
    }


def _from_declaration(body: dict[str, Any]) -> dict[str, Any]:
    """The page's facts, exactly as the declaration entry states them."""
    test = body.get("release_test")
    return {
        "product": body["product"],
        "specification": body["specification"],
        "standard": body.get("standard"),
        "gtin": body.get("gtin"),
        "lot": body["lot_code"],
        "production_date": body["production_date"],
        "best_before": body.get("best_before"),
        "producer": {
            "name": body["producer"]["name"],
            "credit_code": body["producer"]["credit_code"],
            "licence_no": body["producer"].get("licence_no"),
            "address": body["producer"]["address"],
        },
        "release_test": (
            {
                "passed": test["conclusion"] == "pass",
                "conclusion": test["conclusion"],
                "items": test["items"],
            }
            if test
            else None
        ),
        "main_ingredients": body.get("main_ingredients", []),
    }


def public_lot(
    session: Session, enterprise: Enterprise, lot: Lot, *, prover: PublicProver | None = None
) -> dict[str, Any]:
    """The consumer page's facts of a lot, its recall notices and the proofs of both.

    ``declaration`` names the entry the facts come from (``log`` is the ledger's
    origin), or is None for a lot not released yet, whose facts then come from
    the derived tables and are proven by nothing. ``proofs`` (empty without a
    ``prover``) holds the tlog-proof@v1 bundles of every public entry of the lot:
    its declarations, oldest first, then the recall notices naming it.
    """
    params = {"enterprise_id": enterprise.id, "lot_seq": lot.record_seq}
    read = _page_read(list(session.execute(_page_statement("lot"), params).all()))
    assert read is not None
    return public_facts(session, read, prover=prover)


def public_facts(
    session: Session, read: PublicLotRead, *, prover: PublicProver | None = None
) -> dict[str, Any]:
    """:func:`public_lot` of a lot already read (:func:`read_public_lot`): no further
    statement unless the lot is not released yet, a recall names it, or a proof is new."""
    enterprise, lot = read.enterprise, read.lot
    seqs = [entry.seq for entry in read.declarations]
    if read.declarations:
        data = _from_declaration(json.loads(read.declarations[-1].body)["body"])
        data["declaration"] = {"log": read.origin, "seq": seqs[-1]}
    else:
        data = _from_tables(session, enterprise, lot)
        data["declaration"] = None
    # The notices are read only for a lot some public recall names (most lots: none).
    recall_refs = _recall_refs(session, enterprise, lot) if read.recalled else []
    recalls = recalls_of_lot(session, enterprise.credit_code, lot.code) if recall_refs else []
    origins: dict[str, str] = {}
    if recalls:
        codes = sorted({r["log"] for r in recalls})
        origins = dict(
            session.execute(
                select(Ledger.credit_code, Ledger.origin).where(Ledger.credit_code.in_(codes))  # type: ignore[attr-defined]
            ).all()
        )
    data["recalls"] = [
        {
            **{
                k: r[k]
                for k in ("case", "authority", "announced_at", "reason", "state", "why", "via")
            },
            "index": r["index"],
            "entry": {"log": origins.get(r["log"]), "seq": r["seq"]},
        }
        for r in recalls
    ]
    refs = [PublicEntryRef(enterprise.id, s) for s in seqs] + recall_refs
    signed = {} if read.signed_size is None else {enterprise.id: read.signed_size}
    data["proofs"] = prover.proofs(session, refs, signed_sizes=signed) if prover is not None else []
    return data


def public_uri(enterprise: Enterprise, lot: Lot, base_url: str) -> str:
    """The URI of the lot's QR code: its GS1 Digital Link with a GTIN, else the platform path."""
    return lot_uri(base_url, lot_code=lot.code, gtin=lot.gtin, credit_code=enterprise.credit_code)


@dataclass(frozen=True)
class LotLabel:
    """What is printed on a lot's label: its QR code's URI and the words under it."""

    uri: str
    product: str
    specification: str | None
    lot: str
    production_date: str
    best_before: str | None


def lot_label(*, session: Session, enterprise_id: int, lot_code: str, base_url: str) -> LotLabel:
    """The label of one of an enterprise's own lots; NotFound when it has no such lot."""
    row = session.execute(
        select(Enterprise, Lot)
        .join(Lot, Lot.enterprise_id == Enterprise.id)
        .where(Enterprise.id == enterprise_id, Lot.code == lot_code)
    ).first()
    if row is None:
        raise NotFound(f"no lot {lot_code!r}")
    enterprise, lot = row
    product = session.get(Product, (enterprise.id, lot.product_seq))
    assert product is not None
    return LotLabel(
        uri=public_uri(enterprise, lot, base_url),
        product=product.name,
        specification=json.loads(product.data).get("specification"),
        lot=lot.code,
        production_date=lot.production_date,
        best_before=_best_before(lot, product),
    )
