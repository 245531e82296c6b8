"""The checkpoint signer: its key file, its last-signed state, and what it refuses to sign."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from foodtrace.canonical import leaf_hash
from foodtrace.tlog import merkle
from foodtrace.tlog.checkpoint import Checkpoint, open_checkpoint
from foodtrace.tlog.signer import (
    CheckpointSigner,
    InconsistentCheckpointError,
    SignerError,
    load_key,
    load_verifier,
)

NAME = "trace.example.cn"
ORIGIN = "trace.example.cn/ledger/91370404MA3F42206T"


def _leaves(n: int, tag: bytes = b"") -> list[bytes]:
    return [leaf_hash(tag + i.to_bytes(4, "big")) for i in range(n)]


class Log:
    """A log in memory: its leaves give checkpoints and consistency proofs."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.leaves = leaves

    def checkpoint(self, size: int) -> Checkpoint:
        return Checkpoint(ORIGIN, size, merkle.root(self.leaves[:size]))

    def prove(self, size1: int, size2: int) -> list[bytes]:
        return merkle.consistency_proof(size1, self.leaves[:size2])


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "foodtrace-signing.key"


@pytest.fixture
def signer(key_file: Path) -> CheckpointSigner:
    key_file.parent.mkdir()
    return CheckpointSigner.open(key_file, name=NAME)


def test_the_key_is_generated_once_owner_only(signer: CheckpointSigner, key_file: Path) -> None:
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text().startswith(f"PRIVATE+KEY+{NAME}+")
    again = CheckpointSigner.open(key_file, name=NAME)
    assert again.verifier == signer.verifier
    assert load_verifier(key_file) == signer.verifier
    assert signer.verifier.vkey.startswith(f"{NAME}+")
    assert load_verifier(key_file.with_name("missing.key")) is None
    assert [p.name for p in key_file.parent.iterdir()] == [key_file.name]  # no temporary left


def test_a_key_others_can_read_is_refused(signer: CheckpointSigner, key_file: Path) -> None:
    os.chmod(key_file, 0o640)
    with pytest.raises(SignerError, match="chmod 600"):
        CheckpointSigner.open(key_file, name=NAME)
    with pytest.raises(SignerError):
        load_key(key_file)


def test_a_key_of_another_name_is_refused(signer: CheckpointSigner, key_file: Path) -> None:
    with pytest.raises(SignerError, match="not of 'other.example'"):
        CheckpointSigner.open(key_file, name="other.example")


def test_signs_a_growing_log_and_records_the_last_checkpoint(
    signer: CheckpointSigner, key_file: Path
) -> None:
    log = Log(_leaves(20))
    for size in (1, 2, 7, 8, 13, 20):
        note = signer.sign(log.checkpoint(size), prove=log.prove)
        checkpoint, _ = open_checkpoint(note, [signer.verifier], origin=ORIGIN)
        assert checkpoint == log.checkpoint(size)
        assert signer.last_signed(ORIGIN) == (size, log.checkpoint(size).root)
    # The same checkpoint again, or an older one of the same log, is signed as
    # long as it is no fork; the record keeps the largest size.
    signer.sign(log.checkpoint(20), prove=log.prove)
    state = json.loads(signer.state_file.read_text())
    assert state["origins"][ORIGIN]["size"] == 20
    assert stat.S_IMODE(signer.state_file.stat().st_mode) == 0o600
    assert sorted(p.name for p in key_file.parent.iterdir()) == [
        key_file.name,
        key_file.name + ".lock",
        key_file.name + ".state.json",
    ]


def test_refuses_a_fork_of_what_it_signed(signer: CheckpointSigner) -> None:
    honest = Log(_leaves(12))
    signer.sign(honest.checkpoint(10), prove=honest.prove)
    # A backup restored at size 6, then grown again with other entries.
    forked = Log(_leaves(6) + _leaves(10, b"fork"))
    with pytest.raises(InconsistentCheckpointError, match="behind the last signed size"):
        signer.sign(forked.checkpoint(6), prove=forked.prove)
    with pytest.raises(InconsistentCheckpointError, match="same size 10, another root") as info:
        signer.sign(forked.checkpoint(10), prove=forked.prove)
    assert (info.value.last_size, info.value.last_root) == (10, honest.checkpoint(10).root)
    with pytest.raises(InconsistentCheckpointError, match="does not extend it"):
        signer.sign(forked.checkpoint(12), prove=forked.prove)
    # Nothing it refused was recorded; the honest log goes on.
    assert signer.last_signed(ORIGIN) == (10, honest.checkpoint(10).root)
    signer.sign(honest.checkpoint(12), prove=honest.prove)


