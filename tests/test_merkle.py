"""RFC 9162 Merkle trees: transparency-dev golden vectors, exhaustive small trees, mutations."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foodtrace.canonical import leaf_hash
from foodtrace.tlog.merkle import (
    EMPTY_ROOT,
    CompactRange,
    ProofError,
    RootMismatchError,
    consistency_proof,
    inclusion_proof,
    node_hash,
    root,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).parent / "vectors" / "transparency-dev-merkle"
SMALL = 64
LARGE = 300  # FOODTRACE_LONG=1 only
LONG = os.environ.get("FOODTRACE_LONG", "") == "1"


def _load(kind: str) -> list[Any]:
    files = sorted((VECTORS / kind).rglob("*.json"))
    return [
        pytest.param(json.loads(f.read_text()), id=str(f.relative_to(VECTORS / kind)))
        for f in files
    ]


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _proof(value: list[str] | None) -> list[bytes]:
    return [_b64(p) for p in value or []]


INCLUSION = _load("inclusion")
CONSISTENCY = _load("consistency")


def test_every_vector_file_is_used() -> None:
    assert len(INCLUSION) == 98
    assert len(CONSISTENCY) == 98
    assert sum(not p.values[0]["wantErr"] for p in INCLUSION + CONSISTENCY) == 12


@pytest.mark.parametrize("v", INCLUSION)
def test_inclusion_vectors(v: dict[str, Any]) -> None:
    def run() -> None:
        verify_inclusion(
            index=v["leafIdx"],
            size=v["treeSize"],
            leaf_hash=_b64(v["leafHash"]),
            proof=_proof(v["proof"]),
            root=_b64(v["root"]),
        )

    if v["wantErr"]:
        with pytest.raises(ProofError):
            run()
    else:
        run()


@pytest.mark.parametrize("v", CONSISTENCY)
def test_consistency_vectors(v: dict[str, Any]) -> None:
    def run() -> None:
        verify_consistency(
            size1=v["size1"],
            size2=v["size2"],
            proof=_proof(v["proof"]),
            root1=_b64(v["root1"]),
            root2=_b64(v["root2"]),
        )

    if v["wantErr"]:
        with pytest.raises(ProofError):
            run()
    else:
        run()


# The leaves the vectors are built from; their roots are the published ones.
CT_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_roots_of_the_ct_leaves_are_the_published_ones() -> None:
    hashes = [leaf_hash(d) for d in CT_LEAVES]
    assert root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    for n in range(1, 9):
        assert root(hashes[:n]).hex() == CT_ROOTS[n - 1]


def test_generated_proofs_equal_the_vectors_happy_paths() -> None:
    hashes = [leaf_hash(d) for d in CT_LEAVES]
    for p in INCLUSION:
        v = p.values[0]
        if not v["wantErr"] and v["leafHash"] in {base64.b64encode(h).decode() for h in hashes}:
            got = inclusion_proof(v["leafIdx"], hashes[: v["treeSize"]])
            assert got == _proof(v["proof"]), v
    for p in CONSISTENCY:
        v = p.values[0]
        if not v["wantErr"] and v["size2"] <= 8 and _b64(v["root2"]).hex() in CT_ROOTS:
            assert consistency_proof(v["size1"], hashes[: v["size2"]]) == _proof(v["proof"]), v


def test_rfc_example_tree_of_seven() -> None:
    # C2SP merkle-tree "Example": the 7-leaf tree with labelled nodes.
    a, b, c, d, e, f, g = (leaf_hash(bytes([i])) for i in range(7))
    h, i, j = node_hash(a, b), node_hash(c, d), node_hash(e, f)
    k, l_ = node_hash(h, i), node_hash(j, g)
    leaves = [a, b, c, d, e, f, g]
    assert root(leaves) == node_hash(k, l_)
    assert inclusion_proof(0, leaves) == [b, i, l_]
    assert inclusion_proof(3, leaves) == [c, h, l_]
    assert inclusion_proof(4, leaves) == [f, g, k]
    assert inclusion_proof(6, leaves) == [j, k]
    assert consistency_proof(3, leaves) == [c, d, h, l_]
    assert consistency_proof(4, leaves) == [l_]
    assert consistency_proof(6, leaves) == [j, g, k]


# --- reference implementation, straight from the RFC's recursive definitions ---------


def _mth(d: list[bytes]) -> bytes:
    if not d:
        return EMPTY_ROOT
    if len(d) == 1:
        return d[0]
    k = 1 << ((len(d) - 1).bit_length() - 1)
    return node_hash(_mth(d[:k]), _mth(d[k:]))


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def test_compact_range_and_root_agree_with_the_recursive_definition() -> None:
    leaves = _leaves(SMALL + 1)
    rng = CompactRange()
    for n in range(SMALL + 1):
        assert rng.size == n
        assert len(rng.hashes) == n.bit_count()
        assert rng.root() == _mth(leaves[:n]) == root(leaves[:n])
        assert CompactRange.from_bytes(n, rng.to_bytes()) == rng
        rng.append(leaves[n])


def test_compact_range_refuses_bytes_of_another_size() -> None:
    rng = CompactRange.of(_leaves(5))  # 5 = 4 + 1: two hashes
    with pytest.raises(ValueError, match="64 bytes"):
        CompactRange.from_bytes(6, rng.to_bytes()[:32])
    with pytest.raises(ValueError, match="size 4 has 32 bytes"):
        CompactRange.from_bytes(4, rng.to_bytes())
    with pytest.raises(ValueError, match="leaf hash has 32 bytes"):
        rng.append(b"short")


def _all_inclusion_proofs_verify(limit: int) -> None:
    leaves = _leaves(limit)
    for n in range(1, limit + 1):
        r = _mth(leaves[:n])
        for m in range(n):
            proof = inclusion_proof(m, leaves[:n])
            verify_inclusion(index=m, size=n, leaf_hash=leaves[m], proof=proof, root=r)


def _all_consistency_proofs_verify(limit: int) -> None:
    leaves = _leaves(limit)
    roots = [_mth(leaves[:n]) for n in range(limit + 1)]
    for n in range(1, limit + 1):
        for m in range(1, n + 1):
            proof = consistency_proof(m, leaves[:n])
            verify_consistency(size1=m, size2=n, proof=proof, root1=roots[m], root2=roots[n])


def test_every_inclusion_proof_up_to_64_leaves_verifies() -> None:
    _all_inclusion_proofs_verify(SMALL)


def test_every_consistency_proof_up_to_64_leaves_verifies() -> None:
    _all_consistency_proofs_verify(SMALL)


@pytest.mark.slow
def test_every_inclusion_proof_up_to_300_leaves_verifies() -> None:
    _all_inclusion_proofs_verify(LARGE)


@pytest.mark.slow
def test_every_consistency_proof_up_to_300_leaves_verifies() -> None:
    _all_consistency_proofs_verify(LARGE)


# --- mutations: one flipped bit anywhere, or a neighbouring index or size, must fail --

LIMIT = LARGE if LONG else SMALL
EXAMPLES = 2000 if LONG else 200
LEAVES = _leaves(LIMIT)


def _flip(data: bytes, bit: int) -> bytes:
    bit %= len(data) * 8
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@st.composite
def _index_in_tree(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(st.integers(1, LIMIT))
    return draw(st.integers(0, n - 1)), n


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    where=_index_in_tree(), target=st.sampled_from(["proof", "leaf", "root"]), bit=st.integers(0)
)
def test_inclusion_fails_after_one_flipped_bit(
    where: tuple[int, int], target: str, bit: int
) -> None:
    m, n = where
    leaves = LEAVES[:n]
    proof, leaf, r = inclusion_proof(m, leaves), leaves[m], root(leaves)
    if target == "proof":
        if not proof:
            return
        i = bit % len(proof)
        proof[i] = _flip(proof[i], bit // len(proof))
    elif target == "leaf":
        leaf = _flip(leaf, bit)
    else:
        r = _flip(r, bit)
    with pytest.raises(RootMismatchError):
        verify_inclusion(index=m, size=n, leaf_hash=leaf, proof=proof, root=r)


@settings(max_examples=EXAMPLES, deadline=None)
@given(where=_index_in_tree(), other=st.integers(0))
def test_inclusion_fails_for_another_leaf_index(where: tuple[int, int], other: int) -> None:
    m, n = where
    other %= n
    if other == m:
        return
    leaves = LEAVES[:n]
    with pytest.raises(ProofError):
        verify_inclusion(
            index=other,
            size=n,
            leaf_hash=leaves[m],
            proof=inclusion_proof(m, leaves),
            root=root(leaves),
        )


@st.composite
def _two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(st.integers(2, LIMIT))
    return draw(st.integers(1, n - 1)), n


@settings(max_examples=EXAMPLES, deadline=None)
@given(sizes=_two_sizes(), target=st.sampled_from(["proof", "root1", "root2"]), bit=st.integers(0))
def test_consistency_fails_after_one_flipped_bit(
    sizes: tuple[int, int], target: str, bit: int
) -> None:
    m, n = sizes
    leaves = LEAVES[:n]
    proof, r1, r2 = consistency_proof(m, leaves), root(leaves[:m]), root(leaves)
    if target == "proof":
        i = bit % len(proof)
        proof[i] = _flip(proof[i], bit // len(proof))
    elif target == "root1":
        r1 = _flip(r1, bit)
    else:
        r2 = _flip(r2, bit)
    with pytest.raises(RootMismatchError):
        verify_consistency(size1=m, size2=n, proof=proof, root1=r1, root2=r2)


@settings(max_examples=EXAMPLES, deadline=None)
@given(sizes=_two_sizes(), other=st.integers(1))
def test_consistency_fails_from_another_size(sizes: tuple[int, int], other: int) -> None:
    m, n = sizes
    other = other % (n - 1) + 1
    if other == m:
        return
    leaves = LEAVES[:n]
    with pytest.raises(ProofError):
        verify_consistency(
            size1=other,
            size2=n,
            proof=consistency_proof(m, leaves),
            root1=root(leaves[:other]),
            root2=root(leaves),
        )


def test_a_proof_does_not_bind_the_tree_size_the_signed_checkpoint_does() -> None:
    # Leaf 0's path in the tree of 3 also leads to the same root when the tree is
    # said to hold 4 leaves: only a signed (size, root) pair ties a root to a size.
    leaves = LEAVES[:3]
    proof = inclusion_proof(0, leaves)
    for size in (3, 4):
        verify_inclusion(index=0, size=size, leaf_hash=leaves[0], proof=proof, root=root(leaves))


def test_a_fork_is_not_consistent() -> None:
    # The same first 10 leaves, then a different 11th: no proof from one to the other.
    honest, forked = _leaves(12), [*_leaves(10), leaf_hash(b"forged"), *_leaves(12)[11:]]
    proof = consistency_proof(10, forked)
    verify_consistency(size1=10, size2=12, proof=proof, root1=root(honest[:10]), root2=root(forked))
    with pytest.raises(RootMismatchError):
        verify_consistency(
            size1=11,
            size2=12,
            proof=consistency_proof(11, forked),
            root1=root(honest[:11]),
            root2=root(forked),
        )


def test_mismatch_carries_expected_and_computed_roots() -> None:
    leaves = _leaves(5)
    wrong = bytes(32)
    with pytest.raises(RootMismatchError) as info:
        verify_inclusion(
            index=2, size=5, leaf_hash=leaves[2], proof=inclusion_proof(2, leaves), root=wrong
        )
    assert info.value.expected == wrong
    assert info.value.computed == root(leaves)
    assert root_from_inclusion_proof(
        index=2, size=5, leaf_hash=leaves[2], proof=inclusion_proof(2, leaves)
    ) == root(leaves)


def test_proof_generation_checks_its_preconditions() -> None:
    with pytest.raises(ValueError, match="0 <= index < size"):
        inclusion_proof(3, _leaves(3))
    with pytest.raises(ValueError, match="0 < size1 <= size2"):
        consistency_proof(0, _leaves(3))
    with pytest.raises(ValueError, match="0 < size1 <= size2"):
        consistency_proof(4, _leaves(3))
    assert consistency_proof(3, _leaves(3)) == []


def test_a_consistency_proof_from_a_compact_range_is_the_proof_from_all_leaves() -> None:
    """Every (m, n) with m <= n < 130: the compact range of m leaves and the n - m leaves
    after it give exactly PROOF(m, D[n])."""
    import hashlib

    from foodtrace.tlog import merkle as m

    leaves = [hashlib.sha256(i.to_bytes(2, "big")).digest() for i in range(130)]
    for n in range(1, 130):
        for size1 in range(1, n + 1):
            old = m.CompactRange.of(leaves[:size1])
            assert m.consistency_proof_from(old, leaves[size1:n]) == m.consistency_proof(
                size1, leaves[:n]
            ), (size1, n)
