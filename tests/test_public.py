"""The public declaration and the consumer page's proofs (DESIGN.md, "QR codes and the consumer
page"): a released lot's ledger gets one entry holding exactly the consumer-facing facts; the
page's JSON carries the tlog-proof@v1 bundles of the lot's public entries, which verify offline
with the platform's verifier key; no private entry is ever proven, not even as bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from foodtrace.config import Settings
from foodtrace.consumer import ProofError, PublicEntryRef
from foodtrace.db import read_session, write_session
from foodtrace.errors import RecordError
from foodtrace.ledger import service as ledger
from foodtrace.ledger.models import Entry, SignedCheckpoint
from foodtrace.records.models import PublicDeclarationRow
from foodtrace.tlog.checkpoint import TLogProof, verify_entry_proof
from foodtrace.tlog.note import Verifier
from foodtrace.verify import verify_ledger
from schemas.records import PUBLIC_KINDS
from webapp.main import create_app

import factories as f
from snapshots import snapshot

PLATFORM = "trace.example.cn"
ORIGIN = f"{PLATFORM}/ledger/{f.BEVERAGE}"
GTIN14 = "06921234560013"
PAGE = f"/01/{GTIN14}/10/PJ20260301A"
JSON = {"Accept": "application/json"}
VENDOR = Path(__file__).resolve().parents[1] / "web/static/vendor/noble-ed25519-3.2.0.js"

# What the factories' released lot declares, written out from tests/factories.py.
DECLARED = {
    "lot_code": "PJ20260301A",
    "gtin": GTIN14,
    "product": "石榴汁饮料",
    "specification": "500 mL/瓶",
    "standard": "GB 7101",
    "producer": {
        "name": "枣庄峄城石榴饮品有限公司",
        "credit_code": f.BEVERAGE,
        "licence_no": "SC10637040400012",
        "address": "山东省枣庄市峄城区榴园路 8 号",
    },
    "production_date": "2026-03-01",
    "best_before": "2027-03-01",
    "release_test": {
        "conclusion": "pass",
        "items": [
            {"item": "菌落总数", "result": "40", "unit": "CFU/mL", "limit": "≤100", "passed": True},
            {"item": "大肠菌群", "result": "<1", "unit": "CFU/mL", "limit": "≤1", "passed": True},
        ],
    },
    "main_ingredients": [{"material": "白砂糖", "supplier": "枣庄鲁南糖业有限公司"}],
}

# Private facts of the factories' ledger: none may reach a declaration or a proof.
PRIVATE = [
    "枣庄惠民食品经销有限公司", "DIST01", f.DISTRIBUTOR, "13806321234",  # the customer
    "赵丽", "王敏", "李强", "JC-20260301-01",  # inspector, operator, report number
    "ML-0301-01", "HG-20260301", "BT20260301", "SUGAR01",  # material lot, certificate, batch
    '"qa"', '"400"', '"箱"', "sale", "ccp", "86.5",  # the user, quantities, a CCP reading
]  # fmt: skip


def _entry(engine, lid: int, seq: int) -> tuple[dict[str, Any], bytes]:
    with read_session(engine) as s:
        data = bytes(ledger.get_entry(session=s, ledger_id=lid, seq=seq).body)
    return json.loads(data), data


def _declarations(engine, lid: int) -> list[tuple[int, dict[str, Any]]]:
    with read_session(engine) as s:
        rows = s.execute(
            select(Entry.seq, Entry.body)
            .where(Entry.ledger_id == lid, Entry.kind == "public_declaration")
            .order_by(Entry.seq)
        ).all()
    return [(seq, json.loads(body)["body"]) for seq, body in rows]


def _verified(engine, lid: int) -> None:
    with read_session(engine) as s:
        report = verify_ledger(session=s, ledger_id=lid)
    assert report.ok, report.problems[:3]


# --- the declaration --------------------------------------------------------------------


def test_a_released_lot_gets_one_declaration_of_exactly_the_public_facts(engine, clock) -> None:
    lid = f.beverage_ledger(engine, clock)
    env, data = _entry(engine, lid, 9)
    assert env["kind"] == "public_declaration"
    assert env["actor"] == "system"  # no user's name goes public
    assert "corrects" not in env
    assert env["body"] == DECLARED
    assert env["recorded_at"] == _entry(engine, lid, 8)[0]["recorded_at"]  # same transaction
    text = data.decode()
    for secret in PRIVATE:
        assert secret not in text, secret
    assert [seq for seq, _ in _declarations(engine, lid)] == [9]  # once per release
    with read_session(engine) as s:
        row = s.get(PublicDeclarationRow, (lid, 9))
        assert (row.lot_seq, row.conclusion) == (6, "pass")
    _verified(engine, lid)  # the replay recomputes the facts and finds them stated


def test_the_release_tests_result_names_the_declaration_that_followed(engine, clock) -> None:
    lid = f.register(engine, clock)
    for kind, data in (
        ("supplier", f.supplier()),
        ("product", f.product()),
        ("material_check", f.material_check()),
        ("production_lot", f.production_lot()),
    ):
        f.add(engine, clock, lid, kind, data)
    tested = f.add(engine, clock, lid, "release_test", f.release_test())
    assert tested.followed_by == [tested.seq + 1]
    again = f.add(engine, clock, lid, "release_test", f.release_test(report_no="JC-2"))
    assert again.followed_by == []  # the same facts: nothing new to declare


def _lot_with_two_materials(engine, clock) -> int:
    lid = f.register(engine, clock)
    f.add(engine, clock, lid, "supplier", f.supplier())
    f.add(
        engine,
        clock,
        lid,
        "supplier",
        f.supplier(code="ACID", name="山东柠檬酸厂", credit_code=None),
    )
    f.add(engine, clock, lid, "customer", f.customer())
    f.add(engine, clock, lid, "product", f.product())
    f.add(engine, clock, lid, "material_check", f.material_check())
    additive = f.material_check(
        material_lot="ML-ADD-01",
        material_name="柠檬酸",
        material_type="food_additive",
        supplier_code="ACID",
        quantity="20",
        supplier_licence_checked=False,
        supplier_licence_no=None,
    )
    f.add(engine, clock, lid, "material_check", additive)
    materials = [
        {"material_lot": "ML-0301-01", "quantity": "300", "unit": "kg"},
        {"material_lot": "ML-ADD-01", "quantity": "2", "unit": "kg"},
    ]
    f.add(engine, clock, lid, "production_lot", f.production_lot(materials=materials))
    return lid


def test_declarations_follow_re_tests_and_corrections_and_nothing_is_deleted(engine, clock) -> None:
    lid = _lot_with_two_materials(engine, clock)
    failing_items = [
        {"item": "菌落总数", "result": "300", "unit": "CFU/mL", "limit": "≤100", "passed": False},
        {"item": "大肠菌群", "result": "<1", "unit": "CFU/mL", "limit": "≤1", "passed": True},
    ]
    # a failing first test: the lot is not released, nothing is published
    first = f.add(
        engine, clock, lid, "release_test", f.release_test(items=failing_items, conclusion="fail")
    )
    assert first.followed_by == []
    assert _declarations(engine, lid) == []
    # a passing re-test releases it: the first declaration
    retest = f.add(
        engine, clock, lid, "release_test", f.release_test(tested_at="2026-03-01T17:00:00+08:00")
    )
    [(d1, body)] = _declarations(engine, lid)
    assert retest.followed_by == [d1]
    assert body["release_test"]["conclusion"] == "pass"
    assert "supersedes" not in body
    # only the raw material: the additive is not a main ingredient
    assert body["main_ingredients"] == [{"material": "白砂糖", "supplier": "枣庄鲁南糖业有限公司"}]
    assert "柠檬酸" not in json.dumps(body, ensure_ascii=False)
    # a correction of what the public does not see (the inspector): no new declaration
    fix = f.add(
        engine,
        clock,
        lid,
        "correction",
        {
            "corrects": retest.seq,
            "reason": "检验员姓名录错",
            "record": f.release_test(tested_at="2026-03-01T17:00:00+08:00", inspector="孙红"),
        },
    )
    assert fix.followed_by == []
    # a sale changes nothing public either
    assert f.add(engine, clock, lid, "sale", f.sale()).followed_by == []
    # a later failing re-test: a new declaration saying so, superseding the first
    clock.advance(timedelta(days=1))
    late = f.add(
        engine,
        clock,
        lid,
        "release_test",
        f.release_test(
            tested_at="2026-03-02T09:00:00+08:00", items=failing_items, conclusion="fail"
        ),
    )
    [_, (d2, body)] = _declarations(engine, lid)
    assert late.followed_by == [d2]
    assert body["supersedes"] == d1
    assert body["release_test"]["conclusion"] == "fail"
    assert body["release_test"]["items"][0] == failing_items[0]
    # the failing re-test was a typo: its correction declares the lot passed again
    fixed = f.add(
        engine,
        clock,
        lid,
        "correction",
        {
            "corrects": late.seq,
            "reason": "结果录错，复核合格",
            "record": f.release_test(tested_at="2026-03-02T09:00:00+08:00"),
        },
    )
    [*_, (d3, body)] = _declarations(engine, lid)
    assert fixed.followed_by == [d3]
    assert (body["supersedes"], body["release_test"]["conclusion"]) == (d2, "pass")
    # a correction of the product's specification reaches the public too
    product_seq = 5
    assert _entry(engine, lid, product_seq)[0]["kind"] == "product"
    spec = f.add(
        engine,
        clock,
        lid,
        "correction",
        {
            "corrects": product_seq,
            "reason": "规格录错",
            "record": f.product(specification="330 mL/瓶"),
        },
    )
    [*_, (d4, body)] = _declarations(engine, lid)
    assert spec.followed_by == [d4]
    assert (body["supersedes"], body["specification"]) == (d3, "330 mL/瓶")
    # every declaration stays; the derived table knows them all, and the replay agrees
    assert [d for d, _ in _declarations(engine, lid)] == [d1, d2, d3, d4]
    with read_session(engine) as s:
        rows = s.execute(
            select(PublicDeclarationRow.record_seq, PublicDeclarationRow.conclusion)
            .where(PublicDeclarationRow.enterprise_id == lid)
            .order_by(PublicDeclarationRow.record_seq)
        ).all()
    assert [tuple(r) for r in rows] == [(d1, "pass"), (d2, "fail"), (d3, "pass"), (d4, "pass")]
    _verified(engine, lid)


def test_imported_release_tests_declare_their_lots(engine, clock) -> None:
    import test_imports as ti
    from schemas.records import RecordKind

    lid = _lot_with_two_materials(engine, clock)
    content = ti.records_file(RecordKind.RELEASE_TEST, [f.release_test()], keep_example=False)
    result = ti.do_import(engine, clock, lid, RecordKind.RELEASE_TEST, "t.xlsx", content)
    assert (result.errors, result.written) == ([], 1)
    [(seq, body)] = _declarations(engine, lid)
    assert seq == result.last_seq + 1
    assert body["release_test"]["conclusion"] == "pass"
    _verified(engine, lid)


def test_only_the_platform_writes_a_declaration_and_none_is_corrected(engine, clock) -> None:
    lid = f.beverage_ledger(engine, clock)
    before = snapshot(engine)
    with pytest.raises(RecordError, match="written by the platform") as exc:
        f.add(engine, clock, lid, "public_declaration", DECLARED)
    assert exc.value.problems[0].type == "system_kind"
    with pytest.raises(RecordError, match="the platform wrote") as exc:
        f.add(
            engine,
            clock,
            lid,
            "correction",
            {"corrects": 9, "reason": "改个名字", "record": {**DECLARED, "product": "特级果汁"}},
        )
    assert exc.value.problems[0].loc == ("corrects",)
    assert snapshot(engine) == before


def test_a_declaration_that_misstates_the_records_fails_verification(engine, clock) -> None:
    """Written behind the platform's back, with a consistent chain: the replay refuses it."""
    lid = f.beverage_ledger(engine, clock)
    with write_session(engine) as s:
        head = ledger.lock_head(session=s, ledger_id=lid)
        forged = {**DECLARED, "product": "石榴汁饮料（有机）", "supersedes": 9}
        entry = ledger.build_entry(
            head=head,
            kind="public_declaration",
            body=forged,
            actor="system",
            event_time="2026-03-02T00:30:00Z",
            recorded_at="2026-03-02T00:30:00Z",
            salt=ledger.new_salt(),
        )
        ledger.write_entry(session=s, head=head, entry=entry)
    with read_session(engine) as s:
        report = verify_ledger(session=s, ledger_id=lid)
    assert (report.first.seq, report.first.check) == (11, "replay"), report.problems
    assert "does not state the lot's recorded facts" in report.first.message
    assert "product" in report.first.message