def test_refuses_a_lying_consistency_proof(signer: CheckpointSigner) -> None:
    honest = Log(_leaves(9))
    signer.sign(honest.checkpoint(5), prove=honest.prove)
    forked = Log(_leaves(3) + _leaves(6, b"fork"))
    # The caller's proof comes from the forked copy; the signer checks it
    # against the root it recorded, not against anything the caller says.
    with pytest.raises(InconsistentCheckpointError):
        signer.sign(forked.checkpoint(9), prove=forked.prove)
    with pytest.raises(InconsistentCheckpointError):
        signer.sign(forked.checkpoint(9), prove=lambda a, b: honest.prove(a, b))


def test_the_record_survives_a_new_signer_and_is_kept_per_origin(
    signer: CheckpointSigner, key_file: Path
) -> None:
    log = Log(_leaves(8))
    signer.sign(log.checkpoint(8), prove=log.prove)
    other_origin = Checkpoint(
        "trace.example.cn/ledger/91370404MA3793PC3E", 3, merkle.root(_leaves(3, b"x"))
    )
    signer.sign(other_origin, prove=log.prove)
    reopened = CheckpointSigner.open(key_file, name=NAME)
    assert reopened.last_signed(ORIGIN) == (8, log.checkpoint(8).root)
    assert reopened.last_signed(other_origin.origin) == (3, other_origin.root)
    with pytest.raises(InconsistentCheckpointError):
        reopened.sign(Log(_leaves(8, b"fork")).checkpoint(8), prove=log.prove)


def test_an_unreadable_state_stops_signing(signer: CheckpointSigner) -> None:
    log = Log(_leaves(4))
    signer.sign(log.checkpoint(4), prove=log.prove)
    signer.state_file.write_text("{not json")
    with pytest.raises(SignerError, match="unreadable"):
        signer.sign(log.checkpoint(4), prove=log.prove)
    signer.state_file.write_text(json.dumps({"version": 2, "origins": {}}))
    with pytest.raises(SignerError, match="unknown version"):
        signer.last_signed(ORIGIN)


def test_many_checkpoints_are_signed_with_one_write_of_the_state(
    signer: CheckpointSigner, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import foodtrace.tlog.signer as signer_module

    logs = {f"{NAME}/ledger/{i}": Log(_leaves(9, bytes([i]))) for i in range(5)}
    for origin, log in logs.items():
        signer.sign(Checkpoint(origin, 4, merkle.root(log.leaves[:4])), prove=log.prove)
    forked = Log(_leaves(9, b"x"))  # the third origin's log, rewritten
    writes: list[Path] = []
    real = signer_module.atomic_write
    monkeypatch.setattr(
        signer_module, "atomic_write", lambda path, data: (writes.append(path), real(path, data))
    )
    asked = []
    for i, (origin, log) in enumerate(logs.items()):
        log = forked if i == 2 else log
        asked.append((Checkpoint(origin, 9, merkle.root(log.leaves)), log.prove))
    first = logs[f"{NAME}/ledger/0"]
    asked.append((Checkpoint(f"{NAME}/ledger/0", 7, merkle.root(first.leaves[:7])), first.prove))
    notes = signer.sign_many(asked)
    assert writes == [signer.state_file]  # one write for the five signatures
    assert isinstance(notes[2], InconsistentCheckpointError)
    # an origin asked twice is checked against what this call signed first: 7 is behind 9
    assert isinstance(notes[5], InconsistentCheckpointError)
    assert notes[5].last_size == 9
    for (checkpoint, _prove), note in zip(asked[:5], notes[:5], strict=True):
        if isinstance(note, str):
            opened, _ = open_checkpoint(note, [signer.verifier], origin=checkpoint.origin)
            assert opened == checkpoint
    state = {o: signer.last_signed(o) for o in logs}
    for i, (origin, log) in enumerate(logs.items()):
        expected = (4, merkle.root(log.leaves[:4])) if i == 2 else (9, merkle.root(log.leaves))
        assert state[origin] == expected, origin
    writes.clear()
    assert all(isinstance(n, InconsistentCheckpointError) for n in signer.sign_many(asked[2:3]))
    assert writes == []  # nothing signed, nothing written
