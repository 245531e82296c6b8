"""C2SP tlog-checkpoint notes and tlog-proof@v1 bundles: layout, parsing, offline verification."""

from __future__ import annotations

import base64

import pytest

from foodtrace.canonical import leaf_hash
from foodtrace.tlog import merkle
from foodtrace.tlog.checkpoint import (
    PROOF_HEADER,
    Checkpoint,
    CheckpointError,
    MalformedProofError,
    TLogProof,
    open_checkpoint,
    verify_checkpoint_extends,
    verify_tlog_proof,
)
from foodtrace.tlog.merkle import ProofError
from foodtrace.tlog.note import NoteError, NoteSigner, UnverifiedNoteError, sign_note

ORIGIN = "trace.example.cn/ledger/91370404MA3F42206T"
KEY = NoteSigner.generate("trace.example.cn")


def test_the_spec_example_checkpoint_parses_and_prints_back() -> None:
    # c2sp.org/tlog-checkpoint, the example at the top of the spec.
    text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    cp = Checkpoint.parse(text)
    assert (cp.origin, cp.size) == ("example.com/behind-the-sofa", 20852163)
    assert cp.root == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert cp.text() == text
    with_ext = Checkpoint.parse(text + "ext one\next two\n")
    assert with_ext.extensions == ("ext one", "ext two")
    assert with_ext.text() == text + "ext one\next two\n"


ROOT = base64.b64encode(bytes(range(32))).decode()


@pytest.mark.parametrize(
    "text",
    [
        f"o\n1\n{ROOT}",  # no final newline
        "o\n1\n",  # no root
        f"\n1\n{ROOT}\n",  # empty origin
        f"o\n01\n{ROOT}\n",  # leading zero
        f"o\n-1\n{ROOT}\n",
        f"o\n1 \n{ROOT}\n",
        f"o\n1\n{ROOT[:-4]}\n",  # 30 bytes
        f"o\n1\n{ROOT[:-2]}9=\n",  # padding bits set: not the canonical base64
        f"o\n1\n{ROOT}\n\next\n",  # empty extension line
    ],
)
def test_malformed_checkpoints_are_refused(text: str) -> None:
    with pytest.raises(CheckpointError):
        Checkpoint.parse(text)


def test_a_signed_checkpoint_opens_only_with_its_key_and_origin() -> None:
    cp = Checkpoint(ORIGIN, 3, merkle.root([leaf_hash(b"a"), leaf_hash(b"b"), leaf_hash(b"c")]))
    note = sign_note(cp.text(), [KEY])
    assert open_checkpoint(note, [KEY.verifier], origin=ORIGIN)[0] == cp
    with pytest.raises(CheckpointError, match="expected one of"):
        open_checkpoint(note, [KEY.verifier], origin="trace.example.cn/ledger/OTHER")
    with pytest.raises(UnverifiedNoteError):
        open_checkpoint(note, [NoteSigner.generate("trace.example.cn").verifier])


def _bundle(index: int, entries: list[bytes], size: int) -> TLogProof:
    leaves = [leaf_hash(e) for e in entries[:size]]
    note = sign_note(Checkpoint(ORIGIN, size, merkle.root(leaves)).text(), [KEY])
    return TLogProof(
        index=index,
        hashes=tuple(merkle.inclusion_proof(index, leaves)),
        checkpoint=note,
        extra=entries[index],
    )


ENTRIES = [f'{{"seq":{i + 1}}}'.encode() for i in range(11)]


def test_bundle_layout_follows_the_spec() -> None:
    bundle = _bundle(5, ENTRIES, 11)
    text = bundle.text()
    lines = text.split("\n")
    assert lines[0] == PROOF_HEADER == "c2sp.org/tlog-proof@v1"
    assert lines[1] == "extra " + base64.b64encode(ENTRIES[5]).decode()
    assert lines[2] == "index 5"
    assert [base64.b64decode(h) for h in lines[3 : 3 + len(bundle.hashes)]] == list(bundle.hashes)
    assert lines[3 + len(bundle.hashes)] == ""
    assert text.endswith("\n\n" + bundle.checkpoint)
    assert TLogProof.parse(text) == bundle
    assert TLogProof.parse(text.encode()) == bundle
    no_extra = TLogProof(0, (), bundle.checkpoint)
    assert no_extra.text().startswith(PROOF_HEADER + "\nindex 0\n\n")
    assert TLogProof.parse(no_extra.text()) == no_extra