# --- the proofs on the consumer page ---------------------------------------------------------


@pytest.fixture
def web(db_url, engine, clock) -> Iterator[TestClient]:
    app = create_app(
        Settings(database_url=db_url, public_base_url="https://trace.example.cn"),
        clock=clock,
        engine=engine,
    )
    with TestClient(app) as c:
        yield c


def _key(web: TestClient) -> Verifier:
    """The verifier key as a consumer holds it: its published text, nothing else."""
    return Verifier.from_vkey(web.app.state.signer.verifier.vkey)


def _checkpoints(engine) -> int:
    with read_session(engine) as s:
        return s.execute(select(func.count()).select_from(SignedCheckpoint)).scalar_one()


def test_the_json_proofs_verify_offline_with_the_verifier_key(web, engine, clock) -> None:
    lid = f.beverage_ledger(engine, clock)
    assert _checkpoints(engine) == 0  # background signing is off in tests: signed on demand
    data = web.get(PAGE, headers=JSON).json()
    assert data["declaration"] == {"log": ORIGIN, "seq": 9}
    [text] = data["proofs"]
    proven = verify_entry_proof(text, verifiers=[_key(web)], origin=ORIGIN)
    assert proven.entry["kind"] == "public_declaration"
    assert proven.entry["seq"] == 9
    assert proven.entry["body"] == DECLARED
    assert proven.proof.checkpoint.size == 10
    # what the page shows is what the proven entry states
    body = proven.entry["body"]
    for key in ("product", "specification", "standard", "gtin", "production_date", "best_before"):
        assert data[key] == body[key], key
    assert data["lot"] == body["lot_code"]
    assert data["producer"] == body["producer"]
    assert data["release_test"]["items"] == body["release_test"]["items"]
    assert data["main_ingredients"] == body["main_ingredients"]
    assert _checkpoints(engine) == 1
    # a proof is made once: the ledger grows, the page keeps its (still valid) proof
    f.add(engine, clock, lid, "customer", f.customer(code="LATER", name="后来的客户"))
    clock.advance(timedelta(seconds=5))
    again = web.get(PAGE, headers=JSON).json()
    assert again["proofs"] == [text]
    assert _checkpoints(engine) == 1
    # the bundle is strictly the C2SP text: reparsed, it prints the same
    assert TLogProof.parse(text).text() == text


