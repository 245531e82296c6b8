"""RFC 9162 Merkle trees over a ledger's leaf hashes (§2.1), written to read like the RFC.

Hashes (SHA-256, 32 bytes)::

    leaf hash   = SHA-256(0x00 || entry bytes)          # §2.1.1, foodtrace.canonical.leaf_hash
    node hash   = SHA-256(0x01 || left || right)        # §2.1.1
    MTH({})     = SHA-256("")                            # the empty tree
    MTH(D[n])   = node hash(MTH(D[0:k]), MTH(D[k:n]))   # k: largest power of 2 < n

Everything here takes *leaf hashes* (the ``entries.hash`` column), never entry
bytes: the ledger already stores each entry's leaf hash, and verification
recomputes it from the bytes before trusting it.

- :func:`inclusion_proof` / :func:`verify_inclusion`: §2.1.3.1 PATH and §2.1.3.2;
- :func:`consistency_proof` / :func:`verify_consistency`: §2.1.4.1 PROOF and §2.1.4.2;
- :class:`CompactRange`: the roots of the perfect subtrees that make up a tree
  (its "right border"), appendable in O(log n); it gives the root at any time
  and is what each ledger's head row stores;
- :class:`ProofTree`: every perfect subtree's hash of a tree, kept to give many
  inclusion proofs at O(log n) each (the consumer page's prover).

Verification failures raise :class:`ProofError` (malformed proof, wrong sizes)
or its subclass :class:`RootMismatchError` (carrying the expected and computed
roots), never return ``False``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

from foodtrace.canonical import LEAF_PREFIX, leaf_hash
from foodtrace.tlog.errors import ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "LEAF_PREFIX",
    "NODE_PREFIX",
    "CompactRange",
    "ProofError",
    "ProofTree",
    "RootMismatchError",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
NODE_PREFIX = b"\x01"
"""RFC 9162 §2.1.1 domain separation of interior nodes (leaves use 0x00)."""
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}): the root of the empty tree."""


class RootMismatchError(ProofError):
    """The proof is well formed but leads to another root than the one claimed."""

    def __init__(self, what: str, *, expected: bytes, computed: bytes) -> None:
        self.expected = expected
        self.computed = computed
        super().__init__(f"{what}: expected {expected.hex()}, computed {computed.hex()}")


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): an interior node (RFC 9162 §2.1.1)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (requires n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class CompactRange:
    """The perfect-subtree roots that make up a tree of ``size`` leaves, largest (leftmost) first.

    A tree of n leaves splits into one perfect subtree per set bit of n (n = 13
    = 8 + 4 + 1 gives the roots of leaves 0-7, 8-11 and 12), so the range holds
    ``popcount(n)`` hashes. Appending a leaf merges equal-sized subtrees like a
    binary carry, O(log n); the root folds the subtrees from the right, which is
    exactly MTH's left-balanced split. Stored as the hashes concatenated
    (:meth:`to_bytes`); the size is stored beside it.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    @classmethod
    def of(cls, leaf_hashes: Iterable[bytes]) -> CompactRange:
        """The compact range of a tree with these leaves."""
        rng = cls()
        for h in leaf_hashes:
            rng.append(h)
        return rng

    @classmethod
    def from_bytes(cls, size: int, data: bytes) -> CompactRange:
        """Read a stored range; requires ``len(data) == 32 * popcount(size)``."""
        if size < 0:
            raise ValueError(f"negative tree size {size}")
        want = HASH_SIZE * size.bit_count()
        if len(data) != want:
            raise ValueError(f"a compact range of size {size} has {want} bytes, got {len(data)}")
        rng = cls()
        rng._size = size
        rng._hashes = [bytes(data[i : i + HASH_SIZE]) for i in range(0, len(data), HASH_SIZE)]
        return rng

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(self._hashes)

    def to_bytes(self) -> bytes:
        return b"".join(self._hashes)

    def append(self, leaf: bytes) -> None:
        """Add the leaf hash at index ``size``."""
        if len(leaf) != HASH_SIZE:
            raise ValueError(f"a leaf hash has {HASH_SIZE} bytes, got {len(leaf)}")
        h, n = leaf, self._size
        # Each trailing 1 bit of the old size is a perfect subtree as large as
        # the one being carried: merge them, like adding 1 in binary.
        while n & 1:
            h = node_hash(self._hashes.pop(), h)
            n >>= 1
        self._hashes.append(h)
        self._size += 1

    def root(self) -> bytes:
        """MTH of the leaves appended so far."""
        if not self._hashes:
            return EMPTY_ROOT
        r = self._hashes[-1]
        for h in reversed(self._hashes[:-1]):
            r = node_hash(h, r)
        return r

    def copy(self) -> CompactRange:
        rng = CompactRange()
        rng._size, rng._hashes = self._size, list(self._hashes)
        return rng

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return (self._size, self._hashes) == (other._size, other._hashes)

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()[:16]}…)"


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of the given leaf hashes (RFC 9162 §2.1.1)."""
    return CompactRange.of(leaf_hashes).root()


def _range_root(leaves: Sequence[bytes], lo: int, hi: int) -> bytes:
    return CompactRange.of(leaves[lo:hi]).root()


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) for leaf ``index`` of the tree of all ``leaf_hashes`` (RFC 9162 §2.1.3.1).

    Requires 0 <= index < n. The hashes run from the leaf's sibling up to the
    root's child. Costs O(n) hashing: every sibling subtree is rebuilt from its
    leaves (their sizes add up to less than n); :class:`ProofTree` keeps them.
    """
    return _path(index, len(leaf_hashes), lambda lo, hi: _range_root(leaf_hashes, lo, hi))


def _path(index: int, n: int, mth: Callable[[int, int], bytes]) -> list[bytes]:
    """PATH(index, D[n]), taking MTH(D[lo:hi]) of each sibling subtree from ``mth(lo, hi)``."""
    if not 0 <= index < n:
        raise ValueError(f"requires 0 <= index < size, got index {index}, size {n}")
    siblings: list[bytes] = []
    lo, hi, m = 0, n, index
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:  # PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n])
            siblings.append(mth(lo + k, hi))
            hi = lo + k
        else:  # PATH(m, D[n]) = PATH(m - k, D[k:n]) : MTH(D[0:k])
            siblings.append(mth(lo, lo + k))
            lo, m = lo + k, m - k
    siblings.reverse()  # collected top-down; the proof runs bottom-up
    return siblings


def consistency_proof(size1: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) from the tree of the first ``size1`` leaves to all of them (§2.1.4.1).

    Requires 0 < size1 <= n; equal sizes give the empty proof. O(n) hashing.
    """
    return _proof(size1, len(leaf_hashes), lambda lo, hi: _range_root(leaf_hashes, lo, hi))