def test_every_entry_of_every_size_verifies_offline() -> None:
    for size in range(1, len(ENTRIES) + 1):
        for index in range(size):
            text = _bundle(index, ENTRIES, size).text()
            got = verify_tlog_proof(text, verifiers=[KEY.verifier], origin=ORIGIN)
            assert (got.index, got.data, got.checkpoint.size) == (index, ENTRIES[index], size)


def test_a_bundle_fails_after_a_change() -> None:
    bundle = _bundle(6, ENTRIES, 11)
    ok = {"verifiers": [KEY.verifier], "origin": ORIGIN}
    for changed in (
        TLogProof(bundle.index, bundle.hashes, bundle.checkpoint, b'{"seq":70}'),
        TLogProof(5, bundle.hashes, bundle.checkpoint, bundle.extra),
        TLogProof(bundle.index, bundle.hashes[:-1], bundle.checkpoint, bundle.extra),
        TLogProof(
            bundle.index,
            (bytes(32), *bundle.hashes[1:]),
            bundle.checkpoint,
            bundle.extra,
        ),
        TLogProof(
            bundle.index, bundle.hashes, bundle.checkpoint.replace("\n11\n", "\n12\n"), bundle.extra
        ),
    ):
        with pytest.raises((ProofError, NoteError)):
            verify_tlog_proof(changed.text(), **ok)
    with pytest.raises(MalformedProofError, match="no entry bytes"):
        verify_tlog_proof(TLogProof(6, bundle.hashes, bundle.checkpoint).text(), **ok)
    # The entry may also be handed over separately from the bundle.
    bare = TLogProof(6, bundle.hashes, bundle.checkpoint).text()
    assert verify_tlog_proof(bare, data=ENTRIES[6], **ok).data == ENTRIES[6]
    with pytest.raises(MalformedProofError, match="not the given entry"):
        verify_tlog_proof(bundle.text(), data=ENTRIES[5], **ok)


@pytest.mark.parametrize(
    "text",
    [
        "c2sp.org/tlog-proof@v2\nindex 0\n\n",
        "c2sp.org/tlog-proof@v1\nindex 00\n\n",
        "c2sp.org/tlog-proof@v1\nextra !!\nindex 0\n\n",
        "c2sp.org/tlog-proof@v1\nextra AA==\n\n",
        "c2sp.org/tlog-proof@v1\nindex 0\nAAAA\n\n",
        "c2sp.org/tlog-proof@v1\nindex 0\n",
    ],
)
def test_malformed_bundles_are_refused(text: str) -> None:
    with pytest.raises(MalformedProofError):
        TLogProof.parse(text)


def test_a_regulator_checks_each_newer_checkpoint_against_the_last_one_seen() -> None:
    leaves = [leaf_hash(e) for e in ENTRIES]
    rewritten = [*leaves[:5], leaf_hash(b"rewritten"), *leaves[6:]]

    def signed(size: int, tree: list[bytes] = leaves) -> str:
        return sign_note(Checkpoint(ORIGIN, size, merkle.root(tree[:size])).text(), [KEY])

    def proof(size1: int, size2: int, tree: list[bytes] = leaves) -> list[bytes]:
        return merkle.consistency_proof(size1, tree[:size2]) if size1 else []

    keys = [KEY.verifier]
    seen = 0
    for size in (0, 1, 4, 7, 11):
        got = verify_checkpoint_extends(
            signed(seen), signed(size), proof(seen, size), verifiers=keys
        )
        assert got.size == size
        seen = size
    # Rewritten at entry 6: still consistent with what was seen at 4, not with 7.
    verify_checkpoint_extends(
        signed(4), signed(11, rewritten), proof(4, 11, rewritten), verifiers=keys
    )
    with pytest.raises(merkle.RootMismatchError):
        verify_checkpoint_extends(
            signed(7), signed(11, rewritten), proof(7, 11, rewritten), verifiers=keys
        )
    other = sign_note(Checkpoint(ORIGIN + "X", 11, merkle.root(leaves)).text(), [KEY])
    with pytest.raises(CheckpointError):
        verify_checkpoint_extends(signed(7), other, proof(7, 11), verifiers=keys)
    with pytest.raises(ProofError):  # a shorter tree never extends a longer one
        verify_checkpoint_extends(signed(7), signed(4), [], verifiers=keys)
    with pytest.raises(ProofError):
        verify_checkpoint_extends(signed(0), signed(4), proof(1, 4), verifiers=keys)