def test_no_private_entry_is_ever_proven(web, engine, clock) -> None:
    lid = f.beverage_ledger(engine, clock)
    f.add(
        engine,
        clock,
        lid,
        "sale",
        f.sale(quantity="289", document_no="INV-7731-SECRET", notes="单价 12.85 元/箱"),
        actor="cashier-zhou",
    )
    clock.advance(timedelta(hours=1))
    case = f.recall(engine, clock, f.BEVERAGE, "PJ20260301A")
    data = web.get(PAGE, headers=JSON).json()
    assert [r["case"] for r in data["recalls"]] == [case]
    assert len(data["proofs"]) == 2  # the declaration, the recall notice
    kinds = []
    for text in data["proofs"]:
        proven = verify_entry_proof(text, verifiers=[_key(web)])
        assert proven.entry["kind"] in PUBLIC_KINDS
        kinds.append(proven.entry["kind"])
        extra = TLogProof.parse(text).extra
        assert extra is not None
        for secret in [*PRIVATE, '"289"', "INV-7731", "12.85", "cashier-zhou", '"reg"']:
            assert secret not in extra.decode(), secret
    assert kinds == ["public_declaration", "public_recall"]
    recall = verify_entry_proof(data["proofs"][1], verifiers=[_key(web)])
    assert recall.entry["log"] == data["recalls"][0]["entry"]["log"]
    assert recall.entry["log"].startswith(f"{PLATFORM}/ledger/11370404")  # the authority's
    assert {"credit_code": f.BEVERAGE, "lot_code": "PJ20260301A"}.items() <= recall.entry["body"][
        "lots"
    ][0].items()
    assert recall.entry["body"]["reason"] == data["recalls"][0]["reason"]
    # and asked directly, the prover refuses every private entry of both ledgers
    prover = web.app.state.prover
    with read_session(engine) as s:
        rows = s.execute(select(Entry.ledger_id, Entry.seq, Entry.kind)).all()
        for ledger_id, seq, kind in rows:
            if kind in PUBLIC_KINDS:
                continue
            with pytest.raises(ProofError, match="only public entries"):
                prover.prove(s, PublicEntryRef(ledger_id, seq))
            assert prover.proofs(s, []) == []