def consistency_proof_from(old: CompactRange, new_leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) from the compact range of the first m leaves and the leaves after them.

    The same proof as :func:`consistency_proof` over all n leaves, in O(log n +
    (n - m)) hashing: every hash PROOF asks for is either a perfect subtree of
    the old tree that its compact range holds (a left subtree MTH(D[0:k]) taken
    while m > k is the next power of two in m's binary decomposition) or a
    subtree wholly to the right of m (a right subtree MTH(D[k:n]) taken while
    m <= k), which the new leaves give.
    """
    m, n = old.size, old.size + len(new_leaves)
    starts: dict[tuple[int, int], bytes] = {}
    lo = 0
    for h, bit in zip(old.hashes, _bits_high_to_low(m), strict=True):
        starts[(lo, lo + bit)] = h
        lo += bit

    def mth(a: int, b: int) -> bytes:
        if a >= m:
            return _range_root(new_leaves, a - m, b - m)
        try:
            return starts[(a, b)]
        except KeyError:  # cannot happen for a well-formed PROOF; never guess a hash
            raise ValueError(f"subtree {a}..{b} is not in the compact range of {m}") from None

    return _proof(m, n, mth)


def _proof(m: int, n: int, mth: Callable[[int, int], bytes]) -> list[bytes]:
    """PROOF(m, D[n]), taking MTH(D[lo:hi]) of each subtree it names from ``mth(lo, hi)``."""
    if not 0 < m <= n:
        raise ValueError(f"requires 0 < size1 <= size2, got size1 {m}, size2 {n}")
    proof: list[bytes] = []
    lo, hi, rel, whole = 0, n, m, True  # whole: the b flag of SUBPROOF(m, D[n], b)
    while rel != hi - lo:
        k = _split(hi - lo)
        if rel <= k:  # SUBPROOF(m, D[n], b) = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
            proof.append(mth(lo + k, hi))
            hi = lo + k
        else:  # SUBPROOF(m, D[n], b) = SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
            proof.append(mth(lo, lo + k))
            lo, rel, whole = lo + k, rel - k, False
    # SUBPROOF(m, D[m], true) = {} (the verifier knows MTH(D[m]) as first_hash);
    # SUBPROOF(m, D[m], false) = {MTH(D[m])}
    if not whole:
        proof.append(mth(lo, hi))
    proof.reverse()
    return proof


class ProofTree:
    """The tree of a fixed list of leaf hashes with every perfect subtree's hash kept.

    Built once (O(n)), it gives the inclusion path of any leaf in O(log n) hashes:
    the same path as :func:`inclusion_proof`, which rebuilds every sibling subtree
    from its leaves for each proof. ``levels[j][i]`` is the hash of leaves
    ``i·2^j .. (i+1)·2^j - 1``; a subtree that is not perfect is folded from them.
    """

    def __init__(self, leaves: list[bytes]) -> None:
        self.size = len(leaves)
        self.levels = [leaves]
        while len(self.levels[-1]) > 1:
            below = self.levels[-1]
            self.levels.append(
                [node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
            )

    def grown(self, leaves: list[bytes]) -> ProofTree:
        """The tree of this tree's leaves followed by ``leaves``: only the hashes of the new
        right edge are computed (O(len(leaves) + log n)); this tree is left as it is (a
        proof may be under way on it)."""
        tree = object.__new__(ProofTree)
        tree.levels = [level.copy() for level in self.levels]
        tree.levels[0].extend(leaves)
        tree.size = len(tree.levels[0])
        j = 0
        while len(tree.levels[j]) > 1:
            below = tree.levels[j]
            if j + 1 == len(tree.levels):
                tree.levels.append([])
            above = tree.levels[j + 1]
            # every pair already hashed is a pair of leaves (or subtrees) that did not change
            for i in range(2 * len(above), len(below) - 1, 2):
                above.append(node_hash(below[i], below[i + 1]))
            j += 1
        return tree

    def _root(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]); ``lo`` is a multiple of the largest power of 2 below hi - lo."""
        n = hi - lo
        if n & (n - 1) == 0:  # a perfect subtree, aligned: stored
            return self.levels[n.bit_length() - 1][lo // n]
        k = _split(n)
        return node_hash(self._root(lo, lo + k), self._root(lo + k, hi))

    def inclusion_proof(self, index: int) -> list[bytes]:
        """PATH(index, D[size]) (RFC 9162 §2.1.3.1); requires 0 <= index < size."""
        return _path(index, self.size, self._root)


def _bits_high_to_low(n: int) -> list[int]:
    """The powers of two that sum to n, largest first (the compact range's subtree sizes)."""
    return [1 << i for i in range(n.bit_length() - 1, -1, -1) if n >> i & 1]


def _check_hashes(proof: Sequence[bytes]) -> None:
    for i, p in enumerate(proof):
        if len(p) != HASH_SIZE:
            raise ProofError(f"proof hash {i} has {len(p)} bytes, not {HASH_SIZE}")


def _shift_until_odd(fn: int, sn: int) -> tuple[int, int]:
    """Right-shift fn and sn equally until LSB(fn) is set or fn is 0."""
    while fn and not fn & 1:
        fn, sn = fn >> 1, sn >> 1
    return fn, sn


def root_from_inclusion_proof(
    *, index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]
) -> bytes:
    """The root that ``proof`` leads to from leaf ``index`` in a tree of ``size`` (§2.1.3.2).

    Requires 0 <= index < size; raises :class:`ProofError` for a proof of the
    wrong length or shape.
    """
    if not 0 <= index < size:
        raise ProofError(f"requires 0 <= index < size, got index {index}, size {size}")
    if len(leaf_hash) != HASH_SIZE:
        raise ProofError(f"leaf hash has {len(leaf_hash)} bytes, not {HASH_SIZE}")
    _check_hashes(proof)
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            raise ProofError(f"inclusion proof too long for index {index} in size {size}")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            fn, sn = _shift_until_odd(fn, sn)
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(f"inclusion proof too short for index {index} in size {size}")
    return r


def verify_inclusion(
    *, index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that leaf ``index`` of the tree of ``size`` with ``root`` has ``leaf_hash``."""
    computed = root_from_inclusion_proof(index=index, size=size, leaf_hash=leaf_hash, proof=proof)
    if computed != root:
        raise RootMismatchError("inclusion proof", expected=root, computed=computed)


def verify_consistency(
    *, size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of ``size1`` with ``root1`` is a prefix of ``size2`` with ``root2``.

    RFC 9162 §2.1.4.2, for 0 < size1 < size2. Equal sizes need an empty proof
    and equal roots (the empty tree's root being SHA-256("")). A proof from the
    empty tree is refused: it proves nothing (every tree extends the empty one),
    so a caller that starts from size 0 has nothing to check.
    """
    if size1 < 0 or size2 < size1:
        raise ProofError(f"requires 0 <= size1 <= size2, got {size1} and {size2}")
    if size1 == size2:
        if proof:
            raise ProofError(f"equal sizes need an empty proof, got {len(proof)} hashes")
        if size1 == 0 and root1 != EMPTY_ROOT:
            raise RootMismatchError("empty tree", expected=root1, computed=EMPTY_ROOT)
        if root1 != root2:
            raise RootMismatchError("same size, different roots", expected=root2, computed=root1)
        return
    if size1 == 0:
        raise ProofError("a consistency proof from the empty tree proves nothing")
    if not proof:
        raise ProofError(f"empty consistency proof from size {size1} to {size2}")
    _check_hashes(proof)
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # first is an exact power of 2
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof too long from size {size1} to {size2}")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            fn, sn = _shift_until_odd(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(f"consistency proof too short from size {size1} to {size2}")
    if fr != root1:
        raise RootMismatchError(f"root at size {size1}", expected=root1, computed=fr)
    if sr != root2:
        raise RootMismatchError(f"root at size {size2}", expected=root2, computed=sr)