def test_the_page_carries_its_proofs_and_runs_no_inline_script(web, engine, clock) -> None:
    f.beverage_ledger(engine, clock)
    r = web.get(PAGE)
    assert r.status_code == 200
    html = r.text
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "default-src 'none'" in csp
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert [a.strip() for a, _ in scripts] == [
        'type="module" src="/static/lot-proof.js"',
        'type="application/json" id="lot-proofs"',
    ]
    data = json.loads(scripts[1][1])
    assert data["vkey"] == web.app.state.signer.verifier.vkey
    assert data["proofs"] == web.get(PAGE, headers=JSON).json()["proofs"]
    assert f'<code class="mono" id="proof-key">{data["vkey"]}</code>' in html
    assert "/.well-known/foodtrace/checkpoint-key" in html
    assert 'data-entry="trace.example.cn/ledger/91370404MA3F42206T#9"' in html
    # the proof section is hidden until the script has checked (JavaScript off: no claim)
    assert re.search(r'<section class="c-proof" id="proof" hidden', html)
    # everything the page may load stays under 100 KB, the fallback verifier included
    total = len(r.content)
    for ref in ("/static/app.css", "/static/lot-proof.js", "/static/vendor/noble-ed25519-3.2.0.js"):
        loaded = web.get(ref)
        assert loaded.status_code == 200, ref
        total += len(loaded.content)
    assert total < 100_000, total
    # an unreleased lot has nothing to prove: no script, no data
    other = f.production_lot(lot_code="PJ20260302A", production_date="2026-03-01")
    f.add(engine, clock, 1, "production_lot", other)
    html = web.get(f"/01/{GTIN14}/10/PJ20260302A").text
    assert "<script" not in html
    assert "data-entry" not in html


def test_the_vendored_verifier_is_the_published_package() -> None:
    """@noble/ed25519 3.2.0's index.js, unchanged (web/static/vendor/README.md)."""
    digest = hashlib.sha256(VENDOR.read_bytes()).hexdigest()
    assert digest == "a4f631d1876b5d9e43a86cd71194ca27b5e1451edf4ba4db9a418f40a475569a"
    assert VENDOR.with_suffix(".LICENSE").read_text().startswith("The MIT License")
    script = (VENDOR.parents[1] / "lot-proof.js").read_text()
    assert 'new URL("vendor/noble-ed25519-3.2.0.js", import.meta.url)' in script
    assert not re.search(r"https?://", script)  # no address of another site


def test_lots_released_before_declarations_existed_get_theirs_once(
    engine, clock, db_url, monkeypatch
) -> None:
    from typer.testing import CliRunner

    from foodtrace import cli
    from foodtrace.records import service

    with monkeypatch.context() as old_code:  # a ledger written before this feature
        old_code.setattr(service, "_declare", lambda **_: [])
        lid = f.beverage_ledger(engine, clock)
    assert _declarations(engine, lid) == []
    monkeypatch.setenv("TRACE_DATABASE_URL", db_url)
    cli._load_plugins()
    result = CliRunner().invoke(cli.app, ["declare"])
    assert result.exit_code == 0, result.output
    assert f"ok    {f.BEVERAGE}  1 declarations appended" in result.output
    [(seq, body)] = _declarations(engine, lid)
    assert (seq, body) == (10, DECLARED)
    again = CliRunner().invoke(cli.app, ["declare", "--enterprise", f.BEVERAGE])
    assert f"ok    {f.BEVERAGE}  0 declarations appended" in again.output
    _verified(engine, lid)


@pytest.mark.parametrize("size", [*range(1, 40), 63, 64, 65, 127, 128, 129, 1000])
def test_the_proof_tree_gives_the_rfc_9162_path_of_every_leaf(size: int) -> None:
    from foodtrace.consumer import ProofTree
    from foodtrace.tlog import merkle

    leaves = [hashlib.sha256(str(i).encode()).digest() for i in range(size)]
    tree = ProofTree(leaves)
    root = merkle.root(leaves)
    for index in range(size):
        path = tree.inclusion_proof(index)
        assert path == merkle.inclusion_proof(index, leaves)
        merkle.verify_inclusion(
            index=index, size=size, leaf_hash=leaves[index], proof=path, root=root
        )
    with pytest.raises(ValueError, match="0 <= index < size"):
        tree.inclusion_proof(size)


def test_a_grown_proof_tree_is_the_tree_of_all_its_leaves() -> None:
    """Grown from every smaller size (in one step or two), the tree holds the same hashes
    as the tree built from all its leaves, and the tree it grew from is unchanged."""
    from foodtrace.consumer import ProofTree

    leaves = [hashlib.sha256(str(i).encode()).digest() for i in range(70)]
    for size in [*range(1, 70), 70]:
        whole = ProofTree(leaves[:size])
        for m in range(size + 1):
            base = ProofTree(leaves[:m])
            before = [level.copy() for level in base.levels]
            grown = base.grown(leaves[m:size])
            assert (grown.size, grown.levels) == (size, whole.levels), (m, size)
            assert base.levels == before
            half = (m + size) // 2
            twice = base.grown(leaves[m:half]).grown(leaves[half:size])
            assert twice.levels == whole.levels, (m, half, size)
        assert [grown.inclusion_proof(i) for i in range(size)] == [
            whole.inclusion_proof(i) for i in range(size)
        ]


def test_a_grown_ledger_is_proven_from_the_tree_kept(web, engine, clock, monkeypatch) -> None:
    """After the ledger grows and is signed again, a new lot's proof comes from the kept tree
    grown by the new entries: the same bundle a fresh prover makes from every leaf."""
    from foodtrace.consumer import PublicProver
    from foodtrace.ledger.checkpoints import checkpoint

    lid = f.beverage_ledger(engine, clock)
    prover = web.app.state.prover
    with write_session(engine) as s:  # as the background signer does
        checkpoint(session=s, ledger_id=lid, signer=prover.signer, clock=clock)
    assert len(web.get(PAGE, headers=JSON).json()["proofs"]) == 1  # tree at size 10 kept
    assert list(prover._trees) == [(lid, 10)]
    with monkeypatch.context() as m:  # from now on no tree is read from every leaf
        m.setattr("foodtrace.consumer.leaf_hashes", None)
        text, seq, size = _grow_and_prove(web, engine, clock, lid)
    assert sorted(n for lid_, n in prover._trees if lid_ == lid) == [10, size]
    fresh = PublicProver(engine=engine, signer=prover.signer, clock=clock)
    with read_session(engine) as s:
        assert fresh.proofs(s, [PublicEntryRef(lid, seq)]) == [text]


def _grow_and_prove(web, engine, clock, lid: int) -> tuple[str, int, int]:
    from foodtrace.ledger.checkpoints import checkpoint

    prover = web.app.state.prover
    f.add(engine, clock, lid, "production_lot", f.production_lot(lot_code="PJ20260302A"))
    f.add(engine, clock, lid, "release_test", f.release_test(lot_code="PJ20260302A"))
    clock.advance(timedelta(seconds=5))
    with write_session(engine) as s:
        checkpoint(session=s, ledger_id=lid, signer=prover.signer, clock=clock)
    later = web.get(f"/01/{GTIN14}/10/PJ20260302A", headers=JSON).json()
    [text] = later["proofs"]
    size = verify_entry_proof(text, verifiers=[_key(web)], origin=ORIGIN).proof.checkpoint.size
    assert size > 10
    return text, later["declaration"]["seq"], size


# --- the page's one-statement read, against the statements it replaced -----------------------


def _page_before(session, enterprise, lot) -> dict[str, Any]:
    """The page's facts read as before the one-statement read: a statement each for the
    declarations, the origin, the latest declaration's entry and the recall references
    (proofs aside: ``refs`` names the entries it proved, ``signed`` the size it proved at)."""
    from foodtrace import consumer
    from foodtrace.cases.service import recalls_of_lot
    from foodtrace.ledger.checkpoints import latest_checkpoint
    from foodtrace.ledger.models import Ledger

    seqs = list(
        session.execute(
            select(PublicDeclarationRow.record_seq)
            .where(
                PublicDeclarationRow.enterprise_id == enterprise.id,
                PublicDeclarationRow.lot_seq == lot.record_seq,
            )
            .order_by(PublicDeclarationRow.record_seq)
        ).scalars()
    )
    origin = session.execute(select(Ledger.origin).where(Ledger.id == enterprise.id)).scalar_one()
    if seqs:
        entry = ledger.get_entry(session=session, ledger_id=enterprise.id, seq=seqs[-1])
        data = consumer._from_declaration(json.loads(entry.body)["body"])
        data["declaration"] = {"log": origin, "seq": seqs[-1]}
    else:
        data = consumer._from_tables(session, enterprise, lot)
        data["declaration"] = None
    recall_refs = consumer._recall_refs(session, enterprise, lot)
    recalls = recalls_of_lot(session, enterprise.credit_code, lot.code) if recall_refs else []
    codes = sorted({r["log"] for r in recalls})
    origins = dict(
        session.execute(
            select(Ledger.credit_code, Ledger.origin).where(Ledger.credit_code.in_(codes))
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
    data["refs"] = [(enterprise.id, s) for s in seqs] + [(r.ledger_id, r.seq) for r in recall_refs]
    signed = latest_checkpoint(session=session, ledger_id=enterprise.id)
    data["signed"] = None if signed is None else signed.size
    return data


# A later re-test that fails: a second declaration of the lot, saying so.
_FAILED_RETEST = f.release_test(
    tested_at="2026-03-01T18:00:00+08:00",
    items=[
        {"item": "菌落总数", "result": "300", "unit": "CFU/mL", "limit": "≤100", "passed": False},
        {"item": "大肠菌群", "result": "<1", "unit": "CFU/mL", "limit": "≤1", "passed": True},
    ],
    conclusion="fail",
)


class _Refs:
    """A prover that names what it is asked to prove, and at which signed size."""

    def proofs(self, session, refs, *, signed_sizes=None) -> list[Any]:
        return [(r.ledger_id, r.seq, (signed_sizes or {}).get(r.ledger_id)) for r in refs]


def _page_now(session, read) -> dict[str, Any]:
    from foodtrace.consumer import public_facts

    data = public_facts(session, read, prover=_Refs())  # type: ignore[arg-type]
    asked = data.pop("proofs")
    data["refs"] = [(ledger_id, seq) for ledger_id, seq, _ in asked]
    sizes = {size for ledger_id, _, size in asked if ledger_id == read.enterprise.id}
    data["signed"] = sizes.pop() if sizes else read.signed_size
    return data


def _every_page_reads_as_before(engine) -> int:
    """Every lot's page, read by each URI that names it, equals the statements' reading."""
    from foodtrace.accounts.models import Enterprise
    from foodtrace.consumer import find_public_lot, public_lot, read_public_lot
    from foodtrace.records.models import Lot

    with read_session(engine) as s:
        pairs = s.execute(select(Enterprise, Lot).join(Lot, Lot.enterprise_id == Enterprise.id))
        pairs = pairs.all()
        for enterprise, lot in pairs:
            before = _page_before(s, enterprise, lot)
            names = [{"credit_code": enterprise.credit_code.lower()}]
            if lot.gtin:
                names += [{"gtin": lot.gtin}, {"gtin": lot.gtin.lstrip("0")}]
            for name in names:
                read = read_public_lot(s, lot_code=lot.code, **name)
                assert read is not None, name
                assert (read.enterprise, read.lot) == find_public_lot(s, lot_code=lot.code, **name)
                assert (read.enterprise.id, read.lot.record_seq) == (enterprise.id, lot.record_seq)
                assert _page_now(s, read) == before, (lot.code, name)
            without = {k: v for k, v in before.items() if k not in ("refs", "signed")}
            assert public_lot(s, enterprise, lot) == {**without, "proofs": []}
            assert read_public_lot(s, credit_code=enterprise.credit_code, lot_code="NOPE") is None
        return len(pairs)


def test_the_one_statement_read_equals_the_statements_it_replaced(web, engine, clock) -> None:
    """Released, unreleased, re-tested (two declarations), recalled, without a GTIN, and
    signed at different sizes: each lot's page reads as it did with five statements."""
    lid = f.beverage_ledger(engine, clock)
    f.add(engine, clock, lid, "production_lot", f.production_lot(lot_code="PJ20260302A"))
    workshop = f.register(engine, clock, f.WORKSHOP, name="小作坊")
    for kind, data in (
        ("supplier", f.supplier()),
        ("product", f.product(gtin=None)),
        ("material_check", f.material_check()),
        ("production_lot", f.production_lot(lot_code="WS1")),
        ("release_test", f.release_test(lot_code="WS1")),
    ):
        f.add(engine, clock, workshop, kind, data)
    assert _every_page_reads_as_before(engine) == 3
    assert web.get(PAGE, headers=JSON).status_code == 200  # signs a checkpoint
    # a failing re-test: a second declaration of the lot, after the signed size
    clock.advance(timedelta(hours=2))
    f.add(engine, clock, lid, "release_test", _FAILED_RETEST)
    assert len([d for d in _declarations(engine, lid) if d[1]["lot_code"] == "PJ20260301A"]) == 2
    assert _every_page_reads_as_before(engine) == 3
    clock.advance(timedelta(hours=1))
    f.recall(engine, clock, f.BEVERAGE, "PJ20260301A")
    f.recall(engine, clock, f.WORKSHOP, "WS1")
    assert _every_page_reads_as_before(engine) == 3


def test_what_changes_shows_on_the_next_view(web, engine, clock) -> None:
    """The page keeps proofs and the latest checkpoint in memory, never facts: a re-test's
    declaration and a recall posted after a view show on the very next view, proven."""
    lid = f.beverage_ledger(engine, clock)
    first = web.get(PAGE, headers=JSON).json()
    assert (first["declaration"]["seq"], first["recalls"]) == (9, [])
    clock.advance(timedelta(hours=2))
    f.add(engine, clock, lid, "release_test", _FAILED_RETEST)
    [*_, (latest, _)] = _declarations(engine, lid)
    second = web.get(PAGE, headers=JSON).json()
    assert second["declaration"]["seq"] == latest > 9
    assert second["proofs"][0] == first["proofs"][0]  # the first declaration's, kept
    case = f.recall(engine, clock, f.BEVERAGE, "PJ20260301A")
    third = web.get(PAGE, headers=JSON).json()
    assert [r["case"] for r in third["recalls"]] == [case]
    assert len(third["proofs"]) == 3  # two declarations, the recall notice
    seqs = []
    for text in third["proofs"]:
        proven = verify_entry_proof(text, verifiers=[_key(web)])
        seqs.append((proven.entry["kind"], proven.entry["seq"]))
    assert seqs[:2] == [("public_declaration", 9), ("public_declaration", latest)]
    assert seqs[2][0] == "public_recall"
    assert 'class="recall-banner"' in web.get(PAGE).text
